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
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use http_body::Body as _;

use reqwest::header::{AUTHORIZATION, USER_AGENT};
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use super::{Client, USER_AGENT as UA};
use crate::connector::Origin;
use crate::error::Error;
use crate::policy::{MAX_RETRY_AFTER, MIN_RATE_LIMIT_WAIT};
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
    /// A streamed transfer moved no byte for the per-attempt timeout, after `bytes` bytes.
    Stalled {
        /// Bytes moved in the attempt before it stalled.
        bytes: u64,
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
        /// A 429 without a hint still waits at least [`MIN_RATE_LIMIT_WAIT`].
        rate_limited: bool,
    },
    /// Failed below HTTP; retried like a connection error.
    Below(Failure),
    /// Not worth another attempt.
    Fail(Error),
}

impl<T> Verdict<T> {
    /// A failed answer the status says is worth retrying.
    pub(crate) fn retry(error: Error) -> Self {
        Verdict::Retry {
            error,
            hint: None,
            rate_limited: false,
        }
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
        Failure::Stalled { bytes } => Error::Stalled {
            endpoint,
            host,
            attempts,
            bytes,
            idle: per_attempt,
        },
    }
}

/// Progress of one attempt's streamed bytes: when the last one moved, and how many moved.
/// Requests that do not stream watch nothing (and allocate nothing).
#[derive(Clone)]
pub(crate) struct Watch(Option<Arc<Mutex<Moved>>>);

struct Moved {
    at: Instant,
    bytes: u64,
}

impl Watch {
    fn new() -> Self {
        Watch(Some(Arc::new(Mutex::new(Moved {
            at: Instant::now(),
            bytes: 0,
        }))))
    }

    /// For a request that does not stream.
    fn nothing() -> Self {
        Watch(None)
    }

    /// `f` on the counters; `None` when nothing is watched.
    fn read<R>(&self, f: impl FnOnce(&mut Moved) -> R) -> Option<R> {
        // A panic elsewhere while holding the lock leaves the counters usable.
        let mut moved = self.0.as_ref()?.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut moved))
    }

    /// `n` more bytes moved now.
    pub(crate) fn moved(&self, n: u64) {
        self.read(|m| {
            m.at = Instant::now();
            m.bytes += n;
        });
    }

    fn bytes(&self) -> u64 {
        self.read(|m| m.bytes).unwrap_or(0)
    }

    /// Runs `fut` until it ends or no byte moved for `idle`; then `Err(bytes moved)`.
    async fn bound<F: Future>(&self, idle: Duration, fut: F) -> Result<F::Output, u64> {
        let mut fut = std::pin::pin!(fut);
        loop {
            // Too far away to represent (or nothing watched): no limit.
            let Some(limit) = self.read(|m| m.at.checked_add(idle)).flatten() else {
                return Ok(fut.await);
            };
            tokio::select! {
                biased;
                out = &mut fut => return Ok(out),
                () = tokio::time::sleep_until(limit) => {
                    if self.read(|m| m.at + idle <= Instant::now()).unwrap_or(false) {
                        return Err(self.bytes());
                    }
                }
            }
        }
    }
}

impl Client {
    /// Runs `exchange` to its end: attempts, judged answers, retries. The exchange keeps its
    /// own state across attempts (a download's offset).
    pub(crate) async fn exchange<E: Exchange>(&self, exchange: &mut E) -> Result<E::Output, Error> {
        let inner = &self.inner;
        let endpoint = exchange.endpoint();
        let mut delays = inner.retry.delays();
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
            let verdict = match self.attempt(exchange, &span).instrument(span.clone()).await {
                Ok(verdict) => verdict,
                Err(e) => return Err(scrub(e, exchange)),
            };
            let (hint, rate_limited, last) = match verdict {
                Verdict::Done(out) => return Ok(out),
                Verdict::Fail(e) => return Err(scrub(e, exchange)),
                Verdict::Retry {
                    error,
                    hint,
                    rate_limited,
                } => {
                    let error = scrub(error, exchange);
                    if hint.is_some_and(|h| h > MAX_RETRY_AFTER) {
                        // The server asked for a longer pause than we sleep through: say so now.
                        return Err(error);
                    }
                    (hint, rate_limited, error)
                }
                Verdict::Below(failure) => {
                    let refused = matches!(&failure, Failure::Connection(e) if e.is_connect());
                    if !refused {
                        exchange.answer_lost();
                    }
                    (
                        None,
                        false,
                        scrub(exchange.failed(failure, attempt, inner.timeout), exchange),
                    )
                }
            };
            let Some(delay) = delays.next() else {
                return Err(last);
            };
            let delay = match hint {
                Some(h) => h,
                None if rate_limited => delay.max(MIN_RATE_LIMIT_WAIT),
                None => delay,
            };
            tracing::debug!(parent: &span, ?delay, error = %last, "retrying {endpoint}");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: permit, request, send, answer, all within the attempt's time bound.
    async fn attempt<E: Exchange>(
        &self,
        exchange: &mut E,
        span: &tracing::Span,
    ) -> Result<Verdict<E::Output>, Error> {
        let inner = &self.inner;
        // Closed only if the client is dropped mid-call, which cannot happen here. Taken
        // before the body is built: a queued upload holds no file open and reads nothing.
        let _permit = inner.in_flight.acquire().await.ok();
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
        Ok(match (bounded, streams) {
            (false, _) => run.await,
            (true, true) => watch
                .bound(inner.timeout, run)
                .await
                .unwrap_or_else(|bytes| Verdict::Below(Failure::Stalled { bytes })),
            (true, false) => tokio::time::timeout(inner.timeout, run)
                .await
                .unwrap_or(Verdict::Below(Failure::Timeout)),
        })
    }
}

/// Reports the request body's bytes to `watch` as the connector takes them (multipart framing
/// included: every byte that moves is progress). `Content-Length`, set by the exchange, stays.
fn watch_body(request: &mut reqwest::Request, watch: &Watch) {
    let Some(mut body) = request.body_mut().take() else {
        return;
    };
    let watch = watch.clone();
    let frames = futures_util::stream::poll_fn(move |cx| {
        loop {
            let frame = match std::task::ready!(Pin::new(&mut body).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => frame,
            };
            // Trailers carry no bytes of the body: look at the next frame.
            if let Ok(data) = frame.into_data() {
                watch.moved(data.len() as u64);
                return Poll::Ready(Some(Ok(data)));
            }
        }
    });
    *request.body_mut() = Some(reqwest::Body::wrap_stream(frames));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_watch_bounds_idle_time_not_total_time() {
        let idle = Duration::from_secs(1);
        // Moves a byte every 0.5 s for 10 s: ten times the limit in total, never idle.
        let watch = Watch::new();
        let w = watch.clone();
        let steady = async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                w.moved(1);
            }
            "done"
        };
        assert_eq!(watch.bound(idle, steady).await, Ok("done"));

        // Moves 3 bytes, then nothing: ends one `idle` after the last byte.
        let watch = Watch::new();
        let w = watch.clone();
        let start = Instant::now();
        let stalls = async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                w.moved(1);
            }
            std::future::pending::<()>().await;
        };
        assert_eq!(watch.bound(idle, stalls).await, Err(3));
        assert_eq!(start.elapsed(), Duration::from_millis(900) + idle);

        // No limit at all for a duration too large to add.
        let watch = Watch::new();
        assert_eq!(watch.bound(Duration::MAX, async { 7 }).await, Ok(7));
    }
}
