//! One error type for everything the client can fail at.
//!
//! Messages say what happened and what to do next. None of them ever contains the API key:
//! the key lives only in a `SecretString` and in a header marked sensitive.

use std::time::Duration;

use crate::durations::human;
use crate::wire::{AssetStatus, RunErrorCode, RunStatus};

mod api;
mod class;
mod run_class;

pub(crate) use api::snippet;
pub use api::{ApiError, ApiErrorCode, FieldError};
pub use class::ErrorClass;
#[cfg(feature = "test-util")]
pub(crate) use class::code_for_status;
pub(crate) use class::retryable_status;
pub use run_class::RetryClass;

/// Everything that can go wrong talking to FLORA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The server refused a run creation because its idempotency key was already used.
    /// A run for this key may already exist: do not resubmit with a new key blindly.
    #[error(
        "{api}; idempotency key {key:?} was already used, so the run may already exist: \
         look it up (e.g. in run history) instead of starting another"
    )]
    Idempotency {
        /// The key that was sent.
        key: String,
        /// The server's answer.
        api: Box<ApiError>,
    },

    /// FLORA may have created (and will bill) a run whose answer was lost: every attempt's
    /// answer was lost, or the key's repeat was answered 409 `idempotency_duplicate` and the
    /// run history did not single the run out, or the created run's answer did not decode.
    /// Not [retryable](Error::is_retryable) as a fresh start: repeat the call with
    /// [`idempotency_key`](Self::RunMayExist::idempotency_key), which FLORA answers with the
    /// same run (or refuses), never with a second one.
    #[error(
        "{cause}; FLORA may have created this run (and will bill it) but its answer was \
         lost{}: do not start it again under a new key; repeat the call with the same \
         idempotency key {idempotency_key:?} (`StartOptions::idempotency_key`), which never \
         starts a second run",
        fmt_candidates(.candidates)
    )]
    RunMayExist {
        /// The key the run was (maybe) created under.
        idempotency_key: String,
        /// Runs of the technique in the run history created while the lost answers were
        /// pending, any of which may be this one (empty when the history was not read).
        candidates: Vec<String>,
        /// The last attempt's error.
        cause: Box<Error>,
    },

    /// The connection failed (DNS, refused, reset, TLS) after all retries.
    #[error(
        "could not reach {host} for {endpoint} after {attempts} attempt(s): {}",
        root_causes(source)
    )]
    Connection {
        /// Method and path.
        endpoint: String,
        /// The host (and port) that could not be reached.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// Every attempt ran past the per-attempt timeout.
    #[error(
        "{endpoint} on {host} timed out after {attempts} attempt(s) of {} each; raise \
         `ClientBuilder::timeout` if the API is slow",
        human(*.per_attempt)
    )]
    Timeout {
        /// Method and path.
        endpoint: String,
        /// The host (and port) asked.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The per-attempt timeout.
        per_attempt: Duration,
    },

    /// A streamed transfer (upload bytes, a download) moved no byte for the per-attempt
    /// timeout, in every attempt; or an upload whose body left whole got no answer within
    /// `ClientBuilder::answer_timeout`. A transfer that keeps moving is never cut, however long.
    #[error(
        "{endpoint} on {host} made no progress for {} after {bytes} bytes, in each of \
         {attempts} attempt(s); check the network, or raise `ClientBuilder::timeout` \
         (`answer_timeout` for the wait after an upload's last byte) if the host is slow",
        human(*.idle)
    )]
    Stalled {
        /// What was being transferred.
        endpoint: String,
        /// The host (and port), never the signed URL.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// Bytes moved in the last attempt before it stalled.
        bytes: u64,
        /// How long nothing moved (the per-attempt timeout, or the answer timeout).
        idle: Duration,
    },

    /// A 2xx body did not decode.
    #[error("could not decode the answer to {endpoint}: {source}; body starts: {snippet}")]
    Decode {
        /// Method and path.
        endpoint: String,
        /// The start of the body (bounded).
        snippet: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The run finished with status `failed`. Failed runs are not charged.
    #[error("run {run_id} failed{}{}", fmt_code(.code), fmt_message(.message))]
    RunFailed {
        /// `run_…` id.
        run_id: String,
        /// `error_code`, if any.
        code: Option<RunErrorCode>,
        /// `error_message`, if any.
        message: Option<String>,
    },

    /// The run did not finish before the wait deadline. It keeps running server-side.
    #[error(
        "run {run_id} was still `{last_status}` after waiting {}; it keeps running \
         server-side: poll it again later or raise the poll deadline",
        human(*.waited)
    )]
    WaitTimeout {
        /// `run_…` id.
        run_id: String,
        /// The last status seen.
        last_status: RunStatus,
        /// How long we waited.
        waited: Duration,
    },

    /// The run completed, but its outputs do not match the technique's generated type.
    #[error(
        "run {run_id} completed but {problem}; the technique's schema may have changed: \
         run `cargo xtask regen`"
    )]
    Outputs {
        /// `run_…` id.
        run_id: String,
        /// What did not match.
        problem: String,
    },

    /// The client is configured wrongly (missing key, non-https base URL, ...).
    #[error("invalid FLORA client configuration: {0}")]
    Config(String),

    /// An argument was refused before sending anything.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The live schema of a typed technique differs from the generated code
    /// ([`Client::verify`](crate::Client::verify)).
    #[error(
        "technique `{technique}` changed since its code was generated: {}; run `cargo xtask \
         regen` to update the generated code",
        .differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    SchemaDrift {
        /// The technique slug.
        technique: String,
        /// Every difference, inputs first.
        differences: Vec<crate::drift::Drift>,
    },

    /// The live catalog entry of a typed model differs from the generated code
    /// (`Client::verify_model`, feature `models`).
    #[error(
        "model `{model}` changed since its code was generated: {}; run `cargo xtask regen` \
         to update the generated code",
        .differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    ModelDrift {
        /// The model id.
        model: String,
        /// Every difference, in the code's param order, then the params added.
        differences: Vec<crate::drift::Drift>,
    },

    /// A local file could not be read or written.
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        /// What was being done (`read`, `write`, …).
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A download or a save would replace a file that exists, and replacing was not asked
    /// for ([`DownloadOptions::overwrite`](crate::DownloadOptions::overwrite),
    /// [`SaveOptions::overwrite`](crate::SaveOptions::overwrite)).
    #[error(
        "{} already exists; a file is never replaced unless asked (an overwrite option), so \
         nothing was written there",
        .path.display()
    )]
    FileExists {
        /// The file that exists.
        path: std::path::PathBuf,
    },

    /// An uploaded asset ended `failed`.
    #[error("asset {asset_id} failed to process{}", fmt_message(.message))]
    AssetFailed {
        /// `asset_…` id.
        asset_id: String,
        /// `failure_message`, if any.
        message: Option<String>,
    },

    /// An uploaded asset was not `ready` before the upload's poll deadline.
    #[error(
        "asset {asset_id} was still `{last_status}` after {}; it may still become \
         ready: look again later with `client.asset(\"{asset_id}\")` or raise \
         `UploadOptions::poll_deadline`",
        human(*.waited)
    )]
    AssetTimeout {
        /// `asset_…` id.
        asset_id: String,
        /// The last status seen.
        last_status: AssetStatus,
        /// How long we waited.
        waited: Duration,
    },

    /// The storage host refused the bytes of a signed upload.
    #[error(
        "the upload host {host} refused the bytes of asset {asset_id} with HTTP {status}: {body}"
    )]
    UploadHost {
        /// `asset_…` id.
        asset_id: String,
        /// The host (never the signed URL).
        host: String,
        /// HTTP status.
        status: u16,
        /// The start of the host's answer (at most 500 characters).
        body: String,
    },

    /// A media URL answered 403, 404 or 410: most likely expired.
    #[error(
        "{url} answered HTTP {status}: the URL may have expired (FLORA's output URLs are \
         long-lived, not permanent); run the technique again to get a fresh one"
    )]
    MediaGone {
        /// The URL without its query (which may hold a signature).
        url: String,
        /// HTTP status.
        status: u16,
    },

    /// A download failed for another reason.
    #[error("downloading {url} failed: {problem}")]
    Download {
        /// The URL without its query.
        url: String,
        /// What went wrong.
        problem: String,
    },

    /// A successful answer was larger than the client reads (32 MiB); nothing was decoded.
    #[error(
        "the answer to {endpoint} is larger than {limit} bytes, more than any FLORA answer \
         should be; check that the base URL points at the FLORA API"
    )]
    ResponseTooLarge {
        /// Method and path.
        endpoint: String,
        /// The cap, in bytes.
        limit: usize,
    },

    /// The run ended with a status this version of the crate does not know (it reported
    /// `completed_at`, so it will not change again). It produced no typed outputs.
    #[error(
        "run {run_id} ended with status `{status}`, which this version of flora-api does not \
         know; update flora-api, or inspect the run with `client.get_run`"
    )]
    RunEnded {
        /// `run_…` id.
        run_id: String,
        /// The status as sent.
        status: RunStatus,
    },

    /// A batch journal could not be used (feature `batch`): locked by another process, not a
    /// journal, or a storage error.
    #[error("batch journal {}: {problem}", path.display())]
    Journal {
        /// The journal file.
        path: std::path::PathBuf,
        /// What went wrong, and what to do.
        problem: String,
    },
}

/// The error and every cause under it (`error sending request: … : Connection refused`),
/// so `Display` names the root cause (refused, DNS, TLS) without `{:?}`.
pub(crate) fn root_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        // Wrappers often repeat their cause's text; keep each message once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

fn fmt_candidates(candidates: &[String]) -> String {
    match candidates {
        [] => String::new(),
        [one] => format!(" (run history holds one run from that time that may be it: {one})"),
        many => format!(
            " (run history holds {} runs from that time, any of which may be it: {})",
            many.len(),
            many.join(", ")
        ),
    }
}

fn fmt_code(code: &Option<RunErrorCode>) -> String {
    code.as_ref()
        .map(|c| format!(" with `{c}`"))
        .unwrap_or_default()
}

fn fmt_message(message: &Option<String>) -> String {
    message
        .as_ref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

impl Error {
    /// The error with `clean` applied to every text it keeps from a server or host (messages,
    /// bodies, snippets): how the client takes its key out of whatever a server echoed.
    pub(crate) fn scrub(self, clean: &dyn Fn(&str) -> std::borrow::Cow<'_, str>) -> Self {
        let fix = |s: &mut String| {
            if let std::borrow::Cow::Owned(c) = clean(s) {
                *s = c;
            }
        };
        let fix_opt = |s: &mut Option<String>| {
            if let Some(s) = s {
                fix(s);
            }
        };
        let fix_api = |api: &mut ApiError| {
            if let ApiErrorCode::Other(code) = &mut api.code {
                fix(code);
            }
            fix(&mut api.message);
            fix(&mut api.body);
            for f in &mut api.fields {
                fix(&mut f.field);
                fix(&mut f.message);
            }
            fix_opt(&mut api.request_id);
        };
        let mut e = self;
        match &mut e {
            Error::RunMayExist { cause, .. } => {
                let inner = std::mem::replace(cause.as_mut(), Error::Config(String::new()));
                **cause = inner.scrub(clean);
            }
            Error::Api(api) | Error::Idempotency { api, .. } => fix_api(api),
            Error::Decode { snippet, .. } => fix(snippet),
            Error::RunFailed { message, .. } | Error::AssetFailed { message, .. } => {
                fix_opt(message)
            }
            Error::Outputs { problem, .. } | Error::Download { problem, .. } => fix(problem),
            Error::UploadHost { body, .. } => fix(body),
            Error::InvalidInput(text) | Error::Config(text) => fix(text),
            _ => {}
        }
        e
    }

    /// The idempotency key of a run creation that may have happened, or whose key was
    /// refused: repeat the call with it, never with a new one.
    pub fn idempotency_key(&self) -> Option<&str> {
        match self {
            Error::Idempotency { key, .. } => Some(key),
            Error::RunMayExist {
                idempotency_key, ..
            } => Some(idempotency_key),
            _ => None,
        }
    }

    /// Whether trying the same call again later may succeed.
    ///
    /// A failed run ([`Error::RunFailed`]) that is retryable (its [`retry_class`](Self::retry_class)
    /// is retry now or later, e.g. `model_timeout`) must be tried
    /// as a **new run under a new idempotency key**: FLORA answers the old key with the
    /// failed run again. [`RunHandle::retry`](crate::RunHandle::retry) does that (the same
    /// inputs under a key derived from the first); with a key of your own, pass a new one.
    /// [`Error::RunMayExist`] is never retryable as a fresh start: repeat it under its
    /// [`idempotency_key`](Self::idempotency_key).
    pub fn is_retryable(&self) -> bool {
        self.class().retries()
    }

    /// What this error means for the caller (see [`ErrorClass`]): an answer's by its status
    /// and FLORA's code; a connection, timeout or stall is transient; a failed run by its
    /// [`retry_class`](Self::retry_class) (retry now or later: transient, as a new run;
    /// change the input: invalid input; else fatal); a run that may exist is a
    /// conflict (repeat it under its key, never afresh); a value refused before sending is
    /// invalid input.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Api(api) | Error::Idempotency { api, .. } => {
                let code = api.code.as_str();
                ErrorClass::of(api.status, (!code.is_empty()).then_some(code))
            }
            Error::Connection { .. } | Error::Timeout { .. } | Error::Stalled { .. } => {
                ErrorClass::Transient
            }
            Error::RunFailed { code, message, .. } => {
                match RetryClass::of(code.as_ref(), message.as_deref()) {
                    RetryClass::RetryNow | RetryClass::RetryLater => ErrorClass::Transient,
                    RetryClass::ChangeInput => ErrorClass::InvalidInput,
                    RetryClass::NotRetryable => ErrorClass::Fatal,
                }
            }
            Error::RunMayExist { .. } => ErrorClass::Conflict,
            Error::InvalidInput(_) | Error::Config(_) | Error::FileExists { .. } => {
                ErrorClass::InvalidInput
            }
            _ => ErrorClass::Fatal,
        }
    }

    /// For a failed run ([`Error::RunFailed`]): what to do about it, from its code and
    /// message ([`RetryClass::of`]). A retry is a new run, billed again.
    pub fn retry_class(&self) -> Option<RetryClass> {
        match self {
            Error::RunFailed { code, message, .. } => {
                Some(RetryClass::of(code.as_ref(), message.as_deref()))
            }
            _ => None,
        }
    }

    /// The API error details, when the server answered with an error status (for
    /// [`Error::RunMayExist`], its last attempt's).
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) | Error::Idempotency { api, .. } => Some(api),
            Error::RunMayExist { cause, .. } => cause.api(),
            _ => None,
        }
    }

    /// HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|a| a.status)
    }

    /// How long the server asked to wait before trying again, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|a| a.retry_after)
    }
}

impl From<crate::media::MediaUrlError> for Error {
    fn from(e: crate::media::MediaUrlError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

#[cfg(test)]
mod tests;
