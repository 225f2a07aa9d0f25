//! `floret sandbox`: the fake FLORA on loopback (no key, no bill), serving schema files as
//! they are, or the techniques built into floret.

use std::path::{Path, PathBuf};

use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;
use crate::wire::TechniqueSchema;

pub(super) async fn sandbox(
    session: &Session,
    out: &Out,
    dir: Option<&Path>,
    port: u16,
) -> Result<(), Failure> {
    let fake = crate::testing::FakeFlora::new();
    let default = Path::new("schemas");
    let (n, from) = match dir {
        Some(dir) => (serve_schemas(&fake, dir)?, dir.display().to_string()),
        None if default.is_dir() => (serve_schemas(&fake, default)?, "schemas".to_owned()),
        None => (builtin(&fake)?, "floret's built-in techniques".to_owned()),
    };
    // Models beside techniques: `DIR/models/<model>.json`, each generating placeholders.
    let models = match dir.or(default.is_dir().then_some(default)) {
        Some(dir) => serve_models(&fake, &dir.join("models"))?,
        None => 0,
    };
    let served = fake.serve_on(port).await?;
    // The two lines to paste, on stdout even when asked to be quiet: they are the result.
    out.raw(&format!(
        "export FLORA_BASE_URL={}\nexport FLORA_API_KEY=sk_sandbox\nexport FLORA_PROJECT_ID={}\n",
        served.base_url(),
        crate::testing::FAKE_PROJECT_ID
    ));
    out.always(&format!(
        "floret sandbox: {n} technique(s) and {models} model(s) from {from} on {}; no key, no \
         bill (generations land in project {}). Ctrl-C stops it.",
        served.base_url(),
        crate::testing::FAKE_PROJECT_ID
    ));
    session.interrupt.cancelled().await;
    Ok(())
}

/// Serves every `<slug>.json` of `dir`; how many.
fn serve_schemas(fake: &crate::testing::FakeFlora, dir: &Path) -> Result<usize, Failure> {
    let files = std::fs::read_dir(dir).map_err(|e| {
        Failure::usage(format!(
            "--schemas {}: {e}. The sandbox serves technique schema files: pass --schemas DIR, a \
             directory of <slug>.json (flora-codegen's `schemas/`, or one `flora-codegen fetch` \
             wrote)",
            dir.display()
        ))
    })?;
    let mut paths: Vec<PathBuf> = files
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let schema: TechniqueSchema = serde_json::from_str(&text).map_err(|e| {
            Failure::usage(format!("{} is not a technique schema: {e}", path.display()))
        })?;
        fake.completes_untyped(&schema);
    }
    Ok(paths.len())
}

/// Serves every `<model>.json` of `dir` (a missing `dir`: none); how many.
fn serve_models(fake: &crate::testing::FakeFlora, dir: &Path) -> Result<usize, Failure> {
    let Ok(files) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut paths: Vec<PathBuf> = files
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let model: crate::ModelSchema = serde_json::from_str(&text)
            .map_err(|e| Failure::usage(format!("{} is not a model: {e}", path.display())))?;
        fake.model_schema(&model).completes();
    }
    Ok(paths.len())
}

/// The techniques generated into flora-api (its `techniques` feature).
#[cfg(feature = "techniques")]
fn builtin(fake: &crate::testing::FakeFlora) -> Result<usize, Failure> {
    for info in crate::techniques::TECHNIQUES {
        fake.completes_technique(info);
    }
    Ok(crate::techniques::TECHNIQUES.len())
}

#[cfg(not(feature = "techniques"))]
fn builtin(_: &crate::testing::FakeFlora) -> Result<usize, Failure> {
    Err(Failure::usage(
        "no ./schemas here and this floret has no built-in techniques (built without the \
         `techniques` feature): pass --schemas DIR, a directory of <slug>.json",
    ))
}
