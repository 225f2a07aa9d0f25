//! Duration arithmetic that saturates instead of panicking.
//!
//! Durations here come from configuration and from server headers, so any value is possible:
//! `Duration::mul_f64`, `from_secs_f64` and `Instant + Duration` all panic on overflow.

use std::time::Duration;

/// `secs` seconds as a `Duration`: negative or NaN is zero, too large is `Duration::MAX`.
pub(crate) fn from_secs_saturating(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// `d × factor`, saturating at `Duration::MAX` (and zero for a negative or NaN factor).
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    from_secs_saturating(d.as_secs_f64() * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_panicking() {
        assert_eq!(from_secs_saturating(1e30), Duration::MAX);
        assert_eq!(from_secs_saturating(f64::INFINITY), Duration::MAX);
        assert_eq!(from_secs_saturating(f64::NAN), Duration::ZERO);
        assert_eq!(from_secs_saturating(-5.0), Duration::ZERO);
        assert_eq!(from_secs_saturating(1.5), Duration::from_millis(1500));
        assert_eq!(scale(Duration::MAX, 1.5), Duration::MAX);
        assert!(scale(Duration::MAX, 0.75) < Duration::MAX);
        assert_eq!(scale(Duration::from_secs(2), 1.5), Duration::from_secs(3));
    }
}
