//! `Client::exchange`: the one loop every request goes through.
//!
//! Each kind of request (an API call, the bytes of a signed upload, a download) is an
//! [`Exchange`]: it builds each attempt's request (bodies are rebuilt, so replayable), reads
//! and judges the answer (which statuses retry, what a partial download resumes from), and
//! names its failures. The loop owns what every kind shares, written once: the in-flight
//! permit (held until the answer's body is consumed), the per-attempt timeout (in total, or on
//! no progress for a streamed body), retries with backoff and `Retry-After`, the headers the
//! client owns, and tracing. Run creation is retried only because it always carries an
//! idempotency key, and the same key goes out on every attempt, so a retry after a lost answer
//! replays the first run instead of starting (and billing) a second one.

use std::future::Future;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, USER_AGENT};
use tracing::Instrument;
use url::Url;

use super::watch::{Watch, watch_body};
use super::{Client, USER_AGENT as UA};
use crate::connector::Origin;
use crate::error::Error;
use crate::policy::{Next, RetryPolicy};
use crate::urls::host;

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Largest successful body read; a larger one is refused ([`Error::ResponseTooLarge`]).
pub(crate) const MAX_BODY: usize = 32 * 1024 * 1024;
/// Largest error body read; the rest is not downloaded.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

/// What went wrong below HTTP in an attempt.
pub(crate) enum Failure {
    /// A transport error: connect, reset, TLS, DNS, or a body that broke off.
    Connection(reqwest::Error),
    /// No complete answer within the per-attempt timeout.
    Timeout,
    /// A streamed transfer moved no byte for `idle` after `bytes` bytes: the per-attempt
    /// timeout, or the answer timeout once a request body had left whole.
    Stalled {
        /// Bytes moved in the attempt before it stalled.
        bytes: u64,
        /// How long nothing moved.
        idle: Duration,
    },
}

/// How an attempt ended.
pub(crate) enum Verdict<T> {
    /// The exchange is done.
    Done(T),
    /// Worth another attempt (if any is left); else `error` is the result.
    Retry {
        /// The error to report when no attempt is left.
        error: Error,
        /// The server's `Retry-After`, if it gave one.
        hint: Option<Duration>,
    },
    /// Failed below HTTP; retried like a connection error.
    Below(Failure),
    /// Not worth another attempt.
    Fail(Error),
}

impl<T> Verdict<T> {
    /// A failed answer the status says is worth retrying.
    pub(crate) fn retry(error: Error) -> Self {
        Verdict::Retry { error, hint: None }
    }

    /// A transport error while reading an answer.
    pub(crate) fn broke(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Verdict::Below(Failure::Timeout)
        } else {
            Verdict::Below(Failure::Connection(e.without_url()))
        }
    }
}

/// One kind of request: what [`Client::exchange`] needs to build, time, judge and retry it.
pub(crate) trait Exchange: Send {
    /// What a successful exchange yields.
    type Output: Send;

    /// Which kind of host it goes to (the key and custom headers go only to [`Origin::Api`]).
    fn origin(&self) -> Origin;

    /// The URL asked (for the host in messages).
    fn url(&self) -> &Url;

    /// What the request is, for messages and spans (`POST /runs/technique`); never a query.
    fn endpoint(&self) -> String;

    /// Whether the body or the answer streams a file: the attempt is then bounded by
    /// progress (no byte moved for the per-attempt timeout), not in total.
    fn streams(&self) -> bool {
        false
    }

    /// The request of one attempt, body rebuilt. For an exchange that [`streams`](Self::streams),
    /// `send` reports the body's bytes to the attempt's watch as they go out.
    fn request(&mut self, shaper: &reqwest::Client) -> Result<reqwest::RequestBuilder, Error>;

    /// Reads and judges one answer. The in-flight permit is held until this returns, so read
    /// the body here. Report streamed bytes to `watch`; take the key out of any text kept
    /// with `client`'s redactor before cutting it short.
    fn answer(
        &mut self,
        response: reqwest::Response,
        watch: &Watch,
        client: &Client,
    ) -> impl Future<Output = Verdict<Self::Output>> + Send;

    /// The error to report when the last attempt failed below HTTP.
    fn failed(&self, failure: Failure, attempts: u32, per_attempt: Duration) -> Error {
        failure_error(self, failure, attempts, per_attempt)
    }

    /// An attempt failed below HTTP after the request may have reached the server (anything
    /// but a failed connect): the server may have handled it, and its answer was lost.
    fn answer_lost(&mut self) {}

    /// This request's own retry policy, when its caller set one (else the client's).
    fn retry_policy(&self) -> Option<RetryPolicy> {
        None
    }

    /// Secrets of this request besides the API key (a signed URL's query values, a signed
    /// form's fields) that an echoing host must not get into an error.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The usual error for a failure below HTTP: `Connection`, `Timeout` or `Stalled`, naming the
/// exchange and its host.
pub(crate) fn failure_error<E: Exchange + ?Sized>(
    exchange: &E,
    failure: Failure,
    attempts: u32,
    per_attempt: Duration,
) -> Error {
    let (endpoint, host) = (exchange.endpoint(), host(exchange.url()));
    match failure {
        Failure::Connection(source) => Error::Connection {
            endpoint,
            host,
            attempts,
            source,
        },
        Failure::Timeout => Error::Timeout {
            endpoint,
            host,
            attempts,
            per_attempt,
        },
        Failure::Stalled { bytes, idle } => Error::Stalled {
            endpoint,
            host,
            attempts,
            bytes,
            idle,
        },
    }
}

impl Client {
    /// Runs `exchange` to its end: attempts, judged answers, retries. The exchange keeps its
    /// own state across attempts (a download's offset).
    pub(crate) async fn exchange<E: Exchange>(&self, exchange: &mut E) -> Result<E::Output, Error> {
        let inner = &self.inner;
        let endpoint = exchange.endpoint();
        let policy = exchange.retry_policy().unwrap_or(inner.retry);
        let per_attempt = policy.attempt_timeout.unwrap_or(inner.timeout);
        let deadline = policy
            .deadline
            .and_then(|d| tokio::time::Instant::now().checked_add(d));
        let mut delays = policy.delays();
        let mut attempt: u32 = 0;
        // Every error leaves (and is logged) only after the key and the exchange's own
        // secrets are taken out of whatever text the server put in it.
        let scrub = |e: Error, exchange: &E| {
            let secrets = exchange.secrets();
            let others: Vec<&str> = secrets.iter().map(String::as_str).collect();
            e.scrub(&|text| self.redact_with(text, &others))
        };
        loop {
            attempt += 1;
            let span = tracing::debug_span!(
                "flora.request",
                endpoint = %endpoint,
                attempt,
                status = tracing::field::Empty,
            );
            // Within the overall deadline, if any: an attempt never outlives it.
            let bound = match deadline {
                Some(at) => {
                    per_attempt.min(at.saturating_duration_since(tokio::time::Instant::now()))
                }
                None => per_attempt,
            };
            let verdict = match self
                .attempt(exchange, bound, deadline, &span)
                .instrument(span.clone())
                .await
            {
                Ok(verdict) => verdict,
                Err(e) => return Err(scrub(e, exchange)),
            };
            let (hint, last) = match verdict {
                Verdict::Done(out) => return Ok(out),
                Verdict::Fail(e) => return Err(scrub(e, exchange)),
                Verdict::Retry { error, hint } => (hint, scrub(error, exchange)),
                Verdict::Below(failure) => {
                    let refused = matches!(&failure, Failure::Connection(e) if e.is_connect());
                    if !refused {
                        exchange.answer_lost();
                    }
                    (
                        None,
                        scrub(exchange.failed(failure, attempt, bound), exchange),
                    )
                }
            };
            // The one decision: the error's class, the server's hint, the policy's backoff.
            let delay = match policy.next(last.class(), hint, delays.next()) {
                Next::After(delay) => delay,
                // A longer pause than we sleep through: say so now (the error keeps it).
                Next::TooLong | Next::Stop => return Err(last),
            };
            let next_at = tokio::time::Instant::now().checked_add(delay);
            if deadline.is_some_and(|at| next_at.is_none_or(|next| next >= at)) {
                tracing::debug!(parent: &span, error = %last, "{endpoint}: no retry within the deadline");
                return Err(last);
            }
            tracing::debug!(parent: &span, ?delay, error = %last, "retrying {endpoint}");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: permit, request, send, answer, all within the attempt's time bound.
    async fn attempt<E: Exchange>(
        &self,
        exchange: &mut E,
        per_attempt: Duration,
        deadline: Option<tokio::time::Instant>,
        span: &tracing::Span,
    ) -> Result<Verdict<E::Output>, Error> {
        let inner = &self.inner;
        // Closed only if the client is dropped mid-call, which cannot happen here. Taken
        // before the body is built: a queued upload holds no file open and reads nothing.
        // Within the deadline: a request that could not leave before it never leaves.
        let permit = inner.in_flight.acquire();
        let _permit = match deadline {
            Some(at) => match tokio::time::timeout_at(at, permit).await {
                Ok(p) => p.ok(),
                Err(_elapsed) => {
                    return Ok(Verdict::Fail(failure_error(
                        exchange,
                        Failure::Timeout,
                        1,
                        per_attempt,
                    )));
                }
            },
            None => permit.await.ok(),
        };
        let streams = exchange.streams();
        let watch = if streams {
            Watch::new()
        } else {
            Watch::nothing()
        };
        let origin = exchange.origin();
        let mut builder = exchange.request(&inner.requests)?.header(USER_AGENT, UA);
        if origin == Origin::Api {
            builder = builder
                .headers(inner.headers.clone())
                .header(AUTHORIZATION, self.auth_header()?);
        }
        // A request that cannot be built (a header value with a newline, ...) is the caller's
        // mistake: report it before any attempt, never as a retryable connection failure.
        let mut request = builder.build().map_err(|e| {
            Error::InvalidInput(format!(
                "could not build the request for {}: {}",
                exchange.endpoint(),
                e.without_url()
            ))
        })?;
        if streams {
            watch_body(&mut request, &watch);
        }
        let bounded = inner.connector.timeouts_apply();
        let watch_ = watch.clone();
        let run = async move {
            match inner.connector.send(request, origin).await {
                Ok(response) => {
                    span.record("status", response.status().as_u16());
                    exchange.answer(response, &watch_, self).await
                }
                Err(e) => Verdict::broke(e),
            }
        };
        let attempt = async {
            match (bounded, streams) {
                (false, _) => run.await,
                (true, true) => watch
                    .bound(per_attempt, inner.answer_timeout, run)
                    .await
                    .unwrap_or_else(|(bytes, idle)| {
                        Verdict::Below(Failure::Stalled { bytes, idle })
                    }),
                (true, false) => tokio::time::timeout(per_attempt, run)
                    .await
                    .unwrap_or(Verdict::Below(Failure::Timeout)),
            }
        };
        // The deadline bounds a streamed transfer in total too (its own bound is on idleness).
        Ok(match deadline {
            Some(at) => tokio::time::timeout_at(at, attempt)
                .await
                .unwrap_or(Verdict::Below(Failure::Timeout)),
            None => attempt.await,
        })
    }
}

/// Reads at most `limit` bytes of the body; the flag says whether more was left unread (the
/// rest is never downloaded: dropping the answer drops the connection).
pub(crate) async fn read_capped(
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
