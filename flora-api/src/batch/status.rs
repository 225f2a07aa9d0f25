//! Where a batch stands, read from its journal without taking it over: `status` and
//! `export` open it read-only (a running batch keeps running; a file that is not a journal
//! is left as it is).

use serde_json::{Value, json};

use super::journal::ItemRow;

/// The summary and every item's row, from a read-only snapshot of the journal.
#[cfg(feature = "cli")]
pub(crate) fn status_of(
    path: &std::path::Path,
) -> Result<(super::options::Summary, Vec<Value>), crate::error::Error> {
    use super::journal::Journal;
    use super::options::Summary;
    let (journal, meta) = Journal::read(path)?;
    let rows = journal.items()?;
    let mut summary = Summary::of(&rows, meta.download.is_some(), journal.charged_total()?);
    summary.unsettled = journal.unsettled()?;
    Ok((summary, rows.iter().map(row_json).collect()))
}

/// One item as `status --json` and `export` show it.
pub(crate) fn row_json(r: &ItemRow) -> Value {
    let parsed = |t: &Option<String>| {
        t.as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
    };
    json!({
        "key": r.key, "state": r.state.as_str(), "run_id": r.run_id,
        "idempotency_key": r.idem, "charged_cost": r.charged, "error": r.error,
        "retry_class": r.retry_class,
        "inputs": r.values, "outputs": parsed(&r.outputs), "saved": parsed(&r.saved),
    })
}
