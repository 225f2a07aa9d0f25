//! A lost answer's run found again: after FLORA answered the item's repeated key with 409
//! (no run id), the one candidate of the listing in the item's span is adopted (see
//! `reconcile.rs`), or the item needs review; never a second run on its own.

use super::drive::now;
use super::journal::ItemRow;
use super::options::Event;
use super::runner::Batch;
use crate::error::Error;
use crate::reconcile;
use crate::wire::Run;

impl Batch {
    /// After a 409 `idempotency_duplicate` (the key's first answer was lost and FLORA does
    /// not replay): the one unowned run of the technique (or of the model, in the project's
    /// generations) created in the item's span (see `reconcile.rs`) is adopted; anything
    /// else needs review. The span's upper bound is used
    /// only when the item's POST was journaled as alone (no other submission overlapped it),
    /// whatever this process's concurrency is.
    pub(super) async fn reconcile(&self, row: &ItemRow) -> Result<Option<String>, Error> {
        let (before, after, owned, sent_at, solo, body) = {
            let j = self.journal();
            let sent_at = j.sent_at(row.pos)?.or(row.intent_at);
            let now = j.item(row.pos)?;
            let solo = now.as_ref().is_some_and(|r| r.solo);
            let body = now.and_then(|r| r.body);
            let at = sent_at.unwrap_or(0.0);
            let after = if solo {
                j.runs_sent_after(row.pos, at)?
            } else {
                Vec::new()
            };
            (
                j.runs_known_before(at)?,
                after,
                j.owned_runs()?,
                sent_at,
                solo,
                body,
            )
        };
        let known = reconcile::Known {
            before: before.iter().map(String::as_str).collect(),
            after: after.iter().map(String::as_str).collect(),
            sent_at,
            over_at: None,
            clock_skew: None,
        };
        // The listing back to the item's span only (bounded in pages): a history that pages
        // forever cannot hold the batch.
        let runs: Result<Vec<Run>, Error> = self.windowed(|| self.history(&known)).await;
        let why = match runs {
            Ok(runs) => {
                let span = reconcile::Span::of(&runs, &known);
                // Runs of other items, and runs the listing shows to be another request's.
                let others: std::collections::HashSet<&str> = runs
                    .iter()
                    .filter(|r| self.listed_as_another(body.as_deref(), r))
                    .map(|r| r.run_id.as_str())
                    .collect();
                let candidates = reconcile::candidates(&runs, span, |id| {
                    owned.contains(id) || others.contains(id)
                });
                if let [only] = candidates.as_slice() {
                    self.journal().created(row.pos, only, now())?;
                    return Ok(Some((*only).to_owned()));
                }
                format!(
                    "its first answer was lost and {} unowned run(s) of the {} were created \
                     in its span{}; nothing listed tells which one is this item's",
                    candidates.len(),
                    self.target.noun(),
                    if solo {
                        ""
                    } else {
                        " (other submissions were in flight with it)"
                    }
                )
            }
            Err(e) => format!("its first answer was lost and the run listing failed: {e}"),
        };
        if self.options.resubmit_unclear {
            // A new attempt: a new key, a new run, on purpose (the next resume sends it).
            self.journal().replan(row.pos)?;
            return Ok(None);
        }
        self.journal().review(row.pos, &why)?;
        self.emit(Event::NeedsReview {
            key: row.key.clone(),
            why,
        });
        Ok(None)
    }
}
