//! The model catalog's part of a regen: `GET /models` fetched (or `schemas/models/` read),
//! its entries normalised, their code generated, what changed reported with BREAKING marks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{RegenError, RegenErrorKind};
use super::options::Options;
use super::plans::{normalise, plan_dir, refuse_to_replace, schema_text};
use super::write::Plan;
use super::{model_changes, report};
use crate::schema_dir;
use crate::{Config, SchemaFile};

/// Where model catalog entries are read and their code is written.
#[derive(Debug, Clone)]
pub struct ModelLayout {
    /// The directory of `<model_id>.json` files (`schemas/models`).
    pub schemas: PathBuf,
    /// How it is shown.
    pub schemas_shown: String,
    /// Where the generated code goes (`flora-api/src/models`).
    pub generated: PathBuf,
    /// How it is shown.
    pub generated_shown: String,
}

/// What the model catalog's part of a regen found.
pub(super) struct ModelPlan {
    /// Params left out (types this version does not know, …).
    pub warnings: Vec<String>,
    /// Entries added, removed or changed, BREAKING marked.
    pub changes: Vec<report::Change>,
    /// How many models the new catalog has.
    pub count: usize,
}

/// Plans the model catalog's files: its entries (fetched, or read and normalised), its
/// generated code current (files without the `@generated` header are the user's, never
/// touched). A fetched catalog replaces the entries; one that would delete every local
/// entry, or more than half, needs `--allow-mass-removal` (`--keep-local` keeps them).
pub(super) fn plan_models(
    plans: &mut Vec<(String, Plan, Option<String>)>,
    models: &ModelLayout,
    codegen: &Config,
    normalise_schemas: bool,
    fetched: Option<&BTreeMap<String, Value>>,
    opts: &Options,
) -> Result<ModelPlan, RegenError> {
    let read = |dir: &Path, ext: &str| match schema_dir::read(dir, ext) {
        Ok(files) => Ok(files),
        Err(e) if e.is_missing_dir() => Ok(BTreeMap::new()),
        Err(e) => Err(RegenError::new(RegenErrorKind::Io, e.to_string())),
    };
    let old = read(&models.schemas, "json")?;
    let new: BTreeMap<String, String> = match fetched {
        Some(fetched) => {
            let mut new = BTreeMap::new();
            let mut absent = Vec::new();
            for (name, text) in &old {
                let id = name.strip_suffix(".json").unwrap_or(name);
                if !fetched.contains_key(id) {
                    absent.push(id.to_owned());
                    if opts.keep_local {
                        new.insert(name.clone(), normalise(text));
                    }
                }
            }
            if !opts.keep_local
                && !opts.allow_mass_removal
                && !absent.is_empty()
                && (absent.len() * 2 > old.len() || absent.len() == old.len())
            {
                return Err(RegenError::new(
                    RegenErrorKind::Refused,
                    format!(
                        "the model catalog lists none of {} of the {} local model(s) ({}); \
                         refusing to delete them. If they really are gone, run again with \
                         --allow-mass-removal; to keep them, use --keep-local",
                        absent.len(),
                        old.len(),
                        absent.join(", ")
                    ),
                ));
            }
            for (id, v) in fetched {
                new.insert(format!("{id}.json"), schema_text(v)?);
            }
            new
        }
        None if normalise_schemas => old.iter().map(|(n, t)| (n.clone(), normalise(t))).collect(),
        None => old.clone(),
    };
    plan_dir(plans, &models.schemas, &models.schemas_shown, &old, &new);
    let files: Vec<SchemaFile> = new
        .iter()
        .map(|(name, text)| SchemaFile::new(format!("schemas/models/{name}"), text.clone()))
        .collect();
    let (generated, warnings) = if files.is_empty() {
        (BTreeMap::new(), Vec::new())
    } else {
        let (g, w) = crate::generate_models(&files, codegen)
            .map_err(|d| RegenError::new(RegenErrorKind::Schema, d.to_string()))?;
        (g, w.0.iter().map(ToString::to_string).collect())
    };
    let (ours, theirs): (BTreeMap<_, _>, BTreeMap<_, _>) = read(&models.generated, "rs")?
        .into_iter()
        .partition(|(_, text)| crate::is_generated(text));
    refuse_to_replace(&theirs, &generated, &models.generated_shown)?;
    plan_dir(
        plans,
        &models.generated,
        &models.generated_shown,
        &ours,
        &generated,
    );
    Ok(ModelPlan {
        warnings,
        changes: model_changes::diff(&old, &new),
        count: new.len(),
    })
}
