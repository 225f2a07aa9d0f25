//! `floret runs SLUG`: a technique's past runs, newest first.

use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;
use crate::endpoints::ListRuns;
use crate::wire::Run;

pub(super) async fn runs(
    session: &Session,
    out: &Out,
    slug: &str,
    limit: u32,
) -> Result<(), Failure> {
    let client = session.client(None)?;
    let technique = session.schema(Some(&client), slug, None).await?;
    let mut list: Vec<Run> = client
        .runs(ListRuns {
            limit: Some(limit.clamp(1, 100)),
            technique_id: Some(technique.technique_id.clone()),
            ..ListRuns::default()
        })
        .take(limit as usize)
        .try_collect()
        .await?;
    list.sort_by(|a, b| {
        b.created_at
            .partial_cmp(&a.created_at)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let rows: Vec<Value> = list.iter().map(run_json).collect();
    out.document(&Value::Array(rows.clone()));
    for r in rows {
        out.event("run", r);
    }
    for r in &list {
        out.line(&run_line(r));
    }
    Ok(())
}

/// Every output as `{id, type, url}`.
pub(super) fn outputs_json(run: &Run) -> Vec<Value> {
    run.outputs
        .iter()
        .map(|o| json!({"id": o.output_id, "type": o.kind.as_str(), "url": o.url}))
        .collect()
}

pub(super) fn run_json(r: &Run) -> Value {
    json!({
        "run_id": r.run_id, "status": r.status.as_str(), "progress": r.progress,
        "created_at": r.created_at, "charged_cost": r.charged_cost,
        "error_code": r.error_code.as_ref().map(|c| c.as_str().to_owned()),
        "outputs": outputs_json(r),
    })
}

pub(super) fn run_line(r: &Run) -> String {
    format!(
        "{:<28} {:<10} {:>5} {}",
        crate::safe_text::plain_text(&r.run_id, 80),
        crate::safe_text::plain_text(r.status.as_str(), 40),
        r.progress.map_or(String::new(), |p| format!("{p:.0}%")),
        crate::safe_text::plain_text(r.error_code.as_ref().map_or("", |c| c.as_str()), 80)
    )
}
