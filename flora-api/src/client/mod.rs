//! `Client`: configuration (checked by [`ClientBuilder`]) and the one `send` every request
//! goes through (`send.rs`: per-attempt timeout, in-flight permit, retries with backoff and
//! `Retry-After`, idempotency keys reused across attempts).

mod builder;
mod call;
mod send;
mod watch;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::connector::Connector;
use crate::error::Error;
use crate::policy::{PollPolicy, RetryPolicy};

pub use builder::ClientBuilder;
use builder::parse_custom_headers;
pub(crate) use call::{Body, Call};
pub use send::IDEMPOTENCY_HEADER;
pub(crate) use send::{Exchange, Failure, Verdict, failure_error, read_capped};
pub(crate) use watch::Watch;

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://app.flora.ai/api/v1";
/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "FLORA_API_KEY";
/// Environment variable overriding the base URL.
pub const ENV_BASE_URL: &str = "FLORA_BASE_URL";
/// Environment variable with extra headers, one `Name: value` per line (as the official SDKs).
pub const ENV_CUSTOM_HEADERS: &str = "FLORA_CUSTOM_HEADERS";
/// Environment variable with the default workspace (`ws_…`), e.g. for uploads.
pub const ENV_WORKSPACE_ID: &str = "FLORA_WORKSPACE_ID";
/// Environment variable with the default project of generations.
pub const ENV_PROJECT_ID: &str = "FLORA_PROJECT_ID";

/// Default cap on concurrent requests per client.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

pub(crate) const USER_AGENT: &str = concat!("flora-api-rust/", env!("CARGO_PKG_VERSION"));

/// A FLORA API client. Cheap to clone (one `Arc`); share it across tasks.
///
/// ```no_run
/// # async fn demo() -> Result<(), flora_api::Error> {
/// let client = flora_api::Client::from_env()?;
/// let technique = client.technique("cctv-cam").await?;
/// println!("{} costs {:?} USD per run", technique.name, technique.run_cost);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Shapes requests (headers, multipart bodies) before the connector sends them.
    pub(crate) requests: reqwest::Client,
    /// Where every request leaves the process.
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) base: Url,
    pub(crate) api_key: SecretString,
    /// One attempt's limit: in total, or without progress for streamed bodies.
    pub(crate) timeout: Duration,
    /// How long a streamed request body's answer may take once its last byte left.
    pub(crate) answer_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) poll: PollPolicy,
    pub(crate) headers: HeaderMap,
    pub(crate) workspace_id: Option<String>,
    /// The default project of generations.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    pub(crate) project_id: Option<String>,
    /// Caps requests in flight at once, every kind: held from before a request is built until
    /// its answer is consumed (not while waiting between attempts or polls).
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    /// The one workspace `GET /workspaces` returned, when uploads needed it.
    pub(crate) workspace_cache: Arc<tokio::sync::OnceCell<String>>,
    /// Runs this client (and its clones) created, so a lost answer's run is never taken
    /// for one of them.
    pub(crate) created: Arc<CreatedRuns>,
}

/// The runs a client created lately, with when (this machine's unix seconds): a bounded
/// memory, oldest forgotten first.
#[derive(Debug, Default)]
pub(crate) struct CreatedRuns(std::sync::Mutex<std::collections::VecDeque<(String, f64)>>);

impl CreatedRuns {
    /// How many are remembered.
    const KEEP: usize = 4096;

    pub(crate) fn add(&self, run_id: &str, at: f64) {
        let mut runs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if runs.iter().any(|(id, _)| id == run_id) {
            return;
        }
        if runs.len() >= Self::KEEP {
            runs.pop_front();
        }
        runs.push_back((run_id.to_owned(), at));
    }

    /// Every remembered run, with when its creation was first known.
    pub(crate) fn all(&self) -> Vec<(String, f64)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &i.base.as_str())
            .field("api_key", &"[redacted]")
            .field("timeout", &i.timeout)
            .field("max_retries", &i.retry.max_retries)
            .field("poll", &i.poll)
            .field("workspace_id", &i.workspace_id)
            .finish_non_exhaustive()
    }
}

/// # Building a client
impl Client {
    /// Starts a builder with the defaults: production base URL, 60 s per attempt,
    /// 2 retries, the default [`PollPolicy`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Builds a client from `FLORA_API_KEY` (required) and `FLORA_BASE_URL` (optional),
    /// plus `FLORA_CUSTOM_HEADERS` (optional, `Name: value` lines) and `FLORA_WORKSPACE_ID`
    /// (optional default workspace).
    pub fn from_env() -> Result<Client, Error> {
        Self::builder_from_env()?.build()
    }

    /// Like [`Client::from_env`] but returns the builder, to change more settings.
    pub fn builder_from_env() -> Result<ClientBuilder, Error> {
        let key = std::env::var(ENV_API_KEY).unwrap_or_default();
        if key.trim().is_empty() {
            return Err(Error::Config(format!(
                "{ENV_API_KEY} is not set or empty; create an API key in FLORA \
                 (workspace settings) and export {ENV_API_KEY}=sk_..."
            )));
        }
        let mut b = Client::builder().api_key(key);
        if let Ok(base) = std::env::var(ENV_BASE_URL)
            && !base.trim().is_empty()
        {
            b = b.base_url(base.trim());
        }
        if let Ok(ws) = std::env::var(ENV_WORKSPACE_ID)
            && !ws.trim().is_empty()
        {
            b = b.workspace_id(ws.trim());
        }
        if let Ok(p) = std::env::var(ENV_PROJECT_ID)
            && !p.trim().is_empty()
        {
            b = b.project_id(p.trim());
        }
        if let Ok(lines) = std::env::var(ENV_CUSTOM_HEADERS) {
            for (name, value) in parse_custom_headers(&lines)? {
                b = b.header(name, value);
            }
        }
        Ok(b)
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The poll policy `wait()` uses.
    pub fn poll_policy(&self) -> &PollPolicy {
        &self.inner.poll
    }

    /// The default workspace id, if one was configured.
    pub fn workspace_id(&self) -> Option<&str> {
        self.inner.workspace_id.as_deref()
    }

    /// How this client retries a request ([`ClientBuilder::retry_policy`]).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// This client with another retry policy, sharing its connection pool, in-flight limit
    /// and everything else. A caller that owns the retrying takes it with
    /// [`RetryPolicy::none()`], so retries never stack and every 429 reaches whatever adapts
    /// to it (a batch does this with its adaptive window).
    ///
    /// ```
    /// # let client = flora_api::Client::builder().api_key("sk_test").build()?;
    /// let once = client.with_retry_policy(flora_api::RetryPolicy::none());
    /// assert_eq!(once.retry_policy().retries(), 0);
    /// assert_eq!(client.retry_policy().retries(), 2, "the original keeps its own");
    /// # Ok::<(), flora_api::Error>(())
    /// ```
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> Client {
        let i = &self.inner;
        Client {
            inner: Arc::new(Inner {
                requests: i.requests.clone(),
                connector: i.connector.clone(),
                base: i.base.clone(),
                api_key: i.api_key.clone(),
                timeout: i.timeout,
                answer_timeout: i.answer_timeout,
                retry: policy,
                poll: i.poll.clone(),
                headers: i.headers.clone(),
                workspace_id: i.workspace_id.clone(),
                project_id: i.project_id.clone(),
                in_flight: i.in_flight.clone(),
                workspace_cache: i.workspace_cache.clone(),
                created: i.created.clone(),
            }),
        }
    }

    /// `base` + path segments, each percent-encoded as one segment. `.` and `..` are
    /// refused: URL normalisation would drop them and change the endpoint.
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        if let Some(bad) = segments.iter().find(|s| **s == "." || **s == "..") {
            return Err(Error::InvalidInput(format!(
                "{bad:?} is not an id (a path segment `.` or `..` would change the endpoint)"
            )));
        }
        let mut url = self.inner.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::Config("the base URL cannot take path segments".to_owned()))?;
            path.pop_if_empty().extend(segments);
        }
        Ok(url)
    }

    /// `text` without this client's key, any bearer token or Authorization value, and
    /// `others` (see [`redact`](crate::redact::redact)).
    pub(crate) fn redact_with<'a>(&self, text: &'a str, others: &[&str]) -> Cow<'a, str> {
        crate::redact::redact(text, Some(self.inner.api_key.expose_secret()), others)
    }

    /// `text` without this client's key, any bearer token or Authorization value.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redact_with(text, &[])
    }

    /// The bearer header, marked sensitive so `Debug` of requests never shows it.
    pub(crate) fn auth_header(&self) -> Result<HeaderValue, Error> {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", self.inner.api_key.expose_secret()))
                .map_err(|_| {
                    Error::Config(
                        "the API key contains characters not allowed in a header".to_owned(),
                    )
                })?;
        v.set_sensitive(true);
        Ok(v)
    }
}
