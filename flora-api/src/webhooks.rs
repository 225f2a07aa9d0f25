//! Verifying `callback_url` deliveries.
//!
//! FLORA signs each delivery with `Flora-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! the hex HMAC-SHA256 of `"{t}.{raw body}"` under the workspace webhook secret (`whsec_…`).
//! Verify the raw bytes you received: never re-serialise the JSON first.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "flora-signature";
/// How far the signed timestamp may be from now by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No `Flora-Signature` header.
    #[error("missing Flora-Signature header")]
    MissingHeader,
    /// The header is not `t=…,v1=…`.
    #[error("malformed Flora-Signature header: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance (a replay, or a wrong clock).
    #[error("signature timestamp is {age_secs} s away from now, beyond the tolerance")]
    Expired {
        /// Distance from now, in seconds.
        age_secs: u64,
    },
    /// No `v1` value matches: wrong secret, or the body was altered.
    #[error("no signature matches: wrong secret, or the body was changed in transit")]
    Mismatch,
    /// The secret given to `verify` is empty or blank, which would accept forged deliveries.
    #[error(
        "the webhook secret is empty; pass the workspace's `whsec_…` secret (a missing \
         environment variable?)"
    )]
    EmptySecret,
}

/// Verifies a delivery against `secret` with the given timestamp tolerance
/// (`Duration::ZERO` disables the timestamp check; use [`DEFAULT_TOLERANCE`] normally).
///
/// ```
/// use flora_api::webhooks;
/// let headers = reqwest::header::HeaderMap::new();
/// let err = webhooks::verify(b"{}", &headers, "whsec_x", webhooks::DEFAULT_TOLERANCE);
/// assert_eq!(err, Err(webhooks::WebhookError::MissingHeader));
/// ```
pub fn verify(
    raw_body: &[u8],
    headers: &HeaderMap,
    secret: &str,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    verify_at(raw_body, headers, secret, tolerance, SystemTime::now())
}

/// [`verify`] with an explicit "now", for tests and replays.
pub fn verify_at(
    raw_body: &[u8],
    headers: &HeaderMap,
    secret: &str,
    tolerance: Duration,
    now: SystemTime,
) -> Result<(), WebhookError> {
    // HMAC accepts any key, the empty one included: a blank secret would verify bodies
    // anyone can sign.
    if secret.trim().is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    let header = headers
        .get(SIGNATURE_HEADER)
        .ok_or(WebhookError::MissingHeader)?
        .to_str()
        .map_err(|_| WebhookError::Malformed("not ASCII"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "t" => timestamp = Some(v.trim()),
            "v1" => signatures.push(v.trim()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(WebhookError::Malformed("no t= timestamp"))?;
    let t_secs: u64 = t
        .parse()
        .map_err(|_| WebhookError::Malformed("t= is not a whole number of seconds"))?;
    if signatures.is_empty() {
        return Err(WebhookError::Malformed("no v1= signature"));
    }
    if !tolerance.is_zero() {
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let age = now_secs.abs_diff(t_secs);
        if age > tolerance.as_secs() {
            return Err(WebhookError::Expired { age_secs: age });
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| WebhookError::Malformed("unusable secret"))?;
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    for sig in signatures {
        let Ok(bytes) = hex::decode(sig) else {
            continue;
        };
        // `verify_slice` compares in constant time.
        if mac.clone().verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(WebhookError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"id":"whd_1","type":"run.completed","data":{"run_id":"run_1"}}"#;

    fn sign(t: u64, body: &[u8], secret: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(v).unwrap());
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn valid_signature_passes() {
        let t = 1_733_952_000;
        let h = headers(&format!("t={t},v1={}", sign(t, BODY, SECRET)));
        assert_eq!(
            verify_at(BODY, &h, SECRET, DEFAULT_TOLERANCE, at(t + 10)),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_or_altered_body_fails() {
        let t = 1_733_952_000;
        let h = headers(&format!("t={t},v1={}", sign(t, BODY, "whsec_other")));
        assert_eq!(
            verify_at(BODY, &h, SECRET, DEFAULT_TOLERANCE, at(t)),
            Err(WebhookError::Mismatch)
        );
        let h = headers(&format!("t={t},v1={}", sign(t, BODY, SECRET)));
        assert_eq!(
            verify_at(b"{}", &h, SECRET, DEFAULT_TOLERANCE, at(t)),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn expired_signature_fails_unless_tolerance_disabled() {
        let t = 1_733_952_000;
        let h = headers(&format!("t={t},v1={}", sign(t, BODY, SECRET)));
        assert_eq!(
            verify_at(BODY, &h, SECRET, DEFAULT_TOLERANCE, at(t + 301)),
            Err(WebhookError::Expired { age_secs: 301 })
        );
        assert_eq!(
            verify_at(BODY, &h, SECRET, DEFAULT_TOLERANCE, at(t - 301)),
            Err(WebhookError::Expired { age_secs: 301 })
        );
        assert_eq!(
            verify_at(BODY, &h, SECRET, Duration::ZERO, at(t + 10_000)),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_v1_values_may_match() {
        let t = 1_733_952_000;
        let good = sign(t, BODY, SECRET);
        let h = headers(&format!(
            "t={t}, v1={}, v1=zz, v0=abc, v1={good}",
            "00".repeat(32)
        ));
        assert_eq!(
            verify_at(BODY, &h, SECRET, DEFAULT_TOLERANCE, at(t)),
            Ok(())
        );
    }

    #[test]
    fn empty_or_blank_secret_is_refused_even_for_a_matching_signature() {
        let t = 1_733_952_000;
        for secret in ["", " ", "\t\n"] {
            let h = headers(&format!("t={t},v1={}", sign(t, BODY, secret)));
            assert_eq!(
                verify_at(BODY, &h, secret, DEFAULT_TOLERANCE, at(t)),
                Err(WebhookError::EmptySecret),
                "{secret:?}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_named() {
        let now = at(1_733_952_000);
        for (h, want) in [
            ("v1=abc", "no t="),
            ("t=abc,v1=00", "whole number"),
            ("t=1733952000", "no v1="),
        ] {
            let e = verify_at(BODY, &headers(h), SECRET, DEFAULT_TOLERANCE, now).unwrap_err();
            assert!(e.to_string().contains(want), "{h}: {e}");
        }
    }
}
