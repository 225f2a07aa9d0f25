//! `floret batch run PLAN --model MODEL`: a batch of generations on the one batch engine.
//! Every row is read by the model's param types and checked against its catalog entry
//! before anything is sent (FLORA bills an unknown value with its default); a bad row is
//! exit 2 naming its key and why, nothing sent.

use serde_json::json;

use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;
use super::{Run, client_for, drive, options};
use crate::batch::{Batch, read_plan, run_cost, usd};

/// `batch run PLAN --model MODEL`.
pub(super) async fn run(
    session: &Session,
    out: &Out,
    run: &Run<'_>,
    model_id: &str,
) -> Result<(), Failure> {
    let items = read_plan(run.plan)?;
    let client = client_for(session, run)?;
    let model = session
        .model(client.as_ref(), model_id, run.schemas)
        .await?;
    let flags = run.flags;
    if run.dry_run {
        // Everything the real run refuses before sending, refused here too.
        crate::batch::validate_generations(&model, &items)?;
        let per_run = run_cost(&model);
        crate::batch::check_cost(per_run, items.len(), flags.max_cost)?;
        if let Some(spec) = &flags.download {
            crate::batch::check_download(spec, items.len())?;
        }
        // A real run needs a project: the same error now (a free `GET /projects`).
        let project = match &client {
            Some(c) => Some(c.generation_project(None).await?),
            None => None,
        };
        let cost = crate::batch::estimate(per_run, items.len());
        out.document(&json!({
            "items": items.len(), "model": model.model_id, "project_id": project,
            "estimated_credits": model.estimated_credits, "run_cost": per_run, "estimate": cost,
        }));
        out.line(&format!(
            "{} row(s) × {} = {} USD; nothing was sent",
            items.len(),
            match (model.estimated_credits, per_run) {
                (Some(credits), Some(c)) => format!("{credits} credits ({} USD)", usd(c)),
                _ => "an unknown cost (the catalog gives no estimated_credits)".to_owned(),
            },
            cost.map_or("unknown".to_owned(), usd),
        ));
        return Ok(());
    }
    let client = client.ok_or_else(|| Failure::usage("a batch run needs an API key"))?;
    let batch =
        Batch::create_generations(&client, run.journal, &model, &items, options(flags)).await?;
    // The journal holds the plan now: a plan of any size is not kept twice.
    drop(items);
    drive(session, batch, out, run.journal).await
}
