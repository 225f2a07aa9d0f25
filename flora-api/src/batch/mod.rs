//! Batches (cargo feature `batch`): thousands of inputs through one technique, journaled in
//! SQLite, resumable after a crash or Ctrl-C without paying twice.
//!
//! Every item moves `planned → uploading → submitting(key) → created(run_id) → completed |
//! failed → saved` (or `needs_review`), each step committed before the next request. The idempotency key is a hash of the
//! batch, the item key, the technique and the inputs (files by content), so a resume re-sends
//! exactly what it sent before and FLORA replays the run instead of starting another.
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

mod builder;
mod cost;
mod engine;
mod journal;
mod outputs;
mod plan;
mod window;

pub use builder::BatchBuilder;
pub use engine::{Batch, BatchOptions, Event, Progress, StopReason, Summary};
pub use journal::ItemState;
pub use plan::{PlanItem, read_plan};

#[cfg(feature = "cli")]
pub(crate) use engine::{estimate as engine_estimate, validate as engine_validate};

/// The distinct local files a plan would upload (values of media inputs that are not URLs).
#[cfg(feature = "cli")]
pub(crate) fn distinct_files(schema: &crate::TechniqueSchema, items: &[PlanItem]) -> usize {
    let media: Vec<&str> = schema
        .inputs
        .iter()
        .flatten()
        .filter(|s| crate::values::is_media(&s.kind))
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

/// The summary and every item's row (`status`, `export`), opening the journal briefly.
#[cfg(feature = "cli")]
pub(crate) fn journal_items(
    path: &std::path::Path,
) -> Result<(Summary, Vec<serde_json::Value>), crate::Error> {
    engine::status_of(path)
}

/// `retry-failed`: failed (and with `unclear`, needs-review) items back to planned.
#[cfg(feature = "cli")]
pub(crate) fn journal_retry(path: &std::path::Path, unclear: bool) -> Result<usize, crate::Error> {
    let (journal, _) = journal::Journal::open(path)?;
    journal.retry(unclear)
}
