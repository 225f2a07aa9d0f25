//! Starting runs: the one `submit` every start goes through (nested and top-level routes,
//! typed and untyped, and a failed run's retry), each under its idempotency key; a lost
//! answer is recovered (`recover.rs`) or reported with its key.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use tracing::Instrument;

use super::{StartOptions, check_path_id, check_prefix, idempotency_key};
use crate::client::{Body, Call, Client};
use crate::error::Error;
use crate::futures::{RunFuture, StartFuture};
use crate::poll::{Resend, RunHandle, RunState, Submission};
use crate::reconcile::unix_now;
use crate::technique::{RunInput, Technique, Untyped};
use crate::wire::{CreatedRun, Run, RunStatus};

use super::recover::{History, LostCreate};

/// # Starting runs without generated code
impl Client {
    /// Starts a run on `POST /techniques/{slug_or_id}/runs` with untyped inputs.
    pub async fn start_run(
        &self,
        slug_or_id: &str,
        inputs: Vec<RunInput>,
        options: StartOptions,
    ) -> Result<RunHandle<Untyped>, Error> {
        Ok(self
            .start_nested(slug_or_id, inputs, options)
            .await?
            .typed())
    }

    /// The one implementation of starting a run; typed calls only wrap its result.
    async fn start_nested(
        &self,
        slug_or_id: &str,
        inputs: Vec<RunInput>,
        options: StartOptions,
    ) -> Result<RunState, Error> {
        check_path_id("technique slug or id", slug_or_id)?;
        let key = idempotency_key(options.idempotency_key.as_deref())?;
        if let Some(cb) = &options.callback_url {
            let ok = url::Url::parse(cb).is_ok_and(|u| u.scheme() == "https");
            if !ok {
                return Err(Error::InvalidInput(format!(
                    "callback_url {cb:?} must be an absolute https:// URL"
                )));
            }
        }
        self.submit(Submission {
            base_key: key,
            attempt: 1,
            request: Resend::Nested {
                slug: slug_or_id.to_owned(),
                inputs,
                callback_url: options.callback_url,
            },
            retry: options.retry,
        })
        .await
        .map(|(_, state)| state)
    }

    /// One creation request under `lost.key`: its answer, or the run a lost answer was found
    /// to be (`found` turns the listed run into the answer's type), or the error that carries
    /// the key.
    async fn create<T: serde::de::DeserializeOwned>(
        &self,
        url: url::Url,
        body: Value,
        retry: Option<crate::policy::RetryPolicy>,
        lost: LostCreate<'_>,
        found: impl FnOnce(Run) -> T,
    ) -> Result<T, Error> {
        let mut call = Call::new(Method::POST, url)
            .body(Body::Json(body))
            .idempotency_key(lost.key.to_owned())
            .retry_policy(retry);
        match self.send_call_json(&mut call).await {
            Ok(answer) => Ok(answer),
            Err(e) => self.recover_create(&call, e, lost).await.map(found),
        }
    }

    /// Sends a run creation; a lost answer is recovered (see `reconcile.rs`) or reported with
    /// its key. Returns the top-level route's created-run answer too.
    pub(crate) async fn submit(
        &self,
        submission: Submission,
    ) -> Result<(Option<CreatedRun>, RunState), Error> {
        let key = submission.key();
        let first_sent = unix_now();
        match &submission.request {
            Resend::Nested {
                slug,
                inputs,
                callback_url,
            } => {
                let mut body = json!({ "inputs": inputs, "mode": "async", "idempotency_key": key });
                if let Some(cb) = callback_url {
                    body["callback_url"] = Value::String(cb.clone());
                }
                let url = self.url(&["techniques", slug, "runs"])?;
                let lost = LostCreate {
                    key: &key,
                    history: History::Technique(slug),
                    first_sent,
                };
                let run: Run = self
                    .create(url, body, submission.retry, lost, |run| run)
                    .await?;
                self.inner.created.add(&run.run_id, unix_now());
                tracing::info!(technique = %slug, run_id = %run.run_id, status = %run.status, "run started");
                let slug = slug.clone();
                Ok((
                    None,
                    RunState::nested(self.clone(), &slug, run, Some(submission)),
                ))
            }
            Resend::TopLevel {
                technique_id,
                workspace_id,
                inputs,
            } => {
                let body = json!({ "technique_id": technique_id, "workspace_id": workspace_id, "inputs": inputs });
                let url = self.url(&["runs", "technique"])?;
                let lost = LostCreate {
                    key: &key,
                    history: History::Technique(technique_id),
                    first_sent,
                };
                let created = self
                    .create(url, body, submission.retry, lost, CreatedRun::from)
                    .await?;
                self.inner.created.add(&created.run_id, unix_now());
                let state = RunState::top_level(
                    self.clone(),
                    created.run_id.clone(),
                    created.poll_url.as_deref(),
                    created.estimated_seconds,
                    Some(submission),
                );
                Ok((Some(created), state))
            }
            #[cfg(feature = "models")]
            Resend::Generation(request) => {
                // The key goes in the header only: FLORA reads it there for `/generate`, and
                // the body refuses fields it does not know.
                let url = self.url(&["generate"])?;
                let lost = LostCreate {
                    key: &key,
                    history: History::Generations {
                        project_id: &request.project_id,
                        model_id: &request.model_id,
                    },
                    first_sent,
                };
                let found = |run| CreatedRun {
                    run_type: Some("generation".to_owned()),
                    ..CreatedRun::from(run)
                };
                let created = self
                    .create(url, request.body(), submission.retry, lost, found)
                    .await?;
                self.inner.created.add(&created.run_id, unix_now());
                tracing::info!(model = %request.model_id, run_id = %created.run_id, "generation started");
                let state = RunState::top_level(
                    self.clone(),
                    created.run_id.clone(),
                    created.poll_url.as_deref(),
                    created.estimated_seconds,
                    Some(submission),
                );
                Ok((Some(created), state))
            }
        }
    }
}

impl<T> RunHandle<T> {
    /// Starts this run's request again as a **new run** under a new idempotency key derived
    /// from the first (`{key}~retry2`, `~retry3`, …), for a run that failed with a
    /// [retryable](Error::is_retryable) code such as `model_timeout`: FLORA answers the old
    /// key with the failed run again, so retrying needs a new key, and a derived one keeps
    /// the retry itself safe to repeat. A new run is a new charge: a run that is not known
    /// to have failed (still running, completed, never polled) is refused.
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client, face: flora_api::ImageUrl) -> Result<(), flora_api::Error> {
    /// use flora_api::techniques::CctvCam;
    /// let mut handle = CctvCam { input_image: face }.start(&client).await?;
    /// let done = match handle.wait().await {
    ///     Err(e) if e.is_retryable() && matches!(e, flora_api::Error::RunFailed { .. }) => {
    ///         handle.retry().await?.wait().await?
    ///     }
    ///     other => other?,
    /// };
    /// # Ok(()) }
    /// ```
    pub fn retry(&self) -> StartFuture<'_, T> {
        StartFuture::new(async move {
            let state = self.state();
            let Some(submission) = &state.submission else {
                return Err(Error::InvalidInput(format!(
                    "run {} was attached by id, so its inputs are not known here: start the \
                     technique again (with a new idempotency key)",
                    self.run_id()
                )));
            };
            let failed = self.last_seen().is_some_and(|run| {
                run.status == RunStatus::Failed
                    || (matches!(run.status, RunStatus::Unknown(_)) && run.completed_at.is_some())
            });
            if !failed {
                let status = self.last_seen().map_or_else(
                    || "not polled yet".to_owned(),
                    |r| format!("`{}`", r.status),
                );
                return Err(Error::InvalidInput(format!(
                    "run {} is {status}: `retry` starts a new (billed) run and is for a run \
                     that failed; wait for this one first",
                    self.run_id()
                )));
            }
            let (_, next) = state.client.submit(submission.next()).await?;
            Ok(next)
        })
    }
}

/// # Typed techniques
///
/// `CctvCam { … }.run(&client)` and `.start(&client)` call these: one typed struct in,
/// typed outputs out, with the run's idempotency key reused on every retry.
impl Client {
    /// Starts a typed technique run and returns its handle without waiting.
    ///
    /// The inputs are taken when this is called; the returned future does not borrow
    /// `technique`.
    pub fn start<'a, T: Technique>(&'a self, technique: &T) -> StartFuture<'a, T> {
        self.start_with(technique, StartOptions::default())
    }

    /// Like [`start`](Self::start), with an idempotency key or callback URL.
    pub fn start_with<'a, T: Technique>(
        &'a self,
        technique: &T,
        options: StartOptions,
    ) -> StartFuture<'a, T> {
        // Generic only in name: the future is the untyped core's, mapped to the typed handle.
        StartFuture::new(self.start_nested(T::SLUG, technique.inputs(), options))
    }

    /// Starts a typed technique run and waits for its typed outputs.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), flora_api::Error> {
    /// # #[cfg(feature = "techniques")] {
    /// use flora_api::{Client, ImageUrl, techniques::CctvCam};
    /// let client = Client::from_env()?;
    /// let input_image = ImageUrl::parse("https://example.com/face.png")?;
    /// let done = client.run(&CctvCam { input_image }).await?;
    /// println!("{} cost {:?} USD", done.outputs.output_image, done.charged_cost);
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn run<'a, T: Technique>(&'a self, technique: &T) -> RunFuture<'a, T> {
        self.run_with(technique, StartOptions::default())
    }

    /// Like [`run`](Self::run), with an idempotency key or callback URL.
    pub fn run_with<'a, T: Technique>(
        &'a self,
        technique: &T,
        options: StartOptions,
    ) -> RunFuture<'a, T> {
        // All HTTP, retries and polling are the untyped core's; only output parsing is typed.
        RunFuture::new(self.run_erased(T::SLUG, technique.inputs(), options))
    }

    /// Start, then wait, in one traced span: the code every typed `run` shares.
    async fn run_erased(
        &self,
        slug: &'static str,
        inputs: Vec<RunInput>,
        options: StartOptions,
    ) -> Result<Run, Error> {
        let span = tracing::info_span!(
            "flora.run",
            technique = slug,
            run_id = tracing::field::Empty,
            status = tracing::field::Empty,
            charged_cost = tracing::field::Empty,
        );
        async {
            let mut state = self.start_nested(slug, inputs, options).await?;
            tracing::Span::current().record("run_id", state.run_id());
            let result = state.wait_run(Box::new(|_| {})).await;
            let span = tracing::Span::current();
            match &result {
                Ok(done) => {
                    span.record("status", "completed");
                    if let Some(c) = done.charged_cost {
                        span.record("charged_cost", c);
                    }
                }
                Err(Error::RunFailed { .. }) => {
                    span.record("status", "failed");
                }
                Err(_) => {}
            }
            tracing::info!("run finished");
            result
        }
        .instrument(span)
        .await
    }
}

/// # Starting runs on the top-level route
impl Client {
    /// Starts a run on `POST /runs/technique` (inputs as an id → value map) and returns
    /// the created run and a handle polling `GET /runs/{run_id}`.
    ///
    /// `workspace_id` defaults to the client's. The idempotency key goes in the header only:
    /// this route's body rejects extra fields. `callback_url` is not supported here.
    pub async fn start_top_level(
        &self,
        technique_id: &str,
        inputs: BTreeMap<String, String>,
        workspace_id: Option<&str>,
        options: StartOptions,
    ) -> Result<(CreatedRun, RunHandle<Untyped>), Error> {
        check_prefix("technique_id", technique_id, "tech_")?;
        let ws = workspace_id
            .map(str::to_owned)
            .or_else(|| self.inner.workspace_id.clone())
            .ok_or_else(|| {
                Error::InvalidInput(
                    "POST /runs/technique needs a workspace_id: pass one or set \
                     `ClientBuilder::workspace_id`"
                        .to_owned(),
                )
            })?;
        check_prefix("workspace_id", &ws, "ws_")?;
        if options.callback_url.is_some() {
            return Err(Error::InvalidInput(
                "callback_url is not accepted by POST /runs/technique; use `start_run`".to_owned(),
            ));
        }
        let key = idempotency_key(options.idempotency_key.as_deref())?;
        let (created, state) = self
            .submit(Submission {
                base_key: key,
                attempt: 1,
                request: Resend::TopLevel {
                    technique_id: technique_id.to_owned(),
                    workspace_id: ws,
                    inputs,
                },
                retry: options.retry,
            })
            .await?;
        let created = created.ok_or_else(|| {
            Error::Config("the top-level route returned no created run".to_owned())
        })?;
        Ok((created, state.typed()))
    }
}
