fn main() -> Result<(), Box<dyn std::error::Error>> {
    flora_codegen::Build::new()
        .schemas_dir("flora-schemas")
        .test_util_feature("test-util")
        .generate()?;
    // The same techniques for code that reaches the runtime through a facade (README,
    // "A renamed or re-exported runtime"): nothing generated names `flora_api`.
    flora_codegen::Build::new()
        .schemas_dir("flora-schemas")
        .runtime_path("::my_facade::flora")
        .out_file("facade_techniques.rs")
        .generate()?;
    Ok(())
}
