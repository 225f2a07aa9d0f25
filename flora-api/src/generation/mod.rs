//! Generations (feature `models`): a typed model struct in, a checked `POST /generate` under
//! an `Idempotency-Key` header, polled on `GET /runs/{id}`, typed outputs and the settled
//! charge out.
//!
//! FLORA's generations differ from technique runs in ways that cost money (measured by
//! FLORA's own team, `flora-generations.md` §3), and each is handled here or in the one
//! `submit`:
//! - params are not validated by FLORA: [`checked_params`] runs before any request;
//! - a repeated key answers 409 with no run: a lost answer followed by 409 is found in
//!   `GET /generations` (never sent again under a new key);
//! - a failed run burns its key for 2 h: [`GenerationHandle::retry`] uses a new one;
//! - the create answer's `charged_cost` is a quote, and a terminal run's charge may come
//!   late: [`Charge`] is read from the ended run, again for a while when missing, and says
//!   when it is only a floor.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::client::Client;
use crate::endpoints::{check_prefix, idempotency_key};
use crate::error::Error;
use crate::model::GenerationRequest;
use crate::policy::RetryPolicy;
use crate::poll::{Resend, RunState, Submission};
use crate::technique::OutputValue;
use crate::wire::{CreatedRun, Run, RunOutput};

mod charge;
#[cfg(any(feature = "cli", feature = "batch"))]
pub(crate) mod text;
mod typed;

pub(crate) use typed::checked_request;
pub use typed::{Model, checked_params, debug_model};

pub use charge::Charge;
use charge::wait_settled;

/// How long a completed generation's missing charge is read again before it is reported as
/// a floor (FLORA's list has reported a terminal run's charge late).
pub const DEFAULT_SETTLE_FOR: Duration = Duration::from_secs(60);

/// Options for starting a generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Idempotency key, sent as the `Idempotency-Key` header. When `None`, a fresh UUID v4
    /// is made once for this start and reused on every retry of the request.
    pub idempotency_key: Option<String>,
    /// The project the generation lands in (`prj_…`); defaults to the client's
    /// ([`ClientBuilder::project_id`](crate::ClientBuilder::project_id), `FLORA_PROJECT_ID`).
    pub project_id: Option<String>,
    /// How the creation request is retried, if not as the client's.
    pub retry: Option<RetryPolicy>,
    /// How long a missing charge is read again once the run completed
    /// ([`DEFAULT_SETTLE_FOR`] when `None`; `Duration::ZERO` reads it once).
    pub settle_for: Option<Duration>,
}

impl GenerateOptions {
    /// Options with this idempotency key.
    pub fn idempotency_key(key: impl Into<String>) -> Self {
        GenerateOptions {
            idempotency_key: Some(key.into()),
            ..Self::default()
        }
    }

    /// These options with this project.
    pub fn project(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }
}

/// A completed generation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Generation<O> {
    /// `run_…` id.
    pub run_id: String,
    /// Its outputs, typed by the model's type, in the order sent.
    pub outputs: Vec<O>,
    /// What it cost.
    pub charge: Charge,
    /// The final run object, with its `outputs` moved into [`outputs`](Self::outputs).
    pub run: Run,
}

fn parse_outputs<O: OutputValue>(run_id: &str, outputs: Vec<RunOutput>) -> Result<Vec<O>, Error> {
    outputs
        .into_iter()
        .map(|o| {
            let id = o.output_id.clone();
            O::from_output(o).map_err(|problem| Error::Outputs {
                run_id: run_id.to_owned(),
                problem: format!("output `{id}` {problem}"),
            })
        })
        .collect()
}

fn into_generation<O: OutputValue>(done: (Run, Charge)) -> Result<Generation<O>, Error> {
    let (mut run, charge) = done;
    let outputs = parse_outputs(&run.run_id, std::mem::take(&mut run.outputs))?;
    Ok(Generation {
        run_id: run.run_id.clone(),
        outputs,
        charge,
        run,
    })
}

/// A started generation: poll it with [`poll`](Self::poll), wait with [`wait`](Self::wait),
/// start it again as a new run after it failed with [`retry`](Self::retry).
pub struct GenerationHandle<O> {
    state: RunState,
    created: CreatedRun,
    settle_for: Duration,
    _output: PhantomData<fn() -> O>,
}

impl<O> fmt::Debug for GenerationHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationHandle")
            .field("run_id", &self.state.run_id())
            .field("quote", &self.created.charged_cost)
            .finish_non_exhaustive()
    }
}

impl<O> GenerationHandle<O> {
    /// The `run_…` id.
    pub fn run_id(&self) -> &str {
        self.state.run_id()
    }

    /// The key it was created under: starting again with it never starts a second
    /// generation (FLORA answers 409 for two hours).
    pub fn idempotency_key(&self) -> Option<String> {
        self.state.submission.as_ref().map(|s| s.key())
    }

    /// The create answer's `charged_cost`: a quote, not the charge.
    pub fn quote(&self) -> Option<f64> {
        self.created.charged_cost
    }

    /// The create answer.
    pub fn created(&self) -> &CreatedRun {
        &self.created
    }

    /// The last run state seen.
    pub fn last_seen(&self) -> Option<&Run> {
        self.state.last_seen()
    }

    /// One poll of `GET /runs/{id}`.
    pub async fn poll(&mut self) -> Result<Run, Error> {
        self.state.poll().await
    }

    /// Waits for the run (as [`RunHandle::wait_run`](crate::RunHandle::wait_run) does), then
    /// reads a missing charge again for a while, and parses the outputs.
    pub async fn wait(&mut self) -> Result<Generation<O>, Error>
    where
        O: OutputValue,
    {
        self.wait_with(|_| {}).await
    }

    /// Like [`wait`](Self::wait), calling `on_update` with every run state seen.
    pub async fn wait_with(
        &mut self,
        on_update: impl FnMut(&Run) + Send,
    ) -> Result<Generation<O>, Error>
    where
        O: OutputValue,
    {
        let done = wait_settled(
            &mut self.state,
            self.created.charged_cost,
            self.settle_for,
            Box::new(on_update),
        )
        .await?;
        into_generation(done)
    }

    /// Starts this generation again as a **new run** (a new charge) under a new key derived
    /// from the first (`{key}~retry2`, …): FLORA burns a failed run's key for two hours, so
    /// the old key would only answer 409. Refused unless the run is known to have failed.
    pub async fn retry(&self) -> Result<GenerationHandle<O>, Error> {
        let Some(submission) = &self.state.submission else {
            return Err(Error::InvalidInput(format!(
                "generation {} was attached by id, so its request is not known here",
                self.run_id()
            )));
        };
        let failed = self
            .last_seen()
            .is_some_and(|r| r.status == crate::wire::RunStatus::Failed);
        if !failed {
            let status = self.last_seen().map_or_else(
                || "not polled yet".to_owned(),
                |r| format!("`{}`", r.status),
            );
            return Err(Error::InvalidInput(format!(
                "generation {} is {status}: `retry` starts a new (billed) run and is for a \
                 generation that failed; wait for this one first",
                self.run_id()
            )));
        }
        let (created, state) = self.state.client.submit(submission.next()).await?;
        Ok(GenerationHandle {
            state,
            created: created.ok_or_else(|| {
                Error::Config("a generation's start returned no created run".to_owned())
            })?,
            settle_for: self.settle_for,
            _output: PhantomData,
        })
    }
}

type Erased<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The future of [`Client::generate`] and of every generated model's `generate`: checks the
/// params, starts the generation, waits for it and parses its typed outputs.
#[must_use = "futures do nothing unless awaited"]
pub struct GenerateFuture<'a, O> {
    inner: Erased<'a, (Run, Charge)>,
    _output: PhantomData<fn() -> O>,
}

impl<O: OutputValue> Future for GenerateFuture<'_, O> {
    type Output = Result<Generation<O>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .inner
            .as_mut()
            .poll(cx)
            .map(|r| r.and_then(into_generation))
    }
}

impl<O> fmt::Debug for GenerateFuture<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateFuture").finish_non_exhaustive()
    }
}

/// The future of [`Client::start_generation`]: checks the params and starts the generation.
#[must_use = "futures do nothing unless awaited"]
pub struct GenerationStartFuture<'a, O> {
    inner: Erased<'a, (CreatedRun, RunState, Duration)>,
    _output: PhantomData<fn() -> O>,
}

impl<O> Future for GenerationStartFuture<'_, O> {
    type Output = Result<GenerationHandle<O>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().inner.as_mut().poll(cx).map(|r| {
            r.map(|(created, state, settle_for)| GenerationHandle {
                state,
                created,
                settle_for,
                _output: PhantomData,
            })
        })
    }
}

impl<O> fmt::Debug for GenerationStartFuture<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationStartFuture")
            .finish_non_exhaustive()
    }
}

/// A model's checked request parts, taken when `generate`/`start_generation` is called.
type Checked = Result<(String, String, String, Map<String, Value>), Error>;

fn checked<M: Model>(model: &M) -> Checked {
    let (prompt, params) = checked_request(model)?;
    Ok((
        M::INFO.model_id.to_owned(),
        M::INFO.kind.to_owned(),
        prompt,
        params,
    ))
}

/// # Generations (feature `models`)
///
/// `Flux2Pro { prompt, .. }.generate(&client)` calls these: every param is checked against
/// the catalog before any request, since FLORA bills an unknown value with its default.
impl Client {
    /// Checks the params, starts a generation, waits for it and returns its typed outputs
    /// and settled charge.
    pub fn generate<'a, M: Model>(&'a self, model: &M) -> GenerateFuture<'a, M::Output> {
        self.generate_with(model, GenerateOptions::default())
    }

    /// Like [`generate`](Self::generate), with a key, a project or a retry policy.
    pub fn generate_with<'a, M: Model>(
        &'a self,
        model: &M,
        options: GenerateOptions,
    ) -> GenerateFuture<'a, M::Output> {
        let checked = checked(model);
        GenerateFuture {
            inner: Box::pin(async move {
                let (created, mut state, settle_for) = self.start_checked(checked, options).await?;
                wait_settled(
                    &mut state,
                    created.charged_cost,
                    settle_for,
                    Box::new(|_| {}),
                )
                .await
            }),
            _output: PhantomData,
        }
    }

    /// Checks the params and starts a generation without waiting.
    pub fn start_generation<'a, M: Model>(
        &'a self,
        model: &M,
    ) -> GenerationStartFuture<'a, M::Output> {
        self.start_generation_with(model, GenerateOptions::default())
    }

    /// Like [`start_generation`](Self::start_generation), with options.
    pub fn start_generation_with<'a, M: Model>(
        &'a self,
        model: &M,
        options: GenerateOptions,
    ) -> GenerationStartFuture<'a, M::Output> {
        let checked = checked(model);
        GenerationStartFuture {
            inner: Box::pin(self.start_checked(checked, options)),
            _output: PhantomData,
        }
    }

    /// Starts a generation from a live catalog entry and values checked against it (what
    /// `floret generate` does): `params` go through [`check_params`](crate::check_params)
    /// with the entry's rules first.
    pub async fn start_generation_untyped(
        &self,
        model: &crate::ModelSchema,
        prompt: &str,
        params: Map<String, Value>,
        options: GenerateOptions,
    ) -> Result<GenerationHandle<crate::RawOutput>, Error> {
        let unknown: Vec<&str> = model
            .params
            .iter()
            .filter(|p| p.rule().is_none() && params.contains_key(&p.name))
            .map(|p| p.name.as_str())
            .collect();
        if let Some(name) = unknown.first() {
            return Err(Error::InvalidInput(format!(
                "model `{}`: param `{name}` has a type this version cannot check; leave it out \
                 (FLORA uses its default); nothing was sent",
                model.model_id
            )));
        }
        crate::model::check_params(&model.model_id, prompt, &model.rules(), &params)?;
        let checked = Ok((
            model.model_id.clone(),
            model.kind.clone(),
            prompt.to_owned(),
            params,
        ));
        let (created, state, settle_for) = self.start_checked(checked, options).await?;
        Ok(GenerationHandle {
            state,
            created,
            settle_for,
            _output: PhantomData,
        })
    }

    /// The one start of a generation: resolves workspace and project (free requests), then
    /// the one `submit`.
    async fn start_checked(
        &self,
        checked: Checked,
        options: GenerateOptions,
    ) -> Result<(CreatedRun, RunState, Duration), Error> {
        let (model_id, kind, prompt, params) = checked?;
        let key = idempotency_key(options.idempotency_key.as_deref())?;
        let project_id = self.generation_project(options.project_id).await?;
        let workspace_id = self.resolved_workspace(None, "a generation").await?;
        let request = GenerationRequest {
            model_id,
            kind,
            prompt,
            params,
            workspace_id,
            project_id,
        };
        let (created, state) = self
            .submit(Submission {
                base_key: key,
                attempt: 1,
                request: Resend::Generation(request),
                retry: options.retry,
            })
            .await?;
        let created = created.ok_or_else(|| {
            Error::Config("a generation's start returned no created run".to_owned())
        })?;
        Ok((
            created,
            state,
            options.settle_for.unwrap_or(DEFAULT_SETTLE_FOR),
        ))
    }

    /// The project a generation lands in: given, else the client's, else an error that
    /// lists the projects the key sees (a free `GET /projects`).
    pub(crate) async fn generation_project(&self, given: Option<String>) -> Result<String, Error> {
        if let Some(p) = given.or_else(|| self.inner.project_id.clone()) {
            check_prefix("project_id", &p, "prj_")?;
            return Ok(p);
        }
        let listed = match self.projects().await {
            Ok(all) if all.is_empty() => "the key sees no project: create one in FLORA".to_owned(),
            Ok(all) => format!(
                "the key sees: {}",
                all.iter()
                    .map(|p| format!("{} ({})", p.project_id, p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("listing them (GET /projects) failed too: {e}"),
        };
        Err(Error::InvalidInput(format!(
            "a generation lands in a project and none is set: set FLORA_PROJECT_ID, \
             `ClientBuilder::project_id` or `GenerateOptions::project_id`; {listed}; nothing was \
             sent"
        )))
    }
}
