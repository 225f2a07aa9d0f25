//! The dynamic API: every endpoint, usable without generated code. Listings and schemas
//! here; starting runs (typed or not, and a failed run's retry) in `start.rs`; finding the
//! run of a lost answer in `recover.rs`.

#[cfg(feature = "models")]
pub(crate) mod models;
mod recover;
mod start;

use futures_util::Stream;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::pages::{ListRequest, Page};
use crate::policy::RetryPolicy;
use crate::poll::{RunHandle, RunState};
use crate::technique::Untyped;
use crate::wire::{Run, RunStatus, TechniqueSchema, Workspace};

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
    /// How the creation request is retried, if not as the client's
    /// ([`ClientBuilder::retry_policy`](crate::ClientBuilder::retry_policy)): fewer retries,
    /// a shorter attempt, a deadline over all attempts. A retry always resends the same key
    /// and body, so it never starts a second run.
    pub retry: Option<RetryPolicy>,
}

impl StartOptions {
    /// These options with `policy` for the creation request.
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client, t: flora_api::techniques::CctvCam) -> Result<(), flora_api::Error> {
    /// use std::time::Duration;
    /// use flora_api::{RetryPolicy, StartOptions};
    /// // One attempt, at most 5 s: fail fast, keep the key to resume later.
    /// let options = StartOptions::with_new_key()
    ///     .retry(RetryPolicy::none().attempt_timeout(Duration::from_secs(5)));
    /// let handle = client.start_with(&t, options).await?;
    /// # Ok(()) }
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

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

pub(crate) fn check_prefix(what: &str, id: &str, prefix: &str) -> Result<(), Error> {
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
/// The dynamic API: list and retrieve technique schemas, start a run from
/// [`RunInput`](crate::RunInput)s, poll and list runs. Typed techniques use the same calls
/// underneath.
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
}
