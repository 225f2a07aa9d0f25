//! Runs in flight, watched together: one listing of the technique's run history (100 runs a
//! page) tells the state of every run of the batch in it, where polling each would cost one
//! request per run. Under a rate limit that is most of a batch's requests, and so most of its
//! time. A run the listing does not show (it fell past the pages read, or the history lags)
//! is read alone, and so is a run the listing shows ended without its charge (FLORA's list
//! reports a charge some time after the end): the settled charge is booked, not the first seen.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::runner::Batch;
use crate::endpoints::ListRuns;
use crate::wire::{Run, RunStatus};

/// History pages read in one round at most (newest first).
const MAX_PAGES: usize = 10;

/// Who waits for which run.
#[derive(Default)]
pub(crate) struct Watcher {
    waiting: Mutex<HashMap<String, oneshot::Sender<Run>>>,
    /// Rings when a run starts being waited for.
    added: Notify,
}

impl Watcher {
    /// Waits for `run_id` to end; the answer comes from the next round that sees it ended.
    pub(crate) fn wait(&self, run_id: &str) -> oneshot::Receiver<Run> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(run_id.to_owned(), tx);
        self.added.notify_one();
        rx
    }

    /// Stops waiting for `run_id` (its waiter gave up).
    pub(crate) fn forget(&self, run_id: &str) {
        self.lock().remove(run_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Run>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ids(&self) -> HashSet<String> {
        self.lock().keys().cloned().collect()
    }

    /// Hands an ended run to its waiter.
    fn deliver(&self, run: Run) {
        if let Some(tx) = self.lock().remove(&run.run_id) {
            let _ = tx.send(run);
        }
    }
}

impl Batch {
    /// Rounds until `done` (every item's drive ended) or the batch is stopped: each round,
    /// after the poll interval, one listing for every run waited for, and single reads for
    /// what the listing could not tell.
    pub(crate) async fn watch(&self, done: &CancellationToken) {
        let policy = self
            .options
            .poll
            .clone()
            .unwrap_or_else(|| self.client.poll_policy().clone());
        let mut delays = policy.delays();
        loop {
            if self.watcher.ids().is_empty() {
                // Nothing to watch: wait for a run (or the end) without spending requests.
                tokio::select! {
                    () = done.cancelled() => return,
                    () = self.abort.cancelled() => return,
                    () = self.watcher.added.notified() => {}
                }
                delays = policy.delays();
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(5));
            tokio::select! {
                () = done.cancelled() => return,
                () = self.abort.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            self.round().await;
        }
    }

    /// One round: the listing, then single reads.
    async fn round(&self) {
        let mut left = self.watcher.ids();
        if left.is_empty() {
            return;
        }
        let mut alone: Vec<String> = Vec::new();
        if left.len() > 1 && !self.options.poll_each_run {
            let mut cursor = None;
            for _ in 0..MAX_PAGES {
                let query = ListRuns {
                    technique_id: Some(self.meta.technique_id.clone()),
                    limit: Some(100),
                    cursor: cursor.take(),
                    ..ListRuns::default()
                };
                let page = self.windowed(|| self.client.list_runs(&query)).await;
                let Ok(page) = page else {
                    // The next round lists again: reading every run alone now would cost
                    // what the listing saves.
                    return;
                };
                for run in page.items {
                    if !left.remove(&run.run_id) {
                        continue;
                    }
                    if !crate::poll::has_ended(&run) {
                        continue;
                    }
                    if run.status == RunStatus::Completed && run.charged_cost.is_none() {
                        // Ended, its charge not on the list yet: read it alone.
                        alone.push(run.run_id);
                    } else {
                        self.watcher.deliver(run);
                    }
                }
                match page.next_cursor {
                    Some(next) if !left.is_empty() => cursor = Some(next),
                    _ => break,
                }
            }
        }
        // Runs the listing did not show (or a lone run: one read is one listing).
        alone.extend(left);
        for run_id in alone {
            if self.abort.is_cancelled() {
                return;
            }
            if let Ok(run) = self
                .windowed(|| self.client.get_run(&self.meta.slug, &run_id))
                .await
                && crate::poll::has_ended(&run)
            {
                self.watcher.deliver(run);
            }
        }
    }
}
