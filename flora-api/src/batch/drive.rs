//! One item, driven through its states: inputs resolved (each distinct file uploaded once
//! per batch), the intent journaled with its exact body while the item holds its place to
//! send, the POST, the run found again after a lost answer, polled to its end, saved.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::cost::{Decision, Reserved};
use super::journal::{ItemRow, ItemState};
use super::keys;
use super::options::{Event, StopReason};
use super::outputs;
use super::runner::Batch;
use super::target::Payload;
use super::window::Slot;
use crate::error::Error;
use crate::values::{self};
use crate::wire::{Run, RunStatus};

pub(super) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What became of one POST.
enum Sent {
    /// The item's run exists.
    Run(String),
    /// The item ended otherwise, or waits for a resume (refused, stopped, needs review).
    Nothing,
}

impl Batch {
    pub(crate) async fn drive(&self, mut row: ItemRow) -> Result<(), Error> {
        loop {
            match row.state {
                ItemState::Planned | ItemState::Uploading => {
                    if self.stopped() {
                        return Ok(());
                    }
                    let Some(payload) = self.payload(&row).await? else {
                        return Ok(());
                    };
                    match self.submit(&row, payload).await? {
                        Sent::Run(run_id) => {
                            row.run_id = Some(run_id);
                            row.state = ItemState::Created;
                        }
                        Sent::Nothing => return Ok(()),
                    }
                }
                // Only caught items are `submitting` here, and `run` resends those first.
                ItemState::Submitting => match self.resend(&row).await? {
                    Some(run_id) => {
                        row.run_id = Some(run_id);
                        row.state = ItemState::Created;
                    }
                    None => return Ok(()),
                },
                ItemState::Created => {
                    let Some(run) = self.poll_to_end(&row).await? else {
                        // Polling gave up (a resume continues it): still counted as charged.
                        self.costs.lost();
                        return Ok(());
                    };
                    if !self.ended(&mut row, &run)? {
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

    /// Journals the run's end; whether the item goes on (to saving).
    fn ended(&self, row: &mut ItemRow, run: &Run) -> Result<bool, Error> {
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
            return Ok(true);
        }
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
        let class = crate::RetryClass::of(run.error_code.as_ref(), run.error_message.as_deref());
        self.journal().finished(
            row.pos,
            ItemState::Failed,
            run.charged_cost,
            Some(&outputs),
            Some((&why, Some(class))),
        )?;
        self.costs.ended(run.charged_cost, false);
        self.emit(Event::Failed {
            key: row.key.clone(),
            error: why,
        });
        Ok(false)
    }

    /// A caught item (`submitting`, its POST may have left): the same key and the exact body
    /// journaled with it, sent again; it passes the cost guard (it was counted in flight).
    pub(crate) async fn resend(&self, row: &ItemRow) -> Result<Option<String>, Error> {
        let (Some(key), Some(body)) = (row.idem.clone(), row.body.clone()) else {
            // A journal of an earlier floret kept no body: the inputs are resolved again
            // (uploads come from the journal, so the body is the one sent before).
            let Some(payload) = self.payload(row).await? else {
                return Ok(None);
            };
            let key = row
                .idem
                .clone()
                .unwrap_or_else(|| self.run_key(row, &payload.body()));
            return Ok(self.created(row, self.post(row, payload, &key, None).await?));
        };
        let payload = self.journaled(row, &body)?;
        Ok(self.created(row, self.post(row, payload, &key, None).await?))
    }

    /// `Some(run id)` after a run became known, with its event.
    fn created(&self, row: &ItemRow, sent: Sent) -> Option<String> {
        match sent {
            Sent::Run(run_id) => {
                self.emit(Event::Created {
                    key: row.key.clone(),
                    run_id: run_id.clone(),
                });
                Some(run_id)
            }
            Sent::Nothing => None,
        }
    }

    fn run_key(&self, row: &ItemRow, body: &str) -> String {
        keys::run_key(
            &self.meta.batch_id,
            &row.key,
            row.attempt,
            self.meta.target_id(),
            body,
        )
    }

    /// A new run for a planned item: a place in the window first, then the cost guard, then
    /// the intent (key and exact body) journaled, then the POST, all while the place is
    /// held, so nothing waits between its intent and its request, and a stop seen with the
    /// place in hand sends nothing.
    async fn submit(&self, row: &ItemRow, payload: Payload) -> Result<Sent, Error> {
        let Ok(_unresolved) = self.unresolved.acquire().await else {
            return Ok(Sent::Nothing);
        };
        let body = payload.body();
        let key = self.run_key(row, &body);
        loop {
            let mut price = self.costs.subscribe();
            let slot = tokio::select! {
                () = self.abort.cancelled() => return Ok(Sent::Nothing),
                slot = self.window.acquire() => slot,
            };
            if self.stopped() {
                return Ok(Sent::Nothing);
            }
            let reserved = match self.costs.try_reserve(false) {
                Some(Decision::Go(reserved)) => reserved,
                Some(Decision::Over {
                    charged,
                    per_run,
                    flying,
                }) => {
                    drop(slot);
                    self.halt(StopReason::MaxCost {
                        limit: self.options.max_cost.unwrap_or(0.0),
                        charged,
                        per_run,
                        in_flight: flying,
                    });
                    return Ok(Sent::Nothing);
                }
                None => {
                    // The price is being learnt: the place goes back while waiting.
                    drop(slot);
                    tokio::select! {
                        () = self.abort.cancelled() => return Ok(Sent::Nothing),
                        _ = price.changed() => {}
                    }
                    continue;
                }
            };
            self.journal().submitting(row.pos, &key, &body, now())?;
            let sent = self
                .post_with(row, &payload, &key, Some(reserved), slot)
                .await?;
            return Ok(match self.created(row, sent) {
                Some(run_id) => Sent::Run(run_id),
                None => Sent::Nothing,
            });
        }
    }

    /// The POST of a journaled intent, retried (same key, same body) while its failures are
    /// worth another attempt. `reserved`: the cost guard's place, for a new run.
    async fn post(
        &self,
        row: &ItemRow,
        payload: Payload,
        key: &str,
        reserved: Option<Reserved<'_>>,
    ) -> Result<Sent, Error> {
        let slot = tokio::select! {
            () = self.abort.cancelled() => return Ok(Sent::Nothing),
            slot = self.window.acquire() => slot,
        };
        self.post_with(row, &payload, key, reserved, slot).await
    }

    async fn post_with(
        &self,
        row: &ItemRow,
        payload: &Payload,
        key: &str,
        reserved: Option<Reserved<'_>>,
        first_slot: Slot<'_>,
    ) -> Result<Sent, Error> {
        // Whether an earlier process's POST of this item may have made its run.
        let sent_before = row.sent_at.is_some();
        let mut reserved = reserved;
        let mut slot = Some(first_slot);
        let mut attempt = 0u32;
        loop {
            let held = match slot.take() {
                Some(s) => s,
                None => tokio::select! {
                    () = self.abort.cancelled() => return Ok(Sent::Nothing),
                    s = self.window.acquire() => s,
                },
            };
            if self.stopped() && attempt == 0 && !sent_before {
                // Never sent: back to planned (the same key and body when it is).
                self.journal().unsent(row.pos)?;
                if let Some(r) = reserved.take() {
                    r.no_run();
                }
                return Ok(Sent::Nothing);
            }
            self.journal().sending(row.pos, now())?;
            let alone_before = self.posting.fetch_add(1, Ordering::SeqCst) == 0;
            let seq = self.posts_started.fetch_add(1, Ordering::SeqCst);
            let result = self.create_run(payload, key).await;
            self.posting.fetch_sub(1, Ordering::SeqCst);
            // Alone from start to end: every item sent after it was sent after its run was
            // created (the upper bound of a later reconciliation holds).
            if attempt == 0
                && !sent_before
                && alone_before
                && self.posts_started.load(Ordering::SeqCst) == seq + 1
            {
                self.journal().solo(row.pos)?;
            }
            match result {
                Ok(started) => {
                    let run_id = started.run_id;
                    self.watcher.expect(
                        &run_id,
                        self.not_before(started.ready_at),
                        started.created_at,
                    );
                    // Committed before the window place is given back.
                    let journaled = self.journal().created(row.pos, &run_id, now());
                    if let Err(e) = journaled {
                        self.watcher.forget(&run_id);
                        return Err(e);
                    }
                    if let Some(r) = reserved.take() {
                        r.made_a_run();
                    }
                    held.success();
                    return Ok(Sent::Run(run_id));
                }
                Err(e @ Error::Idempotency { .. }) if e.status() == Some(409) => {
                    drop(held);
                    let found = self.reconcile(row).await?;
                    if let (Some(_), Some(r)) = (&found, reserved.take()) {
                        r.made_a_run();
                    }
                    return Ok(found.map_or(Sent::Nothing, Sent::Run));
                }
                Err(e) => {
                    // A lost answer: the run may exist, and the same key replays it.
                    let e = match e {
                        Error::RunMayExist { cause, .. } => *cause,
                        e => e,
                    };
                    let refused_outright = attempt == 0 && !sent_before;
                    let give_back = |reserved: &mut Option<Reserved<'_>>| {
                        if refused_outright && let Some(r) = reserved.take() {
                            r.no_run();
                        }
                    };
                    match e.status() {
                        Some(401..=403) => {
                            drop(held);
                            give_back(&mut reserved);
                            if refused_outright {
                                // Refused, no run: back to planned for the resume.
                                self.journal().unsent(row.pos)?;
                            }
                            self.halt(if e.status() == Some(402) {
                                StopReason::InsufficientCredits(e.to_string())
                            } else {
                                StopReason::Unauthorized(e.to_string())
                            });
                            return Ok(Sent::Nothing);
                        }
                        Some(400 | 404 | 422) => {
                            drop(held);
                            give_back(&mut reserved);
                            self.refuse(row, e.to_string())?;
                            return Ok(Sent::Nothing);
                        }
                        _ => {}
                    }
                    attempt += 1;
                    if !self.pause(held, &e, attempt).await {
                        // Left in `submitting`: a resume sends the same key and body again.
                        self.emit(Event::Deferred {
                            key: row.key.clone(),
                            why: format!("its run could not be started now: {e}"),
                        });
                        return Ok(Sent::Nothing);
                    }
                }
            }
        }
    }

    /// Ends an item as failed before it had a run (a value refused, the request refused).
    pub(crate) fn refuse(&self, row: &ItemRow, why: String) -> Result<(), Error> {
        self.journal()
            .finished(row.pos, ItemState::Failed, None, None, Some((&why, None)))?;
        self.emit(Event::Failed {
            key: row.key.clone(),
            error: why,
        });
        Ok(())
    }
}
