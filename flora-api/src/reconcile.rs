//! Which listed run is a creation's, when its answer was lost and FLORA answers the repeated
//! key with 409 (no run id): a pure function of the run listing and what the caller knows
//! (a batch's journal; a single start's first attempt time). The lookup single runs and
//! batches share is `endpoints/recover.rs`.
//!
//! The span is in the server's own `created_at` values, bounded by runs the journal owns, so
//! no clock of this machine is compared with FLORA's (and the field's unit, undocumented,
//! does not matter):
//! - **from**: the latest `created_at` among runs whose ids were known here before the item's
//!   first POST left. Those were created before that POST, so before the item's run.
//! - **to** (one submission in flight only): the earliest `created_at` among runs of items
//!   whose first POST left after this item's; with one submission at a time, this item's
//!   POST had ended by then, so its run was created before theirs.
//!
//! Without an owned run before it (the batch's first items), `from` falls back to this
//! machine's clock, widened by [`SKEW_ALLOWANCE`]: a wider span can only make the answer
//! unclear (more candidates), never adopt another item's run.

use std::collections::HashSet;

use crate::wire::Run;

/// How far this machine's clock may be ahead of FLORA's for the fallback bound.
pub(crate) const SKEW_ALLOWANCE_SECS: f64 = 300.0;

/// What is known of one lost answer.
#[derive(Debug, Default)]
pub(crate) struct Known<'a> {
    /// Runs whose ids were known before the item's first POST left.
    pub before: HashSet<&'a str>,
    /// Runs of items whose first POST left after the item's (one submission in flight only).
    pub after: HashSet<&'a str>,
    /// The item's first POST, this machine's unix seconds: the fallback bound.
    pub sent_at: Option<f64>,
    /// When the creation was known to be over (its last answer), this machine's unix
    /// seconds: the fallback upper bound, widened like `sent_at`.
    pub over_at: Option<f64>,
    /// FLORA's clock minus this machine's, from an answer's `Date` (to the second): with it,
    /// the fallback bounds are widened by seconds, not by [`SKEW_ALLOWANCE_SECS`].
    pub clock_skew: Option<f64>,
}

/// How far the fallback bounds are widened when the skew was measured from a `Date` header:
/// its one-second resolution, and a second for the trip.
pub(crate) const MEASURED_SKEW_MARGIN_SECS: f64 = 2.0;

/// This machine's clock in unix seconds.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The server-time span the item's run was created in (bounds inclusive: equal timestamps
/// of a coarse clock stay candidates; owned runs are excluded separately).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    pub from: Option<f64>,
    pub to: Option<f64>,
}

impl Span {
    pub(crate) fn of(runs: &[Run], known: &Known<'_>) -> Span {
        let times = |set: &HashSet<&str>| -> Vec<f64> {
            runs.iter()
                .filter(|r| set.contains(r.run_id.as_str()))
                .filter_map(|r| r.created_at)
                .collect()
        };
        // This machine's clock, in the listing's unit (a value past 1e11 is milliseconds),
        // moved to FLORA's by the measured skew, widened by what is not known of it.
        let millis = runs.iter().filter_map(|r| r.created_at).any(|c| c > 1e11);
        let scale = if millis { 1000.0 } else { 1.0 };
        let (shift, margin) = match known.clock_skew {
            Some(skew) => (skew, MEASURED_SKEW_MARGIN_SECS),
            None => (0.0, SKEW_ALLOWANCE_SECS),
        };
        let from = times(&known.before)
            .into_iter()
            .reduce(f64::max)
            .or_else(|| {
                // No owned run before it: the first POST's time.
                Some((known.sent_at? + shift - margin) * scale)
            });
        let to = times(&known.after)
            .into_iter()
            .reduce(f64::min)
            .or_else(|| Some((known.over_at? + shift + 1.0 + margin) * scale));
        Span { from, to }
    }

    pub(crate) fn holds(&self, created_at: Option<f64>) -> bool {
        // A run without `created_at` cannot be placed: it stays a candidate (unclear, never
        // wrongly excluded).
        created_at
            .is_none_or(|c| self.from.is_none_or(|f| c >= f) && self.to.is_none_or(|t| c <= t))
    }
}

/// The unowned runs in the span: the item's run is one of them.
pub(crate) fn candidates(runs: &[Run], span: Span, owned: impl Fn(&str) -> bool) -> Vec<&str> {
    runs.iter()
        .filter(|r| span.holds(r.created_at) && !owned(&r.run_id))
        .map(|r| r.run_id.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, created_at: f64) -> Run {
        serde_json::from_value(
            serde_json::json!({"run_id": id, "status": "completed", "created_at": created_at}),
        )
        .unwrap()
    }

    fn known<'a>(before: &[&'a str], after: &[&'a str], sent_at: Option<f64>) -> Known<'a> {
        Known {
            before: before.iter().copied().collect(),
            after: after.iter().copied().collect(),
            sent_at,
            over_at: None,
            clock_skew: None,
        }
    }

    #[test]
    fn owned_runs_bound_the_span_in_server_time_whatever_this_clock_says() {
        // Server times in milliseconds; this machine's clock an hour off either way.
        let ms = |n: f64| 1_700_000_000_000.0 + n;
        let runs = [
            run("old_foreign", ms(1_000.0)),
            run("a", ms(2_000.0)),
            run("mine", ms(3_000.0)),
            run("c", ms(4_000.0)),
            run("later_foreign", ms(5_000.0)),
        ];
        for skew in [-3600.0, 3600.0] {
            let k = known(&["a"], &["c"], Some(1_700_000_000.0 + skew));
            let span = Span::of(&runs, &k);
            assert_eq!(
                span,
                Span {
                    from: Some(ms(2_000.0)),
                    to: Some(ms(4_000.0))
                }
            );
            let owned = |id: &str| id == "a" || id == "c";
            assert_eq!(candidates(&runs, span, owned), ["mine"]);
        }
    }

    #[test]
    fn without_an_upper_bound_later_foreign_runs_make_it_unclear() {
        let runs = [run("a", 2.0), run("mine", 3.0), run("foreign", 4.0)];
        let span = Span::of(&runs, &known(&["a"], &[], None));
        assert_eq!(candidates(&runs, span, |id| id == "a"), ["mine", "foreign"]);
    }

    #[test]
    fn without_an_owned_run_before_the_fallback_is_this_clock_widened() {
        // Seconds: the run created 100 s after the POST by this clock; a foreign run from
        // an hour before is outside; one from 4 minutes before is inside (unclear, safe).
        let sent = 1_700_000_000.0;
        let runs = [run("hour_old", sent - 3600.0), run("mine", sent + 100.0)];
        let span = Span::of(&runs, &known(&[], &[], Some(sent)));
        assert_eq!(candidates(&runs, span, |_| false), ["mine"]);
        let runs = [run("recent", sent - 240.0), run("mine", sent + 1.0)];
        let span = Span::of(&runs, &known(&[], &[], Some(sent)));
        assert_eq!(candidates(&runs, span, |_| false).len(), 2);
        // Milliseconds are recognised.
        let runs = [
            run("hour_old", (sent - 3600.0) * 1000.0),
            run("mine", (sent + 1.0) * 1000.0),
        ];
        let span = Span::of(&runs, &known(&[], &[], Some(sent)));
        assert_eq!(candidates(&runs, span, |_| false), ["mine"]);
    }

    #[test]
    fn a_run_without_created_at_stays_a_candidate() {
        let mut r = run("x", 1.0);
        r.created_at = None;
        let runs = [run("a", 2.0), r];
        let span = Span::of(&runs, &known(&["a"], &[], None));
        assert_eq!(candidates(&runs, span, |id| id == "a"), ["x"]);
    }
}
