//! A call's job: started once, spawned so it runs to its end whoever waits, joined by the
//! identical calls that arrive while it runs, and followed by each caller with its own
//! progress notifications; what the ledger counts when it ends; how its results and errors
//! read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use rmcp::RoleServer;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ProgressNotificationParam, Resource,
};
use rmcp::service::RequestContext;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Inner, Server};
use crate::error::Error;
use crate::saving::{self as save, Names};
use crate::wire::Run;

/// A job's end: the result the agent reads, or the error it reads.
pub(super) type Ended = Result<Value, Value>;

/// A call's job, shared by the identical calls that join it.
#[derive(Clone)]
pub(crate) struct Job {
    pub(super) done: Shared<BoxFuture<'static, Ended>>,
    pub(super) progress: watch::Receiver<Progress>,
    /// The technique's slug.
    slug: String,
    /// The call's fingerprint, and the job's idempotency key: what its kept result is
    /// found and claimed by.
    fingerprint: String,
    key: String,
}

impl Job {
    /// Its technique and run, once the run exists.
    pub(super) fn run(&self) -> Option<(String, String)> {
        let id = self.progress.borrow().run_id.clone()?;
        Some((self.slug.clone(), id))
    }
}

/// Where a job stands, for progress notifications and an answer after a timeout.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    pub run_id: Option<String>,
    pub status: String,
    pub percent: Option<f64>,
}

impl Progress {
    /// Where the run stands in one plain line (`run_… running`) of at most 120
    /// characters: server text, flattened here (no line breaks a server could use to talk
    /// to the agent), still to be cleaned of the key.
    pub(super) fn line(&self) -> String {
        let line = format!(
            "{} {}",
            self.run_id.as_deref().unwrap_or("starting"),
            self.status
        );
        crate::safe_text::plain_text(&line, 120)
    }
}

impl Server {
    /// Waits for the job, sending this call's progress notifications; answers with the run
    /// id (the run goes on) when the call's timeout passes or the client cancels.
    pub(super) async fn follow(
        &self,
        job: Job,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let token = context.meta.get_progress_token();
        let mut progress = job.progress.clone();
        let mut updates = true;
        let mut sent = -1.0_f64;
        let timeout = tokio::time::sleep(self.inner.call_timeout);
        tokio::pin!(timeout);
        loop {
            tokio::select! {
                biased;
                ended = job.done.clone() => return self.ended(&job, ended),
                changed = progress.changed(), if updates => {
                    if changed.is_err() {
                        updates = false;
                        continue;
                    }
                    let now = progress.borrow_and_update().clone();
                    let percent = now.percent.unwrap_or(0.0).clamp(0.0, 100.0);
                    if let Some(token) = &token && percent > sent {
                        sent = percent;
                        let message = self.inner.out.clean(&now.line());
                        let note = ProgressNotificationParam::new(token.clone(), percent)
                            .with_total(100.0)
                            .with_message(message);
                        // A client that went away only stops the notifications.
                        let _ = context.peer.notify_progress(note).await;
                    }
                }
                () = &mut timeout => {
                    let now = progress.borrow().clone();
                    return self.still_running(&now, "the call's timeout (--call-timeout) passed");
                }
                () = context.ct.cancelled() => {
                    let now = progress.borrow().clone();
                    return self.still_running(&now, "the client cancelled the call");
                }
            }
        }
    }

    fn still_running(&self, now: &Progress, why: &str) -> CallToolResult {
        let value = match &now.run_id {
            Some(id) => json!({
                "status": "running",
                "run_id": id,
                "message": format!(
                    "{why}; the run goes on and floret saves its outputs: call this tool again \
                     with the same arguments to get its result (no second run), or get_run \
                     with run_id {id}"
                ),
            }),
            None => json!({
                "status": "starting",
                "message": format!("{why} before the run was started; it still starts once"),
            }),
        };
        CallToolResult::success(vec![ContentBlock::text(self.clean_json(&value))])
    }

    /// What an ended job answers to a caller that was still following it; the caller has
    /// it, so it is no longer kept for the next identical call.
    pub(super) fn ended(&self, job: &Job, ended: Ended) -> CallToolResult {
        self.inner.claim(job);
        match ended {
            Ok(result) => self.success(&result),
            Err(error) => self.error(error),
        }
    }

    pub(super) fn success(&self, result: &Value) -> CallToolResult {
        if result.get("not_saved").is_some() {
            // Paid, but the files are not where the agent will look: an error it reads.
            return self.error(result.clone());
        }
        let mut content = vec![ContentBlock::text(self.clean_json(result))];
        for o in result["outputs"].as_array().into_iter().flatten() {
            if let Some(path) = o["path"].as_str()
                && let Ok(uri) = url::Url::from_file_path(path)
            {
                let name = o["slot"].as_str().unwrap_or("output").to_owned();
                content.push(ContentBlock::resource_link(Resource::new(
                    uri.to_string(),
                    self.inner.out.clean(&name),
                )));
            }
        }
        CallToolResult::success(content)
    }
}

/// The identity of a call: its tool and its arguments (keys sorted by the JSON map).
pub(super) fn fingerprint(tool: &str, args: &Map<String, Value>) -> String {
    let text = serde_json::to_string(args).unwrap_or_default();
    hex::encode(Sha256::digest(format!("{tool}\n{text}").as_bytes()))
}

impl Server {
    /// One call's answer, by its fingerprint: the result an identical call left unclaimed,
    /// else the identical job in flight joined, else a new job started once `listed` (the
    /// call's listed cost) is reserved under the session's limit; then followed.
    pub(super) async fn join_or_start<F, Fut>(
        &self,
        what: &str,
        fingerprint: String,
        listed: Option<f64>,
        work: F,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse
    where
        F: FnOnce(Arc<Inner>, String, watch::Sender<Progress>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Ended> + Send + 'static,
    {
        let job = {
            // Under the in-flight lock: a job ends (keeps its result, leaves the calls in
            // flight) under it too, so a call sees one or the other, never neither.
            let mut flying = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(result) = self.inner.take_unclaimed(&fingerprint) {
                return self.success(&result).into();
            }
            match flying.get(&fingerprint) {
                Some(job) => job.clone(),
                None => {
                    if let Err(why) = self.reserve_cost(what, listed) {
                        return self.error(why).into();
                    }
                    let job = start_job(
                        self.inner.clone(),
                        what.to_owned(),
                        fingerprint.clone(),
                        work,
                    );
                    flying.insert(fingerprint, job.clone());
                    job
                }
            }
        };
        self.answer(job, context).await
    }
}

/// Starts a job: spawned, so it runs to its end whoever waits; taken out of the calls in
/// flight when it ends (a later identical call is a new run, on purpose). Its result is kept
/// until a caller following it receives it: if none does (every one timed out, was cancelled
/// or went away), the next identical call gets it instead of paying again. `work` gets the
/// job's idempotency key, one per job and stable across the client's own retries.
fn start_job<F, Fut>(inner: Arc<Inner>, label: String, fingerprint: String, work: F) -> Job
where
    F: FnOnce(Arc<Inner>, String, watch::Sender<Progress>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Ended> + Send + 'static,
{
    let (tx, rx) = watch::channel(Progress {
        status: "starting".into(),
        ..Progress::default()
    });
    // The key of an earlier identical call whose run may exist, else a new one.
    let reused = inner
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&fingerprint)
        .cloned();
    let key = reused.unwrap_or_else(|| {
        let seq = inner.seq.fetch_add(1, Ordering::SeqCst) + 1;
        format!("floret-mcp-{}-{seq}", inner.session_id)
    });
    let task = tokio::spawn({
        let inner = inner.clone();
        let (fingerprint, key) = (fingerprint.clone(), key.clone());
        async move {
            let ended = work(inner.clone(), key.clone(), tx).await;
            {
                let mut keys = inner
                    .keys
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match &ended {
                    Err(e) if e["may_exist"] == json!(true) => {
                        keys.insert(fingerprint.clone(), key.clone());
                    }
                    _ => {
                        keys.remove(&fingerprint);
                    }
                }
            }
            let mut flying = inner
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Ok(result) = &ended {
                inner.lock_unclaimed().insert(
                    fingerprint.clone(),
                    Unclaimed {
                        key,
                        result: result.clone(),
                        at: Instant::now(),
                    },
                );
            }
            flying.remove(&fingerprint);
            drop(flying);
            ended
        }
    });
    let done = async move {
        task.await
            .unwrap_or_else(|e| Err(json!({"error": format!("the call's task ended: {e}")})))
    }
    .boxed()
    .shared();
    Job {
        done,
        progress: rx,
        slug: label,
        fingerprint,
        key,
    }
}

/// How long a result no caller received is kept for the identical call that comes back
/// for it: agents come back within minutes; a call an hour later means a new run.
const UNCLAIMED_FOR: Duration = Duration::from_secs(3600);

/// A job's result no caller has received yet.
pub(super) struct Unclaimed {
    /// The job's idempotency key: only that job's followers claim it.
    key: String,
    result: Value,
    at: Instant,
}

impl Inner {
    fn lock_unclaimed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Unclaimed>> {
        self.unclaimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The result of an identical call no caller received, once, if it is recent.
    fn take_unclaimed(&self, fingerprint: &str) -> Option<Value> {
        let mut kept = self.lock_unclaimed();
        kept.retain(|_, u| u.at.elapsed() < UNCLAIMED_FOR);
        kept.remove(fingerprint).map(|u| u.result)
    }

    /// A caller received `job`'s result: it is no longer kept (a later identical call is
    /// a new run, on purpose).
    fn claim(&self, job: &Job) {
        let mut kept = self.lock_unclaimed();
        if kept.get(&job.fingerprint).is_some_and(|u| u.key == job.key) {
            kept.remove(&job.fingerprint);
        }
    }

    /// A job's reservation of `cost` given back, and what it was charged counted: a run
    /// whose charge was not reported stays counted at its listed cost.
    pub(super) fn release(&self, cost: f64, charged: Option<f64>, ran: bool) {
        let mut l = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        l.reserved = (l.reserved - cost).max(0.0);
        match charged {
            // A charge a server reports below 0 (or not a number) is not believed.
            Some(c) if c.is_finite() && c >= 0.0 => l.charged += c,
            Some(_) => {
                l.charged += cost;
                l.unknown += 1;
            }
            None if ran => {
                l.charged += cost;
                l.unknown += 1;
            }
            None => {}
        }
    }
}

/// Saves a run's outputs under `--download` (one file per output and run, so a later run
/// never meets an earlier one's file), adding each one's path to `result["outputs"]`.
pub(super) async fn save_outputs(
    inner: &Inner,
    run_id: &str,
    outputs: &[crate::wire::RunOutput],
    result: &mut Value,
) {
    let dir = inner
        .download
        .join("{run_id}-{slot}.{ext}")
        .display()
        .to_string();
    let names = Names { run_id, key: "" };
    let saved = save::save_all(
        &inner.client,
        names,
        outputs,
        &dir,
        &save::SaveOptions::default(),
        None,
    )
    .await;
    match saved {
        Ok(saved) => {
            if let Some(listed) = result["outputs"].as_array_mut() {
                for s in saved {
                    if let Some(o) = listed.get_mut(s.index) {
                        o["path"] = json!(s.path.display().to_string());
                        o["bytes"] = json!(s.bytes);
                    }
                }
            }
            inner
                .saved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(run_id.to_owned(), result["outputs"].clone());
        }
        Err(e) => {
            result["not_saved"] = json!(format!(
                "the run completed but its outputs could not be saved: {e}"
            ));
        }
    }
}

/// A run as the agent reads it.
pub(super) fn run_json(run: &Run) -> Value {
    json!({
        "run_id": run.run_id,
        "status": run.status.as_str(),
        "progress": run.progress,
        "charged_cost": run.charged_cost,
        "error_code": run.error_code.as_ref().map(|c| c.as_str().to_owned()),
        "error_message": run.error_message,
        "outputs": run.outputs.iter().map(|o| json!({
            "slot": o.output_id,
            "url": o.url,
        })).collect::<Vec<_>>(),
    })
}

/// Whether a run may exist after this error (its answer was lost): counted as spent, and
/// the identical call reuses its key.
pub(super) fn may_exist(e: &Error) -> bool {
    matches!(e, Error::RunMayExist { .. })
        || (matches!(e, Error::Idempotency { .. }) && e.status() == Some(409))
}

/// An error as the agent reads it: FLORA's message and what kind of failure it is.
pub(super) fn error_json(e: &Error, run_id: Option<&str>) -> Value {
    if may_exist(e) {
        return json!({
            "error": format!(
                "the run's answer was lost, so it may exist: call this tool again with the same \
                 arguments; floret then reuses its idempotency key, and FLORA gives back that \
                 run instead of starting another ({})",
                super::super::report::floret_terms(&e.to_string())
            ),
            "retry_class": "retry_now",
            "may_exist": true,
            "run_id": run_id,
        });
    }
    let class = e.retry_class().map_or_else(
        || {
            if e.is_retryable() {
                "retry_later"
            } else {
                "not_retryable"
            }
        },
        |c| c.as_str(),
    );
    json!({
        "error": super::super::report::floret_terms(&e.to_string()),
        "retry_class": class,
        "run_id": run_id,
    })
}
