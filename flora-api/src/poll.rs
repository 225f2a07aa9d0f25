//! Waiting for a run: the poll schedule, the deadline and the run handle.

use std::future::Future;
use std::marker::PhantomData;

use futures_util::FutureExt;

use tokio::time::Instant;
use url::Url;

use crate::client::{Call, Client};
use crate::durations::from_secs_saturating;
use crate::error::Error;
use crate::technique::{Technique, TechniqueRun};
use crate::waiter::{Gave, Waiter};
use crate::wire::{Run, RunStatus};

/// Which route a run is polled on.
#[derive(Debug, Clone)]
enum Route {
    /// `GET /techniques/{slug}/runs/{run_id}`
    Nested(String),
    /// `GET /runs/{run_id}`
    TopLevel,
}

/// A started run. Poll it once with [`poll`](Self::poll) or until it ends with
/// [`wait`](Self::wait).
///
/// `T` is the generated technique type, or [`Untyped`](crate::Untyped) for dynamic runs.
/// `T` only types the outputs: all the polling is done by one untyped core, compiled once
/// for every technique.
pub struct RunHandle<T> {
    state: RunState,
    _technique: PhantomData<fn() -> T>,
}

/// How a run was created, kept on its handle: its key (for a caller who must resume), and its
/// request (for [`RunHandle::retry`], which sends it again as a new run under a new key).
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    /// The key of the first attempt; attempt `n > 1` sends `{base_key}~retry{n}`.
    pub base_key: String,
    /// 1 for the first run, then one more per retry.
    pub attempt: u32,
    /// What was sent.
    pub request: Resend,
    /// The caller's retry policy for the creation request, if not the client's.
    pub retry: Option<crate::policy::RetryPolicy>,
}

/// The request of a run creation, to send again.
#[derive(Debug, Clone)]
pub(crate) enum Resend {
    /// `POST /techniques/{slug}/runs`.
    Nested {
        slug: String,
        inputs: Vec<crate::technique::RunInput>,
        callback_url: Option<String>,
    },
    /// `POST /runs/technique`.
    TopLevel {
        technique_id: String,
        workspace_id: String,
        inputs: std::collections::BTreeMap<String, String>,
    },
    /// `POST /generate` (feature `models`): the body, checked, and where it lands.
    #[cfg(feature = "models")]
    Generation(crate::model::GenerationRequest),
}

impl Submission {
    /// The idempotency key this attempt is sent under.
    pub(crate) fn key(&self) -> String {
        if self.attempt <= 1 {
            self.base_key.clone()
        } else {
            format!("{}~retry{}", self.base_key, self.attempt)
        }
    }

    /// The next attempt: the same request, a new key.
    pub(crate) fn next(&self) -> Submission {
        Submission {
            attempt: self.attempt.saturating_add(1),
            ..self.clone()
        }
    }
}

/// The untyped state of a started run; every async method lives here.
#[derive(Clone)]
pub(crate) struct RunState {
    pub(crate) client: Client,
    run_id: String,
    route: Route,
    poll_url: Option<Url>,
    last: Option<Run>,
    /// When FLORA's `estimated_seconds` says the run should be done: the first poll of a wait
    /// is not sent before.
    ready_at: Option<Instant>,
    /// How it was created (`None` for a run attached by id).
    pub(crate) submission: Option<std::sync::Arc<Submission>>,
}

/// When a run created now is estimated to be done.
fn ready_at(estimated_seconds: Option<f64>) -> Option<Instant> {
    estimated_seconds.and_then(|s| Instant::now().checked_add(from_secs_saturating(s)))
}

impl<T> std::fmt::Debug for RunHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &self.state.run_id)
            .field("route", &self.state.route)
            .field("poll_url", &self.state.poll_url.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl<T> Clone for RunHandle<T> {
    fn clone(&self) -> Self {
        RunHandle {
            state: self.state.clone(),
            _technique: PhantomData,
        }
    }
}

impl RunState {
    /// A run started on `POST /techniques/{technique}/runs`.
    pub(crate) fn nested(
        client: Client,
        technique: &str,
        run: Run,
        submission: Option<Submission>,
    ) -> Self {
        let poll_url = same_origin(&client, run.poll_url.as_deref());
        RunState {
            client,
            run_id: run.run_id.clone(),
            route: Route::Nested(technique.to_owned()),
            poll_url,
            ready_at: ready_at(run.estimated_seconds()),
            last: Some(run),
            submission: submission.map(std::sync::Arc::new),
        }
    }

    /// A run started on `POST /runs/technique`.
    pub(crate) fn top_level(
        client: Client,
        run_id: String,
        poll_url: Option<&str>,
        estimated_seconds: Option<f64>,
        submission: Option<Submission>,
    ) -> Self {
        let poll_url = same_origin(&client, poll_url);
        RunState {
            client,
            run_id,
            route: Route::TopLevel,
            poll_url,
            last: None,
            ready_at: ready_at(estimated_seconds),
            submission: submission.map(std::sync::Arc::new),
        }
    }

    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The last run state seen.
    pub(crate) fn last_seen(&self) -> Option<&Run> {
        self.last.as_ref()
    }

    pub(crate) fn typed<T>(self) -> RunHandle<T> {
        RunHandle {
            state: self,
            _technique: PhantomData,
        }
    }

    fn poll_url(&self) -> Result<Url, Error> {
        if let Some(u) = &self.poll_url {
            return Ok(u.clone());
        }
        match &self.route {
            Route::Nested(t) => self.client.url(&["techniques", t, "runs", &self.run_id]),
            Route::TopLevel => self.client.url(&["runs", &self.run_id]),
        }
    }

    pub(crate) async fn poll(&mut self) -> Result<Run, Error> {
        let run: Run = self.client.send_json(Call::get(self.poll_url()?)).await?;
        self.last = Some(run.clone());
        Ok(run)
    }

    /// Polls until the run ends or the deadline passes; see [`RunHandle::wait_run`].
    pub(crate) async fn wait_run(
        &mut self,
        mut on_update: Box<dyn FnMut(&Run) + Send + '_>,
    ) -> Result<Run, Error> {
        let policy = self.client.inner.poll.clone();
        if let Some(run) = self.last.clone()
            && has_ended(&run)
        {
            return finish(run);
        }
        // The first poll waits for FLORA's estimate, when it gave one.
        let left = self
            .ready_at
            .map(|at| at.saturating_duration_since(Instant::now()));
        let mut waiter = Waiter::new(policy.delays_after(left), policy.deadline, "poll");
        let mut warned_unknown = false;
        loop {
            let polled = match waiter.pause().await {
                Ok(()) => waiter.check(self.poll()).await,
                Err(gave) => Err(gave),
            };
            let run = match polled {
                Ok(Some(run)) => run,
                Ok(None) => continue,
                Err(Gave::TimedOut { .. }) => return Err(self.timed_out(waiter.started())),
                Err(Gave::Failed(e)) => return Err(e),
            };
            tracing::debug!(run_id = %run.run_id, status = %run.status, progress = ?run.progress, "polled");
            if let RunStatus::Unknown(status) = &run.status
                && !warned_unknown
            {
                warned_unknown = true;
                tracing::warn!(run_id = %run.run_id, status, "unknown run status; polling on");
            }
            on_update(&run);
            if has_ended(&run) {
                return finish(run);
            }
        }
    }

    fn timed_out(&self, start: Instant) -> Error {
        Error::WaitTimeout {
            run_id: self.run_id.clone(),
            last_status: self
                .last
                .as_ref()
                .map(|r| r.status.clone())
                .unwrap_or(RunStatus::Pending),
            waited: start.elapsed(),
        }
    }
}

impl<T> RunHandle<T> {
    /// Re-attaches to a run started earlier (e.g. stored `run_id`), polled on the nested route.
    pub fn attach(client: &Client, technique: &str, run_id: impl Into<String>) -> Self {
        RunState {
            client: client.clone(),
            run_id: run_id.into(),
            route: Route::Nested(technique.to_owned()),
            poll_url: None,
            last: None,
            ready_at: None,
            submission: None,
        }
        .typed()
    }

    /// The `run_…` id.
    pub fn run_id(&self) -> &str {
        &self.state.run_id
    }

    pub(crate) fn state(&self) -> &RunState {
        &self.state
    }

    /// The idempotency key the run was created under (`None` for a run attached by id).
    /// Starting again with this key gives back this run, never a second one.
    pub fn idempotency_key(&self) -> Option<String> {
        self.state.submission.as_ref().map(|s| s.key())
    }

    /// When FLORA's `estimated_seconds` (from the create answer) says the run should be done.
    #[cfg(feature = "batch")]
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        self.state.ready_at
    }

    /// The run's `created_at` as the create answer gave it (FLORA's clock and unit).
    #[cfg(feature = "batch")]
    pub(crate) fn created_at(&self) -> Option<f64> {
        self.state.last.as_ref().and_then(|r| r.created_at)
    }

    /// The technique slug or id polled on, for nested-route runs.
    pub fn technique(&self) -> Option<&str> {
        match &self.state.route {
            Route::Nested(t) => Some(t),
            Route::TopLevel => None,
        }
    }

    /// The URL polls go to: the server's `poll_url` when it is on the base URL's origin,
    /// otherwise the documented route. The API key is never sent to another origin.
    pub fn poll_url(&self) -> Result<Url, Error> {
        self.state.poll_url()
    }

    /// The last run state seen (from creation or the latest poll).
    pub fn last_seen(&self) -> Option<&Run> {
        self.state.last_seen()
    }

    /// One poll request.
    pub fn poll(&mut self) -> impl Future<Output = Result<Run, Error>> + Send + '_ {
        self.state.poll()
    }

    /// Polls until the run is `completed` (returned) or `failed` ([`Error::RunFailed`]),
    /// or the poll policy's deadline passes ([`Error::WaitTimeout`]). Transient poll
    /// failures (5xx, 429, connection errors) are retried until the deadline.
    ///
    /// The deadline bounds the whole wait, poll requests and their retries included. Running
    /// out of time does not cancel the run; the handle stays usable, so `wait` can be called
    /// again. A status this crate does not know is polled through (it may be a new
    /// intermediate state) unless the run reports `completed_at`, which ends the wait with
    /// [`Error::RunEnded`].
    pub fn wait_run(&mut self) -> impl Future<Output = Result<Run, Error>> + Send + '_ {
        self.state.wait_run(Box::new(|_| {}))
    }

    /// Like [`wait_run`](Self::wait_run), calling `on_update` with every run state seen.
    pub fn wait_run_with<'a>(
        &'a mut self,
        on_update: impl FnMut(&Run) + Send + 'a,
    ) -> impl Future<Output = Result<Run, Error>> + Send + 'a {
        self.state.wait_run(Box::new(on_update))
    }
}

impl<T: Technique> RunHandle<T> {
    /// Waits for the run and parses its typed outputs.
    pub fn wait(
        &mut self,
    ) -> impl Future<Output = Result<TechniqueRun<T::Outputs>, Error>> + Send + '_ {
        self.state
            .wait_run(Box::new(|_| {}))
            .map(|r| r.and_then(TechniqueRun::from_run::<T>))
    }

    /// Like [`wait`](Self::wait), calling `on_update` with every run state seen.
    pub fn wait_with<'a>(
        &'a mut self,
        on_update: impl FnMut(&Run) + Send + 'a,
    ) -> impl Future<Output = Result<TechniqueRun<T::Outputs>, Error>> + Send + 'a {
        self.state
            .wait_run(Box::new(on_update))
            .map(|r| r.and_then(TechniqueRun::from_run::<T>))
    }
}

/// `completed`, `failed`, or a status this crate does not know on a run that reports its
/// completion time (e.g. a future `cancelled`).
pub(crate) fn has_ended(run: &Run) -> bool {
    run.status.is_terminal()
        || (matches!(run.status, RunStatus::Unknown(_)) && run.completed_at.is_some())
}

/// A run that has ended, as the result of a wait: the run when completed, else the error.
pub(crate) fn finish(run: Run) -> Result<Run, Error> {
    match run.status {
        RunStatus::Completed => Ok(run),
        RunStatus::Failed => Err(Error::RunFailed {
            run_id: run.run_id,
            code: run.error_code,
            message: run.error_message,
        }),
        status => Err(Error::RunEnded {
            run_id: run.run_id,
            status,
        }),
    }
}

/// `poll_url` if it is on the same scheme, host and port as the base URL.
fn same_origin(client: &Client, poll_url: Option<&str>) -> Option<Url> {
    let url = Url::parse(poll_url?).ok()?;
    if crate::urls::same_origin(&url, client.base_url()) {
        Some(url)
    } else {
        tracing::warn!(
            poll_host = url.host_str().unwrap_or(""),
            "ignoring poll_url on another origin; polling the documented route instead"
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_poll_url_is_ignored() {
        let c = Client::builder()
            .api_key("k")
            .base_url("https://app.flora.ai/api/v1")
            .build()
            .unwrap();
        assert!(same_origin(&c, Some("https://app.flora.ai/api/v1/runs/run_1")).is_some());
        assert!(same_origin(&c, Some("https://evil.example/api/v1/runs/run_1")).is_none());
        assert!(same_origin(&c, Some("http://app.flora.ai/api/v1/runs/run_1")).is_none());
        assert!(same_origin(&c, Some("https://app.flora.ai:444/x")).is_none());
        assert!(same_origin(&c, Some("garbage")).is_none());
    }
}
