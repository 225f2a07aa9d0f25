//! One logical request: attempts, retry rules, backoff and `Retry-After`.
//!
//! This is the only retry layer. Run creation is retried only because it always carries an
//! idempotency key, and the same key goes out on every attempt, so a retry after a lost
//! response replays the first run instead of starting (and billing) a second one.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::client::{Client, USER_AGENT as UA};
use crate::durations::{from_secs_saturating, scale};
use crate::error::{ApiError, ApiErrorCode, Error, snippet};

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Longest server-requested wait we sleep through. A longer `Retry-After` ends the retries at
/// once: sleeping for minutes inside a call surprises callers, and retrying sooner than asked
/// only collects more refusals. The error keeps the hint ([`ApiError::retry_after`]).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A 429 without `Retry-After` waits at least this long (above the configured backoff).
const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
/// Largest successful body read; a larger one is refused ([`Error::ResponseTooLarge`]).
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;
/// Largest error body read; the rest is not downloaded.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Random share taken off each backoff delay (as the official SDKs do), so clients that failed
/// together do not retry together, and the configured maximum stays a maximum.
const JITTER: f64 = 0.25;

/// Builds a multipart form anew for each attempt (a `Form` is consumed by sending it).
pub(crate) type FormFn = std::sync::Arc<dyn Fn() -> reqwest::multipart::Form + Send + Sync>;

/// A request body.
pub(crate) enum Body {
    /// Sent as `application/json`.
    Json(serde_json::Value),
    /// Sent as `multipart/form-data`, rebuilt for every attempt.
    Multipart(FormFn),
}

/// A body encoded once, reused by every attempt.
enum Encoded<'a> {
    Json(Vec<u8>),
    Multipart(&'a FormFn),
}

/// One logical request.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<Body>,
    pub idempotency_key: Option<String>,
}

impl Call {
    pub fn get(url: Url) -> Self {
        Call {
            method: Method::GET,
            url,
            body: None,
            idempotency_key: None,
        }
    }

    /// `METHOD /path` for messages and spans; never the host or query.
    fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }
}

/// What one attempt ended with.
enum Attempt {
    /// Status, headers, body (capped), and whether the body was cut at the cap.
    Done(StatusCode, HeaderMap, String, bool),
    Timeout,
    Connection(reqwest::Error),
}

pub(crate) fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Our own delays between attempts: exponential from `min` doubling to `max`, each less a
/// random share of up to [`JITTER`], never below `min` nor above `max`.
///
/// (backon's own jitter is not used: it adds up to 100 % after clamping, so a delay could
/// reach twice the configured maximum.)
pub(crate) fn backoff(
    min: Duration,
    max: Duration,
    retries: u32,
) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_max_times(retries as usize)
        .build()
        .map(move |d| scale(d, 1.0 - JITTER * fastrand::f64()).clamp(min, max))
}

/// `retry-after-ms`, else `Retry-After` as seconds or an HTTP date. Any number is accepted
/// (RFC 9110 sets no maximum); values too large for a `Duration` saturate, never panic.
pub(crate) fn server_delay(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms >= 0.0
    {
        return Some(from_secs_saturating(ms / 1000.0));
    }
    let v = text("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0).then(|| from_secs_saturating(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

impl Client {
    /// Sends `call` and decodes a 2xx JSON body into `T`.
    pub(crate) async fn send_json<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let endpoint = call.endpoint();
        let body = self.send(call).await?;
        serde_json::from_str(&body).map_err(|source| Error::Decode {
            endpoint,
            snippet: snippet(&body),
            source,
        })
    }

    /// Sends `call` with retries; returns the body of the first 2xx answer.
    pub(crate) async fn send(&self, call: Call) -> Result<String, Error> {
        let inner = &self.inner;
        let endpoint = call.endpoint();
        let body = match &call.body {
            Some(Body::Json(v)) => Some(Encoded::Json(serde_json::to_vec(v).map_err(|e| {
                Error::InvalidInput(format!("could not encode the request body: {e}"))
            })?)),
            Some(Body::Multipart(form)) => Some(Encoded::Multipart(form)),
            None => None,
        };
        let mut backoff = backoff(inner.backoff_min, inner.backoff_max, inner.max_retries);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let span = tracing::debug_span!(
                "flora.request",
                method = %call.method,
                path = call.url.path(),
                attempt,
                status = tracing::field::Empty,
            );
            let outcome = {
                // Closed only if the client is dropped mid-call, which cannot happen here.
                let _permit = inner.in_flight.acquire().await.ok();
                self.attempt(&call, body.as_ref())
                    .instrument(span.clone())
                    .await?
            };
            let (outcome, hint, rate_limited) = match outcome {
                Attempt::Done(status, headers, text, cut) => {
                    span.record("status", status.as_u16());
                    if status.is_success() {
                        if cut {
                            return Err(Error::ResponseTooLarge {
                                endpoint,
                                limit: MAX_BODY,
                            });
                        }
                        return Ok(text);
                    }
                    if !retryable_status(status) {
                        return Err(self.api_error(&call, &endpoint, status, &headers, &text));
                    }
                    let hint = server_delay(&headers);
                    if hint.is_some_and(|h| h > MAX_RETRY_AFTER) {
                        // The server asked for a longer pause than we sleep through: say so now.
                        return Err(self.api_error(&call, &endpoint, status, &headers, &text));
                    }
                    let limited = status == StatusCode::TOO_MANY_REQUESTS;
                    (Attempt::Done(status, headers, text, cut), hint, limited)
                }
                other => (other, None, false),
            };
            let Some(delay) = backoff.next() else {
                return Err(match outcome {
                    Attempt::Done(status, headers, text, _) => {
                        self.api_error(&call, &endpoint, status, &headers, &text)
                    }
                    Attempt::Timeout => Error::Timeout {
                        endpoint,
                        host: host(&call.url),
                        attempts: attempt,
                        per_attempt: inner.timeout,
                    },
                    Attempt::Connection(source) => Error::Connection {
                        endpoint,
                        host: host(&call.url),
                        attempts: attempt,
                        source,
                    },
                });
            };
            let delay = match hint {
                Some(h) => h,
                None if rate_limited => delay.max(MIN_RATE_LIMIT_WAIT),
                None => delay,
            };
            tracing::debug!(parent: &span, ?delay, "retrying {endpoint}");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, call: &Call, body: Option<&Encoded<'_>>) -> Result<Attempt, Error> {
        let inner = &self.inner;
        let mut builder = inner
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(inner.timeout)
            .headers(inner.headers.clone())
            .header(USER_AGENT, UA)
            .header(ACCEPT, "application/json")
            .header(reqwest::header::AUTHORIZATION, self.auth_header()?);
        if let Some(key) = &call.idempotency_key {
            builder = builder.header(IDEMPOTENCY_HEADER, key);
        }
        match body {
            Some(Encoded::Json(b)) => {
                builder = builder
                    .header(CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            Some(Encoded::Multipart(form)) => builder = builder.multipart(form()),
            None => {}
        }
        // A request that cannot be built (a header value with a newline, ...) is the caller's
        // mistake: report it before any attempt, never as a retryable connection failure.
        let request = builder.build().map_err(|e| {
            Error::InvalidInput(format!(
                "could not build the request for {}: {}",
                call.endpoint(),
                e.without_url()
            ))
        })?;
        let resp = match self.execute(request, false).await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Ok(Attempt::Timeout),
            Err(e) => return Ok(Attempt::Connection(e.without_url())),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let limit = if status.is_success() {
            MAX_BODY
        } else {
            MAX_ERROR_BODY
        };
        match read_capped(resp, limit).await {
            Ok((bytes, cut)) => {
                let text = String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                Ok(Attempt::Done(status, headers, text, cut))
            }
            Err(e) if e.is_timeout() => Ok(Attempt::Timeout),
            Err(e) => Ok(Attempt::Connection(e.without_url())),
        }
    }

    fn api_error(
        &self,
        call: &Call,
        endpoint: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> Error {
        let request_id = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut api =
            ApiError::from_response(endpoint.to_owned(), status.as_u16(), request_id, body);
        api.retry_after = server_delay(headers);
        api.base_path_suspect = !self
            .inner
            .base
            .path()
            .trim_end_matches('/')
            .ends_with(crate::client::API_PATH);
        let api = Box::new(api);
        match (&call.idempotency_key, &api.code) {
            (Some(key), ApiErrorCode::IdempotencyDuplicate | ApiErrorCode::IdempotencyConflict) => {
                Error::Idempotency {
                    key: key.clone(),
                    api,
                }
            }
            _ => Error::Api(api),
        }
    }
}

/// `host:port` of a URL, for messages (never the path or query).
pub(crate) fn host(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "the server".to_owned(),
    }
}

/// Reads at most `limit` bytes of the body; the flag says whether more was left unread.
async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let announced = resp.content_length().unwrap_or(0);
    let mut buf = Vec::with_capacity(usize::try_from(announced).unwrap_or(limit).min(limit));
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            server_delay(&headers(&[("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            server_delay(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        let later = SystemTime::now() + Duration::from_secs(30);
        let d = server_delay(&headers(&[(
            "retry-after",
            &httpdate::fmt_http_date(later),
        )]))
        .unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            server_delay(&headers(&[("retry-after-ms", "100"), ("retry-after", "9")])),
            Some(Duration::from_millis(100))
        );
        assert_eq!(server_delay(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(server_delay(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(server_delay(&HeaderMap::new()), None);
    }

    #[test]
    fn huge_retry_after_values_saturate_instead_of_panicking() {
        for (name, value) in [
            ("retry-after", "99999999999999999999"),
            ("retry-after", "1e300"),
            ("retry-after-ms", "1e30"),
            ("retry-after-ms", "inf"),
        ] {
            assert_eq!(
                server_delay(&headers(&[(name, value)])),
                Some(Duration::MAX),
                "{name}: {value}"
            );
        }
        assert_eq!(server_delay(&headers(&[("retry-after-ms", "NaN")])), None);
    }

    #[test]
    fn backoff_stays_within_its_configured_bounds() {
        let ms = Duration::from_millis;
        let d: Vec<_> = backoff(ms(200), ms(200), 1000).collect();
        assert_eq!(d.len(), 1000);
        assert!(d.iter().all(|d| *d == ms(200)), "{d:?}");
        let (min, max) = (ms(500), Duration::from_secs(8));
        for _ in 0..200 {
            let d: Vec<_> = backoff(min, max, 10).collect();
            assert!(d.iter().all(|d| (min..=max).contains(d)), "{d:?}");
            // Still exponential: the tail sits near the cap, not at the floor.
            assert!(d[9] >= max.mul_f64(1.0 - JITTER), "{d:?}");
        }
        // Values too large to multiply saturate.
        let d: Vec<_> = backoff(Duration::MAX, Duration::MAX, 3).collect();
        assert_eq!(d, vec![Duration::MAX; 3]);
    }

    #[test]
    fn retry_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 409, 422, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
