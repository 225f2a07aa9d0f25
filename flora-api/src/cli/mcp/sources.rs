//! What `floret mcp` serves, read once at start: technique schemas and model entries from
//! `--schemas DIR` (`DIR/models/` for models), or from the API; `--only` narrows.

use std::path::PathBuf;

use super::super::report::Failure;
use crate::client::Client;
use crate::wire::TechniqueSchema;

/// Every schema of `dir` (`<slug>.json`, and models in `dir/models/<id>.json`), or every
/// technique and model the key sees; `only` narrows (slugs and model ids).
pub(super) async fn schemas(
    client: &Client,
    dir: Option<&std::path::Path>,
    only: &[String],
) -> Result<(Vec<TechniqueSchema>, Vec<crate::ModelSchema>), Failure> {
    let wanted = |slug: &str| only.is_empty() || only.iter().any(|o| o == slug);
    let mut out = Vec::new();
    let mut models = Vec::new();
    if let Some(dir) = dir {
        for (p, text) in json_files(dir, true)? {
            let schema: TechniqueSchema = serde_json::from_str(&text).map_err(|e| {
                Failure::usage(format!(
                    "--schemas: {} is not a technique schema: {e}",
                    p.display()
                ))
            })?;
            if wanted(schema.slug_or_derived()) {
                out.push(schema);
            }
        }
        for (p, text) in json_files(&dir.join("models"), false)? {
            let model: crate::ModelSchema = serde_json::from_str(&text).map_err(|e| {
                Failure::usage(format!(
                    "--schemas: {} is not a model entry: {e}",
                    p.display()
                ))
            })?;
            if wanted(&model.model_id) {
                models.push(model);
            }
        }
    } else {
        use futures_util::TryStreamExt;
        let listed: Vec<TechniqueSchema> = client
            .techniques(crate::ListTechniques {
                limit: Some(100),
                ..Default::default()
            })
            .try_collect()
            .await
            .map_err(Failure::from)?;
        for t in listed.iter().filter(|t| wanted(t.slug_or_derived())) {
            // The listing is an index: each schema is read in full. One that cannot be read
            // (archived, forbidden, a passing 5xx) is left out, said so; the rest are served.
            match client.technique(&t.technique_id).await {
                Ok(schema) => out.push(schema),
                Err(e) => eprintln!(
                    "floret mcp: technique `{}` is not offered: {e}",
                    crate::safe_text::plain_text(t.slug_or_derived(), 80)
                ),
            }
        }
        match client.models(None).await {
            Ok(all) => models.extend(all.into_iter().filter(|m| wanted(&m.model_id))),
            // A key (or server) without the model catalog: techniques only, said so.
            Err(e) => eprintln!("floret mcp: no model tools (GET /models: {e})"),
        }
    }
    let missing: Vec<&String> = only
        .iter()
        .filter(|o| {
            !out.iter().any(|s| s.slug_or_derived() == o.as_str())
                && !models.iter().any(|m| m.model_id == o.as_str())
        })
        .collect();
    if !missing.is_empty() {
        return Err(Failure::usage(format!(
            "--only: no technique or model {}",
            missing
                .iter()
                .map(|m| format!("`{}`", crate::safe_text::plain_text(m, 80)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((out, models))
}

/// The `.json` files of `dir`, sorted, with their text; a missing directory is empty
/// unless `needed`.
fn json_files(dir: &std::path::Path, needed: bool) -> Result<Vec<(PathBuf, String)>, Failure> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if !needed && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Failure::usage(format!("--schemas {}: {e}", dir.display()))),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Failure::usage(format!("--schemas: {}: {e}", p.display())))?;
        out.push((p, text));
    }
    Ok(out)
}
