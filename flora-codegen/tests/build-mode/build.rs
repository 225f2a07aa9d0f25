fn main() -> Result<(), Box<dyn std::error::Error>> {
    flora_codegen::Build::new()
        .schemas_dir("flora-schemas")
        .test_util_feature("test-util")
        // Where `src/lib.rs` includes them: their doc examples are then compiled doctests.
        .module_path("flora_build_mode::techniques")
        .generate()?;
    // The same techniques for code that reaches the runtime through a facade (README,
    // "A renamed or re-exported runtime"): nothing generated names `flora_api`.
    flora_codegen::Build::new()
        .schemas_dir("flora-schemas")
        .runtime_path("::my_facade::flora")
        // No module path: `my_facade` is this crate under another name (`extern crate self`),
        // which a doctest (another crate) cannot name; its examples stay `ignore`.
        .out_file("facade_techniques.rs")
        .generate()?;
    fixtures()?;
    models()?;
    Ok(())
}

/// flora-codegen's model fixtures (a model with every param type), generated for
/// `tests/models.rs` through `Build::models_dir` as a user's build script would: the code
/// compiles with warnings denied and its params are checked. The fixture's deliberate
/// warnings (a param of an unknown type, …) are kept out of cargo's output: its `cargo:`
/// lines go nowhere, and the rerun trigger is printed here.
fn models() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../fixtures/models");
    flora_codegen::Build::new()
        .models_dir("../fixtures/models")
        .generate_to(&mut std::io::sink())?;
    Ok(())
}

/// flora-codegen's fixtures (every slot type and casing, hostile docs, unknown types, names
/// that need escaping), generated for `tests/fixtures.rs`: the code must compile with
/// warnings denied, and its fake impls round-trip through `FakeFlora`. Through the library
/// (not `Build`), so the fixtures' deliberate warnings are not printed on every build.
fn fixtures() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new("../fixtures/valid");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    let mut files = Vec::new();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        files.push(flora_codegen::SchemaFile::new(
            format!("schemas/{name}"),
            std::fs::read_to_string(&p)?,
        ));
    }
    let generated = flora_codegen::generate(&files, &flora_codegen::Config::flora_api())
        .map_err(|d| format!("the valid fixtures do not generate: {d}"))?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("fixture_techniques.rs");
    std::fs::write(out, generated.single_file())?;
    Ok(())
}
