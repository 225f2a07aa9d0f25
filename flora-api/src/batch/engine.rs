//! The runner: validates a plan against the schema, then drives every item through the
//! journal's states with one adaptive window, stopping submissions (never polls) on
//! credits, auth, cost or request.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use super::cost::{CostGuard, Decision, Reserved};
use super::journal::{ItemRow, ItemState, Journal, Meta};
use super::outputs;
use super::plan::PlanItem;
use super::window::Window;
use crate::client::Client;
use crate::endpoints::StartOptions;
use crate::error::Error;
use crate::reconcile;
use crate::saving::{self, Names};
use crate::technique::RunInput;
use crate::values::{self, InputValue};
use crate::wire::{Run, RunStatus, TechniqueSchema};

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
        }
    }
}

impl BatchOptions {
    /// Refuses settings that cannot work, by name.
    fn check(&self) -> Result<(), Error> {
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

/// Why a batch stopped submitting before its plan was done. Runs in flight are still polled
/// to their end; a resume continues the rest.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`Batch::stop`] was called (Ctrl-C in `floret`), with the caller's words.
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

/// What a running batch is doing ([`Batch::progress`]).
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
    /// USD charged, summed once per run from its terminal state.
    pub charged: f64,
    /// 429/503 answers met.
    pub throttled: u64,
    /// Why submissions stopped early, if they did.
    pub stopped: Option<StopReason>,
}

impl Summary {
    fn of(rows: &[ItemRow], saving: bool) -> Summary {
        let mut s = Summary {
            total: rows.len(),
            ..Summary::default()
        };
        for r in rows {
            match r.state {
                ItemState::Planned => s.planned += 1,
                ItemState::Uploading | ItemState::Submitting | ItemState::Created => {
                    s.in_flight += 1;
                }
                ItemState::Completed => s.completed += 1,
                ItemState::Saved => {
                    s.completed += 1;
                    s.saved += 1;
                }
                ItemState::Failed => s.failed += 1,
                ItemState::NeedsReview => s.needs_review += 1,
            }
            s.charged += r.charged.unwrap_or(0.0);
        }
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

/// A batch bound to its journal (which it holds locked).
pub struct Batch {
    client: Client,
    journal: Mutex<Journal>,
    meta: Meta,
    schema: TechniqueSchema,
    options: BatchOptions,
    window: Window,
    /// The `max_cost` guard (its figures set up by `run`).
    costs: CostGuard,
    /// Submissions between their first POST and a known run id: at most `max_concurrency`.
    /// With 1, a lost answer is always reconciled exactly (no other run can be unowned).
    unresolved: tokio::sync::Semaphore,
    /// When FLORA estimated each new run done (`estimated_seconds`), by item: its first poll
    /// waits until then.
    ready_at: Mutex<std::collections::HashMap<i64, tokio::time::Instant>>,
    stop: AtomicBool,
    /// Set by [`Batch::stop`]: polling ends too (runs in flight are polled by a resume).
    abort: tokio_util::sync::CancellationToken,
    stop_reason: Mutex<Option<StopReason>>,
    events: Option<UnboundedSender<Event>>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("batch_id", &self.meta.batch_id)
            .field("technique", &self.meta.slug)
            .finish_non_exhaustive()
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A deterministic idempotency key: `prefix-` and 40 hex digits of the parts' SHA-256.
fn derived_key(prefix: &str, parts: &[&str]) -> String {
    let digest = hex::encode(Sha256::digest(parts.join("\0").as_bytes()));
    format!("{prefix}-{}", &digest[..40])
}

/// Every problem of every row, named by line, before anything is sent.
pub(crate) async fn validate(schema: &TechniqueSchema, items: &[PlanItem]) -> Result<(), Error> {
    let slots = schema.inputs.clone().unwrap_or_default();
    let ids: Vec<&str> = slots.iter().map(|s| s.id.as_str()).collect();
    let mut problems = Vec::new();
    if items.is_empty() {
        problems.push("the plan has no items".to_owned());
    }
    let mut keys = std::collections::BTreeMap::new();
    for item in items {
        if let Some(first) = keys.insert(item.key.as_str(), item) {
            let lines = if item.line > 0 {
                format!(" (lines {} and {})", first.line, item.line)
            } else {
                String::new()
            };
            problems.push(format!(
                "key {:?} is used by two items{lines}; keys must be unique",
                item.key
            ));
        }
    }
    for item in items {
        let at = if item.line > 0 {
            format!("line {}", item.line)
        } else {
            format!("item {:?}", item.key)
        };
        for id in item.values.keys() {
            if !ids.contains(&id.as_str()) {
                problems.push(format!(
                    "{at}: unknown input `{}` (the technique's inputs: {})",
                    values::shorten(id),
                    ids.join(", ")
                ));
            }
        }
        for slot in &slots {
            match item.values.get(&slot.id) {
                None if !slot.optional => {
                    problems.push(format!("{at}: required input `{}` is missing", slot.id));
                }
                None => {}
                Some(vals) => {
                    for v in vals {
                        if let Err(why) = values::check(slot, v).await {
                            problems.push(format!(
                                "{at}: input `{}` = {}: {why}",
                                slot.id,
                                values::shorten(v)
                            ));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    problems.truncate(20);
    Err(Error::InvalidInput(format!(
        "the plan has {n} problem(s); nothing was sent:\n  {}",
        problems.join("\n  ")
    )))
}

/// The plan's estimate: items × run cost.
pub(crate) fn estimate(schema: &TechniqueSchema, items: usize) -> Option<f64> {
    schema.run_cost.map(|c| c * items as f64)
}

impl Batch {
    /// Validates `items` against `schema` (every row; nothing is sent when one is wrong) and
    /// writes a new journal at `path`.
    pub async fn create(
        client: &Client,
        path: &Path,
        schema: &TechniqueSchema,
        items: &[PlanItem],
        options: BatchOptions,
    ) -> Result<Batch, Error> {
        options.check()?;
        validate(schema, items).await?;
        if let (Some(max), Some(cost)) = (options.max_cost, estimate(schema, items.len()))
            && cost > max
        {
            return Err(Error::InvalidInput(format!(
                "the plan would cost {cost:.2} USD ({} items × {} USD), over --max-cost {max}; \
                 nothing was sent",
                items.len(),
                schema.run_cost.unwrap_or(0.0)
            )));
        }
        let meta = Meta {
            batch_id: uuid::Uuid::new_v4().to_string(),
            slug: schema.slug_or_derived().to_owned(),
            technique_id: schema.technique_id.clone(),
            run_cost: schema.run_cost,
            schema: schema.raw().clone(),
            download: options.download.clone(),
            max_cost: options.max_cost,
        };
        let journal = Journal::create(path, &meta, items)?;
        Ok(Batch::with(client, journal, meta, schema.clone(), options))
    }

    /// An existing journal, to resume (`options.download` and `options.max_cost` override the
    /// stored ones; a new limit is stored).
    pub async fn open(client: &Client, path: &Path, options: BatchOptions) -> Result<Batch, Error> {
        options.check()?;
        let (journal, meta) = Journal::open(path)?;
        let schema: TechniqueSchema =
            serde_json::from_value(meta.schema.clone()).map_err(|e| Error::Journal {
                path: path.to_path_buf(),
                problem: format!("its technique schema cannot be read: {e}"),
            })?;
        let mut options = options;
        if options.download.is_none() {
            options.download = meta.download.clone();
        }
        // A limit holds across resumes until another is given.
        match options.max_cost {
            None => options.max_cost = meta.max_cost,
            Some(max) => journal.set_max_cost(max)?,
        }
        Ok(Batch::with(client, journal, meta, schema, options))
    }

    fn with(
        client: &Client,
        journal: Journal,
        meta: Meta,
        schema: TechniqueSchema,
        options: BatchOptions,
    ) -> Batch {
        Batch {
            // The batch's window is its retry strategy: the client's own retries would sleep
            // inside a window slot and hide 429s from it.
            client: client.without_retries(),
            journal: Mutex::new(journal),
            window: Window::new(options.max_concurrency),
            unresolved: tokio::sync::Semaphore::new(options.max_concurrency.max(1)),
            costs: CostGuard::new(options.max_cost, meta.run_cost.unwrap_or(0.0)),
            meta,
            schema,
            options,
            ready_at: Mutex::new(std::collections::HashMap::new()),
            stop: AtomicBool::new(false),
            abort: tokio_util::sync::CancellationToken::new(),
            stop_reason: Mutex::new(None),
            events: None,
        }
    }

    /// Sends an [`Event`] for every item change.
    pub fn events(mut self, tx: UnboundedSender<Event>) -> Self {
        self.events = Some(tx);
        self
    }

    /// Stops the batch promptly: no new submissions, and polling ends, so [`run`](Self::run)
    /// returns. Runs in flight go on at FLORA; their ids are journaled, and the next resume
    /// polls them (never starts them again).
    pub fn stop(&self, why: &str) {
        self.halt(StopReason::Requested(why.to_owned()));
        self.abort.cancel();
    }

    /// Stops new submissions; runs in flight are still polled to their end (and saved).
    pub fn drain(&self, why: &str) {
        self.halt(StopReason::Requested(why.to_owned()));
    }

    fn halt(&self, reason: StopReason) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            if let Ok(mut r) = self.stop_reason.lock() {
                *r = Some(reason.clone());
            }
            self.emit(Event::Stopped { reason });
        }
        // Submissions waiting for the cost guard see the stop.
        self.costs.wake();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is moving now, for a progress display.
    pub fn progress(&self) -> Progress {
        Progress {
            runs_in_flight: self.costs.in_flight(),
            window: self.window.limit(),
            requests_in_flight: self.window.in_flight(),
            throttled: self.window.throttled(),
        }
    }

    /// Where the batch stands, from the journal.
    pub fn summary(&self) -> Result<Summary, Error> {
        let rows = self.journal().items()?;
        let mut s = Summary::of(&rows, self.options.download.is_some());
        s.throttled = self.window.throttled();
        s.stopped = self.stop_reason.lock().ok().and_then(|r| r.clone());
        Ok(s)
    }

    /// Every item's row, for `status` and `export`.
    pub fn items_json(&self) -> Result<Vec<Value>, Error> {
        Ok(self.journal().items()?.iter().map(row_json).collect())
    }

    /// What makes this journal's plan another one than `items` of `schema`'s technique.
    pub(crate) fn differs_from(
        &self,
        schema: &TechniqueSchema,
        items: &[PlanItem],
    ) -> Result<Option<String>, Error> {
        if self.meta.technique_id != schema.technique_id {
            return Ok(Some(format!(
                "a batch of technique `{}`, not `{}`",
                self.meta.slug,
                schema.slug_or_derived()
            )));
        }
        let rows = self.journal().items()?;
        if rows.len() != items.len() {
            return Ok(Some(format!("{} items, not {}", rows.len(), items.len())));
        }
        for (row, item) in rows.iter().zip(items) {
            if row.key != item.key {
                return Ok(Some(format!(
                    "its item {} is {:?}, here {:?}",
                    row.pos + 1,
                    row.key,
                    item.key
                )));
            }
            if row.values != item.values {
                return Ok(Some(format!("item {:?} has other inputs", row.key)));
            }
        }
        Ok(None)
    }

    /// Failed items (and, with `unclear`, those needing review) back to planned under a new
    /// attempt: their next run gets a new key, on purpose.
    pub fn retry_failed(&self, unclear: bool) -> Result<usize, Error> {
        self.journal().retry(unclear)
    }

    /// Drives every unfinished item to its end (or until stopped) and returns the summary.
    pub async fn run(&self) -> Result<Summary, Error> {
        let rows = self.journal().items()?;
        self.costs.start(
            rows.iter().filter_map(|r| {
                let completed = matches!(r.state, ItemState::Completed | ItemState::Saved);
                r.charged.map(|c| (c, completed))
            }),
            rows.iter()
                .filter(|r| r.state == ItemState::Created)
                .count() as u32,
        );
        // Saved items: files gone since are downloaded again; changed ones are kept unless
        // `overwrite`; intact ones are not downloaded again.
        let mut resaves = Vec::new();
        if self.options.download.is_some() {
            for r in rows.iter().filter(|r| r.state == ItemState::Saved) {
                let check = outputs::Check::of(&outputs::parse(r.saved.as_deref()));
                let mut again = check.missing.clone();
                if self.options.overwrite {
                    again.extend(check.changed.iter().map(|(i, _)| *i));
                } else if !check.changed.is_empty() {
                    self.emit(Event::Changed {
                        key: r.key.clone(),
                        paths: check.changed.into_iter().map(|(_, p)| p).collect(),
                    });
                }
                if !again.is_empty() {
                    resaves.push((r.clone(), again));
                }
            }
        }
        let work: Vec<ItemRow> = rows
            .into_iter()
            .filter(|r| {
                let ended = matches!(
                    r.state,
                    ItemState::Failed | ItemState::Saved | ItemState::NeedsReview
                );
                let nothing_to_save =
                    r.state == ItemState::Completed && self.options.download.is_none();
                !ended && !nothing_to_save
            })
            .collect();
        // Items caught between intent and answer go first, one at a time: their runs are
        // found (replayed, or reconciled from the listing) before any new run can blur it.
        let (mut caught, rest): (Vec<ItemRow>, Vec<ItemRow>) = work
            .into_iter()
            .partition(|r| r.state == ItemState::Submitting);
        // Those whose POST may have left first, oldest first.
        caught.sort_by(|a, b| {
            let key = |r: &ItemRow| (r.sent_at.is_none(), r.sent_at.unwrap_or(0.0), r.pos);
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut settled = Vec::new();
        for mut r in caught {
            if let Some(run_id) = self.settle(&r, None).await? {
                r.run_id = Some(run_id);
                r.state = ItemState::Created;
                settled.push(r);
            }
        }
        let template = self.options.download.as_deref().map(outputs::template);
        let resaves = resaves.into_iter().map(|(r, again)| {
            let template = template.clone().unwrap_or_default();
            async move { self.save(&r, &template, Some(&again)).await }
        });
        let drives = settled.into_iter().chain(rest).map(|r| self.drive(r));
        let (results, resaved) = futures_util::future::join(
            futures_util::future::join_all(drives),
            futures_util::future::join_all(resaves),
        )
        .await;
        let results = results.into_iter().chain(resaved);
        for r in results {
            // An item's error leaves it where it was (a resume continues it); journal errors
            // are the batch's.
            if let Err(e @ Error::Journal { .. }) = r {
                return Err(e);
            }
        }
        self.summary()
    }

    async fn drive(&self, mut row: ItemRow) -> Result<(), Error> {
        // The inputs resolved for the intent, reused for the POST (no second check or hash).
        let mut resolved: Option<Vec<RunInput>> = None;
        loop {
            match row.state {
                ItemState::Planned | ItemState::Uploading => {
                    if self.stopped() {
                        return Ok(());
                    }
                    let Some(inputs) = self.resolve(&row).await? else {
                        return Ok(());
                    };
                    let idem = self.key(&row, &inputs);
                    let at = now();
                    self.journal().submitting(row.pos, &idem, at)?;
                    row.state = ItemState::Submitting;
                    row.idem = Some(idem);
                    row.intent_at = Some(at);
                    resolved = Some(inputs);
                }
                ItemState::Submitting => {
                    if self.stopped() {
                        // Back to planned if its POST never left.
                        self.journal().unsent(row.pos)?;
                        return Ok(());
                    }
                    let Some(run_id) = self.settle(&row, resolved.take()).await? else {
                        return Ok(());
                    };
                    row.run_id = Some(run_id);
                    row.state = ItemState::Created;
                }
                ItemState::Created => {
                    let Some(run) = self.poll_to_end(&row).await? else {
                        // Polling gave up (a resume continues it): still counted as charged.
                        self.costs.lost();
                        return Ok(());
                    };
                    let outputs = serde_json::to_string(&run.outputs).unwrap_or_default();
                    if run.status == RunStatus::Completed {
                        self.journal().finished(
                            row.pos,
                            ItemState::Completed,
                            run.charged_cost,
                            Some(&outputs),
                            None,
                        )?;
                        self.costs.ended(run.charged_cost, true);
                        self.emit(Event::Completed {
                            key: row.key.clone(),
                            run_id: run.run_id.clone(),
                            charged: run.charged_cost,
                        });
                        row.outputs = Some(outputs);
                        row.state = ItemState::Completed;
                    } else {
                        // `failed`, or ended with a status this version does not know.
                        let code = match (&run.error_code, &run.status) {
                            (Some(c), _) => c.as_str().to_owned(),
                            (None, RunStatus::Failed) => "failed".to_owned(),
                            (None, other) => format!("ended `{other}`"),
                        };
                        let why = match &run.error_message {
                            Some(m) => format!("{code}: {}", values::shorten(m)),
                            None => code,
                        };
                        self.journal().finished(
                            row.pos,
                            ItemState::Failed,
                            run.charged_cost,
                            Some(&outputs),
                            Some(&why),
                        )?;
                        self.costs.ended(run.charged_cost, false);
                        self.emit(Event::Failed {
                            key: row.key.clone(),
                            error: why,
                        });
                        return Ok(());
                    }
                }
                ItemState::Completed => {
                    let Some(spec) = &self.options.download else {
                        return Ok(());
                    };
                    self.save(&row, &outputs::template(spec), None).await?;
                    return Ok(());
                }
                ItemState::Failed | ItemState::Saved | ItemState::NeedsReview => return Ok(()),
            }
        }
    }

    /// A resumed item in `submitting`: its POST again under the same key. `None` when it
    /// ended otherwise (refused, needs review, stopped).
    async fn settle(
        &self,
        row: &ItemRow,
        inputs: Option<Vec<RunInput>>,
    ) -> Result<Option<String>, Error> {
        // A resumed item re-resolves its inputs: uploads come from the journal, so the body
        // (and the key) are the ones sent before.
        let inputs = match inputs {
            Some(i) => i,
            None => match self.resolve(row).await? {
                Some(i) => i,
                None => return Ok(None),
            },
        };
        let key = row.idem.clone().unwrap_or_else(|| self.key(row, &inputs));
        let created = self.submit(row, inputs, &key).await?;
        if let Some(run_id) = &created {
            self.emit(Event::Created {
                key: row.key.clone(),
                run_id: run_id.clone(),
            });
        }
        Ok(created)
    }

    /// Ends an item as failed before it had a run (a value refused, the request refused).
    fn refuse(&self, row: &ItemRow, why: String) -> Result<(), Error> {
        self.journal()
            .finished(row.pos, ItemState::Failed, None, None, Some(&why))?;
        self.emit(Event::Failed {
            key: row.key.clone(),
            error: why,
        });
        Ok(())
    }

    /// The idempotency key: batch, item key and attempt, technique, and the body's inputs.
    fn key(&self, row: &ItemRow, inputs: &[RunInput]) -> String {
        let body = serde_json::to_string(inputs).unwrap_or_default();
        let attempt = row.attempt.to_string();
        derived_key(
            "flora-batch",
            &[
                &self.meta.batch_id,
                &row.key,
                &attempt,
                &self.meta.technique_id,
                &body,
            ],
        )
    }

    /// The run's inputs, local files uploaded (each distinct file once, by content, recorded
    /// in the journal). `None` when stopped meanwhile.
    async fn resolve(&self, row: &ItemRow) -> Result<Option<Vec<RunInput>>, Error> {
        let mut out = Vec::new();
        for slot in self.schema.inputs.iter().flatten() {
            for v in row.values.get(&slot.id).into_iter().flatten() {
                let wire = slot.kind.as_str().to_owned();
                let value = match values::check(slot, v).await {
                    Ok(InputValue::Text(t) | InputValue::Url(t)) => t,
                    Ok(InputValue::File(path)) => {
                        let (_, hash) = saving::digest(&path)?;
                        let known = self.journal().upload_url(&hash, &wire)?;
                        match known {
                            Some(url) => url,
                            None => {
                                if self.stopped() {
                                    return Ok(None);
                                }
                                self.journal().uploading(row.pos)?;
                                let url = self.upload(&path, &slot.kind, &hash).await?;
                                self.journal().put_upload(&hash, &wire, &url)?;
                                self.emit(Event::Uploaded {
                                    key: row.key.clone(),
                                    path: path.clone(),
                                });
                                url
                            }
                        }
                    }
                    Err(why) => {
                        self.refuse(row, why)?;
                        return Ok(None);
                    }
                };
                out.push(RunInput::new(slot.id.clone(), wire, value));
            }
        }
        Ok(Some(out))
    }

    /// Uploads one file under a key of the batch and the file's content: an upload
    /// interrupted by a crash is re-sent under the same key, so FLORA replays its asset.
    async fn upload(
        &self,
        path: &Path,
        kind: &crate::MediaType,
        sha256: &str,
    ) -> Result<String, Error> {
        let key = derived_key(
            "flora-batch-upload",
            &[&self.meta.batch_id, sha256, kind.as_str()],
        );
        self.windowed(|| {
            self.client.upload_for_slot(
                crate::Upload::path(path),
                kind,
                crate::UploadOptions::default().idempotency_key(key.clone()),
            )
        })
        .await
    }

    /// One request in the window, tried again after [`pause`](Self::pause) until it succeeds
    /// or is not worth another attempt (its error then).
    async fn windowed<T, F, Fut>(&self, mut request: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0u32;
        loop {
            let slot = self.window.acquire().await;
            match request().await {
                Ok(v) => {
                    slot.success();
                    return Ok(v);
                }
                Err(e) => {
                    attempt += 1;
                    if !self.pause(slot, &e, attempt).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// After a failed request: shrinks the window on 429/503 and sleeps; `false` when the
    /// error is not worth another attempt (or attempts ran out).
    async fn pause(&self, slot: super::window::Slot<'_>, e: &Error, attempt: u32) -> bool {
        let throttled = matches!(e.status(), Some(429 | 503));
        if throttled {
            slot.throttled();
        } else {
            drop(slot);
        }
        if !e.is_retryable() || (!throttled && attempt >= 8) {
            return false;
        }
        let backoff =
            Duration::from_millis(250 * 2u64.pow(attempt.min(7))).min(Duration::from_secs(30));
        let wait = match e.retry_after() {
            Some(d) => d.min(Duration::from_secs(60)),
            None if throttled => Duration::from_millis(5000 + fastrand::u64(0..1000)),
            None => backoff,
        };
        if throttled {
            // Every request waits, not only this one.
            self.window.cool_down(wait);
        } else {
            // `stop()` ends the wait (and the caller's loop sees the stop).
            tokio::select! {
                () = self.abort.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
        }
        true
    }

    /// POSTs the run; `None` when the item ended otherwise (stopped, refused, needs review).
    async fn submit(
        &self,
        row: &ItemRow,
        inputs: Vec<RunInput>,
        key: &str,
    ) -> Result<Option<String>, Error> {
        let Ok(_unresolved) = self.unresolved.acquire().await else {
            return Ok(None);
        };
        // The cost guard, right before the POST (see `cost.rs`).
        let reserved = match self.costs.before_post(|| self.stopped()).await {
            Decision::Go(reserved) => reserved,
            Decision::Over {
                charged,
                per_run,
                flying,
            } => {
                self.halt(StopReason::MaxCost {
                    limit: self.options.max_cost.unwrap_or(0.0),
                    charged,
                    per_run,
                    in_flight: flying,
                });
                self.journal().unsent(row.pos)?;
                return Ok(None);
            }
        };
        // Ends without a run: its place is given back when nothing was sent before (after a
        // lost answer, a run may exist: the dropped place counts it as charged).
        let sent_before = row.sent_at.is_some();
        let no_run = |reserved: Reserved<'_>, attempt: u32| {
            if attempt == 0 && !sent_before {
                reserved.no_run();
            }
        };
        let mut attempt = 0u32;
        loop {
            if self.stopped() {
                if attempt == 0 {
                    // Never sent (by this process): back to planned, unless an earlier one sent it.
                    self.journal().unsent(row.pos)?;
                }
                no_run(reserved, attempt);
                return Ok(None);
            }
            let slot = self.window.acquire().await;
            self.journal().sending(row.pos, now())?;
            let r = self
                .client
                .start_run(
                    &self.meta.slug,
                    inputs.clone(),
                    StartOptions::idempotency_key(key),
                )
                .await;
            match r {
                Ok(handle) => {
                    // Committed before the window slot is given back: with one submission in
                    // flight, every other run is owned by then, so a later reconcile is exact.
                    self.journal().created(row.pos, handle.run_id(), now())?;
                    reserved.made_a_run();
                    if let Some(at) = handle.ready_at() {
                        self.ready_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(row.pos, at);
                    }
                    slot.success();
                    return Ok(Some(handle.run_id().to_owned()));
                }
                Err(e @ Error::Idempotency { .. }) if e.status() == Some(409) => {
                    drop(slot);
                    let found = self.reconcile(row).await;
                    if matches!(found, Ok(Some(_))) {
                        reserved.made_a_run();
                    }
                    return found;
                }
                Err(e) => {
                    // A lost answer: the run may exist, and the same key replays it.
                    let e = match e {
                        Error::RunMayExist { cause, .. } => *cause,
                        e => e,
                    };
                    match e.status() {
                        Some(401 | 403) => {
                            drop(slot);
                            no_run(reserved, attempt);
                            self.halt(StopReason::Unauthorized(e.to_string()));
                            return Ok(None);
                        }
                        Some(402) => {
                            drop(slot);
                            no_run(reserved, attempt);
                            self.halt(StopReason::InsufficientCredits(e.to_string()));
                            return Ok(None);
                        }
                        Some(400 | 404 | 422) => {
                            drop(slot);
                            no_run(reserved, attempt);
                            self.refuse(row, e.to_string())?;
                            return Ok(None);
                        }
                        _ => {}
                    }
                    attempt += 1;
                    if !self.pause(slot, &e, attempt).await {
                        // Left in `submitting`: a resume sends the same key again.
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// After a 409 `idempotency_duplicate` (the key's first answer was lost and FLORA does
    /// not replay): the one unowned run of the technique created in the item's span (see
    /// `reconcile.rs`) is adopted; anything else needs review.
    async fn reconcile(&self, row: &ItemRow) -> Result<Option<String>, Error> {
        let (before, after, owned, sent_at) = {
            let j = self.journal();
            let sent_at = j.sent_at(row.pos)?.or(row.intent_at);
            let at = sent_at.unwrap_or(0.0);
            let after = if self.options.max_concurrency <= 1 {
                j.runs_sent_after(row.pos, at)?
            } else {
                Vec::new()
            };
            (j.runs_known_before(at)?, after, j.owned_runs()?, sent_at)
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
        let runs: Result<Vec<Run>, Error> = self
            .windowed(|| self.client.history_since(&self.meta.technique_id, &known))
            .await;
        let why = match runs {
            Ok(runs) => {
                let span = reconcile::Span::of(&runs, &known);
                let candidates = reconcile::candidates(&runs, span, |id| owned.contains(id));
                if let [only] = candidates.as_slice() {
                    self.journal().created(row.pos, only, now())?;
                    return Ok(Some((*only).to_owned()));
                }
                format!(
                    "its first answer was lost and {} unowned run(s) of the technique were \
                     created in its span; runs carry no inputs, so which one is this item's \
                     cannot be told",
                    candidates.len()
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

    /// Polls until the run ends (`completed`, `failed`, or a status this version does not
    /// know on a run that reports `completed_at`); `None` if polling gave up: transient
    /// errors ran out, the poll policy's deadline passed, or the batch was stopped (a resume
    /// continues it).
    async fn poll_to_end(&self, row: &ItemRow) -> Result<Option<Run>, Error> {
        let Some(run_id) = row.run_id.clone() else {
            return Ok(None);
        };
        // The first poll waits for FLORA's estimate, when the create answer gave one.
        let ready_at = self
            .ready_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&row.pos);
        let left = ready_at.map(|at| at.saturating_duration_since(tokio::time::Instant::now()));
        let policy = self
            .options
            .poll
            .clone()
            .unwrap_or_else(|| self.client.poll_policy().clone());
        let deadline = tokio::time::Instant::now().checked_add(policy.deadline);
        let mut delays = policy.delays_after(left);
        let mut attempt = 0u32;
        loop {
            let delay = delays.next().unwrap_or(Duration::from_secs(5));
            let wake = tokio::time::Instant::now() + delay;
            let wake = deadline.map_or(wake, |d| wake.min(d));
            tokio::select! {
                () = self.abort.cancelled() => return Ok(None),
                () = tokio::time::sleep_until(wake) => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                tracing::warn!(
                    run_id,
                    "stopped polling at the poll deadline; a resume polls on"
                );
                return Ok(None);
            }
            let slot = tokio::select! {
                () = self.abort.cancelled() => return Ok(None),
                slot = self.window.acquire() => slot,
            };
            let polled = tokio::select! {
                () = self.abort.cancelled() => return Ok(None),
                polled = self.client.get_run(&self.meta.slug, &run_id) => polled,
            };
            match polled {
                Ok(run) => {
                    slot.success();
                    attempt = 0;
                    if crate::poll::has_ended(&run) {
                        return Ok(Some(run));
                    }
                }
                Err(e) => {
                    attempt += 1;
                    if !self.pause(slot, &e, attempt).await {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Saves the item's outputs (`only`: those at these indices, the others kept as
    /// journaled), retrying transient failures; journals the files with their sha256.
    async fn save(
        &self,
        row: &ItemRow,
        template: &str,
        only: Option<&[usize]>,
    ) -> Result<(), Error> {
        let run_outputs: Vec<crate::RunOutput> = row
            .outputs
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        let run_id = row.run_id.clone().unwrap_or_default();
        let names = Names {
            run_id: &run_id,
            key: &row.key,
        };
        let save_options = saving::SaveOptions::default().overwrite(self.options.overwrite);
        for attempt in 1..=5u32 {
            // An interrupted save left some files: those with the very bytes are kept.
            let saving = saving::save_all(
                &self.client,
                names,
                &run_outputs,
                template,
                &save_options,
                only,
            );
            match saving.await {
                Ok(saved) => {
                    let old = if only.is_some() {
                        outputs::parse(row.saved.as_deref())
                    } else {
                        Vec::new()
                    };
                    let files = outputs::merge(old, &saved);
                    let json = serde_json::to_string(&files).unwrap_or_default();
                    self.journal().saved(row.pos, &json)?;
                    self.emit(Event::Saved {
                        key: row.key.clone(),
                        paths: saved.into_iter().map(|s| s.path).collect(),
                    });
                    return Ok(());
                }
                Err(saving::SaveError::Failed(e)) if e.is_retryable() && attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => {
                    // A saved item whose files could not be restored is not saved any more.
                    self.journal().unsaved(row.pos)?;
                    self.emit(Event::NotSaved {
                        key: row.key.clone(),
                        error: e.to_string(),
                    });
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The journal's items for `status` without a client: opens (and locks) it briefly.
#[cfg(feature = "cli")]
pub(crate) fn status_of(path: &Path) -> Result<(Summary, Vec<Value>), Error> {
    let (journal, meta) = Journal::open(path)?;
    let rows = journal.items()?;
    Ok((
        Summary::of(&rows, meta.download.is_some()),
        rows.iter().map(row_json).collect(),
    ))
}

/// One item as `status --json` and `export` show it.
fn row_json(r: &ItemRow) -> Value {
    let parsed = |t: &Option<String>| {
        t.as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
    };
    json!({
        "key": r.key, "state": r.state.as_str(), "run_id": r.run_id,
        "idempotency_key": r.idem, "charged_cost": r.charged, "error": r.error,
        "inputs": r.values, "outputs": parsed(&r.outputs), "saved": parsed(&r.saved),
    })
}

#[cfg(test)]
mod tests {
    /// Keys are journaled and re-sent by later versions: their derivation must not change
    /// (a changed key is a second run). This one was computed independently (Python hashlib).
    #[test]
    fn derived_keys_are_stable() {
        assert_eq!(
            super::derived_key("flora-batch", &["b1", "k", "0", "tech_x", "[]"]),
            "flora-batch-bc181c0e8066e17c3e352295348cd6273b782fc5"
        );
    }
}
