//! Who waits for which run in flight: the ledger a batch's watch rounds (`watch.rs`) read
//! and deliver to. Its own floor, below the batch that holds it and the rounds that fill it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Notify, oneshot};

use crate::wire::Run;

/// A run not seen ended in this many rounds is read alone (then again as many rounds later).
const ROUNDS_BEFORE_READING_ALONE: u32 = 50;

/// One run waited for.
struct Waiting {
    tx: oneshot::Sender<Run>,
    /// Rounds since it was last read alone (or since it was added).
    rounds: u32,
    /// Not read alone before this (FLORA's estimate from the create answer).
    not_before: Option<tokio::time::Instant>,
    /// Its `created_at` (FLORA's clock), while no listing begun after it was watched has
    /// been read: an earlier listing may have shown it ended before it was known as ours,
    /// so it may lie below runs taken since (see `list_ended`).
    fresh: Option<f64>,
}

/// Who waits for which run.
#[derive(Default)]
pub(crate) struct Watcher {
    waiting: Mutex<HashMap<String, Waiting>>,
    /// Answers for runs watched from their creation on, until their item waits.
    early: Mutex<HashMap<String, oneshot::Receiver<Run>>>,
    /// Rings when a run starts being waited for.
    pub(super) added: Notify,
    /// The run history refused to be listed (a 4xx): every run is read alone from then on.
    pub(super) no_history: std::sync::atomic::AtomicBool,
    /// Listings refused in a row (reset by one that answers).
    pub(super) refused_listings: std::sync::atomic::AtomicU32,
}

impl Watcher {
    /// Watches `run_id` from the moment its create answer arrives, before its item is
    /// journaled and waits: a listing can then tell it is ours however soon it ends. (A run
    /// that ended while unknown to the watcher is, in the pages after the first, found only
    /// by reading it alone many rounds later.)
    pub(crate) fn expect(
        &self,
        run_id: &str,
        not_before: Option<tokio::time::Instant>,
        created_at: Option<f64>,
    ) {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            run_id.to_owned(),
            Waiting {
                tx,
                rounds: 0,
                not_before,
                fresh: created_at,
            },
        );
        self.early_lock().insert(run_id.to_owned(), rx);
        self.added.notify_one();
    }

    /// Waits for `run_id` to end; the answer comes from the round that sees it ended.
    pub(crate) fn wait(&self, run_id: &str) -> oneshot::Receiver<Run> {
        if let Some(rx) = self.early_lock().remove(run_id) {
            return rx;
        }
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            run_id.to_owned(),
            Waiting {
                tx,
                // Not watched from its creation (a resume, a run found after a 409): it
                // may have ended long ago, deep in the history, so it is read alone once
                // in the next round.
                rounds: ROUNDS_BEFORE_READING_ALONE,
                not_before: None,
                fresh: None,
            },
        );
        self.added.notify_one();
        rx
    }

    /// Stops waiting for `run_id` (its waiter gave up).
    pub(crate) fn forget(&self, run_id: &str) {
        self.lock().remove(run_id);
        self.early_lock().remove(run_id);
    }

    fn early_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Receiver<Run>>> {
        self.early.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When every run watched is before its `not_before` (FLORA's estimate): the first of
    /// them. `None` when one is due now, or none is watched.
    pub(super) fn none_due_before(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        let mut first: Option<tokio::time::Instant> = None;
        for w in self.lock().values() {
            match w.not_before {
                Some(at) if at > now => first = Some(first.map_or(at, |f| f.min(at))),
                _ => return None,
            }
        }
        first
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every run waited for, sorted.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    pub(super) fn waited(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    pub(super) fn is_waited(&self, run_id: &str) -> bool {
        self.lock().contains_key(run_id)
    }

    /// Runs due to be read alone this round (all of them when `each`), their count reset.
    pub(super) fn due(&self, each: bool) -> Vec<String> {
        let mut waiting = self.lock();
        let mut due = Vec::new();
        let now = tokio::time::Instant::now();
        // A run whose waiter is gone (its receiver dropped) is watched no more.
        waiting.retain(|_, w| !w.tx.is_closed());
        for (id, w) in waiting.iter_mut() {
            if w.not_before.is_some_and(|at| at > now) {
                continue;
            }
            w.rounds += 1;
            if each || w.rounds >= ROUNDS_BEFORE_READING_ALONE {
                if !each {
                    tracing::debug!(
                        run_id = id,
                        "not seen ended in {ROUNDS_BEFORE_READING_ALONE} rounds"
                    );
                }
                w.rounds = 0;
                due.push(id.clone());
            }
        }
        due
    }

    /// The runs watched so far that no listing begun after they were watched has read yet,
    /// and the oldest `created_at` among them.
    pub(super) fn fresh(&self) -> (Vec<String>, Option<f64>) {
        let waiting = self.lock();
        let mut ids = Vec::new();
        let mut oldest: Option<f64> = None;
        for (id, w) in waiting.iter() {
            if let Some(at) = w.fresh {
                ids.push(id.clone());
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
            }
        }
        (ids, oldest)
    }

    /// These runs were watched when a listing that was read through began.
    pub(super) fn not_fresh(&self, ids: &[String]) {
        let mut waiting = self.lock();
        for id in ids {
            if let Some(w) = waiting.get_mut(id) {
                w.fresh = None;
            }
        }
    }

    /// Hands an ended run to its waiter.
    pub(super) fn deliver(&self, run: Run) {
        if let Some(w) = self.lock().remove(&run.run_id) {
            let _ = w.tx.send(run);
        }
    }
}
