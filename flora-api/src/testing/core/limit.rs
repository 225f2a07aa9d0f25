//! The fake's rate limit, in the shape a test chose (fixed window, token bucket, sliding
//! window).

use super::Core;

impl Core {
    /// The rate limit's verdict for one API request: the `Retry-After` header to send when
    /// over it (the header a limiter of that shape sends).
    pub(super) fn over_limit(&self) -> Option<(&'static str, String)> {
        self.with(|st| {
            let limit = st.rate_limit?;
            let now = std::time::Instant::now();
            let second = std::time::Duration::from_secs(1);
            let refused = match st.limiter {
                super::super::Limiter::FixedWindow => {
                    let (start, count) = match st.rate_window {
                        Some((start, count)) if now.duration_since(start) < second => {
                            (start, count)
                        }
                        _ => (now, 0),
                    };
                    if count >= limit {
                        st.rate_window = Some((start, count));
                        let left = second.saturating_sub(now.duration_since(start));
                        Some(("retry-after-ms", left.as_millis().max(1).to_string()))
                    } else {
                        st.rate_window = Some((start, count + 1));
                        None
                    }
                }
                super::super::Limiter::TokenBucket => {
                    // `limit` tokens, refilled at `limit` a second; a request takes one.
                    let (tokens, last) = st.bucket.unwrap_or((f64::from(limit), now));
                    let tokens = (tokens
                        + now.duration_since(last).as_secs_f64() * f64::from(limit))
                    .min(f64::from(limit));
                    if tokens >= 1.0 {
                        st.bucket = Some((tokens - 1.0, now));
                        None
                    } else {
                        st.bucket = Some((tokens, now));
                        Some(("retry-after", "1".to_owned()))
                    }
                }
                super::super::Limiter::SlidingWindow => {
                    // At most `limit` requests in any second.
                    while st
                        .recent
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= second)
                    {
                        st.recent.pop_front();
                    }
                    if st.recent.len() >= limit as usize {
                        let oldest = st.recent.front().copied().unwrap_or(now);
                        let left = second.saturating_sub(now.duration_since(oldest));
                        Some(("retry-after-ms", left.as_millis().max(1).to_string()))
                    } else {
                        st.recent.push_back(now);
                        None
                    }
                }
            };
            if refused.is_some() {
                st.rate_limited += 1;
            }
            refused
        })
    }
}
