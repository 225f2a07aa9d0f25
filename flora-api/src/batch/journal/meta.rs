//! The batch's settings, fixed when it is made: written with the plan, read back whole. A
//! batch of generations adds its model (journal version 5), read as such or refused.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::{Journal, NOT_A_JOURNAL, journal_error};
use crate::error::Error;

/// The batch's settings, fixed when it is created.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub batch_id: String,
    /// The technique's slug; a model batch's model id (for messages only).
    pub slug: String,
    /// The technique's id; empty for a model batch.
    pub technique_id: String,
    /// What one run is listed at, USD (a model's `estimated_credits` × 0.001).
    pub run_cost: Option<f64>,
    /// The technique's schema as FLORA sent it (`null` for a model batch).
    pub schema: Value,
    pub download: Option<String>,
    /// The cost limit last given: a resume without one keeps it.
    pub max_cost: Option<f64>,
    /// Set for a batch of generations (`POST /generate`).
    pub model: Option<ModelMeta>,
}

/// What a batch of generations targets, fixed when it is created: every key, body and
/// listing of the batch is derived from it, whatever the client says on a resume.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelMeta {
    pub model_id: String,
    /// `image`, `video`, `audio` or `text`: the body's `type`.
    pub model_type: String,
    pub project_id: String,
    pub workspace_id: String,
    /// The catalog entry the rows were checked against and are read by.
    pub catalog: Value,
}

impl Meta {
    /// The id keys are derived from: the technique's, or the model's.
    pub(crate) fn target_id(&self) -> &str {
        match &self.model {
            Some(m) => &m.model_id,
            None => &self.technique_id,
        }
    }
}

/// Writes `meta` into a new journal (inside its creating transaction).
pub(super) fn write(tx: &Transaction<'_>, meta: &Meta) -> rusqlite::Result<()> {
    let opt = |v: Option<f64>| v.map(|c| c.to_string()).unwrap_or_default();
    for (name, value) in [
        ("batch_id", meta.batch_id.clone()),
        ("slug", meta.slug.clone()),
        ("technique_id", meta.technique_id.clone()),
        ("run_cost", opt(meta.run_cost)),
        ("schema", meta.schema.to_string()),
        ("download", meta.download.clone().unwrap_or_default()),
        ("max_cost", opt(meta.max_cost)),
    ] {
        tx.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2)",
            params![name, value],
        )?;
    }
    if let Some(m) = &meta.model {
        tx.execute(
            "INSERT INTO model (one, model_id, model_type, project_id, workspace_id, catalog) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![
                m.model_id,
                m.model_type,
                m.project_id,
                m.workspace_id,
                m.catalog.to_string()
            ],
        )?;
    }
    Ok(())
}

impl Journal {
    pub(super) fn meta(&self) -> Result<Meta, Error> {
        let e = |e: rusqlite::Error| journal_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare("SELECT name, value FROM meta")
            .map_err(e)?;
        let pairs: BTreeMap<String, String> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e)?
            .collect::<Result<_, _>>()
            .map_err(e)?;
        let get = |k: &str| pairs.get(k).cloned().unwrap_or_default();
        if get("batch_id").is_empty() {
            return Err(journal_error(&self.path, NOT_A_JOURNAL));
        }
        let model = self
            .conn
            .query_row(
                "SELECT model_id, model_type, project_id, workspace_id, catalog FROM model",
                [],
                |r| {
                    Ok(ModelMeta {
                        model_id: r.get(0)?,
                        model_type: r.get(1)?,
                        project_id: r.get(2)?,
                        workspace_id: r.get(3)?,
                        catalog: serde_json::from_str(&r.get::<_, String>(4)?)
                            .unwrap_or(Value::Null),
                    })
                },
            )
            .optional()
            .map_err(e)?;
        Ok(Meta {
            batch_id: get("batch_id"),
            slug: get("slug"),
            technique_id: get("technique_id"),
            run_cost: get("run_cost").parse().ok(),
            schema: serde_json::from_str(&get("schema")).unwrap_or(Value::Null),
            download: Some(get("download")).filter(|d| !d.is_empty()),
            max_cost: get("max_cost").parse().ok(),
            model,
        })
    }
}
