//! Policy values: when to retry a request, how long to back off, when to poll a run.
//!
//! Values and pure functions only; the loop that applies them is `Client`'s one `send`
//! (`client/send.rs`), and the run wait is in `poll.rs`.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;

use crate::durations::{from_secs_saturating, scale};
use crate::error::ErrorClass;

/// The longest first wait an `estimated_seconds` buys: a run estimated at an hour is still
/// looked at after ten minutes (estimates are guesses; a run ending early is noticed).
pub(crate) const MAX_ESTIMATE_WAIT: Duration = Duration::from_secs(600);
/// Random share taken off each backoff delay (as the official SDKs do), so clients that failed
/// together do not retry together, and the configured maximum stays a maximum.
const JITTER: f64 = 0.25;

/// How a request is retried: how many times, how long to back off, how long a server may
/// ask us to wait, and a deadline over all attempts. Which failures are worth another
/// attempt is not a setting: it is the error's [`ErrorClass`] (throttled or transient).
///
/// Set it for a client ([`ClientBuilder::retry_policy`](crate::ClientBuilder::retry_policy),
/// [`Client::with_retry_policy`](crate::Client::with_retry_policy)) or for one run's start
/// ([`StartOptions::retry`](crate::StartOptions::retry)).
///
/// ```
/// use std::time::Duration;
/// use flora_api::RetryPolicy;
/// // Give up after 10 s in all, retrying at most 5 times, each attempt at most 3 s.
/// let patient = RetryPolicy::default()
///     .max_retries(5)
///     .attempt_timeout(Duration::from_secs(3))
///     .deadline(Duration::from_secs(10));
/// assert_eq!(patient.retries(), 5);
/// assert_eq!(RetryPolicy::none().retries(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) rate_limit_wait: Duration,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// 2 retries (3 attempts), backoff 0.5 s doubling to 8 s with jitter, a `Retry-After` up
    /// to 60 s slept through, a 429 without one waits at least 1 s, no overall deadline.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            rate_limit_wait: Duration::from_secs(1),
            attempt_timeout: None,
            deadline: None,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again after this long.
    After(Duration),
    /// The server asked for a longer pause than the policy sleeps through (its
    /// `Retry-After`, kept in the error): stop now and say so.
    TooLong,
    /// Not worth another attempt, or none left.
    Stop,
}

impl RetryPolicy {
    /// One attempt, no retry: for a caller that owns the retrying (a batch's window).
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }
    /// Retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// The retries after the first attempt.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }
    /// Exponential backoff bounds when the server gives no `Retry-After` (the smaller is
    /// taken as the first delay, whichever order they come in).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.min(max);
        self.backoff_max = max.max(min);
        self
    }
    /// The longest `Retry-After` slept through; a longer one ends the retries at once (the
    /// error keeps the hint, [`ApiError::retry_after`](crate::ApiError::retry_after)).
    /// Sleeping for minutes inside a call surprises callers, and retrying sooner than asked
    /// only collects more refusals.
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }
    /// The least a 429 without `Retry-After` waits (above the backoff).
    pub fn rate_limit_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_wait = wait;
        self
    }
    /// Bounds each attempt by this instead of the client's
    /// [`timeout`](crate::ClientBuilder::timeout).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }
    /// Bounds all attempts together, waits between them included: no attempt starts, and
    /// none goes on, past it (a run creation cut short is then one whose answer was lost,
    /// recovered through its idempotency key as any other).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The delays before each retry, in order; as many as `max_retries`.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        backoff(self.backoff_min, self.backoff_max, self.max_retries)
    }

    /// What to do after a failed attempt that is worth another (its class retries, or its
    /// request's own judge said so): `class` tells a throttled one, `hint` is the server's
    /// `Retry-After`, `delay` the backoff this retry would take (the next of
    /// [`delays`](Self::delays); `None` when they ran out).
    pub(crate) fn next(
        &self,
        class: ErrorClass,
        hint: Option<Duration>,
        delay: Option<Duration>,
    ) -> Next {
        if hint.is_some_and(|h| h > self.max_retry_after) {
            return Next::TooLong;
        }
        let Some(delay) = delay else {
            return Next::Stop;
        };
        Next::After(match hint {
            Some(h) => h,
            None if class == ErrorClass::Throttled => delay.max(self.rate_limit_wait),
            None => delay,
        })
    }
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

/// When to poll a run and when to give up.
///
/// The default polls first after 2 s, then every 2 s growing by 1.5× to at most 5 s
/// (the 2–5 s FLORA recommends), and gives up after 30 min.
///
/// ```
/// use std::time::Duration;
/// let fast = flora_api::PollPolicy::default()
///     .initial_delay(Duration::from_millis(10))
///     .interval(Duration::from_millis(10))
///     .max_interval(Duration::from_millis(50))
///     .deadline(Duration::from_secs(5));
/// assert_eq!(fast.delays().take(3).count(), 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    pub(crate) initial_delay: Duration,
    pub(crate) interval: Duration,
    pub(crate) max_interval: Duration,
    pub(crate) multiplier: f64,
    pub(crate) deadline: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial_delay: Duration::from_secs(2),
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(5),
            multiplier: 1.5,
            deadline: Duration::from_secs(30 * 60),
        }
    }
}

impl PollPolicy {
    /// Wait before the first poll.
    pub fn initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }
    /// Wait between the first and second poll; later waits grow from here.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// The longest wait between polls.
    pub fn max_interval(mut self, d: Duration) -> Self {
        self.max_interval = d;
        self
    }
    /// Growth factor of the wait per poll (values below 1 are treated as 1).
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = m;
        self
    }
    /// Overall limit of one `wait()`, poll requests and their retries included. A deadline
    /// too far away to represent (e.g. `Duration::MAX`) means "no deadline".
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }
    /// The overall limit of one `wait()`.
    pub fn deadline_duration(&self) -> Duration {
        self.deadline
    }

    /// The waits before each poll when FLORA estimated the run ends `left` from now: the
    /// first poll waits for the estimate (at least the initial delay, at most
    /// [`MAX_ESTIMATE_WAIT`] and half the deadline), then polls follow the usual schedule.
    pub(crate) fn delays_after(
        &self,
        left: Option<Duration>,
    ) -> impl Iterator<Item = Duration> + use<> {
        let mut delays = self.delays();
        let first = delays.next().unwrap_or(self.initial_delay);
        let first = left.map_or(first, |l| l.min(self.estimate_cap()).max(first));
        std::iter::once(first).chain(delays)
    }

    /// The longest first wait an estimate buys: [`MAX_ESTIMATE_WAIT`], and within half the
    /// deadline, so a wait always gets to poll before it gives up (a batch's runs too).
    pub(crate) fn estimate_cap(&self) -> Duration {
        MAX_ESTIMATE_WAIT.min(self.deadline / 2)
    }

    /// The waits before each poll, in order (endless).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let factor = if self.multiplier.is_finite() && self.multiplier > 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let max = self.max_interval.max(Duration::from_millis(1));
        let first = self.initial_delay;
        let mut next = self.interval.min(max);
        std::iter::once(first).chain(std::iter::from_fn(move || {
            let now = next;
            next = scale(next, factor).min(max);
            Some(now)
        }))
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
    fn the_next_wait_is_the_servers_hint_else_the_backoff_and_a_429_waits_at_least_its_least() {
        let p = RetryPolicy::default();
        let d = Some(Duration::from_millis(700));
        let secs = Duration::from_secs;
        assert_eq!(
            p.next(ErrorClass::Transient, None, d),
            Next::After(Duration::from_millis(700))
        );
        assert_eq!(p.next(ErrorClass::Throttled, None, d), Next::After(secs(1)));
        assert_eq!(
            p.next(ErrorClass::Throttled, Some(secs(3)), d),
            Next::After(secs(3))
        );
        assert_eq!(
            p.next(ErrorClass::Throttled, Some(secs(61)), d),
            Next::TooLong
        );
        assert_eq!(
            p.next(ErrorClass::Transient, None, None),
            Next::Stop,
            "no retry left"
        );
        let slow = p.rate_limit_wait(secs(5)).max_retry_after(secs(90));
        assert_eq!(
            slow.next(ErrorClass::Throttled, None, d),
            Next::After(secs(5))
        );
        assert_eq!(
            slow.next(ErrorClass::Throttled, Some(secs(61)), d),
            Next::After(secs(61))
        );
        assert_eq!(RetryPolicy::none().delays().count(), 0);
        assert_eq!(p.max_retries(4).delays().count(), 4);
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
    fn default_policy_polls_at_most_nine_times_in_thirty_seconds() {
        let mut t = Duration::ZERO;
        let mut polls = 0;
        for d in PollPolicy::default().delays() {
            t += d;
            if t > Duration::from_secs(30) {
                break;
            }
            polls += 1;
        }
        assert!(polls <= 9, "{polls}");
        let first: Vec<_> = PollPolicy::default().delays().take(5).collect();
        assert_eq!(first[0], Duration::from_secs(2));
        assert_eq!(first[4], Duration::from_secs(5));
    }

    #[test]
    fn an_estimate_delays_only_the_first_poll_within_bounds() {
        let p = PollPolicy::default();
        let d = |left: Option<u64>| -> Vec<Duration> {
            p.delays_after(left.map(Duration::from_secs))
                .take(3)
                .collect()
        };
        let s = Duration::from_secs;
        assert_eq!(d(None), vec![s(2), s(2), s(3)]);
        assert_eq!(d(Some(30)), vec![s(30), s(2), s(3)]);
        // Never sooner than the policy's first wait, never later than the cap.
        assert_eq!(d(Some(0))[0], s(2));
        assert_eq!(d(Some(7200))[0], MAX_ESTIMATE_WAIT);
        let short = PollPolicy::default().deadline(Duration::from_secs(60));
        assert_eq!(
            short.delays_after(Some(s(45))).next(),
            Some(s(30)),
            "half the deadline"
        );
    }

    #[test]
    fn odd_multipliers_do_not_break_the_schedule() {
        for m in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let p = PollPolicy::default().multiplier(m);
            let d: Vec<_> = p.delays().take(4).collect();
            assert!(d.iter().all(|d| *d <= Duration::from_secs(5)), "{m}: {d:?}");
        }
    }
}
