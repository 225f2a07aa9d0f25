//! `floret techniques`: every technique the key sees, in short.

use futures_util::TryStreamExt;
use serde_json::{Value, json};

use super::super::inputs;
use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;
use crate::endpoints::ListTechniques;
use crate::wire::TechniqueSchema;

pub(super) async fn techniques(session: &Session, out: &Out) -> Result<(), Failure> {
    let client = session.client(None)?;
    let list: Vec<TechniqueSchema> = client
        .techniques(ListTechniques::default())
        .try_collect()
        .await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|t| {
            json!({
                "slug": t.slug_or_derived(),
                "technique_id": t.technique_id,
                "name": t.name,
                "run_cost": t.run_cost,
                "inputs": t.inputs.as_ref().map(|s| s.iter().map(|s| json!({
                    "id": s.id, "type": s.kind.as_str(), "optional": s.optional,
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    out.document(&Value::Array(rows.clone()));
    for row in &rows {
        out.event("technique", row.clone());
    }
    for t in &list {
        out.line(&format!(
            "{:<28} {:<32} {:>8}  {}",
            inputs::plain(t.slug_or_derived()),
            inputs::plain(&t.name),
            t.run_cost.map_or("-".to_owned(), |c| format!("{c} USD")),
            inputs_short(t)
        ));
    }
    Ok(())
}

/// `id:type` for each input, `?` when optional.
fn inputs_short(schema: &TechniqueSchema) -> String {
    match &schema.inputs {
        None => "-".to_owned(),
        Some(slots) => slots
            .iter()
            .map(|s| {
                format!(
                    "{}:{}{}",
                    inputs::plain(&s.id),
                    inputs::plain(s.kind.as_str()),
                    if s.optional { "?" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}
