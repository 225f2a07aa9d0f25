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

/// A duration as people read it in a message: `250 ms`, `1.5 s`, `3 min 20 s`, `2 h 5 min`
/// (never `1.001324604s`).
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let tenths = (ms % 1000) / 100;
        return if tenths == 0 {
            format!("{secs} s")
        } else {
            format!("{secs}.{tenths} s")
        };
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let ms = Duration::from_millis;
        assert_eq!(human(ms(250)), "250 ms");
        assert_eq!(human(ms(1001)), "1 s");
        assert_eq!(human(ms(1_500)), "1.5 s");
        assert_eq!(human(ms(200_000)), "3 min 20 s");
        assert_eq!(human(Duration::from_secs(600)), "10 min");
        assert_eq!(human(Duration::from_secs(7_500)), "2 h 5 min");
        assert_eq!(human(Duration::from_secs(7_200)), "2 h");
        assert!(!human(Duration::MAX).is_empty());
    }

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
