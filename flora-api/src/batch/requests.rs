//! Every request of a batch goes through its adaptive window: a place taken, the outcome
//! told (a 429 or 503 narrows it and pauses everyone), retried while worth it.

use super::runner::Batch;
use super::window::Slot;
use crate::error::{Error, ErrorClass};
use crate::policy::Next;

impl Batch {
    /// One request in the window, tried again after [`pause`](Self::pause) until it succeeds
    /// or is not worth another attempt (its error then).
    pub(crate) async fn windowed<T, F, Fut>(&self, mut request: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0u32;
        loop {
            // `stop()` ends a wait for a place too (a cool-down after a 429 included).
            let slot = tokio::select! {
                () = self.abort.cancelled() => return Err(stopped()),
                slot = self.window.acquire() => slot,
            };
            match request().await {
                Ok(v) => {
                    slot.success();
                    return Ok(v);
                }
                Err(e) => {
                    attempt += 1;
                    if !self.pause(slot, &e, attempt).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// After a failed request: shrinks the window on 429/503 and sleeps; `false` when the
    /// error is not worth another attempt (or attempts ran out, or the batch was stopped).
    pub(crate) async fn pause(&self, slot: Slot<'_>, e: &Error, attempt: u32) -> bool {
        let class = e.class();
        let throttled = class == ErrorClass::Throttled;
        if throttled {
            slot.throttled();
        } else {
            drop(slot);
        }
        if !e.is_retryable() || self.abort.is_cancelled() {
            return false;
        }
        let policy = &self.options.retry;
        // A throttled request never runs out of attempts: the window is what adapts to it.
        let retry = if throttled { 1 } else { attempt };
        let delay = policy
            .delays()
            .nth(retry.saturating_sub(1) as usize)
            // Even a policy of no retries: the window adapts to a throttled request instead.
            .or_else(|| throttled.then_some(policy.backoff_min));
        let wait = match policy.next(class, e.retry_after(), delay) {
            Next::After(wait) => wait,
            // Longer than the policy sleeps through: everyone waits the longest it does.
            Next::TooLong => policy.max_retry_after,
            Next::Stop => return false,
        };
        if throttled {
            // Every request waits, not only this one.
            self.window.cool_down(wait);
        } else {
            // `stop()` ends the wait (and the caller's loop sees the stop).
            tokio::select! {
                () = self.abort.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
        }
        true
    }
}

/// What a request the batch's stop kept from leaving fails with.
fn stopped() -> Error {
    Error::InvalidInput("not sent: the batch was stopped (a resume sends it)".to_owned())
}
