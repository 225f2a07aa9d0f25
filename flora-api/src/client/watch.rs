//! Progress of one attempt's streamed bytes, which bounds it: a transfer fails only when
//! no byte moved for the idle timeout, or, once a request body left whole, when its answer
//! took longer than the answer timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use http_body::Body as _;
use tokio::time::Instant;

/// Progress of one attempt's streamed bytes: when the last one moved, and how many moved.
/// Requests that do not stream watch nothing (and allocate nothing).
#[derive(Clone)]
pub(crate) struct Watch(Option<Arc<Mutex<Moved>>>);

struct Moved {
    at: Instant,
    bytes: u64,
    /// The request body left whole: what follows is the wait for the answer.
    sent: bool,
}

impl Watch {
    pub(super) fn new() -> Self {
        Watch(Some(Arc::new(Mutex::new(Moved {
            at: Instant::now(),
            bytes: 0,
            sent: false,
        }))))
    }

    /// For a request that does not stream.
    pub(super) fn nothing() -> Self {
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

    /// The request body's last byte left now.
    fn sent(&self) {
        self.read(|m| {
            if !m.sent {
                m.sent = true;
                m.at = Instant::now();
            }
        });
    }

    fn bytes(&self) -> u64 {
        self.read(|m| m.bytes).unwrap_or(0)
    }

    /// Runs `fut` until it ends or no byte moved for `idle` (for `answer`, at least, once
    /// the request body left whole: the host may still be reading what the OS buffered);
    /// then `Err((bytes moved, the bound that passed))`.
    pub(super) async fn bound<F: Future>(
        &self,
        idle: Duration,
        answer: Duration,
        fut: F,
    ) -> Result<F::Output, (u64, Duration)> {
        let mut fut = std::pin::pin!(fut);
        let bound = |m: &Moved| if m.sent { idle.max(answer) } else { idle };
        loop {
            // Too far away to represent (or nothing watched): no limit.
            let Some(limit) = self
                .read(|m| {
                    let b = bound(m);
                    m.at.checked_add(b)
                })
                .flatten()
            else {
                return Ok(fut.await);
            };
            tokio::select! {
                biased;
                out = &mut fut => return Ok(out),
                () = tokio::time::sleep_until(limit) => {
                    let passed = self.read(|m| (m.at + bound(m) <= Instant::now()).then(|| bound(m)));
                    if let Some(Some(bound)) = passed {
                        return Err((self.bytes(), bound));
                    }
                }
            }
        }
    }
}

/// Reports the request body's bytes to `watch` as the connector takes them (multipart framing
/// included: every byte that moves is progress). `Content-Length`, set by the exchange, stays.
/// The body has left whole at its end, or once `Content-Length` bytes moved (a connection
/// may not ask for the end of a body whose length it knows).
pub(super) fn watch_body(request: &mut reqwest::Request, watch: &Watch) {
    let Some(mut body) = request.body_mut().take() else {
        return;
    };
    let length = request
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let watch = watch.clone();
    let mut moved = 0u64;
    let frames = futures_util::stream::poll_fn(move |cx| {
        loop {
            let frame = match std::task::ready!(Pin::new(&mut body).poll_frame(cx)) {
                None => {
                    watch.sent();
                    return Poll::Ready(None);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => frame,
            };
            // Trailers carry no bytes of the body: look at the next frame.
            if let Ok(data) = frame.into_data() {
                watch.moved(data.len() as u64);
                moved += data.len() as u64;
                if length.is_some_and(|l| moved >= l) {
                    watch.sent();
                }
                return Poll::Ready(Some(Ok(data)));
            }
        }
    });
    *request.body_mut() = Some(reqwest::Body::wrap_stream(frames));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_watch_bounds_idle_time_not_total_time_nor_the_wait_after_the_body() {
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
        assert_eq!(watch.bound(idle, idle, steady).await, Ok("done"));

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
        assert_eq!(watch.bound(idle, idle, stalls).await, Err((3, idle)));
        assert_eq!(start.elapsed(), Duration::from_millis(900) + idle);

        // The body left whole, then the host reads on for 5 s before answering: a wait for
        // the answer, bounded by `answer` (10 s), not the idle second.
        let watch = Watch::new();
        let w = watch.clone();
        let answered_late = async move {
            w.moved(3);
            w.sent();
            tokio::time::sleep(Duration::from_secs(5)).await;
            "answered"
        };
        let answer = Duration::from_secs(10);
        assert_eq!(
            watch.bound(idle, answer, answered_late).await,
            Ok("answered")
        );
        // ... and a host that never answers fails once `answer` passed, saying so.
        let watch = Watch::new();
        let w = watch.clone();
        let start = Instant::now();
        let never = async move {
            w.moved(3);
            w.sent();
            std::future::pending::<()>().await;
        };
        assert_eq!(watch.bound(idle, answer, never).await, Err((3, answer)));
        assert_eq!(start.elapsed(), answer);

        // No limit at all for a duration too large to add.
        let watch = Watch::new();
        assert_eq!(
            watch.bound(Duration::MAX, Duration::MAX, async { 7 }).await,
            Ok(7)
        );
    }
}
