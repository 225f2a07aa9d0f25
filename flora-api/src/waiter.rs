//! The one waiter, for anything FLORA finishes on its side (a run, an uploaded asset): a
//! schedule of pauses, a deadline that bounds the whole wait (each check with its retries,
//! and the pauses), and the rule that a check which failed transiently (a 503 burst, a
//! dropped connection, even after `send`'s retries) is not the thing failing: it is checked
//! again until the deadline. Callers say what a check is and what "ended" means.
//!
//! A batch watches its runs in rounds instead (`batch/watch.rs`), on the same `PollPolicy`.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// Why a wait ended without its result.
#[derive(Debug)]
pub(crate) enum Gave {
    /// The deadline passed.
    TimedOut {
        /// How long the wait lasted.
        waited: Duration,
    },
    /// A check failed in a way checking again cannot help.
    Failed(Error),
}

/// One wait in progress.
pub(crate) struct Waiter<D> {
    start: Instant,
    /// `None`: a deadline too far away to represent, i.e. none.
    end: Option<Instant>,
    delays: D,
    last_delay: Duration,
    what: &'static str,
}

impl<D: Iterator<Item = Duration>> Waiter<D> {
    /// A wait of at most `deadline` from now, pausing by `delays` before each check (a zero
    /// delay checks at once; when they run out, the last one repeats). `what` names a check
    /// in logs (`poll`, `asset check`).
    pub(crate) fn new(delays: D, deadline: Duration, what: &'static str) -> Self {
        let start = Instant::now();
        Waiter {
            start,
            end: start.checked_add(deadline),
            delays,
            last_delay: Duration::from_secs(1),
            what,
        }
    }

    /// When the wait began.
    pub(crate) fn started(&self) -> Instant {
        self.start
    }

    fn left(&self) -> Option<Duration> {
        self.end
            .map(|e| e.saturating_duration_since(Instant::now()))
    }

    fn timed_out(&self) -> Gave {
        Gave::TimedOut {
            waited: self.start.elapsed(),
        }
    }

    /// Pauses until the next check is due (never past the deadline).
    pub(crate) async fn pause(&mut self) -> Result<(), Gave> {
        let delay = self.delays.next().unwrap_or(self.last_delay);
        self.last_delay = delay;
        match self.left() {
            Some(left) if left.is_zero() => return Err(self.timed_out()),
            Some(left) => tokio::time::sleep(delay.min(left)).await,
            None => tokio::time::sleep(delay).await,
        }
        Ok(())
    }

    /// One check, given only what is left of the deadline: its value, or `None` when it
    /// failed transiently (check again after the next pause).
    pub(crate) async fn check<T>(
        &self,
        check: impl Future<Output = Result<T, Error>>,
    ) -> Result<Option<T>, Gave> {
        let checked = match self.left() {
            Some(left) if left.is_zero() => return Err(self.timed_out()),
            Some(left) => match tokio::time::timeout(left, check).await {
                Ok(checked) => checked,
                Err(_elapsed) => return Err(self.timed_out()),
            },
            None => check.await,
        };
        match checked {
            Ok(value) => Ok(Some(value)),
            // What is waited on goes on server-side: a failed check is not it failing.
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "{} failed; will try again", self.what);
                Ok(None)
            }
            Err(e) => Err(Gave::Failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Error {
        Error::InvalidInput("x".into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_its_deadline_pauses_included_and_checks_get_only_what_is_left() {
        let mut w = Waiter::new(
            std::iter::repeat(Duration::from_secs(4)),
            Duration::from_secs(10),
            "test",
        );
        let mut checks = 0;
        let gave = loop {
            if let Err(g) = w.pause().await {
                break g;
            }
            // A check that would take a minute is cut at the deadline.
            let slow = async {
                checks += 1;
                tokio::time::sleep(Duration::from_secs(if checks == 2 { 60 } else { 0 })).await;
                Ok::<_, Error>(())
            };
            if let Err(g) = w.check(slow).await {
                break g;
            }
        };
        assert!(matches!(gave, Gave::TimedOut { waited } if waited == Duration::from_secs(10)));
        assert_eq!(checks, 2, "checks at 4 s and 8 s; the second cut at 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_ends_the_wait_only_when_checking_again_cannot_help() {
        let w = Waiter::new(std::iter::empty(), Duration::MAX, "test");
        let retryable = Error::Timeout {
            endpoint: "GET /x".into(),
            host: "h".into(),
            attempts: 3,
            per_attempt: Duration::from_secs(1),
        };
        assert!(matches!(
            w.check(async { Err::<(), _>(retryable) }).await,
            Ok(None)
        ));
        assert!(matches!(
            w.check(async { Err::<(), _>(refused()) }).await,
            Err(Gave::Failed(Error::InvalidInput(_)))
        ));
        assert!(matches!(
            w.check(async { Ok::<_, Error>(7) }).await,
            Ok(Some(7))
        ));
    }
}
