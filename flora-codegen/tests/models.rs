//! Typed models (work in progress, issue 30): a catalog entry with every param type becomes a
//! struct, enums for options, a struct of checked numbers for a dict, and one `Model` impl.

#[test]
fn a_model_with_every_param_type_generates_and_warns_about_what_it_leaves_out() {
    let text = include_str!("fixtures/models/every-param.json");
    let files = [flora_codegen::SchemaFile::new(
        "schemas/models/every-param.json",
        text,
    )];
    let (out, warnings) =
        flora_codegen::generate_models(&files, &flora_codegen::Config::flora_api()).unwrap();
    let warned = warnings.to_string();
    assert!(warned.contains("\"matrix\""), "{warned}");
    assert!(
        warned.contains("\"prompt\""),
        "a param named prompt clashes with the prompt: {warned}"
    );
    insta::assert_snapshot!("model_every_param", out["t2i_every_param.rs"]);
    insta::assert_snapshot!("models_mod", out["mod.rs"]);
}
