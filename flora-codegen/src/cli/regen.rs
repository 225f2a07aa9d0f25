//! Fetch schemas (when there is a key), generate code, write both: the one implementation
//! behind `cargo xtask regen` and the `flora-codegen` binary.
//!
//! Everything is computed in memory first; files are written only when every schema is
//! valid and generation succeeded, and then all-or-nothing ([`super::write`]), so a bad
//! schema or a failed write never leaves a half-written tree. A catalog answer that would
//! delete every technique (or more than half) needs `--allow-mass-removal`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::error::{RegenError, RegenErrorKind};
use super::fetching::{fetch_all, fetch_models};
use super::options::Options;
use super::plans::{normalise, plan_dir, refuse_to_replace, schema_text};
use super::regen_models::{ModelLayout, plan_models};
use super::write::{self, Plan};
use super::{model_changes, report, surface};
use crate::schema_dir;
use crate::{Config, SchemaFile};

/// What `regen` did or would do.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One line saying where the schemas came from.
    pub source: String,
    /// The change summary (added/removed/changed, BREAKING marks, warnings).
    pub report: String,
    /// Techniques with a local schema that the server does not list (fetch mode).
    pub absent_upstream: Vec<String>,
    /// Files written or removed (or that would be, with `--check`), relative to the root.
    pub changed_files: Vec<String>,
    /// Of `changed_files`, those removed (or to be removed).
    pub removed_files: Vec<String>,
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

/// The directories regen works on, how they are named in messages, and the generation
/// settings.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The command running, as messages name it (`flora-codegen generate`).
    pub command: String,
    /// Whether the command fetches (with a key); `flora-codegen generate` never does, and a
    /// missing schema directory is then an error rather than an empty catalog.
    pub fetches: bool,
    /// The schema directory.
    pub schemas: PathBuf,
    /// How the schema directory is shown in messages, e.g. `schemas`. (Generated headers
    /// name it by its own name, however it was typed.)
    pub schemas_shown: String,
    /// Where generated code goes, if anywhere (`flora-codegen fetch` writes schemas only).
    /// Files in it without the `@generated` header are the user's: never replaced or deleted.
    pub generated: Option<PathBuf>,
    /// How the generated directory is shown.
    pub generated_shown: String,
    /// How code is generated.
    pub codegen: Config,
    /// Rewrite hand-written schema files normalised (sorted keys, pretty).
    pub normalise_schemas: bool,
    /// Model catalog entries (`<model_id>.json`) and where their generated code goes, shown
    /// as in messages: `None` generates no models.
    pub models: Option<ModelLayout>,
}

impl Layout {
    /// This repository: `schemas/` and `flora-api/src/techniques/` under `root`.
    pub fn workspace(root: &Path) -> Self {
        Layout {
            command: "cargo xtask regen".to_owned(),
            fetches: true,
            schemas: root.join("schemas"),
            schemas_shown: "schemas".to_owned(),
            generated: Some(root.join("flora-api").join("src").join("techniques")),
            generated_shown: "flora-api/src/techniques".to_owned(),
            codegen: Config::flora_api(),
            normalise_schemas: true,
            models: Some(ModelLayout {
                schemas: root.join("schemas").join("models"),
                schemas_shown: "schemas/models".to_owned(),
                generated: root.join("flora-api").join("src").join("models"),
                generated_shown: "flora-api/src/models".to_owned(),
            }),
        }
    }
}

/// Reads the `*.json` schema files of `dir` (name → text). A file name that is not UTF-8 is
/// an error naming it.
pub fn read_schemas(dir: &Path) -> Result<BTreeMap<String, String>, RegenError> {
    schema_dir::read(dir, "json").map_err(|e| RegenError::new(RegenErrorKind::Io, e.to_string()))
}

/// Refuses a fetch that would delete every local technique, or more than half of them.
fn check_mass_removal(old: usize, removed: &[String], allowed: bool) -> Result<(), RegenError> {
    if allowed || removed.is_empty() || (removed.len() * 2 <= old && removed.len() < old) {
        return Ok(());
    }
    let mut names = removed.to_vec();
    names.truncate(10);
    Err(RegenError::new(
        RegenErrorKind::Refused,
        format!(
            "the server lists none of {} of the {old} local technique(s) ({}{}); refusing to delete \
         them. If they really are gone, run again with --allow-mass-removal; to keep them, \
         use --keep-local; check --workspace-id and the API key's workspace",
            removed.len(),
            names.join(", "),
            if removed.len() > names.len() {
                ", …"
            } else {
                ""
            }
        ),
    ))
}

/// Runs regen on `layout`. Every error says what happened to the tree: nothing
/// (`no file was changed`), or exactly which files changed.
pub async fn regen(layout: &Layout, opts: &Options) -> Result<Outcome, RegenError> {
    let (outcome, plans) = plan(layout, opts)
        .await
        .map_err(|e| e.note("no file was changed"))?;
    if !opts.check {
        if !outcome.absent_upstream.is_empty() && !opts.keep_local {
            // Said before anything is deleted.
            eprintln!(
                "Deleting {} technique(s) not listed upstream (--keep-local keeps them): {}",
                outcome.absent_upstream.len(),
                outcome.absent_upstream.join(", ")
            );
        }
        write::apply(&plans)?;
    }
    Ok(outcome)
}

/// Everything before writing: fetch or read, generate, report, plan (and diff with `--check`).
async fn plan(layout: &Layout, opts: &Options) -> Result<(Outcome, Vec<Plan>), RegenError> {
    layout
        .codegen
        .validate()
        .map_err(|d| RegenError::new(RegenErrorKind::Config, crate::config::describe(&d)))?;
    let fetching = layout.fetches && !opts.offline && !opts.fetch.api_key.trim().is_empty();
    let old_schemas = match schema_dir::read(&layout.schemas, "json") {
        Ok(files) => files,
        // A first fetch creates the directory; anything else needs the schemas.
        Err(e) if e.is_missing_dir() && fetching => BTreeMap::new(),
        Err(e) if e.is_missing_dir() => {
            return Err(RegenError::new(
                RegenErrorKind::Io,
                format!(
                    "the schema directory {} does not exist; check the path (`--schemas`){}",
                    layout.schemas_shown,
                    if layout.fetches {
                        ", or fetch it with FLORA_API_KEY set"
                    } else {
                        ", or fetch schemas first (`flora-codegen fetch --schemas DIR`)"
                    }
                ),
            ));
        }
        Err(e) => return Err(RegenError::new(RegenErrorKind::Io, e.to_string())),
    };
    let mut absent_upstream = Vec::new();
    let (new_schemas, source) = match fetching {
        true => {
            let fetched = fetch_all(opts).await?;
            let mut m = BTreeMap::new();
            for (name, text) in &old_schemas {
                let slug = name.strip_suffix(".json").unwrap_or(name);
                if fetched.contains_key(slug) {
                    continue;
                }
                if !opts.fetch.only.is_empty() {
                    m.insert(name.clone(), text.clone());
                } else {
                    absent_upstream.push(slug.to_owned());
                    if opts.keep_local {
                        m.insert(name.clone(), normalise(text));
                    }
                }
            }
            if !opts.keep_local {
                check_mass_removal(old_schemas.len(), &absent_upstream, opts.allow_mass_removal)?;
            }
            for (slug, v) in &fetched {
                m.insert(format!("{slug}.json"), schema_text(v)?);
            }
            let source = format!("Fetched {} technique schema(s) from FLORA.", fetched.len());
            (m, source)
        }
        _ => {
            let n = old_schemas.len();
            let shown = &layout.schemas_shown;
            let mut source = if !layout.fetches {
                format!("Generating code from the {n} schema(s) in {shown}/.")
            } else {
                let why = if opts.offline {
                    "--offline"
                } else {
                    "no FLORA_API_KEY"
                };
                format!("Offline ({why}): regenerating code from the {n} schema(s) in {shown}/.")
            };
            if layout.fetches && !opts.fetch.only.is_empty() {
                source.push_str(" (--only selects what to fetch; offline, every schema is used.)");
            }
            let normalised = if layout.normalise_schemas {
                old_schemas
                    .iter()
                    .map(|(name, text)| (name.clone(), normalise(text)))
                    .collect()
            } else {
                old_schemas.clone()
            };
            (normalised, source)
        }
    };

    // Headers name the directory by its own name, so the bytes do not depend on how the
    // path was typed.
    let header_dir = schema_dir::shown_name(&layout.schemas);
    let schema_files = |schemas: &BTreeMap<String, String>| -> Vec<SchemaFile> {
        schemas
            .iter()
            .map(|(name, text)| SchemaFile::new(format!("{header_dir}/{name}"), text.clone()))
            .collect()
    };
    let generated = match crate::generate(&schema_files(&new_schemas), &layout.codegen) {
        Ok(g) => g,
        Err(d) if !d.has_errors() => {
            return Err(RegenError::new(
                RegenErrorKind::Schema,
                format!("{d}, denied by --deny-warnings"),
            ));
        }
        Err(d) => return Err(RegenError::new(RegenErrorKind::Schema, d.to_string())),
    };
    let warnings: Vec<String> = generated
        .warnings
        .0
        .iter()
        .map(ToString::to_string)
        .collect();

    // The old surface: the generated files as they are, or (without a generated directory)
    // what the old schemas generate; schemas that no longer generate count as absent.
    let old_generated = match &layout.generated {
        Some(dir) => {
            let all = match schema_dir::read(dir, "rs") {
                Ok(files) => files,
                Err(e) if e.is_missing_dir() => BTreeMap::new(),
                Err(e) => return Err(RegenError::new(RegenErrorKind::Io, e.to_string())),
            };
            let (ours, theirs): (BTreeMap<_, _>, BTreeMap<_, _>) = all
                .into_iter()
                .partition(|(_, text)| crate::is_generated(text));
            refuse_to_replace(&theirs, &generated.files, &layout.generated_shown)?;
            ours
        }
        None => crate::generate(&schema_files(&old_schemas), &layout.codegen)
            .map(|g| g.files)
            .unwrap_or_default(),
    };
    let changes = report::diff(
        &surface::of_files(&old_generated),
        &surface::of_files(&generated.files),
    );
    let mut outcome = Outcome {
        source,
        report: report::render(&changes, generated.technique_count(), &warnings),
        breaking: changes.iter().any(|c| c.breaking),
        absent_upstream,
        ..Outcome::default()
    };

    let mut plans = Vec::new();
    plan_dir(
        &mut plans,
        &layout.schemas,
        &layout.schemas_shown,
        &old_schemas,
        &new_schemas,
    );
    let mut dirs = vec![(&layout.schemas, layout.schemas_shown.as_str())];
    if let Some(dir) = &layout.generated {
        plan_dir(
            &mut plans,
            dir,
            &layout.generated_shown,
            &old_generated,
            &generated.files,
        );
        dirs.push((dir, layout.generated_shown.as_str()));
    }
    if let Some(models) = &layout.models {
        // `--only` names techniques: the model catalog is then left as it is.
        let fetched = match fetching && opts.fetch.only.is_empty() {
            true => {
                let f = fetch_models(opts).await?;
                if f.is_none() {
                    outcome.source.push_str(&format!(
                        " The server has no model catalog (GET /models answered 404): {} left \
                         as it is.",
                        models.schemas_shown
                    ));
                }
                f
            }
            false => None,
        };
        let m = plan_models(
            &mut plans,
            models,
            &layout.codegen,
            layout.normalise_schemas,
            fetched.as_ref(),
            opts,
        )?;
        if let Some(f) = &fetched {
            outcome
                .source
                .push_str(&format!(" Fetched {} model(s).", f.len()));
        }
        if !m.changes.is_empty() {
            outcome
                .report
                .push_str(&model_changes::render(&m.changes, m.count));
        }
        for w in &m.warnings {
            for (i, line) in w.lines().enumerate() {
                let indent = if i == 0 { "  " } else { "    " };
                outcome.report.push_str(&format!("{indent}{line}\n"));
            }
        }
        outcome.breaking |= m.changes.iter().any(|c| c.breaking);
        dirs.push((&models.schemas, models.schemas_shown.as_str()));
        dirs.push((&models.generated, models.generated_shown.as_str()));
    }
    // Staging files of a run that was killed: stale, and removed by the next write.
    for (dir, shown) in dirs {
        for name in write::leftovers(dir) {
            plans.push((
                format!("{shown}/{name}"),
                Plan::Remove(dir.join(&name)),
                Some("(leftover temporary file of an interrupted regen)\n".to_owned()),
            ));
        }
    }
    outcome.changed_files = plans.iter().map(|(shown, _, _)| shown.clone()).collect();
    outcome.removed_files = plans
        .iter()
        .filter(|(_, p, _)| matches!(p, Plan::Remove(_)))
        .map(|(shown, _, _)| shown.clone())
        .collect();

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
    }
    let plans = plans.into_iter().map(|(_, p, _)| p).collect();
    Ok((outcome, plans))
}
