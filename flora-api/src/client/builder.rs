//! `ClientBuilder`: every setting of a client, checked once in `build` before any request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{
    Client, DEFAULT_BASE_URL, DEFAULT_MAX_IN_FLIGHT, ENV_API_KEY, ENV_CUSTOM_HEADERS, Inner,
};
use crate::connector::{Connector, ReqwestConnector};
use crate::error::Error;
use crate::policy::{PollPolicy, RetryPolicy};
use crate::urls::{API_PATH, is_loopback};

/// How long an upload waits for its answer after its last byte left (see
/// [`ClientBuilder::answer_timeout`]).
const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Configures a [`Client`]. Every setting has a sane default except the API key.
#[derive(Default)]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    answer_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    max_retries: Option<u32>,
    backoff: Option<(Duration, Duration)>,
    poll: Option<PollPolicy>,
    http: Option<reqwest::Client>,
    headers: Vec<(String, String)>,
    workspace_id: Option<String>,
    project_id: Option<String>,
    max_in_flight: Option<usize>,
    connector: Option<Arc<dyn Connector>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("answer_timeout", &self.answer_timeout)
            .field("max_retries", &self.max_retries)
            .field("poll", &self.poll)
            .field("workspace_id", &self.workspace_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The API key (`sk_live_…`). Kept in a [`SecretString`].
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The base URL (default [`DEFAULT_BASE_URL`]). Must be `https://`; `http://` is allowed
    /// only for loopback hosts (`127.0.0.0/8`, `::1`, `localhost`). A URL without a path
    /// (`http://127.0.0.1:8080`) gets `/api/v1` appended, where FLORA serves its API; write
    /// a trailing slash (`http://127.0.0.1:8080/`) to mean the host's root.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Timeout of one attempt (default 60 s). An API call must finish within it, connect to
    /// last body byte. A request that moves a file (upload bytes, a download) is bounded by
    /// *progress* instead: it fails with [`Error::Stalled`](crate::Error::Stalled) only when no
    /// byte moved for this long, so a steady transfer of any length succeeds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long an upload waits for its answer once every byte of its body has left
    /// (default 2 min). The operating system takes megabytes of a body at once and the host
    /// may still be reading them at its own pace: that wait is not a stall, so the
    /// [`timeout`](Self::timeout)'s idle bound does not apply to it; this one does (the
    /// longer of the two). A host that never answers fails with
    /// [`Error::Stalled`](crate::Error::Stalled) naming this wait.
    pub fn answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = Some(timeout);
        self
    }

    /// How requests are retried (default [`RetryPolicy::default`]: 2 retries, backoff
    /// 0.5–8 s, a `Retry-After` up to 60 s slept through). [`max_retries`](Self::max_retries)
    /// and [`retry_backoff`](Self::retry_backoff) change one setting of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let client = flora_api::Client::builder()
    ///     .api_key("sk_test")
    ///     .retry_policy(flora_api::RetryPolicy::default().deadline(Duration::from_secs(30)))
    ///     .build()?;
    /// assert_eq!(client.retry_policy().retries(), 2);
    /// # Ok::<(), flora_api::Error>(())
    /// ```
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Retries after the first attempt (default 2, so 3 attempts).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Exponential backoff bounds when the server gives no `Retry-After`
    /// (default 0.5 s doubling to 8 s, with jitter).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = Some((min, max));
        self
    }

    /// How `wait()` polls (default: first poll after 2 s, growing to 5 s, 30 min deadline).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = Some(policy);
        self
    }

    /// Use this `reqwest::Client` (proxies, custom TLS roots, ...). Redirect and timeout
    /// settings are then yours; the per-attempt timeout is still applied per request.
    ///
    /// Build it with the `reqwest` this crate uses, re-exported as [`flora_api::reqwest`]
    /// (`cargo add reqwest` may pick another major version, whose `Client` is another type):
    ///
    /// Your client needs a TLS crypto provider installed first (flora-api's reqwest has none of
    /// its own): [`flora_api::install_crypto_provider`](crate::install_crypto_provider).
    ///
    /// ```
    /// flora_api::install_crypto_provider();
    /// let http = flora_api::reqwest::Client::builder()
    ///     .redirect(flora_api::reqwest::redirect::Policy::none())
    ///     .build()
    ///     .unwrap();
    /// let client = flora_api::Client::builder().api_key("sk_test").http_client(http).build();
    /// assert!(client.is_ok());
    /// ```
    ///
    /// [`flora_api::reqwest`]: crate::reqwest
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// An extra header sent on every request. The headers the client sets itself
    /// (`Authorization`, `Idempotency-Key`, `Content-Type`, `User-Agent`, `Accept`) are
    /// refused by [`build`](Self::build): two values would leave it unclear which one the
    /// server acts on.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Default `workspace_id` for list calls and top-level run creation.
    pub fn workspace_id(mut self, id: impl Into<String>) -> Self {
        self.workspace_id = Some(id.into());
        self
    }

    /// Default project (`prj_…`) generations land in (`FLORA_PROJECT_ID` in
    /// [`Client::from_env`](crate::Client::from_env)); generations without one are refused
    /// with the list of projects the key sees.
    pub fn project_id(mut self, id: impl Into<String>) -> Self {
        self.project_id = Some(id.into());
        self
    }

    /// At most this many requests in flight at once across all clones of the client
    /// (default 64). Thousands of concurrent `run()` calls then share a bounded set of
    /// connections instead of opening one each; polls wait their turn.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n);
        self
    }

    /// Sends every request through `connector` instead of the network (the in-process fake).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let api_key = match self.api_key {
            Some(k) if !k.expose_secret().trim().is_empty() => k,
            _ => {
                return Err(Error::Config(format!(
                    "no API key; call `.api_key(..)` or set {ENV_API_KEY}"
                )));
            }
        };
        if api_key.expose_secret().chars().any(|c| c.is_control()) {
            return Err(Error::Config(
                "the API key contains control characters (a stray newline?)".to_owned(),
            ));
        }
        let base = parse_base_url(self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            // The name is not quoted back: a mangled line may hold a secret.
            let n = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                Error::Config(
                    "a custom header name is not a valid HTTP header name (letters, digits \
                     and `-`)"
                        .to_owned(),
                )
            })?;
            check_not_owned(&n)?;
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("invalid value for header `{n}`")))?;
            // Custom headers often carry tokens: keep them out of `Debug` of requests.
            v.set_sensitive(true);
            headers.append(n, v);
        }
        if let Some(ws) = &self.workspace_id
            && !ws.starts_with("ws_")
        {
            return Err(Error::Config(format!(
                "workspace id {ws:?} must start with `ws_`"
            )));
        }
        if let Some(p) = &self.project_id
            && (!p.starts_with("prj_") || p.len() == 4)
        {
            return Err(Error::Config(format!(
                "project id {p:?} must start with `prj_` (e.g. `prj_abc123`)"
            )));
        }
        let mut retry = self.retry.unwrap_or_default();
        if let Some((min, max)) = self.backoff {
            if min > max {
                return Err(Error::Config(
                    "retry_backoff: min must not exceed max".to_owned(),
                ));
            }
            retry = retry.backoff(min, max);
        }
        if let Some(n) = self.max_retries {
            retry = retry.max_retries(n);
        }
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 || max_in_flight > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(Error::Config("max_in_flight must be at least 1".to_owned()));
        }
        let (requests, connector): (_, Arc<dyn Connector>) = match self.connector {
            Some(c) => (ReqwestConnector::request_shaper()?, c),
            None => {
                let net = ReqwestConnector::new(self.http)?;
                (net.api_client().clone(), Arc::new(net))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                requests,
                connector,
                base,
                api_key,
                timeout: self.timeout.unwrap_or(Duration::from_secs(60)),
                answer_timeout: self.answer_timeout.unwrap_or(DEFAULT_ANSWER_TIMEOUT),
                retry,
                poll: self.poll.unwrap_or_default(),
                headers,
                workspace_id: self.workspace_id,
                project_id: self.project_id,
                in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
                workspace_cache: Arc::default(),
                created: Arc::default(),
            }),
        })
    }
}

/// Headers the client sets on every request itself.
const OWNED_HEADERS: [&str; 5] = [
    "authorization",
    "idempotency-key",
    "content-type",
    "user-agent",
    "accept",
];

fn check_not_owned(name: &HeaderName) -> Result<(), Error> {
    if name == reqwest::header::AUTHORIZATION {
        return Err(Error::Config(
            "set the key with `api_key` (or FLORA_API_KEY), not as an Authorization header"
                .to_owned(),
        ));
    }
    if OWNED_HEADERS.contains(&name.as_str()) {
        return Err(Error::Config(format!(
            "custom header `{name}` is set by the client itself and cannot be overridden \
             (idempotency keys go in `StartOptions::idempotency_key`)"
        )));
    }
    Ok(())
}

/// `FLORA_CUSTOM_HEADERS`: one `Name: value` per line, blank lines ignored. Errors name the
/// line number and never its text, which may hold a token.
pub(super) fn parse_custom_headers(lines: &str) -> Result<Vec<(&str, &str)>, Error> {
    let mut out = Vec::new();
    for (i, line) in lines.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::Config(format!(
                "{ENV_CUSTOM_HEADERS}: line {} is not `Name: value` (the line is not shown; \
                 it may hold a secret)",
                i + 1
            )));
        };
        if HeaderName::from_bytes(name.trim().as_bytes()).is_err() {
            return Err(Error::Config(format!(
                "{ENV_CUSTOM_HEADERS}: line {} has no valid header name before the `:`",
                i + 1
            )));
        }
        out.push((name.trim(), value.trim()));
    }
    Ok(out)
}

/// `https://` anywhere, `http://` only on loopback; no credentials, query or fragment.
fn parse_base_url(input: &str) -> Result<Url, Error> {
    let url = Url::parse(input)
        .map_err(|e| Error::Config(format!("base URL {input:?} is not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "the base URL must not contain credentials; use `api_key`".to_owned(),
        ));
    }
    if url.host().is_none() {
        return Err(Error::Config(format!("base URL {input:?} has no host")));
    }
    let loopback = is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(Error::Config(format!(
                "base URL {input:?} must use https:// (http:// is only allowed for \
                 localhost, 127.0.0.0/8 and ::1)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "base URL {input:?} has scheme `{other}`; use https://"
            )));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL {input:?} must not have a query or fragment"
        )));
    }
    let mut url = url;
    if url.path() == "/" && !input.trim_end().ends_with('/') {
        // `https://host` means the API on that host, as in production: `https://host/api/v1`.
        url.set_path(API_PATH);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(base: &str) -> Result<Client, Error> {
        Client::builder()
            .api_key("sk_test_1")
            .base_url(base)
            .build()
    }

    #[test]
    fn a_base_url_without_a_path_gets_api_v1() {
        let base = |s: &str| build(s).unwrap().base_url().as_str().to_owned();
        assert_eq!(
            base("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/api/v1"
        );
        assert_eq!(base("https://app.flora.ai"), "https://app.flora.ai/api/v1");
        assert_eq!(base("http://127.0.0.1:8080/"), "http://127.0.0.1:8080/");
        assert_eq!(base("http://127.0.0.1:8080/v2"), "http://127.0.0.1:8080/v2");
        assert_eq!(
            base("https://app.flora.ai/api/v1"),
            "https://app.flora.ai/api/v1"
        );
    }

    #[test]
    fn base_url_rules() {
        assert!(build("https://app.flora.ai/api/v1").is_ok());
        assert!(build("http://127.0.0.1:8080").is_ok());
        assert!(build("http://127.1.2.3:8080/api").is_ok());
        assert!(build("http://localhost:1/api/v1").is_ok());
        assert!(build("http://[::1]:9/").is_ok());
        for bad in [
            "http://app.flora.ai/api/v1",
            "http://10.0.0.1/",
            "ftp://x/",
            "not a url",
            "https://user:pw@app.flora.ai/",
            "https://app.flora.ai/?x=1",
        ] {
            let err = build(bad).unwrap_err().to_string();
            assert!(err.contains("base URL"), "{bad}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }

    #[test]
    fn missing_key_is_a_clear_error() {
        let err = Client::builder().build().unwrap_err().to_string();
        assert!(err.contains("FLORA_API_KEY"), "{err}");
        let err = Client::builder().api_key("  ").build().unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }

    #[test]
    fn urls_encode_segments() {
        let c = build("https://h/api/v1/").unwrap();
        let u = c.url(&["techniques", "a b/c"]).unwrap();
        assert_eq!(u.as_str(), "https://h/api/v1/techniques/a%20b%2Fc");
        let c = build("https://h/api/v1").unwrap();
        assert_eq!(
            c.url(&["runs", "run_1"]).unwrap().as_str(),
            "https://h/api/v1/runs/run_1"
        );
    }

    #[test]
    fn custom_header_lines_never_echo_their_text() {
        let ok = parse_custom_headers("X-A: 1\n\n  X-B :two: parts \n").unwrap();
        assert_eq!(ok, vec![("X-A", "1"), ("X-B", "two: parts")]);
        for (lines, line_no) in [
            ("X-A: 1\nAuthorization=Bearer sk_live_LEAKED", 2),
            ("Authorization=Bearer sk_live_LEAKED: x", 1),
            ("X-A: 1\n\nsk_live_LEAKED", 3),
        ] {
            let err = parse_custom_headers(lines).unwrap_err().to_string();
            assert!(!err.contains("LEAKED"), "{err}");
            assert!(!err.contains("Bearer"), "{err}");
            assert!(err.contains(&format!("line {line_no}")), "{err}");
            assert!(err.contains(ENV_CUSTOM_HEADERS), "{err}");
        }
    }

    #[test]
    fn authorization_header_is_refused_and_workspace_checked() {
        let e = Client::builder()
            .api_key("k")
            .header("Authorization", "Bearer x")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("api_key"));
        let e = Client::builder()
            .api_key("k")
            .workspace_id("abc")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("ws_"));
    }
}
