//! The dynamic API: every endpoint, usable without generated code.

use std::collections::BTreeMap;

use futures_util::Stream;
use reqwest::Method;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::client::{Body, Call, Client};
use crate::error::Error;
use crate::futures::{RunFuture, StartFuture};
use crate::pages::{ListRequest, Page};
use crate::poll::{Resend, RunHandle, RunState, Submission};
use crate::reconcile::{LostCreate, unix_now};
use crate::technique::{RunInput, Technique, Untyped};
use crate::wire::{CreatedRun, Run, RunStatus, TechniqueSchema, Workspace};

/// Filters for listing techniques.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTechniques {
    /// Page size, 1–100.
    pub limit: Option<u32>,
    /// Start from this cursor.
    pub cursor: Option<String>,
    /// Search text.
    pub query: Option<String>,
    /// Workspace (`ws_…`); defaults to the client's.
    pub workspace_id: Option<String>,
}

/// Filters for listing run history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRuns {
    /// Page size.
    pub limit: Option<u32>,
    /// Start from this cursor.
    pub cursor: Option<String>,
    /// Only runs of this project.
    pub project_id: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this technique.
    pub technique_id: Option<String>,
    /// Workspace (`ws_…`); defaults to the client's.
    pub workspace_id: Option<String>,
}

/// Options for starting a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// Idempotency key. When `None`, a fresh UUID v4 is made once for this start and
    /// reused on every retry. Derive it from your work item to make resubmits safe too.
    pub idempotency_key: Option<String>,
    /// HTTPS URL FLORA calls when the run ends (nested route only); verify it with
    /// [`webhooks::verify`](crate::webhooks::verify).
    pub callback_url: Option<String>,
}

impl StartOptions {
    /// Options with this idempotency key.
    pub fn idempotency_key(key: impl Into<String>) -> Self {
        StartOptions {
            idempotency_key: Some(key.into()),
            ..Self::default()
        }
    }

    /// Options with a fresh key made now, to keep before awaiting a start you might cancel
    /// (a `tokio::time::timeout` around `run`, a `select!`): the run goes on, and starting
    /// again with the kept key gives it back instead of paying for a second one.
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client, t: flora_api::techniques::CctvCam) -> Result<(), flora_api::Error> {
    /// use std::time::Duration;
    /// use flora_api::StartOptions;
    /// let options = StartOptions::with_new_key();
    /// let key = options.idempotency_key.clone().unwrap_or_default(); // store it first
    /// match tokio::time::timeout(Duration::from_secs(60), client.run_with(&t, options)).await {
    ///     Ok(done) => println!("{:?}", done?.outputs),
    ///     // Later: the same run, not a new one.
    ///     Err(_) => println!("resume with {:?}", client.start_with(&t, StartOptions::idempotency_key(key)).await?.run_id()),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_new_key() -> Self {
        Self::idempotency_key(uuid::Uuid::new_v4().to_string())
    }
}

/// An id that becomes one path segment. `.` and `..` are refused: URL normalisation would
/// drop them and send the request to another endpoint (`technique("..")` would list).
pub(crate) fn check_path_id(what: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "{what} {id:?} must be non-empty and contain no whitespace or control characters"
        )));
    }
    if id == "." || id == ".." {
        return Err(Error::InvalidInput(format!(
            "{what} {id:?} is not an id (a path segment `.` or `..` would change the endpoint)"
        )));
    }
    Ok(())
}

fn check_prefix(what: &str, id: &str, prefix: &str) -> Result<(), Error> {
    if !id.starts_with(prefix) || id.len() == prefix.len() {
        return Err(Error::InvalidInput(format!(
            "{what} {id:?} must start with `{prefix}` (e.g. `{prefix}abc123`)"
        )));
    }
    check_path_id(what, id)
}

/// The caller's idempotency key, checked to be sendable as a header, or a fresh UUID v4.
pub(crate) fn idempotency_key(given: Option<&str>) -> Result<String, Error> {
    match given {
        Some(k) if k.trim().is_empty() => Err(Error::InvalidInput(
            "idempotency_key is empty; pass None to have one generated".to_owned(),
        )),
        Some(k) if reqwest::header::HeaderValue::from_str(k).is_err() || k.trim() != k => {
            Err(Error::InvalidInput(format!(
                "idempotency_key {k:?} cannot be sent as an HTTP header: use visible ASCII \
                 without control characters or surrounding whitespace (e.g. a UUID or \
                 `order-42`)"
            )))
        }
        Some(k) => Ok(k.to_owned()),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn push_opt(query: &mut Vec<(&'static str, String)>, key: &'static str, v: Option<String>) {
    if let Some(v) = v {
        query.push((key, v));
    }
}

/// # Schemas and runs, without generated code
///
/// The dynamic API: list and retrieve technique schemas, start a run from [`RunInput`]s,
/// poll and list runs. Typed techniques use the same calls underneath.
impl Client {
    fn default_workspace(&self, ws: Option<String>) -> Option<String> {
        ws.or_else(|| self.inner.workspace_id.clone())
    }

    fn techniques_request(&self, q: &ListTechniques) -> ListRequest {
        let mut query = Vec::new();
        push_opt(&mut query, "limit", q.limit.map(|l| l.to_string()));
        push_opt(&mut query, "query", q.query.clone());
        push_opt(
            &mut query,
            "workspace_id",
            self.default_workspace(q.workspace_id.clone()),
        );
        ListRequest {
            segments: vec!["techniques"],
            query,
            items_key: "techniques",
        }
    }

    /// One page of `GET /techniques`.
    pub async fn list_techniques(
        &self,
        q: &ListTechniques,
    ) -> Result<Page<TechniqueSchema>, Error> {
        self.page(&self.techniques_request(q), q.cursor.as_deref())
            .await
    }

    /// Every technique visible to the key, across all pages.
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// use futures_util::TryStreamExt;
    /// let all: Vec<_> = client.techniques(Default::default()).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn techniques(
        &self,
        q: ListTechniques,
    ) -> impl Stream<Item = Result<TechniqueSchema, Error>> + Send + 'static {
        self.paginate(self.techniques_request(&q), q.cursor)
    }

    /// `GET /techniques/{slug_or_id}`.
    pub async fn technique(&self, slug_or_id: &str) -> Result<TechniqueSchema, Error> {
        check_path_id("technique slug or id", slug_or_id)?;
        self.send_json(Call::get(self.url(&["techniques", slug_or_id])?))
            .await
    }

    /// `GET /workspaces`.
    pub async fn workspaces(&self) -> Result<Vec<Workspace>, Error> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            workspaces: Vec<Workspace>,
        }
        let list: List = self
            .send_json(Call::get(self.url(&["workspaces"])?))
            .await?;
        Ok(list.workspaces)
    }

    fn runs_request(&self, q: &ListRuns) -> ListRequest {
        let mut query = Vec::new();
        push_opt(&mut query, "limit", q.limit.map(|l| l.to_string()));
        push_opt(&mut query, "project_id", q.project_id.clone());
        push_opt(
            &mut query,
            "status",
            q.status.as_ref().map(|s| s.as_str().to_owned()),
        );
        push_opt(&mut query, "technique_id", q.technique_id.clone());
        push_opt(
            &mut query,
            "workspace_id",
            self.default_workspace(q.workspace_id.clone()),
        );
        ListRequest {
            segments: vec!["technique-runs"],
            query,
            items_key: "technique_runs",
        }
    }

    /// One page of run history (`GET /technique-runs`), newest first.
    pub async fn list_runs(&self, q: &ListRuns) -> Result<Page<Run>, Error> {
        self.page(&self.runs_request(q), q.cursor.as_deref()).await
    }

    /// All run history, across pages. Items keep `workspace_id`, `project_id` and
    /// `technique` in [`Run::extra`].
    pub fn runs(&self, q: ListRuns) -> impl Stream<Item = Result<Run, Error>> + Send + 'static {
        self.paginate(self.runs_request(&q), q.cursor)
    }

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
        })
        .await
        .map(|(_, state)| state)
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
                let mut call = Call::new(Method::POST, self.url(&["techniques", slug, "runs"])?)
                    .body(Body::Json(body))
                    .idempotency_key(key.clone());
                let run: Run = match self.send_call_json(&mut call).await {
                    Ok(run) => run,
                    Err(e) => {
                        let lost = LostCreate {
                            key: &key,
                            technique: slug,
                            first_sent,
                        };
                        self.recover_create(&call, e, lost).await?
                    }
                };
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
                let mut call = Call::new(Method::POST, self.url(&["runs", "technique"])?)
                    .body(Body::Json(body))
                    .idempotency_key(key.clone());
                let created: CreatedRun = match self.send_call_json(&mut call).await {
                    Ok(created) => created,
                    Err(e) => {
                        let lost = LostCreate {
                            key: &key,
                            technique: technique_id,
                            first_sent,
                        };
                        CreatedRun::from(self.recover_create(&call, e, lost).await?)
                    }
                };
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

/// # Schemas and runs, without generated code (continued)
impl Client {
    /// Polls a run once on `GET /techniques/{slug_or_id}/runs/{run_id}`.
    pub async fn get_run(&self, slug_or_id: &str, run_id: &str) -> Result<Run, Error> {
        check_path_id("technique slug or id", slug_or_id)?;
        check_prefix("run id", run_id, "run_")?;
        RunHandle::<Untyped>::attach(self, slug_or_id, run_id)
            .poll()
            .await
    }

    /// Polls a run once on `GET /runs/{run_id}`.
    pub async fn get_run_by_id(&self, run_id: &str) -> Result<Run, Error> {
        check_prefix("run id", run_id, "run_")?;
        RunState::top_level(self.clone(), run_id.to_owned(), None, None, None)
            .poll()
            .await
    }

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
            })
            .await?;
        let created = created.ok_or_else(|| {
            Error::Config("the top-level route returned no created run".to_owned())
        })?;
        Ok((created, state.typed()))
    }
}
