//! The Rust surface of generated technique files: what user code sees and can break on.
//!
//! The change report compares these, read back from the old and the new generated files,
//! rather than schema JSON: a wire rename that keeps the Rust field (`input_image` →
//! `inputImage`) is then a note, not a removal plus an addition, and offline regens that add
//! a hand-written schema are reported like fetched ones.

use std::collections::BTreeMap;

use quote::ToTokens;
use syn::{Expr, ImplItem, Item, Lit};

/// One field of a generated struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The Rust field name as written (`r#type`).
    pub rust: String,
    /// Its type without paths (`Option<ImageUrl>`).
    pub ty: String,
    /// The slot id, when the file records it (`SlotInfo`).
    pub wire_id: Option<String>,
    /// The slot's wire type, when recorded.
    pub wire_type: Option<String>,
}

/// One generated technique as user code sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Surface {
    /// Module (file stem), e.g. `cctv_cam`.
    pub module: String,
    /// The input struct, e.g. `CctvCam`.
    pub struct_name: String,
    /// `Technique::SLUG`.
    pub slug: String,
    /// `Technique::TECHNIQUE_ID`.
    pub technique_id: String,
    /// `Technique::RUN_COST_USD`.
    pub run_cost: Option<f64>,
    /// Input fields in order.
    pub inputs: Vec<Field>,
    /// Output fields in order.
    pub outputs: Vec<Field>,
}

/// Generated paths reduced to the names a user reads.
fn short_type(ty: &syn::Type) -> String {
    let mut s: String = ty
        .to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for prefix in [
        "::core::option::",
        "::std::string::",
        "::std::vec::",
        "::flora_api::",
    ] {
        s = s.replace(prefix, "");
    }
    s
}

fn lit_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

fn lit_f64(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok(),
            Lit::Int(i) => i.base10_parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// `&[SlotInfo::new("id", "type", opt), …]` → `[(id, type)]`.
fn slot_infos(e: &Expr) -> Vec<(String, String)> {
    let Expr::Reference(r) = e else {
        return Vec::new();
    };
    let Expr::Array(a) = &*r.expr else {
        return Vec::new();
    };
    a.elems
        .iter()
        .filter_map(|el| match el {
            Expr::Call(c) => {
                let mut args = c.args.iter();
                Some((lit_str(args.next()?)?, lit_str(args.next()?)?))
            }
            _ => None,
        })
        .collect()
}

fn fields(item: &syn::ItemStruct, wire: &[(String, String)]) -> Vec<Field> {
    item.fields
        .iter()
        .enumerate()
        .map(|(i, f)| Field {
            rust: f
                .ident
                .as_ref()
                .map(|id| id.to_token_stream().to_string())
                .unwrap_or_default(),
            ty: short_type(&f.ty),
            // Generated fields follow the schema order, as `INPUTS`/`OUTPUTS` do.
            wire_id: (wire.len() == item.fields.len()).then(|| wire[i].0.clone()),
            wire_type: (wire.len() == item.fields.len()).then(|| wire[i].1.clone()),
        })
        .collect()
}

/// Reads one generated technique file; `None` when it holds no `impl Technique`.
pub fn parse(module: &str, text: &str) -> Option<Surface> {
    let file = syn::parse_file(text).ok()?;
    let mut structs = BTreeMap::new();
    let mut surface = Surface {
        module: module.to_owned(),
        ..Surface::default()
    };
    let (mut inputs, mut outputs, mut outputs_name) = (Vec::new(), Vec::new(), None);
    let mut found = false;
    for item in &file.items {
        match item {
            Item::Struct(s) => {
                structs.insert(s.ident.to_string(), s);
            }
            Item::Impl(imp) => {
                let is_technique = imp
                    .trait_
                    .as_ref()
                    .and_then(|(p, _)| p.segments.last())
                    .is_some_and(|s| s.ident == "Technique");
                if !is_technique {
                    continue;
                }
                found = true;
                surface.struct_name = imp.self_ty.to_token_stream().to_string();
                for it in &imp.items {
                    match it {
                        ImplItem::Const(c) => match c.ident.to_string().as_str() {
                            "SLUG" => surface.slug = lit_str(&c.expr).unwrap_or_default(),
                            "TECHNIQUE_ID" => {
                                surface.technique_id = lit_str(&c.expr).unwrap_or_default()
                            }
                            "RUN_COST_USD" => surface.run_cost = lit_f64(&c.expr),
                            "INPUTS" => inputs = slot_infos(&c.expr),
                            "OUTPUTS" => outputs = slot_infos(&c.expr),
                            // Since the constants were folded into one:
                            // `TechniqueInfo::new(slug, id, cost, &[inputs], &[outputs])`.
                            "INFO" => {
                                if let Expr::Call(call) = &c.expr {
                                    let args: Vec<&Expr> = call.args.iter().collect();
                                    if let [slug, id, cost, ins, outs] = args[..] {
                                        surface.slug = lit_str(slug).unwrap_or_default();
                                        surface.technique_id = lit_str(id).unwrap_or_default();
                                        surface.run_cost = lit_f64(cost);
                                        inputs = slot_infos(ins);
                                        outputs = slot_infos(outs);
                                    }
                                }
                            }
                            _ => {}
                        },
                        ImplItem::Type(t) if t.ident == "Outputs" => {
                            outputs_name = Some(t.ty.to_token_stream().to_string());
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !found {
        return None;
    }
    if let Some(s) = structs.get(&surface.struct_name) {
        surface.inputs = fields(s, &inputs);
    }
    if let Some(s) = outputs_name.and_then(|n| structs.get(&n)) {
        surface.outputs = fields(s, &outputs);
    }
    Some(surface)
}

/// Every technique of a generated directory (`file name → text`), keyed by module.
pub fn of_files(files: &BTreeMap<String, String>) -> BTreeMap<String, Surface> {
    files
        .iter()
        .filter(|(name, _)| name.as_str() != "mod.rs")
        .filter_map(|(name, text)| {
            let module = name.strip_suffix(".rs")?;
            parse(module, text).map(|s| (module.to_owned(), s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_a_generated_file() {
        let schema = r#"{"technique_id": "tech_cctv-cam", "name": "CCTV", "run_cost": 0.05,
          "inputs": [{"id": "inputImage", "type": "imageUrl"},
                     {"id": "type", "type": "text", "optional": true}],
          "outputs": [{"id": "o", "type": "meshUrl"}]}"#;
        let out = crate::generate(
            &[crate::SchemaFile::new("schemas/cctv-cam.json", schema)],
            &crate::Config::flora_api(),
        )
        .unwrap();
        let s = parse("cctv_cam", &out.files["cctv_cam.rs"]).unwrap();
        assert_eq!(s.struct_name, "CctvCam");
        assert_eq!(s.slug, "cctv-cam");
        assert_eq!(s.technique_id, "tech_cctv-cam");
        assert_eq!(s.run_cost, Some(0.05));
        assert_eq!(s.inputs[0].rust, "input_image");
        assert_eq!(s.inputs[0].ty, "ImageUrl");
        assert_eq!(s.inputs[0].wire_id.as_deref(), Some("inputImage"));
        assert_eq!(s.inputs[1].rust, "r#type");
        assert_eq!(s.inputs[1].ty, "Option<String>");
        assert_eq!(s.outputs[0].ty, "RawOutput");
        assert_eq!(s.outputs[0].wire_type.as_deref(), Some("meshUrl"));
        assert!(parse("x", "not rust").is_none());
    }

    /// Files committed by a generator from before `TechniqueInfo` still read the same, so
    /// the first regen after an upgrade reports no spurious changes.
    #[test]
    fn reads_the_older_five_constant_form() {
        let old = r#"
            pub struct CctvCam { pub input_image: ::flora_api::ImageUrl }
            pub struct CctvCamOutputs { pub output_image: ::flora_api::ImageUrl }
            impl ::flora_api::Technique for CctvCam {
                const SLUG: &'static str = "cctv-cam";
                const TECHNIQUE_ID: &'static str = "tech_cctv-cam";
                const RUN_COST_USD: f64 = 0.05;
                const INPUTS: &'static [::flora_api::SlotInfo] =
                    &[::flora_api::SlotInfo::new("input_image", "imageUrl", false)];
                const OUTPUTS: &'static [::flora_api::SlotInfo] =
                    &[::flora_api::SlotInfo::new("output_image", "imageUrl", false)];
                type Outputs = CctvCamOutputs;
            }"#;
        let schema = r#"{"technique_id": "tech_cctv-cam", "name": "CCTV", "run_cost": 0.05,
          "inputs": [{"id": "input_image", "type": "imageUrl"}],
          "outputs": [{"id": "output_image", "type": "imageUrl"}]}"#;
        let out = crate::generate(
            &[crate::SchemaFile::new("schemas/cctv-cam.json", schema)],
            &crate::Config::flora_api(),
        )
        .unwrap();
        let new = parse("cctv_cam", &out.files["cctv_cam.rs"]).unwrap();
        assert_eq!(parse("cctv_cam", old).unwrap(), new);
    }
}
