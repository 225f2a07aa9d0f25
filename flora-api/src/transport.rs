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
use crate::error::{ApiError, ApiErrorCode, Error, snippet};

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Longest server-requested wait we honour; longer ones fall back to our own backoff.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A 429 without `Retry-After` waits at least this long.
const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// One logical request.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<serde_json::Value>,
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
    Done(StatusCode, HeaderMap, String),
    Timeout,
    Connection(reqwest::Error),
}

fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `retry-after-ms`, else `Retry-After` as seconds or an HTTP date.
fn server_delay(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = text("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
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
            Some(v) => Some(serde_json::to_vec(v).map_err(|e| {
                Error::InvalidInput(format!("could not encode the request body: {e}"))
            })?),
            None => None,
        };
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(inner.backoff_min)
            .with_max_delay(inner.backoff_max)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(inner.max_retries as usize)
            .build();
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
                self.attempt(&call, body.as_deref())
                    .instrument(span.clone())
                    .await?
            };
            let (outcome, hint, rate_limited) = match outcome {
                Attempt::Done(status, headers, text) => {
                    span.record("status", status.as_u16());
                    if status.is_success() {
                        return Ok(text);
                    }
                    if !retryable_status(status) {
                        return Err(self.api_error(&call, &endpoint, status, &headers, &text));
                    }
                    let hint = server_delay(&headers);
                    let limited = status == StatusCode::TOO_MANY_REQUESTS;
                    (Attempt::Done(status, headers, text), hint, limited)
                }
                other => (other, None, false),
            };
            let Some(mut delay) = backoff.next() else {
                return Err(match outcome {
                    Attempt::Done(status, headers, text) => {
                        self.api_error(&call, &endpoint, status, &headers, &text)
                    }
                    Attempt::Timeout => Error::Timeout {
                        endpoint,
                        attempts: attempt,
                        per_attempt: inner.timeout,
                    },
                    Attempt::Connection(source) => Error::Connection {
                        endpoint,
                        attempts: attempt,
                        source,
                    },
                });
            };
            match hint {
                Some(h) if h <= MAX_RETRY_AFTER => delay = h,
                _ if rate_limited => delay = delay.max(MIN_RATE_LIMIT_WAIT),
                _ => {}
            }
            tracing::debug!(parent: &span, ?delay, "retrying {endpoint}");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, call: &Call, body: Option<&[u8]>) -> Result<Attempt, Error> {
        let inner = &self.inner;
        let mut req = inner
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(inner.timeout)
            .headers(inner.headers.clone())
            .header(USER_AGENT, UA)
            .header(ACCEPT, "application/json")
            .header(reqwest::header::AUTHORIZATION, self.auth_header()?);
        if let Some(key) = &call.idempotency_key {
            req = req.header(IDEMPOTENCY_HEADER, key);
        }
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Ok(Attempt::Timeout),
            Err(e) => return Ok(Attempt::Connection(e.without_url())),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        match resp.text().await {
            Ok(text) => Ok(Attempt::Done(status, headers, text)),
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
        let api = Box::new(ApiError::from_response(
            endpoint.to_owned(),
            status.as_u16(),
            request_id,
            body,
        ));
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
    fn retry_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 409, 422, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
