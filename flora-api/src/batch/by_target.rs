//! The requests that differ by what a batch runs, in one place: the request an item sends,
//! the POST that creates its run, the listing a lost answer's run is found in, what that
//! listing shows of a run, and how one run is read alone.

use super::journal::ItemRow;
use super::runner::Batch;
use super::target::{Payload, Started, Target};
use crate::endpoints::StartOptions;
use crate::error::Error;
use crate::reconcile::Known;
use crate::wire::Run;

impl Batch {
    /// The request a planned item sends; `None` when the item ended otherwise (a value or an
    /// upload refused, an upload deferred, the batch stopped).
    pub(crate) async fn payload(&self, row: &ItemRow) -> Result<Option<Payload>, Error> {
        match &self.target {
            Target::Technique(_) => Ok(self.resolve(row).await?.map(Payload::Inputs)),
            #[cfg(feature = "models")]
            Target::Model(model) => match model.request(&row.values) {
                Ok(request) => Ok(Some(Payload::Generation(request))),
                Err(why) => {
                    self.refuse(row, why)?;
                    Ok(None)
                }
            },
        }
    }

    /// The request journaled with an item's key, read back to send again.
    pub(crate) fn journaled(&self, row: &ItemRow, body: &str) -> Result<Payload, Error> {
        let unreadable = |e: &dyn std::fmt::Display| Error::Journal {
            path: std::path::PathBuf::from(&self.meta.slug),
            problem: format!("item {:?}: its journaled body cannot be read: {e}", row.key),
        };
        match &self.target {
            Target::Technique(_) => serde_json::from_str(body)
                .map(Payload::Inputs)
                .map_err(|e| unreadable(&e)),
            #[cfg(feature = "models")]
            Target::Model(model) => model
                .journaled(body)
                .map(Payload::Generation)
                .map_err(|e| unreadable(&e)),
        }
    }

    /// The POST creating an item's run under `key` (sent once: the batch's window retries).
    pub(crate) async fn create_run(&self, payload: &Payload, key: &str) -> Result<Started, Error> {
        match payload {
            Payload::Inputs(inputs) => {
                let handle = self
                    .client
                    .start_run(
                        &self.meta.slug,
                        inputs.clone(),
                        StartOptions::idempotency_key(key),
                    )
                    .await?;
                Ok(Started {
                    run_id: handle.run_id().to_owned(),
                    ready_at: handle.ready_at(),
                    created_at: handle.created_at(),
                })
            }
            #[cfg(feature = "models")]
            Payload::Generation(request) => {
                let created = super::model::start(&self.client, request, key).await?;
                Ok(Started {
                    ready_at: created.estimated_seconds.and_then(|s| {
                        let wait = crate::durations::from_secs_saturating(s);
                        tokio::time::Instant::now().checked_add(wait)
                    }),
                    created_at: created.extra.get("created_at").and_then(|v| v.as_f64()),
                    run_id: created.run_id,
                })
            }
        }
    }

    /// The runs a lost answer's run is among: the technique's run history, or the project's
    /// generations of the model, back to `known`'s span.
    pub(crate) async fn history(&self, known: &Known<'_>) -> Result<Vec<Run>, Error> {
        match &self.target {
            Target::Technique(_) => {
                self.client
                    .history_since(&self.meta.technique_id, known)
                    .await
            }
            #[cfg(feature = "models")]
            Target::Model(model) => {
                self.client
                    .generations_since(&model.project_id, &model.schema.model_id, known)
                    .await
            }
        }
    }

    /// Whether a listed run shows it was made by another request than the item's journaled
    /// `body`: a generation listed with another prompt. (A technique's listed runs carry no
    /// inputs: never.) A run that shows nothing stays a candidate.
    #[cfg_attr(not(feature = "models"), allow(unused_variables))]
    pub(crate) fn listed_as_another(&self, body: Option<&str>, run: &Run) -> bool {
        match &self.target {
            Target::Technique(_) => false,
            #[cfg(feature = "models")]
            Target::Model(_) => {
                let prompt = |v: &serde_json::Value| {
                    v.get("prompt")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                };
                let ours = body
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                    .and_then(|v| prompt(&v));
                let listed = run.extra.get("prompt").and_then(serde_json::Value::as_str);
                matches!((ours, listed), (Some(ours), Some(listed)) if ours != listed)
            }
        }
    }

    /// One run read alone: on the technique's route, or `GET /runs/{id}` for a generation.
    pub(crate) async fn read_run(&self, run_id: &str) -> Result<Run, Error> {
        match &self.target {
            Target::Technique(_) => self.client.get_run(&self.meta.slug, run_id).await,
            #[cfg(feature = "models")]
            Target::Model(_) => self.client.get_run_by_id(run_id).await,
        }
    }
}
