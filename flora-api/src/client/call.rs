//! `Call`: one API request as an [`Exchange`]: JSON or multipart bodies, FLORA's error
//! envelope, the API's retry statuses and `Retry-After`.

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::send::{Exchange, MAX_BODY, MAX_ERROR_BODY, Verdict, read_capped};
use super::watch::Watch;
use super::{Client, IDEMPOTENCY_HEADER};
use crate::connector::Origin;
use crate::error::retryable_status;
use crate::error::{ApiError, ApiErrorCode, Error, snippet};
use crate::policy::{RetryPolicy, server_delay};
use crate::urls::API_PATH;
use secrecy::ExposeSecret;

/// A request body of an API call. Every attempt sends the very same bytes: a retry under an
/// idempotency key must never carry another body (a multipart form built again would get a
/// new random boundary, and FLORA answers `idempotency_conflict`).
pub(crate) enum Body {
    /// Sent as `application/json`.
    Json(serde_json::Value),
    /// Sent as given, with this content type (a multipart form encoded once).
    Encoded {
        /// The `Content-Type`, boundary included.
        content_type: String,
        /// The body.
        bytes: Bytes,
    },
}

impl Body {
    /// A multipart form, encoded once so every attempt sends the same bytes, with a boundary
    /// derived from `seed` (the upload's idempotency key): the same upload under the same key
    /// is the same body in another process too (a repeated `floret run --idempotency-key`).
    pub(crate) async fn multipart(
        form: reqwest::multipart::Form,
        seed: &str,
    ) -> Result<Body, Error> {
        use futures_util::TryStreamExt;
        use sha2::{Digest, Sha256};
        let random = form.boundary().to_owned();
        let hash = hex::encode(Sha256::digest(seed.as_bytes()));
        // reqwest's shape (four groups of 16 hex digits), so the length is the same.
        let fixed = format!(
            "{}-{}-{}-{}",
            &hash[..16],
            &hash[16..32],
            &hash[32..48],
            &hash[48..64]
        );
        let chunks: Vec<Bytes> =
            form.into_stream().try_collect().await.map_err(|e| {
                Error::InvalidInput(format!("could not encode the upload form: {e}"))
            })?;
        let bytes = replace_all(&chunks.concat(), random.as_bytes(), fixed.as_bytes());
        Ok(Body::Encoded {
            content_type: format!("multipart/form-data; boundary={fixed}"),
            bytes: Bytes::from(bytes),
        })
    }
}

/// `haystack` with every `from` replaced by `to` (a random boundary: 64 random hex digits,
/// which file bytes hold by chance with odds of 2^-256).
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// One API call: JSON answers, FLORA's error bodies, the API's retry statuses.
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<Body>,
    pub idempotency_key: Option<String>,
    /// The base URL does not end in `/api/v1`: a 404 says so.
    base_path_suspect: bool,
    /// Some attempt's answer may have been lost after the server handled the request (a 5xx,
    /// a timeout, a connection that broke after sending): a creation may have happened.
    pub(crate) maybe_handled: bool,
    /// The last answer's `Date` and this machine's clock when it came (unix seconds): how far
    /// apart the two clocks are, to the second.
    pub(crate) server_clock: Option<(f64, f64)>,
    /// The caller's retry policy for this call, if not the client's.
    retry: Option<RetryPolicy>,
}

/// The answer's `Date` header with this machine's time now, both in unix seconds.
fn server_clock(headers: &HeaderMap) -> Option<(f64, f64)> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let at = httpdate::parse_http_date(date).ok()?;
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64())
    };
    Some((secs(at)?, secs(std::time::SystemTime::now())?))
}

impl Call {
    pub fn new(method: Method, url: Url) -> Self {
        Call {
            method,
            url,
            body: None,
            idempotency_key: None,
            base_path_suspect: false,
            maybe_handled: false,
            server_clock: None,
            retry: None,
        }
    }

    /// With this retry policy instead of the client's (when `Some`).
    pub fn retry_policy(mut self, policy: Option<RetryPolicy>) -> Self {
        self.retry = policy;
        self
    }

    pub fn get(url: Url) -> Self {
        Call::new(Method::GET, url)
    }

    /// With this body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    /// With this idempotency key (the same on every attempt).
    pub fn idempotency_key(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    fn api_error(&self, status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
        let request_id = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut api = ApiError::from_response(self.endpoint(), status.as_u16(), request_id, body);
        api.retry_after = server_delay(headers);
        api.base_path_suspect = self.base_path_suspect;
        let api = Box::new(api);
        match (&self.idempotency_key, &api.code) {
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

impl Exchange for Call {
    type Output = String;

    fn retry_policy(&self) -> Option<RetryPolicy> {
        self.retry
    }

    fn answer_lost(&mut self) {
        self.maybe_handled = true;
    }

    fn origin(&self) -> Origin {
        Origin::Api
    }

    fn url(&self) -> &Url {
        &self.url
    }

    fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }

    fn request(&mut self, shaper: &reqwest::Client) -> Result<reqwest::RequestBuilder, Error> {
        let mut builder = shaper
            .request(self.method.clone(), self.url.clone())
            .header(ACCEPT, "application/json");
        if let Some(key) = &self.idempotency_key {
            builder = builder.header(IDEMPOTENCY_HEADER, key);
        }
        Ok(match &self.body {
            Some(Body::Json(v)) => {
                let bytes = serde_json::to_vec(v).map_err(|e| {
                    Error::InvalidInput(format!("could not encode the request body: {e}"))
                })?;
                builder.header(CONTENT_TYPE, "application/json").body(bytes)
            }
            Some(Body::Encoded {
                content_type,
                bytes,
            }) => builder
                .header(CONTENT_TYPE, content_type.as_str())
                .body(bytes.clone()),
            None => builder,
        })
    }

    async fn answer(
        &mut self,
        response: reqwest::Response,
        _watch: &Watch,
        client: &Client,
    ) -> Verdict<String> {
        let status = response.status();
        let headers = response.headers().clone();
        self.server_clock = server_clock(&headers);
        let limit = if status.is_success() {
            MAX_BODY
        } else {
            MAX_ERROR_BODY
        };
        let (text, cut) = match read_capped(response, limit).await {
            Ok((bytes, cut)) => (
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                cut,
            ),
            Err(e) => return Verdict::broke(e),
        };
        if status.is_success() {
            return if cut {
                Verdict::Fail(Error::ResponseTooLarge {
                    endpoint: self.endpoint(),
                    limit: MAX_BODY,
                })
            } else {
                Verdict::Done(text)
            };
        }
        // Secrets out before anything is kept or cut short (a key straddling the snippet's end
        // must not survive in part), in the decoded strings of a JSON body too.
        let text = crate::redact::redact_body(&text, &|t| client.redact(t));
        let error = self.api_error(status, &headers, &text);
        // A 500, 502 or 504 (or 408) may come after the server handled the request; a 503
        // (unavailable) or 429 is a refusal before it.
        if matches!(status.as_u16(), 408 | 500 | 502 | 504..=599) {
            self.maybe_handled = true;
        }
        if !retryable_status(status) {
            return Verdict::Fail(error);
        }
        Verdict::Retry {
            error,
            hint: server_delay(&headers),
        }
    }
}

impl Client {
    /// Sends an API call and decodes a 2xx JSON body into `T`.
    pub(crate) async fn send_json<T: DeserializeOwned>(&self, mut call: Call) -> Result<T, Error> {
        self.send_call_json(&mut call).await
    }

    /// [`send_json`](Self::send_json), leaving the call to be looked at afterwards.
    pub(crate) async fn send_call_json<T: DeserializeOwned>(
        &self,
        call: &mut Call,
    ) -> Result<T, Error> {
        let body = self.send_call(call).await?;
        let decode_error = |source| Error::Decode {
            endpoint: call.endpoint(),
            snippet: snippet(&self.redact(&body)),
            source,
        };
        // A server that echoes the key in a successful answer (a field, a run's message,
        // escaped or not) never gets it into decoded values, errors or logs. Only the key
        // itself: what merely looks like a token (`Bearer bonds`) is the answer's own data.
        let key = self.inner.api_key.expose_secret();
        // Text that cannot hold the key in any form is decoded straight into `T` (one pass,
        // no intermediate tree; the usual answer). Else every string is cleaned first, a URL
        // whose parsed form holds the key included.
        if !crate::redact::may_hold_key(&body, key) {
            return serde_json::from_str(&body).map_err(decode_error);
        }
        let mut value: serde_json::Value = serde_json::from_str(&body).map_err(decode_error)?;
        crate::redact::redact_json(&mut value, &|t| crate::redact::redact_answer_string(t, key));
        serde_json::from_value(value).map_err(|source| Error::Decode {
            endpoint: call.endpoint(),
            snippet: snippet(&self.redact(&body)),
            source,
        })
    }

    /// Sends an API call with retries; returns the body of the first 2xx answer. The call is
    /// left to be looked at afterwards (did some attempt's answer get lost?).
    pub(crate) async fn send_call(&self, call: &mut Call) -> Result<String, Error> {
        call.base_path_suspect = !self
            .inner
            .base
            .path()
            .trim_end_matches('/')
            .ends_with(API_PATH);
        self.exchange(call).await
    }
}
