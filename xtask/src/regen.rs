//! `cargo xtask regen`: fetch schemas (when there is a key), generate code, write both.
//!
//! Everything is computed in memory first; files are written only when every schema is
//! valid and generation succeeded, so a bad schema never leaves a half-written tree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flora_api::{Client, ListTechniques};
use flora_codegen::SchemaFile;
use flora_codegen::ir::TechniqueSpec;
use futures_util::TryStreamExt;
use serde_json::Value;

use crate::report;

/// What `regen` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Never fetch, even with a key.
    pub offline: bool,
    /// Write nothing; report whether anything would change.
    pub check: bool,
    /// API key; `None` or empty means offline.
    pub api_key: Option<String>,
    /// Base URL override.
    pub base_url: Option<String>,
    /// Workspace to list techniques of.
    pub workspace_id: Option<String>,
    /// Only fetch and update these slugs.
    pub only: Vec<String>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// What `regen` did or would do.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One line saying where the schemas came from.
    pub source: String,
    /// The change summary (added/removed/changed, BREAKING marks).
    pub report: String,
    /// Files written, or that would be written with `--check`, relative to the root.
    pub changed_files: Vec<String>,
    /// Unified diff of the changed files (filled with `--check`).
    pub diff: String,
    /// Whether any change was BREAKING.
    pub breaking: bool,
}

impl Outcome {
    /// Nothing changed (or, with `--check`, nothing would).
    pub fn up_to_date(&self) -> bool {
        self.changed_files.is_empty()
    }
}

/// The repository layout regen works on.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `schemas/`
    pub schemas: PathBuf,
    /// `flora-api/src/techniques/`
    pub generated: PathBuf,
}

impl Layout {
    /// The layout under a workspace root.
    pub fn new(root: &Path) -> Self {
        Layout {
            schemas: root.join("schemas"),
            generated: root.join("flora-api").join("src").join("techniques"),
        }
    }
}

/// Reads `dir/*.<ext>` into name → contents (missing dir: empty).
pub fn read_dir(dir: &Path, ext: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some(ext) || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        out.insert(name.to_owned(), text);
    }
    Ok(out)
}

/// A slug is used as a file name: refuse anything that could leave `schemas/`.
fn check_slug(slug: &str) -> Result<(), String> {
    let bad = slug.is_empty()
        || slug.starts_with('.')
        || slug.contains(['/', '\\'])
        || slug.chars().any(char::is_control);
    if bad {
        Err(format!(
            "technique slug {slug:?} cannot be used as a file name; refusing to write it"
        ))
    } else {
        Ok(())
    }
}

/// Pretty JSON with sorted keys and a trailing newline.
pub fn schema_text(value: &Value) -> Result<String, String> {
    // serde_json's default map is a BTreeMap, so keys come out sorted.
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| format!("cannot serialise a schema: {e}"))
}

fn api_message(e: flora_api::Error) -> String {
    match e.status() {
        Some(401) => format!(
            "FLORA rejected the API key (HTTP 401): check FLORA_API_KEY, or run \
             `cargo xtask regen --offline` to use the committed schemas.\n  {e}"
        ),
        _ => format!("fetching techniques failed: {e}"),
    }
}

/// Fetches every technique visible to the key: slug → raw technique object.
async fn fetch(opts: &Options, key: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut builder = Client::builder().api_key(key);
    let base = opts
        .base_url
        .clone()
        .or_else(|| std::env::var(flora_api::ENV_BASE_URL).ok())
        .filter(|b| !b.trim().is_empty());
    if let Some(b) = base {
        builder = builder.base_url(b);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let bar = if opts.progress {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message("fetching techniques");
    let mut stream = std::pin::pin!(client.techniques(ListTechniques {
        limit: Some(100),
        workspace_id: opts.workspace_id.clone(),
        ..Default::default()
    }));
    let mut out = BTreeMap::new();
    while let Some(t) = stream.try_next().await.map_err(api_message)? {
        let slug = t.slug_or_derived().to_owned();
        if !opts.only.is_empty() && !opts.only.contains(&slug) {
            continue;
        }
        check_slug(&slug)?;
        let raw = if t.inputs.is_none() || t.outputs.is_none() {
            bar.set_message(format!("retrieving {slug}"));
            client
                .technique(&t.technique_id)
                .await
                .map_err(api_message)?
                .raw()
                .clone()
        } else {
            t.raw().clone()
        };
        if out.insert(slug.clone(), raw).is_some() {
            return Err(format!(
                "two techniques share the slug `{slug}`; cannot give both a schema file"
            ));
        }
        bar.inc(1);
        bar.set_message(format!("fetched {slug}"));
    }
    bar.finish_and_clear();
    Ok(out)
}

fn specs(schemas: &BTreeMap<String, String>) -> BTreeMap<String, TechniqueSpec> {
    schemas
        .iter()
        .filter_map(|(name, text)| {
            let f = SchemaFile::new(format!("schemas/{name}"), text.clone());
            let spec = flora_codegen::lower(&f).ok()?;
            Some((spec.module.wire.clone(), spec))
        })
        .collect()
}

/// A planned file change.
enum Plan {
    Write(PathBuf, String),
    Remove(PathBuf),
}

fn plan_dir(
    out: &mut Vec<(String, Plan, Option<String>)>,
    dir: &Path,
    shown: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    for (name, text) in new {
        if old.get(name) != Some(text) {
            out.push((
                format!("{shown}/{name}"),
                Plan::Write(dir.join(name), text.clone()),
                old.get(name).cloned(),
            ));
        }
    }
    for (name, text) in old {
        if !new.contains_key(name) {
            out.push((
                format!("{shown}/{name}"),
                Plan::Remove(dir.join(name)),
                Some(text.clone()),
            ));
        }
    }
}

/// Runs regen on the workspace at `root`.
pub async fn regen(root: &Path, opts: &Options) -> Result<Outcome, String> {
    let layout = Layout::new(root);
    let old_schemas = read_dir(&layout.schemas, "json")?;
    let key = opts.api_key.clone().filter(|k| !k.trim().is_empty());
    let (new_schemas, source) = match key {
        Some(key) if !opts.offline => {
            let fetched = fetch(opts, &key).await?;
            let mut m = old_schemas.clone();
            if opts.only.is_empty() {
                m.clear();
            } else {
                for slug in &opts.only {
                    m.remove(&format!("{slug}.json"));
                }
            }
            for (slug, v) in &fetched {
                m.insert(format!("{slug}.json"), schema_text(v)?);
            }
            let source = format!("Fetched {} technique schema(s) from FLORA.", fetched.len());
            (m, source)
        }
        _ => {
            let why = if opts.offline {
                "--offline"
            } else {
                "no FLORA_API_KEY"
            };
            let mut source = format!(
                "Offline ({why}): regenerating code from the {} committed schema(s) in schemas/.",
                old_schemas.len()
            );
            if !opts.only.is_empty() {
                source.push_str(" (--only selects what to fetch; offline, every schema is used.)");
            }
            (old_schemas.clone(), source)
        }
    };

    let files: Vec<SchemaFile> = new_schemas
        .iter()
        .map(|(name, text)| SchemaFile::new(format!("schemas/{name}"), text.clone()))
        .collect();
    let generated = flora_codegen::generate(&files).map_err(|d| d.to_string())?;

    let new_specs: BTreeMap<String, TechniqueSpec> = generated
        .techniques
        .iter()
        .map(|t| (t.module.wire.clone(), t.clone()))
        .collect();
    let changes = report::diff(&specs(&old_schemas), &new_specs);
    let mut outcome = Outcome {
        source,
        report: report::render(&changes, new_specs.len()),
        breaking: changes.iter().any(|c| c.breaking),
        ..Outcome::default()
    };

    let old_generated = read_dir(&layout.generated, "rs")?;
    let mut plans = Vec::new();
    plan_dir(
        &mut plans,
        &layout.schemas,
        "schemas",
        &old_schemas,
        &new_schemas,
    );
    plan_dir(
        &mut plans,
        &layout.generated,
        "flora-api/src/techniques",
        &old_generated,
        &generated.files,
    );
    outcome.changed_files = plans.iter().map(|(shown, _, _)| shown.clone()).collect();

    if opts.check {
        for (shown, plan, old) in &plans {
            let new = match plan {
                Plan::Write(_, text) => text.as_str(),
                Plan::Remove(_) => "",
            };
            let old = old.as_deref().unwrap_or("");
            let diff = similar::TextDiff::from_lines(old, new);
            let _ = write!(
                outcome.diff,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{shown}"), &format!("b/{shown}"))
            );
        }
        return Ok(outcome);
    }
    apply(&layout, plans.into_iter().map(|(_, p, _)| p).collect())?;
    Ok(outcome)
}

/// Writes every file through a temporary sibling and a rename, then removes stale files.
fn apply(layout: &Layout, plans: Vec<Plan>) -> Result<(), String> {
    for dir in [&layout.schemas, &layout.generated] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut staged = Vec::new();
    for plan in &plans {
        if let Plan::Write(path, text) = plan {
            let tmp = path.with_extension("regen-tmp");
            std::fs::write(&tmp, text)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            staged.push((tmp, path));
        }
    }
    for (tmp, path) in staged {
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for plan in plans {
        if let Plan::Remove(path) = plan {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
