//! FLORA models (`GET /models` entries) → typed param structs.
//!
//! Per model: a struct of its params (`options` → a marker type whose constants are the
//! allowed values, each a `flora_api::Choice` of it; `dict` with `properties` → a struct of
//! numbers; `required` → a plain field, else `Option`), a `Debug` impl that calls the
//! runtime's one `debug_model`, and one `Model` impl whose `INFO` carries the catalog entry
//! itself as JSON (the params the struct has, in field order), which the runtime parses and
//! checks every value against before any request. Nothing else: `generate`/`start` are
//! provided by the trait, option values need no impls, and `fields` hands the fields to one
//! runtime function, since a crate holds hundreds of models and every generated impl or
//! expression costs build time (bench 2, `cargo xtask bench-instructions`). A param of a
//! type this version does not know is left out of the struct and of the JSON with a
//! warning (FLORA then uses its default), never blocking generation.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde::Deserialize;

use crate::diag::{Diagnostic, Diagnostics};
use crate::emit::{doc_attrs, ident, runtime};
use crate::{Config, SchemaFile, docs, naming, render};

/// A model as the catalog lists it (the fields generation needs; the rest is ignored).
#[derive(Debug, Clone, Deserialize)]
struct RawModel {
    model_id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    estimated_credits: Option<f64>,
    #[serde(default)]
    estimated_seconds: Option<f64>,
    #[serde(default)]
    params: Vec<RawParam>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawParam {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<serde_json::Value>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    options: Vec<RawOption>,
    #[serde(default)]
    properties: BTreeMap<String, RawNumber>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawOption {
    label: String,
    value: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawNumber {
    min: f64,
    max: f64,
    #[serde(default)]
    default: Option<f64>,
}

/// The name of a param's own type (its options' enum, its dict's struct): the model's name,
/// then the param's.
fn param_type(model: &naming::Name, wire: &str) -> proc_macro2::Ident {
    let param = naming::upper_camel(wire).map_or_else(|| "Param".to_owned(), |n| n.rust);
    format_ident!("{}{}", model.rust, param)
}

/// The Rust field of wire name `wire`, claimed in `taken` (field → the wire name that has
/// it): why not when the name gives none or another already has it. For a model's params
/// and for a dict's numbers alike.
fn claim_field(taken: &mut BTreeMap<String, String>, wire: &str) -> Result<naming::Name, String> {
    let field = naming::snake(wire).ok_or("gives no Rust name")?;
    if let Some(other) = taken.get(&field.rust) {
        return Err(format!("would be the field `{}` of {other:?}", field.rust));
    }
    taken.insert(field.rust.clone(), wire.to_owned());
    Ok(field)
}

/// A param of the entry `INFO` keeps: what the check reads (labels kept for a fake's
/// listing; descriptions and defaults are in the docs); a dict's numbers, those with a
/// Rust name.
fn entry_param(
    p: &RawParam,
    numbers: Option<&[(String, proc_macro2::Ident)]>,
) -> serde_json::Value {
    let mut q = serde_json::Map::new();
    q.insert("name".into(), p.name.clone().into());
    q.insert("type".into(), p.kind.clone().into());
    q.insert("required".into(), p.required.into());
    for (key, bound) in [("min", p.min), ("max", p.max)] {
        if let Some(x) = bound {
            q.insert(key.into(), x.into());
        }
    }
    if !p.options.is_empty() {
        let options = p
            .options
            .iter()
            .map(|o| serde_json::json!({"value": o.value, "label": o.label}))
            .collect();
        q.insert("options".into(), serde_json::Value::Array(options));
    }
    if let Some(numbers) = numbers {
        let properties = p
            .properties
            .iter()
            .filter(|(k, _)| numbers.iter().any(|(n, _)| n == *k))
            .map(|(k, n)| (k.clone(), serde_json::json!({"min": n.min, "max": n.max})))
            .collect();
        q.insert("properties".into(), serde_json::Value::Object(properties));
    }
    serde_json::Value::Object(q)
}

/// JSON text whose only `"` are its strings' delimiters and that is all ASCII: a quote
/// inside a string is written `\u0022` and every non-ASCII character `\uXXXX`. So `r#"…"#`
/// always holds it (a delimiter is never followed by `#`), and no catalog text can put a
/// character rustc refuses in a literal (a bidi control) into the generated code.
struct AsciiJson;

impl serde_json::ser::Formatter for AsciiJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        match escape {
            CharEscape::Quote => writer.write_all(b"\\u0022"),
            other => serde_json::ser::CompactFormatter.write_char_escape(writer, other),
        }
    }
}

/// The entry as a raw string literal `r#"…"#` (see [`AsciiJson`]).
fn entry_literal(entry: &serde_json::Value) -> Result<proc_macro2::Literal, String> {
    use serde::Serialize;
    let mut text = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut text, AsciiJson);
    entry
        .serialize(&mut ser)
        .map_err(|e| format!("the catalog entry does not serialize: {e}"))?;
    let text = String::from_utf8(text).map_err(|e| e.to_string())?;
    format!("r#\"{text}\"#")
        .parse()
        .map_err(|e| format!("the catalog entry gives no string literal: {e}"))
}

/// The generated files (`mod.rs` and one per model) and the warnings, or every problem found.
/// The runtime is named through `config`'s runtime path, as for techniques.
pub fn generate_models(
    files: &[SchemaFile],
    config: &Config,
) -> Result<(BTreeMap<String, String>, Diagnostics), Diagnostics> {
    config.validate()?;
    let rt = runtime(config);
    let mut out = BTreeMap::new();
    let mut diags = Diagnostics::default();
    let mut warnings = Diagnostics::default();
    let mut sorted: Vec<&SchemaFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut modules: Vec<(naming::Name, naming::Name, String)> = Vec::new();
    for file in sorted {
        let model: RawModel = match serde_json::from_str(file.contents.as_str()) {
            Ok(m) => m,
            Err(e) => {
                diags.push(Diagnostic::new(
                    file.path.as_str(),
                    "",
                    format!("not a model object: {e}"),
                    "fetch it again with `cargo xtask regen`",
                ));
                continue;
            }
        };
        match emit_model(&model, file.path.as_str(), &rt, &mut warnings) {
            Ok((module, st, tokens)) => {
                let header = format!(
                    "// @generated by flora-codegen from {}. Do not edit.",
                    file.path.as_str()
                );
                match render::render(file.path.as_str(), &header, tokens) {
                    Ok(text) => {
                        out.insert(format!("{}.rs", naming::unraw(&module.rust)), text);
                        modules.push((module, st, model.model_id.clone()));
                    }
                    Err(d) => diags.push(d),
                }
            }
            Err(d) => diags.push(d),
        }
    }
    if !diags.0.is_empty() {
        return Err(diags);
    }
    let items = modules.iter().map(|(m, st, id)| {
        let m = ident(&m.rust);
        let doc = doc_attrs(&[format!("[`{}`]: model `{}`.", st.rust, docs::code(id))]);
        quote! {
            #doc
            pub mod #m;
            pub use #m::*;
        }
    });
    let model_paths: Vec<TokenStream> = modules
        .iter()
        .map(|(m, st, _)| {
            let (m, st) = (ident(&m.rust), ident(&st.rust));
            quote!(#m::#st)
        })
        .collect();
    let index = quote! {
        #( #items )*
        /// Every model generated here, as the generated code knows it: for tools that list
        /// them, or a fake that serves them all.
        pub const MODELS: &[#rt::ModelInfo] = &[
            #( <#model_paths as #rt::Model>::INFO, )*
        ];
    };
    match render::render(
        "mod.rs",
        "// @generated by flora-codegen from schemas/models/*.json. Do not edit.",
        index,
    ) {
        Ok(text) => {
            out.insert("mod.rs".to_owned(), text);
        }
        Err(d) => return Err(Diagnostics(vec![d])),
    }
    Ok((out, warnings))
}

fn emit_model(
    m: &RawModel,
    file: &str,
    rt: &TokenStream,
    warnings: &mut Diagnostics,
) -> Result<(naming::Name, naming::Name, TokenStream), Diagnostic> {
    let bad = |what: String| Diagnostic::new(file, "/model_id", what, "check the model file");
    let module = naming::snake(&m.model_id)
        .ok_or_else(|| bad(format!("model id {:?} gives no Rust name", m.model_id)))?;
    let name = naming::upper_camel(&m.model_id)
        .ok_or_else(|| bad(format!("model id {:?} gives no Rust name", m.model_id)))?;
    let st = ident(&name.rust);
    let mut doc = docs::text_lines(&m.name);
    doc.push(String::new());
    doc.push(format!(
        "- Model id: `{}`, type: `{}`{}",
        docs::code(&m.model_id),
        docs::code(&m.kind),
        m.provider
            .as_deref()
            .map(|p| format!(", provider: {p}"))
            .unwrap_or_default()
    ));
    if let (Some(c), Some(s)) = (m.estimated_credits, m.estimated_seconds) {
        doc.push(format!("- About {c} credits and {s} s a generation"));
    }
    doc.push(
        "- Every param is checked against the catalog before any request: FLORA itself \
         bills an unknown value with its default"
            .to_owned(),
    );
    doc.push(
        "- `generate` and `start` come with the `Model` trait: bring it into scope".to_owned(),
    );
    let doc = doc_attrs(&doc);

    let mut fields = Vec::new();
    let mut extra_items = Vec::new();
    // The entry's params the struct has, as far as the check reads them (a dict's numbers
    // without a Rust name dropped), and the expression `fields` hands over for each.
    let mut kept = Vec::new();
    let mut values = Vec::new();
    let mut left_out: Vec<String> = Vec::new();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    taken.insert("prompt".to_owned(), "prompt".to_owned());
    for (i, p) in m.params.iter().enumerate() {
        let pointer = format!("/params/{i}");
        let field = match claim_field(&mut taken, &p.name) {
            Ok(field) => field,
            Err(why) => {
                warnings.push(Diagnostic::warning(
                    file,
                    pointer.as_str(),
                    format!("param {:?} {why}; left out", p.name),
                    "FLORA uses its default for it",
                ));
                left_out.push(p.name.clone());
                continue;
            }
        };
        let wire = &p.name;
        // A dict's numbers with a Rust name, in the catalog's order (by name), each as
        // `(wire name, field)`; `None` for a param that is not a dict.
        let mut dict: Option<Vec<(String, proc_macro2::Ident)>> = None;
        let ty = match (
            p.kind.as_str(),
            p.options.is_empty(),
            p.properties.is_empty(),
        ) {
            ("string", false, _) => {
                let e = param_type(&name, wire);
                let mut variants = Vec::new();
                let mut seen = BTreeMap::new();
                for o in &p.options {
                    let Some(v) = naming::upper_camel(&o.value) else {
                        return Err(Diagnostic::new(
                            file,
                            pointer.as_str(),
                            format!("option {:?} of {wire:?} gives no Rust name", o.value),
                            "report this model to flora-codegen",
                        ));
                    };
                    if seen.insert(v.rust.clone(), o.value.clone()).is_some() {
                        return Err(Diagnostic::new(
                            file,
                            pointer.as_str(),
                            format!("two options of {wire:?} would be the variant `{}`", v.rust),
                            "report this model to flora-codegen",
                        ));
                    }
                    let vi = ident(&v.rust);
                    let mut vdoc = vec![format!("{} (`{}`)", o.label, docs::code(&o.value))];
                    if let Some(d) = &o.description {
                        vdoc.push(String::new());
                        vdoc.extend(docs::text_lines(d));
                    }
                    let vdoc = doc_attrs(&vdoc);
                    let value = &o.value;
                    variants.push(quote! {
                        #vdoc
                        pub const #vi: #rt::Choice<Self> = #rt::Choice::__generated(#value);
                    });
                }
                let edoc = doc_attrs(&[format!(
                    "The values of `{}` for [`{}`]: its constants (a value of another \
                     param does not type-check).",
                    docs::code(wire),
                    name.rust
                )]);
                extra_items.push(quote! {
                    #edoc
                    pub enum #e {}
                    #[allow(non_upper_case_globals)]
                    impl #e { #( #variants )* }
                });
                quote!(#rt::Choice<#e>)
            }
            ("string", true, _) => quote!(::std::string::String),
            ("string[]", _, _) => quote!(::std::vec::Vec<::std::string::String>),
            ("bool", _, _) => quote!(bool),
            ("int" | "int?", _, _) => quote!(i64),
            ("seed", _, _) => quote!(u64),
            ("float", _, _) => quote!(f64),
            ("dict", _, false) => {
                let s = param_type(&name, wire);
                let mut props = Vec::new();
                let mut numbers: Vec<(String, proc_macro2::Ident)> = Vec::new();
                let mut fields_of_dict = BTreeMap::new();
                for (k, n) in &p.properties {
                    let f = match claim_field(&mut fields_of_dict, k) {
                        Ok(f) => f,
                        Err(why) => {
                            warnings.push(Diagnostic::warning(
                                file,
                                format!("{pointer}/properties"),
                                format!("number {k:?} of {wire:?} {why}; left out"),
                                "FLORA uses its default for it",
                            ));
                            left_out.push(format!("{wire}.{k}"));
                            continue;
                        }
                    };
                    let fi = ident(&f.rust);
                    let (lo, hi) = (n.min, n.max);
                    let pdoc = doc_attrs(&[format!(
                        "`{}`: from {lo} to {hi}{}",
                        docs::code(k),
                        n.default
                            .map(|d| format!(", default {d}"))
                            .unwrap_or_default()
                    )]);
                    props.push(quote! { #pdoc pub #fi: f64, });
                    numbers.push((k.clone(), fi));
                }
                if numbers.is_empty() {
                    warnings.push(Diagnostic::warning(
                        file,
                        format!("{pointer}/properties"),
                        format!("param {wire:?} is a dict none of whose numbers has a Rust name, which cannot be checked; left out"),
                        "FLORA uses its default for it",
                    ));
                    left_out.push(wire.clone());
                    taken.remove(&field.rust);
                    continue;
                }
                let sdoc = doc_attrs(&[
                    format!(
                        "The numbers of `{}` for [`{}`].",
                        docs::code(wire),
                        name.rust
                    ),
                    String::new(),
                    format!(
                        "No `Debug` of its own (an impl per dict costs compile time in a \
                         crate of hundreds of models): [`{}`]'s `Debug` shows them.",
                        name.rust
                    ),
                ]);
                // `Clone` and `Copy` by hand: the derives add an assertion per field.
                extra_items.push(quote! {
                    #sdoc
                    pub struct #s { #( #props )* }
                    impl ::core::clone::Clone for #s {
                        #[inline]
                        fn clone(&self) -> Self {
                            *self
                        }
                    }
                    impl ::core::marker::Copy for #s {}
                });
                dict = Some(numbers);
                quote!(#s)
            }
            ("dict", _, true) => {
                warnings.push(Diagnostic::warning(
                    file,
                    format!("{pointer}/properties"),
                    format!("param {wire:?} is a dict without named numbers, which cannot be checked; left out"),
                    "FLORA uses its default for it",
                ));
                taken.remove(&field.rust);
                continue;
            }
            (other, _, _) => {
                warnings.push(Diagnostic::warning(
                    file,
                    format!("{pointer}/type"),
                    format!("param {wire:?} has type {other:?}, which this flora-codegen does not know; left out"),
                    "FLORA uses its default for it; a newer flora-codegen may know the type",
                ));
                taken.remove(&field.rust);
                continue;
            }
        };
        let fi = ident(&field.rust);
        let mut fdoc: Vec<String> = match (&p.label, &p.description) {
            (Some(l), Some(d)) => vec![format!("{l}: {d}"), String::new()],
            (Some(t), None) | (None, Some(t)) => vec![t.clone(), String::new()],
            (None, None) => Vec::new(),
        };
        let range = match (p.min, p.max) {
            (Some(a), Some(b)) => format!(", from {a} to {b}"),
            (Some(a), None) => format!(", at least {a}"),
            (None, Some(b)) => format!(", at most {b}"),
            (None, None) => String::new(),
        };
        fdoc.push(format!(
            "- Param `{}`, type `{}`{range}",
            docs::code(wire),
            docs::code(&p.kind)
        ));
        if let Some(d) = &p.default {
            fdoc.push(format!("- Default: `{}`", docs::code(&d.to_string())));
        }
        let required = p.required;
        if !required {
            fdoc.push("- `None` leaves it out: FLORA uses its default".to_owned());
        }
        let fdoc = doc_attrs(&fdoc);
        if required {
            fields.push(quote! { #fdoc pub #fi: #ty, });
        } else {
            fields.push(quote! { #fdoc pub #fi: ::core::option::Option<#ty>, });
        }
        kept.push(entry_param(p, dict.as_deref()));
        // A dict goes as an array of its numbers, named by the entry at run time.
        values.push(match (required, dict) {
            (_, None) => quote!(&self.#fi),
            (true, Some(numbers)) => {
                let ns = numbers.iter().map(|(_, n)| n);
                quote!(&[ #( self.#fi.#ns ),* ])
            }
            (false, Some(numbers)) => {
                let ns = numbers.iter().map(|(_, n)| n);
                quote!(&self.#fi.map(|d| [ #( d.#ns ),* ]))
            }
        });
    }
    let (id, kind) = (&m.model_id, &m.kind);
    // Compact, and only what the check reads: the literal's bytes are compiled too.
    // What the generator left out (params, dict numbers as `param.number`), so that
    // `verify_model` does not report them as added or changed.
    let mut entry = serde_json::json!({
        "model_id": m.model_id, "name": m.name, "type": m.kind, "params": kept,
    });
    if !left_out.is_empty() {
        entry["left_out"] = serde_json::json!(left_out);
    }
    let json = entry_literal(&entry).map_err(bad)?;
    // What one output is parsed into: the URL type of the model's media, text as a string.
    let output = match kind.as_str() {
        "image" => quote!(#rt::ImageUrl),
        "video" => quote!(#rt::VideoUrl),
        "audio" => quote!(#rt::AudioUrl),
        "text" => quote!(::std::string::String),
        _ => quote!(#rt::RawOutput),
    };
    let tokens = quote! {
        #doc
        // Clone only: each derived impl costs compile time in every crate of hundreds of
        // models. `Debug` is one call into the runtime.
        #[derive(Clone)]
        pub struct #st {
            /// The prompt (not empty).
            pub prompt: ::std::string::String,
            #( #fields )*
        }
        impl ::core::fmt::Debug for #st {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #rt::debug_model(self, f)
            }
        }
        #( #extra_items )*
        impl #rt::Model for #st {
            const INFO: #rt::ModelInfo = #rt::ModelInfo {
                model_id: #id,
                kind: #kind,
                json: #json,
            };
            type Output = #output;
            #[inline]
            fn fields(&self) -> #rt::Fields<'_> {
                #rt::Fields::new(&self.prompt, &[ #( #values ),* ])
            }
        }
    };
    Ok((module, name, tokens))
}
