//! Runs in flight, watched together: each round lists the technique's ended runs (the
//! newest `completed`, then the newest `failed`, 100 runs a page, more pages only while the
//! runs of ours that ended reach a page's bottom), which tells the end of every run of the
//! batch that ended since, where polling each would cost one request per run. Under a rate
//! limit that is most of a batch's requests, and so most of its time. A round costs about two
//! requests however many runs are in flight. A run is watched from its create answer on, so
//! a listing knows it is ours however soon it ends.
//!
//! What the listing cannot tell is read alone: a run the list shows ended without its charge
//! (FLORA's list reports a charge some time after the end: the settled charge is booked, not
//! the first seen), and, every few rounds, each run not seen ended for a while (an end the
//! filtered list cannot show, such as a status this version does not know, or a history
//! that lags).
//!
//! A batch of generations is watched through its listing path too, another listing: `GET
//! /generations` of its project narrowed to the ids in flight, 100 a request
//! (`generations.rs`); per-run reads (`GET /runs/{id}`) only for what that cannot tell.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::journal::ItemRow;
use super::runner::Batch;
use super::target::Target;
use crate::endpoints::ListRuns;
use crate::error::Error;
use crate::wire::Run;
use crate::wire::RunStatus;

/// Pages of one status read in one round at most (newest first; see `list_ended` for when
/// the next is read): each page read on delivers runs or reaches runs watched since the
/// last round, so this bounds only a history that misbehaves.
const MAX_PAGES: usize = 100;

/// Listings refused in a row (a 4xx) before the run history is given up for this process.
const REFUSALS_BEFORE_READING_EACH: u32 = 3;

impl Batch {
    fn poll_policy(&self) -> crate::PollPolicy {
        self.options
            .poll
            .clone()
            .unwrap_or_else(|| self.client.poll_policy().clone())
    }

    /// When a run created now with FLORA's estimate `ready_at` is first looked at alone: the
    /// estimate, capped as a single run's wait caps it (10 min, half the poll deadline), so a
    /// wild estimate (milliseconds sent as seconds) never parks an item.
    pub(super) fn not_before(
        &self,
        ready_at: Option<tokio::time::Instant>,
    ) -> Option<tokio::time::Instant> {
        let cap = self.poll_policy().estimate_cap();
        let latest = tokio::time::Instant::now().checked_add(cap);
        match (ready_at, latest) {
            (Some(at), Some(latest)) => Some(at.min(latest)),
            (at, _) => at,
        }
    }

    /// Waits until the run ends (`completed`, `failed`, or a status this version does not
    /// know on a run that reports `completed_at`), watched with every other run in flight
    /// (`watch.rs`); `None` if waiting gave up: the poll policy's deadline passed, or the
    /// batch was stopped (a resume continues it).
    pub(super) async fn poll_to_end(&self, row: &ItemRow) -> Result<Option<Run>, Error> {
        let Some(run_id) = row.run_id.clone() else {
            return Ok(None);
        };
        // Not looked for before FLORA's estimate (the watcher holds it, capped: `not_before`);
        // a round that sees the run ended before then delivers it all the same.
        let deadline = tokio::time::Instant::now().checked_add(self.poll_policy().deadline);
        let ended = self.watcher.wait(&run_id);
        let limit = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.abort.cancelled() => {
                self.watcher.forget(&run_id);
                Ok(None)
            }
            () = limit => {
                self.watcher.forget(&run_id);
                tracing::warn!(run_id, "stopped waiting at the poll deadline; a resume polls on");
                Ok(None)
            }
            run = ended => Ok(run.ok()),
        }
    }

    /// Rounds at the poll policy's interval until `done` (every item's drive ended) or the
    /// batch is stopped.
    pub(crate) async fn watch(&self, done: &CancellationToken) {
        let policy = self.poll_policy();
        // The first delay after a quiet spell, then a steady cadence: a round costs the same
        // however many runs wait, so it need not slow down as they pile up. Never rounds
        // back to back, whatever the policy says.
        let least = Duration::from_millis(5);
        let cadence = policy
            .delays()
            .nth(1)
            .unwrap_or(Duration::from_secs(2))
            .max(least);
        let first = policy.delays().next().unwrap_or(cadence).max(least);
        let mut delay = first;
        loop {
            if self.watcher.is_empty() {
                // Nothing to watch: wait for a run (or the end) without spending requests.
                tokio::select! {
                    () = done.cancelled() => return,
                    () = self.abort.cancelled() => return,
                    () = self.watcher.added.notified() => {}
                }
                delay = first;
            }
            tokio::select! {
                () = done.cancelled() => return,
                () = self.abort.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            // Every run watched is before FLORA's estimate of its end: no round until the
            // first is due (or another run comes).
            if let Some(at) = self.watcher.none_due_before() {
                tokio::select! {
                    () = done.cancelled() => return,
                    () = self.abort.cancelled() => return,
                    () = tokio::time::sleep_until(at) => {}
                    () = self.watcher.added.notified() => {}
                }
                continue;
            }
            delay = cadence;
            if self.watcher.is_empty() {
                continue;
            }
            // A stop (or the end) does not wait for a round, however long the server takes.
            tokio::select! {
                () = done.cancelled() => return,
                () = self.abort.cancelled() => return,
                () = self.round() => {}
            }
        }
    }

    /// One round: the ended runs listed, then single reads of what the list cannot tell.
    async fn round(&self) {
        use std::sync::atomic::Ordering;
        let each = self.options.poll_each_run || self.watcher.no_history.load(Ordering::SeqCst);
        let mut alone = self.watcher.due(each);
        // A failed listing is tried again next round (reading every run alone now would
        // cost what the listing saves); the runs due to be read alone are.
        if !each {
            match &self.target {
                Target::Technique(_) => self.list_technique_ended(&mut alone).await,
                #[cfg(feature = "models")]
                Target::Model(model) => self.list_generations_ended(model, &mut alone).await,
            }
        }
        alone.sort();
        alone.dedup();
        if !alone.is_empty() {
            tracing::debug!(
                runs = alone.len(),
                "reading runs alone the listing could not tell"
            );
        }
        // Side by side, as many as the window lets through (not one after another: each
        // may wait out retries).
        use futures_util::StreamExt;
        futures_util::stream::iter(alone)
            .for_each_concurrent(self.options.max_concurrency.max(1), |run_id| async move {
                if self.abort.is_cancelled() || !self.watcher.is_waited(&run_id) {
                    return;
                }
                if let Ok(run) = self.windowed(|| self.read_run(&run_id)).await
                    && crate::poll::has_ended(&run)
                {
                    self.watcher.deliver(run);
                }
            })
            .await;
    }

    /// The technique's ended runs, `completed` then `failed`.
    async fn list_technique_ended(&self, alone: &mut Vec<String>) {
        let (fresh, oldest_fresh) = self.watcher.fresh();
        for status in [RunStatus::Completed, RunStatus::Failed] {
            if !self.list_ended(status, oldest_fresh, alone).await {
                return;
            }
        }
        self.watcher.not_fresh(&fresh);
    }

    /// The newest runs of the technique ended with `status`: ours are delivered, those
    /// without their charge yet added to `alone`. `false` when the listing failed.
    ///
    /// The list is newest first, and runs of one batch end roughly in the order they were
    /// made, so the ends of ours since the last round lie in one stretch from the top: the
    /// next page is read while the stretch reaches the bottom of this one (its last run is
    /// ours, or one this round already took: the list grows at the top between two pages,
    /// which shifts runs already seen down). Runs watched since the last listing began may
    /// have ended before they were known as ours, under runs taken since: pages are read
    /// down to the oldest of them (`oldest_fresh`, by `created_at`). A run that ends long
    /// after runs made after it lies below the stretch; it is read alone after a while.
    async fn list_ended(
        &self,
        status: RunStatus,
        oldest_fresh: Option<f64>,
        alone: &mut Vec<String>,
    ) -> bool {
        let mut cursor = None;
        let mut taken = std::collections::HashSet::new();
        let mut listed = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            if self.abort.is_cancelled() {
                return false;
            }
            let query = ListRuns {
                technique_id: Some(self.meta.technique_id.clone()),
                status: Some(status.clone()),
                limit: Some(100),
                cursor: cursor.take(),
                ..ListRuns::default()
            };
            let page = match self.windowed(|| self.client.list_runs(&query)).await {
                Ok(page) => page,
                Err(e) => {
                    self.listing_failed(&e);
                    return false;
                }
            };
            self.listing_answered();
            let last = page.items.last().map(|run| run.run_id.clone());
            // A page with no run not listed before this round: a history that repeats
            // itself under new cursors is read no further.
            let news = page
                .items
                .iter()
                .filter(|run| listed.insert(run.run_id.clone()))
                .count();
            // Fresh runs may lie below this page while its oldest run is newer than them
            // (both times FLORA's, each in seconds whichever unit it came in).
            let above_fresh = oldest_fresh.is_some_and(|fresh| {
                page.items
                    .last()
                    .and_then(|run| run.created_at)
                    .is_some_and(|at| in_seconds(at) > in_seconds(fresh))
            });
            let mut ours = 0;
            for run in page.items {
                if !self.watcher.is_waited(&run.run_id) {
                    continue;
                }
                ours += 1;
                taken.insert(run.run_id.clone());
                if run.status == RunStatus::Completed && run.charged_cost.is_none() {
                    // Ended, its charge not on the list yet: read it alone.
                    tracing::debug!(run_id = run.run_id, "listed without its charge");
                    alone.push(run.run_id);
                } else {
                    self.watcher.deliver(run);
                }
            }
            tracing::debug!(
                ?status,
                ours,
                more = page.next_cursor.is_some(),
                "run history page"
            );
            match page.next_cursor {
                Some(next)
                    if news > 0 && (above_fresh || last.is_some_and(|id| taken.contains(&id))) =>
                {
                    cursor = Some(next);
                }
                _ => break,
            }
        }
        true
    }
}

impl Batch {
    /// A listing failed. A server without the listing (or refusing its filters, or this
    /// key): after a few refusals in a row, each run is read alone. One refusal (a proxy's
    /// 404, say) is not enough; an answer that may change (429, 5xx) never counts.
    pub(super) fn listing_failed(&self, e: &Error) {
        use std::sync::atomic::Ordering;
        if e.status().is_some() && !e.is_retryable() {
            let refused = self.watcher.refused_listings.fetch_add(1, Ordering::SeqCst) + 1;
            if refused >= REFUSALS_BEFORE_READING_EACH {
                tracing::warn!(error = %e, "the runs cannot be listed; reading each run alone");
                self.watcher.no_history.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A listing answered: refusals are counted afresh.
    pub(super) fn listing_answered(&self) {
        self.watcher
            .refused_listings
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A `created_at` in seconds: FLORA's values past 1e11 are milliseconds (as in
/// `reconcile.rs`).
fn in_seconds(t: f64) -> f64 {
    if t > 1e11 { t / 1000.0 } else { t }
}
