//! A batch bound to its journal: made from a checked plan or opened to resume, stopped or
//! drained on request, and run: every unfinished item driven (`drive.rs`) under one adaptive
//! window and one cost guard, until each ends or the batch stops.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::cost::CostGuard;
use super::journal::{ItemRow, ItemState, Journal, Meta};
use super::options::{BatchOptions, Event, Progress, StopReason, Summary};
use super::outputs;
use super::plan::PlanItem;
use super::status::row_json;
use super::target::Target;
use super::validate;
use super::watcher::Watcher;
use super::window::Window;
use crate::client::Client;
use crate::error::Error;
use crate::wire::TechniqueSchema;

/// Items driven at once: each is a few requests at most in flight (bounded by the window), or
/// a run being watched (cheap: one listing watches a hundred).
const DRIVEN_AT_ONCE: usize = 1024;

/// Items read from the journal at a time.
const PAGE: i64 = 512;

/// A batch bound to its journal (which it holds locked).
pub struct Batch {
    pub(crate) client: Client,
    /// The client outputs are downloaded with (its own retries on).
    pub(crate) saver: Client,
    pub(crate) journal: Mutex<Journal>,
    pub(crate) meta: Meta,
    /// What it runs: a technique's schema, or a model's catalog entry and project.
    pub(crate) target: Target,
    pub(crate) options: BatchOptions,
    pub(crate) window: Window,
    /// The `max_cost` guard (its figures set up by `run`).
    pub(crate) costs: CostGuard,
    /// Submissions between their first POST and a known run id: at most `max_concurrency`.
    pub(crate) unresolved: tokio::sync::Semaphore,
    pub(crate) stop: AtomicBool,
    /// Set by [`Batch::stop`]: polling ends too (runs in flight are polled by a resume).
    pub(crate) abort: CancellationToken,
    pub(crate) stop_reason: Mutex<Option<StopReason>>,
    pub(crate) events: Option<UnboundedSender<Event>>,
    /// Uploads by (content, kind): one per distinct file per batch, however many items.
    /// Each local file uploaded once per process, shared by every item that names it (the
    /// journal keeps the URLs across processes): the URL, or why it failed (`true`: for
    /// good, e.g. refused as too large).
    pub(crate) uploads: crate::values::UploadOnce<(bool, String)>,
    /// POSTs creating runs in flight now, and how many ever started: whether one POST
    /// overlapped another.
    pub(crate) posting: AtomicUsize,
    pub(crate) posts_started: AtomicU64,
    /// Runs in flight, watched together through the run history.
    pub(crate) watcher: Watcher,
    /// The folders outputs are staged in that the journal already holds (each is journaled
    /// once, before the first save there).
    pub(crate) saved_into: Mutex<std::collections::BTreeSet<std::path::PathBuf>>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("batch_id", &self.meta.batch_id)
            .field(self.target.noun(), &self.meta.slug)
            .finish_non_exhaustive()
    }
}

impl Batch {
    /// Validates `items` against `schema` (every row; nothing is sent when one is wrong),
    /// decides every item's output names, and writes a new journal at `path` (whole or not
    /// at all).
    pub async fn create(
        client: &Client,
        path: &Path,
        schema: &TechniqueSchema,
        items: &[PlanItem],
        options: BatchOptions,
    ) -> Result<Batch, Error> {
        options.check()?;
        validate::validate(schema, items).await?;
        validate::check_cost(schema.run_cost, items.len(), options.max_cost)?;
        if let Some(spec) = &options.download {
            validate::check_download(spec, items.len())?;
        }
        let meta = Meta {
            batch_id: uuid::Uuid::new_v4().to_string(),
            slug: schema.slug_or_derived().to_owned(),
            technique_id: schema.technique_id.clone(),
            run_cost: schema.run_cost,
            schema: schema.raw().clone(),
            download: options.download.clone(),
            max_cost: options.max_cost,
            model: None,
        };
        let names = validate::output_names(items);
        let journal = Journal::create(path, &meta, items, &names)?;
        let target = Target::Technique(schema.clone());
        Ok(Batch::with(client, journal, meta, target, options))
    }

    /// An existing journal, to resume (`options.download` and `options.max_cost` override the
    /// stored ones; a new limit is stored).
    pub async fn open(client: &Client, path: &Path, options: BatchOptions) -> Result<Batch, Error> {
        options.check()?;
        let (journal, meta) = Journal::open(path)?;
        let target = Target::of(path, &meta)?;
        let mut options = options;
        if options.download.is_none() {
            options.download = meta.download.clone();
        }
        // A limit holds across resumes until another is given.
        match options.max_cost {
            None => options.max_cost = meta.max_cost,
            Some(max) => journal.set_max_cost(max)?,
        }
        Ok(Batch::with(client, journal, meta, target, options))
    }

    pub(crate) fn with(
        client: &Client,
        journal: Journal,
        meta: Meta,
        target: Target,
        options: BatchOptions,
    ) -> Batch {
        Batch {
            // The batch's window is its retry strategy: the client's own retries would sleep
            // inside a window slot and hide 429s from it.
            client: client.with_retry_policy(crate::RetryPolicy::none()),
            // Outputs come from the media host, outside the API's limit and the window:
            // their downloads are retried by the client itself, with the batch's policy.
            saver: client.with_retry_policy(options.retry),
            journal: Mutex::new(journal),
            window: Window::new(options.max_concurrency),
            unresolved: tokio::sync::Semaphore::new(options.max_concurrency.max(1)),
            costs: CostGuard::new(options.max_cost, meta.run_cost.unwrap_or(0.0)),
            meta,
            target,
            options,
            stop: AtomicBool::new(false),
            abort: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            events: None,
            uploads: crate::values::UploadOnce::new(),
            posting: AtomicUsize::new(0),
            posts_started: AtomicU64::new(0),
            watcher: Watcher::default(),
            saved_into: Mutex::new(std::collections::BTreeSet::new()),
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

    pub(crate) fn halt(&self, reason: StopReason) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            if let Ok(mut r) = self.stop_reason.lock() {
                *r = Some(reason.clone());
            }
            self.emit(Event::Stopped { reason });
        }
        // Submissions waiting for the cost guard see the stop.
        self.costs.wake();
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    pub(crate) fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
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
        let journal = self.journal();
        let rows = journal.items()?;
        let mut s = Summary::of(
            &rows,
            self.options.download.is_some(),
            journal.charged_total()?,
        );
        s.unsettled = journal.unsettled()?;
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
        if let Some(model) = &self.meta.model {
            return Ok(Some(format!(
                "a batch of model `{}`, not of technique `{}`",
                model.model_id,
                schema.slug_or_derived()
            )));
        }
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
    /// attempt: their next run gets a new key, on purpose. What their runs were charged stays
    /// in the ledger.
    pub fn retry_failed(&self, unclear: bool) -> Result<usize, Error> {
        self.journal().retry(unclear, false)
    }

    /// [`retry_failed`](Self::retry_failed) for failed runs a new run may cure only: those
    /// whose [`RetryClass`](crate::RetryClass) is retry now or later. Refusals (moderation,
    /// invalid parameters, a safety refusal under any code), billing, access and codes this
    /// version does not know stay failed.
    pub fn retry_transient(&self, unclear: bool) -> Result<usize, Error> {
        self.journal().retry(unclear, true)
    }

    /// Drives every unfinished item to its end (or until stopped) and returns the summary.
    pub async fn run(&self) -> Result<Summary, Error> {
        self.sweep_staging()?;
        let (caught, resaves) = {
            let journal = self.journal();
            // An intent whose POST never left is no run: back to planned, before anything.
            journal.unsend_unsent()?;
            self.costs
                .start(journal.charges()?.into_iter(), journal.flying()?);
            let saved = if self.options.download.is_some() {
                journal.items_in(&[ItemState::Saved])?
            } else {
                Vec::new()
            };
            (journal.items_in(&[ItemState::Submitting])?, saved)
        };
        let resaves = self.resaves(&resaves);
        // Items caught between a POST and its answer go first, one at a time and oldest
        // first: their runs are found (replayed, or reconciled from the listing) before any
        // new run can blur the history. They were counted in flight above: they pass the
        // cost guard without waiting on it.
        let mut caught = caught;
        caught.sort_by(|a, b| {
            let at = |r: &ItemRow| (r.sent_at.unwrap_or(0.0), r.pos);
            at(a)
                .partial_cmp(&at(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut settled = Vec::new();
        for mut r in caught {
            if let Some(run_id) = self.resend(&r).await? {
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
        // Items are driven a bounded number at a time (a plan of 100,000 rows is not 100,000
        // futures at once; the first POST leaves as soon as the first item is resolved).
        // Runs in flight are watched together meanwhile.
        // The rest, read from the journal a page at a time, in plan order.
        let mut states = vec![ItemState::Planned, ItemState::Uploading, ItemState::Created];
        if self.options.download.is_some() {
            states.push(ItemState::Completed);
        }
        // A journal that cannot be read on ends the stream and then the batch, with its error.
        let unreadable: Mutex<Option<Error>> = Mutex::new(None);
        let unreadable = &unreadable;
        let rest = futures_util::stream::unfold(Some(-1i64), move |after| {
            let states = states.clone();
            async move {
                let after = after?;
                let page = match self.journal().page_in(&states, after, PAGE) {
                    Ok(page) => page,
                    Err(e) => {
                        *unreadable.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return None;
                    }
                };
                let next = page.last().map(|r| r.pos);
                Some((futures_util::stream::iter(page), next))
            }
        });
        use futures_util::StreamExt;
        let settled_positions: std::collections::HashSet<i64> =
            settled.iter().map(|r| r.pos).collect();
        let drives = futures_util::stream::iter(settled)
            .chain(
                rest.flatten()
                    .filter(move |r| std::future::ready(!settled_positions.contains(&r.pos))),
            )
            .map(|r| self.drive(r));
        let done = CancellationToken::new();
        let driving = async {
            // Only journal errors are kept (an item's own error leaves it where it was).
            let errors: Vec<Error> = drives
                .buffer_unordered(DRIVEN_AT_ONCE)
                .filter_map(|r| std::future::ready(r.err()))
                .filter(|e| std::future::ready(matches!(e, Error::Journal { .. })))
                .collect()
                .await;
            done.cancel();
            errors
        };
        let (errors, resaved, ()) = futures_util::future::join3(
            driving,
            futures_util::future::join_all(resaves),
            self.watch(&done),
        )
        .await;
        // Nothing of this batch is being saved now, and no other process of it runs (the
        // lock): its staging folders anywhere it saved are leftovers of a killed save.
        self.sweep_staging()?;
        let unread = unreadable.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(e) = errors.into_iter().next().or(unread) {
            return Err(e);
        }
        for r in resaved {
            // An item's error leaves it where it was (a resume continues it); journal errors
            // are the batch's.
            if let Err(e @ Error::Journal { .. }) = r {
                return Err(e);
            }
        }
        self.summary()
    }

    /// Removes the batch's staging folders wherever it ever saved: only when no save of it
    /// runs (at the start and the end of [`run`](Self::run); the lock keeps other processes
    /// of this batch out), so all of them are what a killed save left.
    fn sweep_staging(&self) -> Result<(), Error> {
        let dirs = self.journal().staging_dirs()?;
        for dir in dirs {
            crate::download::sweep_tagged(&dir, &self.meta.batch_id);
        }
        Ok(())
    }

    /// Saved items whose files are gone since (downloaded again) or changed (kept and
    /// reported, unless `overwrite`): intact ones are not downloaded again.
    fn resaves(&self, saved: &[ItemRow]) -> Vec<(ItemRow, Vec<usize>)> {
        let mut resaves = Vec::new();
        if self.options.download.is_none() {
            return resaves;
        }
        for r in saved {
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
        resaves
    }
}
