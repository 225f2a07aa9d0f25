fn main() -> Result<(), Box<dyn std::error::Error>> {
    flora_codegen::Build::new()
        .schemas_dir("flora-schemas")
        .generate()?;
    Ok(())
}
