//! Batches (cargo feature `batch`): thousands of inputs through one technique, journaled in
//! SQLite, resumable after a crash or Ctrl-C without paying twice.
//!
//! Every item moves `planned → uploading → submitting(key, body) → created(run_id) →
//! completed | failed → saved` (or `needs_review`), each step committed before the next
//! request, each move guarded (from the states it may leave only). The idempotency key is a
//! hash of the batch, the item key and attempt, the technique and the exact body (files by
//! their uploaded asset), journaled with that body, so a resume re-sends exactly what it sent
//! before and FLORA replays the run instead of starting another.
//!
//! In code, items are pushed typed (the generated technique types, checked by the compiler
//! as single runs are) or untyped, and running the same program again after a crash resumes
//! the journal instead of starting over:
//!
//! ```no_run
//! # #[cfg(feature = "techniques")]
//! # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
//! use flora_api::batch::{Batch, BatchOptions};
//! use flora_api::techniques::CctvCam;
//! let mut batch = Batch::new(&client, "cctv-cam", "faces.journal");
//! batch.push::<CctvCam>("face-1", &CctvCam { input_image: "https://example.com/1.png".parse()? });
//! batch.push_values("face-2", [("input_image", "faces/2.png")]); // a local file
//! batch.options(BatchOptions { max_cost: Some(5.0), download: Some("out/".into()), ..Default::default() });
//! let summary = batch.start().await?.run().await?;
//! println!("{} completed, {} USD", summary.completed, summary.charged);
//! # Ok(()) }
//! ```
//!
//! From a plan file (JSON lines or CSV), as `floret batch run` does:
//!
//! ```no_run
//! # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
//! use flora_api::batch::{Batch, BatchOptions, read_plan};
//! let schema = client.technique("cctv-cam").await?;
//! let items = read_plan("faces.jsonl".as_ref())?; // {"input_image": "faces/a.png"} per line
//! let batch = Batch::create(&client, "faces.journal".as_ref(), &schema, &items, BatchOptions::default()).await?;
//! let summary = batch.run().await?;
//! # Ok(()) }
//! ```

// Floors: `state`, `keys`, `plan`, `window`, `cost`, `outputs` below `journal` and
// `options`, below `validate` and `status`, below `model` (a model batch's rows and
// bodies, feature `models`), below `target` (what a batch runs, as data), below `runner`
// (the batch and its run), below `by_target` (the requests that differ by target), `drive`
// (one item), `lost` (a lost answer's run) and `generations` (a model batch made and
// watched), below `builder`.
mod builder;
mod by_target;
mod cost;
mod drive;
#[cfg(feature = "models")]
mod generations;
mod journal;
mod keys;
mod lost;
#[cfg(feature = "models")]
mod model;
mod options;
mod outputs;
mod plan;
mod requests;
mod resolve;
mod runner;
mod save;
mod state;
mod status;
mod target;
#[cfg(all(test, feature = "test-util", feature = "techniques"))]
mod tests;
mod validate;
mod watch;
mod watcher;
mod window;

pub use builder::BatchBuilder;
pub use options::{BatchOptions, Event, Progress, StopReason, Summary};
pub use plan::{PlanItem, PlanValues, read_plan};
pub use runner::Batch;
pub use state::ItemState;

#[cfg(feature = "cli")]
pub(crate) use validate::{check_cost, check_download, estimate, usd, validate};

#[cfg(all(feature = "cli", feature = "models"))]
pub(crate) use model::{run_cost, validate_generations};

/// The distinct local files a plan would upload (values of media inputs that are not URLs).
#[cfg(feature = "cli")]
pub(crate) fn distinct_files(schema: &crate::TechniqueSchema, items: &[PlanItem]) -> usize {
    let media: Vec<&str> = schema
        .inputs
        .iter()
        .flatten()
        .filter(|s| s.kind.media_kind().is_some())
        .map(|s| s.id.as_str())
        .collect();
    let files: std::collections::BTreeSet<&String> = items
        .iter()
        .flat_map(|i| i.values.iter())
        .filter(|(id, _)| media.contains(&id.as_str()))
        .flat_map(|(_, v)| v.iter())
        .filter(|v| !v.starts_with("https://"))
        .collect();
    files.len()
}

/// The summary and every item's row (`status`, `export`), from a read-only snapshot (a
/// running batch keeps running).
#[cfg(feature = "cli")]
pub(crate) fn journal_items(
    path: &std::path::Path,
) -> Result<(Summary, Vec<serde_json::Value>), crate::Error> {
    status::status_of(path)
}

/// `retry-failed`: failed (and with `unclear`, needs-review) items back to planned.
#[cfg(feature = "cli")]
pub(crate) fn journal_retry(
    path: &std::path::Path,
    unclear: bool,
    transient: bool,
) -> Result<usize, crate::Error> {
    let (journal, _) = journal::Journal::open(path)?;
    journal.retry(unclear, transient)
}
