//! `cargo xtask doc-fixtures`: the codegen fixtures (hostile descriptions included) built
//! into a scratch copy of `flora-api`, then `cargo doc` with warnings denied and the
//! doctests run. Proves schema text cannot break `cargo doc` or become a doctest: the
//! hostile fixture hides `assert!(false)` and `std::process::exit(1)` in code fences.

use std::path::Path;

use crate::scratch;

/// Generates the valid fixtures into a scratch workspace and checks docs and doctests.
pub fn run() -> Result<String, String> {
    let root = crate::workspace_root();
    let mut files = Vec::new();
    let mut entries = Vec::new();
    // The committed schemas too: flora-api's own docs use `techniques::CctvCam`.
    for dir in [
        root.join("flora-codegen/tests/fixtures/valid"),
        root.join("schemas"),
    ] {
        entries.extend(
            std::fs::read_dir(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json")),
        );
    }
    entries.sort();
    for p in &entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        files.push(flora_codegen::SchemaFile::new(
            format!("schemas/{name}"),
            text,
        ));
    }
    let generated = flora_codegen::generate(&files).map_err(|d| d.to_string())?;
    let (ws, target) = scratch::workspace("doc-fixtures")?;
    scratch::write_techniques(&ws, &generated.files)?;
    let quiet =
        |ws: &Path, args: &[&str], env: &[(&str, &str)]| scratch::cargo(ws, &target, args, env);
    quiet(
        &ws,
        &["doc", "--quiet", "-p", "flora-api", "--no-deps"],
        &[("RUSTDOCFLAGS", "-Dwarnings")],
    )?;
    quiet(&ws, &["test", "--quiet", "-p", "flora-api", "--doc"], &[])?;
    Ok(format!(
        "{} techniques (codegen fixtures + schemas/): `cargo doc -D warnings` clean, doctests pass",
        generated.techniques.len()
    ))
}
