//! One adaptive window for every request a batch makes (creates, polls, uploads): AIMD,
//! starting at 4, +1 after as many successes in a row as the window is wide, halved on a
//! 429 or 503, never below 1 or above the maximum. A 429 also pauses *every* request until
//! the server's `Retry-After` has passed: with fast answers a small window still sends many
//! requests a second, so the wait must be shared, not only the failing request's.
//!
//! And it paces: a window bounds requests in flight, not requests a second, and against a
//! limiter that counts a sliding second (or refills a bucket) a burst after each pause is
//! refused again. From the first 429 on, requests start at most at a measured rate: 90 % of
//! what started in the second before the refusal, raised by a twentieth after each second
//! of successes, lowered again at the next refusal.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    streak: usize,
    /// No request leaves before this.
    cooldown_until: Option<tokio::time::Instant>,
    /// Requests started in the last second, oldest first.
    started: std::collections::VecDeque<tokio::time::Instant>,
    /// At most this many requests start in any second (from the first 429 on).
    rate: Option<f64>,
    /// Successes since the rate last rose.
    paced_successes: usize,
}

#[derive(Debug)]
pub(crate) struct Window {
    state: Mutex<State>,
    notify: Notify,
    max: usize,
    throttled: AtomicU64,
}

/// A place in the window; say how the request went, or drop it (neutral).
pub(crate) struct Slot<'a> {
    window: &'a Window,
    released: bool,
}

impl Window {
    pub(crate) fn new(max: usize) -> Window {
        let max = max.max(1);
        Window {
            state: Mutex::new(State {
                limit: 4.min(max),
                in_flight: 0,
                streak: 0,
                cooldown_until: None,
                started: std::collections::VecDeque::new(),
                rate: None,
                paced_successes: 0,
            }),
            notify: Notify::new(),
            max,
            throttled: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn acquire(&self) -> Slot<'_> {
        loop {
            let cooldown = self.lock().cooldown_until;
            if let Some(until) = cooldown
                && until > tokio::time::Instant::now()
            {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let notified = self.notify.notified();
            let paced = {
                let mut s = self.lock();
                let now = tokio::time::Instant::now();
                let second = std::time::Duration::from_secs(1);
                while s
                    .started
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= second)
                {
                    s.started.pop_front();
                }
                let over_rate = s
                    .rate
                    .is_some_and(|r| s.started.len() as f64 >= r.floor().max(1.0));
                if over_rate {
                    // The next start once the oldest of the second leaves it.
                    s.started.front().map(|t| *t + second)
                } else if s.in_flight < s.limit {
                    s.in_flight += 1;
                    s.started.push_back(now);
                    // Kept for the measured rate even before pacing starts (bounded).
                    if s.started.len() > 10_000 {
                        s.started.pop_front();
                    }
                    return Slot {
                        window: self,
                        released: false,
                    };
                } else {
                    None
                }
            };
            match paced {
                Some(at) => tokio::time::sleep_until(at).await,
                None => notified.await,
            }
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.lock().limit
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    pub(crate) fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Pauses every request for `wait` (a 429's `Retry-After`).
    pub(crate) fn cool_down(&self, wait: std::time::Duration) {
        // A wait too long to represent is a day: a stop (or a resume) ends it sooner.
        let now = tokio::time::Instant::now();
        let until = now
            .checked_add(wait)
            .unwrap_or(now + std::time::Duration::from_secs(86_400));
        let mut s = self.lock();
        if s.cooldown_until.is_none_or(|u| u < until) {
            s.cooldown_until = Some(until);
        }
    }

    fn release(&self, verdict: Option<bool>) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        match verdict {
            Some(true) => {
                s.streak += 1;
                // Once a 429 was seen the limit is near: probe it half as fast.
                let needed = if self.throttled.load(Ordering::Relaxed) > 0 {
                    2 * s.limit
                } else {
                    s.limit
                };
                if s.streak >= needed {
                    s.limit = (s.limit + 1).min(self.max);
                    s.streak = 0;
                }
                if let Some(rate) = s.rate {
                    s.paced_successes += 1;
                    if s.paced_successes as f64 >= rate {
                        s.rate = Some(rate + (rate / 20.0).max(1.0));
                        s.paced_successes = 0;
                    }
                }
            }
            Some(false) => {
                s.limit = (s.limit / 2).max(1);
                s.streak = 0;
                // What got through in the second before the refusal, a little less.
                let now = tokio::time::Instant::now();
                let second = std::time::Duration::from_secs(1);
                let recent = s
                    .started
                    .iter()
                    .filter(|t| now.duration_since(**t) < second)
                    .count() as f64;
                let measured = (recent * 0.9).max(1.0);
                s.rate = Some(s.rate.map_or(measured, |r| r.min(measured)).max(1.0));
                s.paced_successes = 0;
                self.throttled.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
        drop(s);
        self.notify.notify_waiters();
    }
}

impl Slot<'_> {
    pub(crate) fn success(mut self) {
        self.released = true;
        self.window.release(Some(true));
    }

    pub(crate) fn throttled(mut self) {
        self.released = true;
        self.window.release(Some(false));
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.window.release(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_after_successes_and_halves_on_throttling() {
        let w = Window::new(10);
        assert_eq!(w.limit(), 4);
        for _ in 0..4 {
            w.acquire().await.success();
        }
        assert_eq!(w.limit(), 5);
        w.acquire().await.throttled();
        assert_eq!(w.limit(), 2);
        w.acquire().await.throttled();
        w.acquire().await.throttled();
        assert_eq!(w.limit(), 1, "floor 1");
        assert_eq!(w.throttled(), 3);
        let a = w.acquire().await;
        assert_eq!(w.in_flight(), 1);
        drop(a);
        assert_eq!(w.in_flight(), 0);
        let small = Window::new(2);
        assert_eq!(small.limit(), 2, "capped by the maximum");
    }
}
