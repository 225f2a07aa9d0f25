//! What a FLORA error answer says: its code, message, per-field messages and request id,
//! read from the error envelope and kept whole.

use std::fmt;
use std::time::Duration;

use crate::wire::open_enum;

open_enum!(
    /// The `error.code` of an API error envelope.
    ApiErrorCode, Other {
        /// No Authorization header.
        Unauthorized = "unauthorized",
        /// Malformed or revoked key.
        InvalidApiKey = "invalid_api_key",
        /// MCP OAuth token rejected.
        InvalidToken = "invalid_token",
        /// The key's role lacks permission.
        Forbidden = "forbidden",
        /// Body was not JSON.
        InvalidJson = "invalid_json",
        /// A field was missing, mistyped or unknown.
        InputValidationError = "input_validation_error",
        /// Unknown technique, run or workspace.
        NotFound = "not_found",
        /// The workspace balance is too low.
        InsufficientCredits = "insufficient_credits",
        /// The idempotency key was already used.
        IdempotencyDuplicate = "idempotency_duplicate",
        /// The idempotency key was used with a different body.
        IdempotencyConflict = "idempotency_conflict",
        /// Invalid state transition.
        Conflict = "conflict",
        /// Rate limited.
        RateLimited = "rate_limited",
        /// Unknown server error.
        UnknownError = "unknown_error",
        /// Internal server error.
        InternalError = "internal_error",
        /// Service unavailable.
        ServiceUnavailable = "service_unavailable",
    }
);

/// A per-field validation message from the error envelope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FieldError {
    /// The field path, e.g. `inputs.0.value`.
    #[serde(default)]
    pub field: String,
    /// What was wrong with it.
    #[serde(default)]
    pub message: String,
}

/// Details of a non-2xx answer, kept whole so nothing the server said is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`, or `Other("")` when the body had none.
    pub code: ApiErrorCode,
    /// `error.message`, or a summary when the body had none.
    pub message: String,
    /// `error.fields`, on validation errors.
    pub fields: Vec<FieldError>,
    /// The `request-id` response header, for FLORA support.
    pub request_id: Option<String>,
    /// The start of the body (bounded), for bodies that were not the documented envelope.
    pub body: String,
    /// Method and path of the request, e.g. `POST /techniques/cctv-cam/runs`.
    pub endpoint: String,
    /// The server's `Retry-After` (or `retry-after-ms`), when it sent one. A hint longer
    /// than the client sleeps through (60 s) ends the retries at once and is kept here.
    pub retry_after: Option<Duration>,
    /// The base URL's path does not end in `/api/v1`: a 404 is then more likely a wrong
    /// base URL than a wrong slug.
    pub(crate) base_path_suspect: bool,
}

impl ApiError {
    fn hint(&self) -> &'static str {
        match (&self.code, self.status) {
            (ApiErrorCode::InputValidationError, _) => {
                "; if this is a typed technique, its schema may have changed: run `cargo xtask regen` \
                 (`client.verify::<Technique>()` lists what changed)"
            }
            (ApiErrorCode::Unauthorized | ApiErrorCode::InvalidApiKey, _) | (_, 401) => {
                "; check the API key (FLORA_API_KEY)"
            }
            (ApiErrorCode::InsufficientCredits, _) | (_, 402) => {
                "; top up the workspace balance before starting more runs"
            }
            (ApiErrorCode::Forbidden, _) | (_, 403) => {
                "; the key's workspace role lacks permission, or the technique is archived"
            }
            (_, 404) if self.base_path_suspect => {
                "; the base URL's path does not end in /api/v1, where FLORA serves its API: \
                 check FLORA_BASE_URL (or `ClientBuilder::base_url`)"
            }
            (ApiErrorCode::NotFound, _) | (_, 404) => {
                "; check the technique slug or run id, and that it belongs to this key's workspace"
            }
            (ApiErrorCode::RateLimited, _) | (_, 429) => "; slow down or lower concurrency",
            _ => "",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered HTTP {}", self.endpoint, self.status)?;
        if !self.code.as_str().is_empty() {
            write!(f, " `{}`", self.code)?;
        }
        // Server messages often end with a period; the hints below start with `; `.
        write!(f, ": {}", self.message.trim_end().trim_end_matches('.'))?;
        for fe in &self.fields {
            write!(f, "; {}: {}", fe.field, fe.message)?;
        }
        f.write_str(self.hint())?;
        if let Some(after) = self.retry_after {
            write!(f, "; the server asked to retry after {} s", after.as_secs())?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request-id {id})")?;
        }
        Ok(())
    }
}

/// Longest body kept in an error.
pub(crate) const MAX_SNIPPET: usize = 2048;

/// The start of a body, cut at a char boundary.
pub(crate) fn snippet(body: &str) -> String {
    if body.len() <= MAX_SNIPPET {
        return body.to_owned();
    }
    let mut end = MAX_SNIPPET;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &body[..end], body.len())
}

#[derive(serde::Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(serde::Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: Option<ApiErrorCode>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    fields: Vec<FieldError>,
}

impl ApiError {
    /// Builds the error from a response, reading the envelope when there is one.
    pub(crate) fn from_response(
        endpoint: String,
        status: u16,
        request_id: Option<String>,
        body: &str,
    ) -> Self {
        let env = serde_json::from_str::<Envelope>(body).ok().map(|e| e.error);
        let (code, message, fields) = match env {
            Some(e) => (
                e.code.unwrap_or_else(|| ApiErrorCode::Other(String::new())),
                e.message.unwrap_or_else(|| "no message".into()),
                e.fields,
            ),
            None => (
                ApiErrorCode::Other(String::new()),
                if body.trim().is_empty() {
                    "empty body".to_owned()
                } else {
                    format!("unexpected body: {}", snippet(body))
                },
                Vec::new(),
            ),
        };
        ApiError {
            status,
            code,
            message,
            fields,
            request_id,
            body: snippet(body),
            endpoint,
            retry_after: None,
            base_path_suspect: false,
        }
    }
}
