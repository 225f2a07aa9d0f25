//! What a batch is told (options) and tells (events, the summary, progress, why it
//! stopped).

use std::path::PathBuf;
use std::time::Duration;

use super::journal::{ItemRow, ItemState};
use crate::error::Error;

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// The most requests in flight at once (the adaptive window's ceiling; default 16).
    pub max_concurrency: usize,
    /// Refuse a plan whose estimate (items × the listed `run_cost`) is over this many USD
    /// (kept in the journal: a resume without a limit keeps the last one given),
    /// and stop submitting before the charged total would pass it. What a run is charged is
    /// known only when it ends, so with a limit the batch's first run goes alone: its charge
    /// is the price (never below the listed one) for every later run, and a run is sent only
    /// when the charged total, the runs in flight at that price and this run fit.
    pub max_cost: Option<f64>,
    /// Save outputs with this template as soon as an item completes (`{key}`, `{slot}`,
    /// `{index}`, `{run_id}`, `{ext}`; a directory means `DIR/{key}-{slot}.{ext}`).
    pub download: Option<String>,
    /// Replace existing files when saving: files in the way of an output, and saved files
    /// changed since (a resume checks them). Without it, a file the batch did not write is
    /// never replaced (one holding the very bytes being saved is kept as is).
    pub overwrite: bool,
    /// When runs are polled; by default the client's [`PollPolicy`](crate::PollPolicy) (2 s,
    /// growing to 5 s). Its deadline bounds how long one run is polled in this process (the
    /// item stays in flight; a resume polls it on). FLORA's `estimated_seconds` delays each
    /// run's first poll either way.
    pub poll: Option<crate::PollPolicy>,
    /// Items whose run could not be identified after a lost answer are resubmitted.
    pub resubmit_unclear: bool,
    /// Look at each run in flight alone (one request per run and round), instead of one
    /// listing of the run history for a hundred of them: for comparison, or a history too
    /// slow to list.
    pub poll_each_run: bool,
    /// How a failed request of the batch is tried again, through its adaptive window (the
    /// batch's client itself sends each request once: retries never stack, and every 429
    /// narrows the window). Default: 8 retries, backoff 0.5 s doubling to 30 s, a 429
    /// without `Retry-After` pauses every request 5 s, one with it pauses them that long (at
    /// most the policy's `max_retry_after`, 60 s). A throttled request never runs out of
    /// retries: the window is what adapts to it.
    pub retry: crate::RetryPolicy,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_concurrency: 16,
            max_cost: None,
            download: None,
            overwrite: false,
            poll: None,
            resubmit_unclear: false,
            poll_each_run: false,
            retry: crate::RetryPolicy::default()
                .max_retries(8)
                .backoff(Duration::from_millis(500), Duration::from_secs(30))
                .rate_limit_wait(Duration::from_secs(5)),
        }
    }
}

impl BatchOptions {
    /// Refuses settings that cannot work, by name.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.max_concurrency == 0 {
            return Err(Error::InvalidInput(
                "BatchOptions::max_concurrency is 0; at least 1 request must be in flight".into(),
            ));
        }
        if let Some(max) = self.max_cost
            && (max.is_nan() || max < 0.0)
        {
            return Err(Error::InvalidInput(format!(
                "BatchOptions::max_cost is {max}; give an amount in USD, 0 or more \
                 (f64::INFINITY for no limit)"
            )));
        }
        Ok(())
    }
}

/// What happened to an item, for a progress display.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A local file was uploaded (once per distinct file).
    Uploaded {
        /// The item key.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// The item's run exists.
    Created {
        /// The item key.
        key: String,
        /// The run.
        run_id: String,
    },
    /// The run completed.
    Completed {
        /// The item key.
        key: String,
        /// The run.
        run_id: String,
        /// USD charged for it.
        charged: Option<f64>,
    },
    /// The run failed, or the item was refused.
    Failed {
        /// The item key.
        key: String,
        /// Why.
        error: String,
    },
    /// The outputs were saved.
    Saved {
        /// The item key.
        key: String,
        /// The files.
        paths: Vec<PathBuf>,
    },
    /// The run completed but its outputs could not be saved (a resume tries again).
    NotSaved {
        /// The item key.
        key: String,
        /// Why.
        error: String,
    },
    /// Saved files were changed since they were saved: kept as they are (replaced only with
    /// [`BatchOptions::overwrite`]).
    Changed {
        /// The item key.
        key: String,
        /// The files.
        paths: Vec<PathBuf>,
    },
    /// The item could not be sent now (its files could not be uploaded after retries, or a
    /// request kept failing): it stays planned, and a resume tries again.
    Deferred {
        /// The item key.
        key: String,
        /// Why, naming the file or request and FLORA's message.
        why: String,
    },
    /// The run could not be identified after a lost answer.
    NeedsReview {
        /// The item key.
        key: String,
        /// Why.
        why: String,
    },
    /// Submissions stopped.
    Stopped {
        /// Why.
        reason: StopReason,
    },
}

/// Why a batch stopped submitting before its plan was done. Runs in flight are polled to
/// their end (unless [`Batch::stop`](super::Batch::stop) ended polling too); a resume
/// continues the rest.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`Batch::stop`](super::Batch::stop) or [`Batch::drain`](super::Batch::drain) was
    /// called (Ctrl-C in `floret`), with the caller's words.
    Requested(String),
    /// FLORA refused the API key (401 or 403).
    Unauthorized(String),
    /// The workspace is out of credits (402).
    InsufficientCredits(String),
    /// One more run would take the charged total past [`BatchOptions::max_cost`].
    MaxCost {
        /// The limit, USD.
        limit: f64,
        /// Charged so far, USD.
        charged: f64,
        /// What one more run is expected to cost, USD.
        per_run: f64,
        /// Runs in flight (each expected to cost `per_run`).
        in_flight: u32,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Requested(why) => f.write_str(why),
            StopReason::Unauthorized(e) => write!(f, "FLORA refused the key: {e}"),
            StopReason::InsufficientCredits(e) => write!(f, "insufficient credits: {e}"),
            StopReason::MaxCost {
                limit,
                charged,
                per_run,
                in_flight,
            } => write!(
                f,
                "--max-cost {limit} USD reached: {charged:.2} USD charged, {in_flight} run(s) in \
                 flight and one more at {per_run:.2} USD would pass it"
            ),
        }
    }
}

/// What a running batch is doing ([`Batch::progress`](super::Batch::progress)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Runs being created or created and not ended.
    pub runs_in_flight: u32,
    /// The adaptive window: how many requests may be in flight now.
    pub window: usize,
    /// Requests in flight now.
    pub requests_in_flight: usize,
    /// 429/503 answers met so far.
    pub throttled: u64,
}

/// Where a batch stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Items in the plan.
    pub total: usize,
    /// Not sent yet.
    pub planned: usize,
    /// Uploading, submitting or created, not ended.
    pub in_flight: usize,
    /// Of those, items whose run exists or may exist at FLORA (created, or its POST sent).
    pub runs_in_flight: usize,
    /// Completed (saved ones included).
    pub completed: usize,
    /// Completed and saved.
    pub saved: usize,
    /// Completed, saving asked, outputs not (all) saved: a resume saves them.
    pub unsaved: usize,
    /// Failed or refused.
    pub failed: usize,
    /// Run unidentifiable after a lost answer; never resubmitted on their own.
    pub needs_review: usize,
    /// USD charged: every run of the batch FLORA charged (its ledger), booked once per run
    /// from its terminal state; earlier attempts' runs included.
    pub charged: f64,
    /// Ended runs whose charge FLORA had not reported yet: `charged` is then a floor ("≥").
    pub unsettled: usize,
    /// 429/503 answers met.
    pub throttled: u64,
    /// Why submissions stopped early, if they did.
    pub stopped: Option<StopReason>,
}

impl Summary {
    /// From the journal's rows; `charged` is the ledger's total (every run FLORA charged,
    /// earlier attempts' included).
    pub(crate) fn of(rows: &[ItemRow], saving: bool, charged: f64) -> Summary {
        let mut s = Summary {
            total: rows.len(),
            ..Summary::default()
        };
        for r in rows {
            match r.state {
                ItemState::Planned => s.planned += 1,
                ItemState::Uploading | ItemState::Submitting | ItemState::Created => {
                    s.in_flight += 1;
                    if r.run_id.is_some() || r.sent_at.is_some() {
                        s.runs_in_flight += 1;
                    }
                }
                ItemState::Completed => s.completed += 1,
                ItemState::Saved => {
                    s.completed += 1;
                    s.saved += 1;
                }
                ItemState::Failed => s.failed += 1,
                ItemState::NeedsReview => s.needs_review += 1,
            }
        }
        s.charged = charged;
        if saving {
            s.unsaved = s.completed - s.saved;
        }
        // Summed in floating point: rounded to a billionth of a dollar for display.
        s.charged = (s.charged * 1e9).round() / 1e9;
        s
    }

    /// Every item reached an end (completed and saved as asked, failed, or needs review).
    pub fn finished(&self) -> bool {
        self.planned == 0 && self.in_flight == 0 && self.unsaved == 0
    }
}
