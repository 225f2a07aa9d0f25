//! `floret get RUN_ID --technique SLUG`: one run's state.

use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;
use super::runs::{run_json, run_line};

pub(super) async fn get(
    session: &Session,
    out: &Out,
    technique: &str,
    run_id: &str,
) -> Result<(), Failure> {
    let client = session.client(None)?;
    let run = client
        .get_run(technique, run_id)
        .await
        .map_err(|e| super::wait::not_found(e, run_id, technique))?;
    out.document(&run_json(&run));
    out.event("run", run_json(&run));
    out.line(&run_line(&run));
    for o in &run.outputs {
        out.line(&format!("  {}\t{}", o.output_id, o.url));
    }
    Ok(())
}
