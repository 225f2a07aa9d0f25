//! `cargo xtask doc-fixtures`: the codegen fixtures (hostile descriptions included) built
//! into a scratch copy of `flora-api`, then `cargo doc` with warnings denied and the
//! doctests run. Proves schema text cannot break `cargo doc` or become a doctest: the
//! hostile fixture hides `assert!(false)` and `std::process::exit(1)` in code fences.

use crate::scratch;

/// Generates the valid fixtures into a scratch workspace and checks docs and doctests.
pub fn run() -> Result<String, String> {
    let root = crate::workspace_root();
    let mut files = Vec::new();
    // The committed schemas too: flora-api's own docs use `techniques::CctvCam`.
    for dir in [
        root.join("flora-codegen/tests/fixtures/valid"),
        root.join("schemas"),
    ] {
        for (name, text) in crate::regen::read_schemas(&dir).map_err(|e| e.to_string())? {
            files.push(flora_codegen::SchemaFile::new(
                format!("schemas/{name}"),
                text,
            ));
        }
    }
    let generated = flora_codegen::generate(&files, &flora_codegen::Config::flora_api())
        .map_err(|d| d.to_string())?;
    let (ws, target) = scratch::workspace("doc-fixtures")?;
    scratch::write_techniques(&ws, &generated.files)?;
    scratch::cargo(
        &ws,
        &target,
        &["doc", "--quiet", "-p", "flora-api", "--no-deps"],
        &[("RUSTDOCFLAGS", "-Dwarnings")],
    )?;
    scratch::cargo(
        &ws,
        &target,
        &["test", "--quiet", "-p", "flora-api", "--doc"],
        &[],
    )?;
    Ok(format!(
        "{} techniques (codegen fixtures + schemas/): `cargo doc -D warnings` clean, doctests pass",
        generated.technique_count()
    ))
}
