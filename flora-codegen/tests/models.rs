//! Typed models (issue 30): a catalog entry with every param type becomes a struct, a marker
//! type with constants for options, a struct of numbers for a dict, a `Debug` that calls the
//! runtime, and one `Model` impl holding the entry as JSON.

#[test]
fn a_model_with_every_param_type_generates_and_warns_about_what_it_leaves_out() {
    let text = include_str!("fixtures/models/every-param.json");
    let (out, warnings) = generate("every-param.json", text);
    let warned = warnings.to_string();
    assert!(warned.contains("\"matrix\""), "{warned}");
    assert!(
        warned.contains("\"prompt\""),
        "a param named prompt clashes with the prompt: {warned}"
    );
    insta::assert_snapshot!("model_every_param", out["t2i_every_param.rs"]);
    insta::assert_snapshot!("models_mod", out["mod.rs"]);
}

/// Catalog text that would end a raw string (`"#`, a quote and 300 `#`) or that rustc
/// refuses in a literal (a bidi control, U+202E) is kept whole: the entry `INFO` holds is
/// ASCII, valid Rust, and parses back to the catalog's strings.
#[test]
fn hostile_catalog_strings_survive_in_the_generated_entry() {
    let hashes = format!("\"{}", "#".repeat(300));
    let text = serde_json::json!({
        "model_id": "t2i-hostile", "name": format!("Quote \"# {hashes} \\ \u{2028} \u{202e} é 🐈"),
        "type": "image",
        "params": [{"name": "mode", "type": "string", "required": false,
                    "options": [{"label": "End \"#", "value": "a\"##b"},
                                {"label": "Plain", "value": "plain"}]}]
    })
    .to_string();
    let (out, _) = generate("t2i-hostile.json", &text);
    let code = &out["t2i_hostile.rs"];
    let file = syn::parse_file(code).expect("the generated file is Rust");
    let json = find_json_literal(&file).expect("INFO has a `json` literal");
    assert!(json.is_ascii(), "{json}");
    let entry: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        entry["name"],
        format!("Quote \"# {hashes} \\ \u{2028} \u{202e} é 🐈")
    );
    assert_eq!(entry["params"][0]["options"][0]["value"], "a\"##b");
    assert_eq!(entry["params"][0]["options"][0]["label"], "End \"#");
}

/// Dict numbers that give one Rust field, or none, are left out with a warning (a dict with
/// none left is left out whole), and the entry lists them under `left_out` so that
/// `verify_model` does not report them.
#[test]
fn dict_numbers_without_their_own_rust_name_are_left_out_and_listed() {
    let text = serde_json::json!({
        "model_id": "t2i-dicts", "name": "Dicts", "type": "image",
        "params": [
            {"name": "lora", "type": "dict", "required": false, "properties": {
                "Scale": {"min": 0, "max": 1}, "scale": {"min": 0, "max": 2},
                "%%": {"min": 0, "max": 3}}},
            {"name": "odd", "type": "dict", "required": false, "properties": {
                "%%": {"min": 0, "max": 3}}}
        ]
    })
    .to_string();
    let (out, warnings) = generate("t2i-dicts.json", &text);
    let warned = warnings.to_string();
    assert!(
        warned.contains("number \"scale\" of \"lora\" would be the field `scale` of \"Scale\""),
        "{warned}"
    );
    assert!(
        warned.contains("param \"odd\" is a dict none of whose numbers"),
        "{warned}"
    );
    let code = &out["t2i_dicts.rs"];
    assert_eq!(code.matches("pub scale: f64").count(), 1, "{code}");
    assert!(!code.contains("pub odd"), "{code}");
    let json = find_json_literal(&syn::parse_file(code).unwrap()).unwrap();
    let entry: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        entry["left_out"],
        serde_json::json!(["lora.%%", "lora.scale", "odd.%%", "odd"])
    );
    assert_eq!(
        entry["params"][0]["properties"],
        serde_json::json!({"Scale": {"min": 0.0, "max": 1.0}})
    );
}

/// The string value of the `json: …` field in the generated `INFO`.
fn find_json_literal(file: &syn::File) -> Option<String> {
    use syn::{Expr, ImplItem, Item, Lit};
    for item in &file.items {
        let Item::Impl(imp) = item else { continue };
        for it in &imp.items {
            let ImplItem::Const(c) = it else { continue };
            let Expr::Struct(s) = &c.expr else { continue };
            for f in &s.fields {
                let is_json = matches!(&f.member, syn::Member::Named(n) if n == "json");
                if let (true, Expr::Lit(l)) = (is_json, &f.expr)
                    && let Lit::Str(s) = &l.lit
                {
                    return Some(s.value());
                }
            }
        }
    }
    None
}

/// The files and warnings generated from one model entry, named as regen stores it.
fn generate(
    name: &str,
    text: &str,
) -> (
    std::collections::BTreeMap<String, String>,
    flora_codegen::Diagnostics,
) {
    let files = [flora_codegen::SchemaFile::new(
        format!("schemas/models/{name}"),
        text,
    )];
    flora_codegen::generate_models(&files, &flora_codegen::Config::flora_api()).unwrap()
}
