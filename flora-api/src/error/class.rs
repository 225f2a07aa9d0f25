//! What an error means for the caller, decided once: from the HTTP status and FLORA's error
//! code to an [`ErrorClass`]. The client's retries, a batch's window and refusals, floret's
//! exit codes and the fake's error codes all read this table; a new retryable status is one
//! row here.

use reqwest::StatusCode;

/// What an error means for the caller: whether to try again, slow down, stop, or change
/// something first. [`Error::class`](crate::Error::class) gives it for any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Too many requests, or the service is overloaded (429, 503): wait (its `Retry-After`
    /// when given) and send less; everything sharing the limit should slow down too.
    Throttled,
    /// This attempt failed on the way or on the server (408, 500, 502, 504, a connection
    /// that broke, a timeout): the same request again may succeed.
    Transient,
    /// The key is missing, wrong, revoked, or not allowed this (401, 403): nothing succeeds
    /// until it is fixed.
    Auth,
    /// The workspace's balance is too low (402): nothing that costs succeeds until it is
    /// topped up.
    Credits,
    /// The request itself is wrong (400, 413, 415, 422, a value refused before sending):
    /// change it; sending it again fails again.
    InvalidInput,
    /// The idempotency key was used already, or the resource is in another state (409): the
    /// first request's run may exist, so look it up instead of starting another.
    Conflict,
    /// What was asked for does not exist (404, 410).
    NotFound,
    /// Anything else: not worth another attempt.
    Fatal,
}

/// Status → (the code FLORA sends with it, its class). A status not listed is classed by
/// its range (`of_status`).
const STATUSES: &[(u16, &str, ErrorClass)] = &[
    (400, "input_validation_error", ErrorClass::InvalidInput),
    (401, "unauthorized", ErrorClass::Auth),
    (402, "insufficient_credits", ErrorClass::Credits),
    (403, "forbidden", ErrorClass::Auth),
    (404, "not_found", ErrorClass::NotFound),
    (408, "request_timeout", ErrorClass::Transient),
    (409, "idempotency_duplicate", ErrorClass::Conflict),
    (410, "not_found", ErrorClass::NotFound),
    (413, "input_validation_error", ErrorClass::InvalidInput),
    (415, "input_validation_error", ErrorClass::InvalidInput),
    (422, "idempotency_conflict", ErrorClass::InvalidInput),
    (429, "rate_limited", ErrorClass::Throttled),
    (500, "internal_error", ErrorClass::Transient),
    (502, "internal_error", ErrorClass::Transient),
    (503, "service_unavailable", ErrorClass::Throttled),
    (504, "internal_error", ErrorClass::Transient),
];

/// FLORA's error codes whose meaning is surer than their status's (from its problem types,
/// `shared/reference/flora-fauna-problem-types.yml`).
const CODES: &[(&str, ErrorClass)] = &[
    ("invalid_json", ErrorClass::InvalidInput),
    ("input_validation_error", ErrorClass::InvalidInput),
    ("unauthorized", ErrorClass::Auth),
    ("invalid_api_key", ErrorClass::Auth),
    ("invalid_token", ErrorClass::Auth),
    ("forbidden", ErrorClass::Auth),
    ("insufficient_credits", ErrorClass::Credits),
    ("not_found", ErrorClass::NotFound),
    ("conflict", ErrorClass::Conflict),
    ("idempotency_duplicate", ErrorClass::Conflict),
    // The key came back with another body: change the body or the key.
    ("idempotency_conflict", ErrorClass::InvalidInput),
    ("rate_limited", ErrorClass::Throttled),
    ("service_unavailable", ErrorClass::Throttled),
    ("internal_error", ErrorClass::Transient),
];

impl ErrorClass {
    /// The class of an answer with this status and (when it sent one) FLORA's error code.
    /// A known code wins over its status, except that a status that says "try again"
    /// (throttled, transient) is never made final by a code.
    pub fn of(status: u16, code: Option<&str>) -> ErrorClass {
        let by_status = ErrorClass::of_status(status);
        if by_status.retries() {
            return by_status;
        }
        code.and_then(|c| CODES.iter().find(|(k, _)| *k == c))
            .map_or(by_status, |(_, class)| *class)
    }

    /// The class of a status alone: the table, else by range (other 4xx are the request's
    /// fault; other statuses, `501 Not Implemented` say, are not worth another attempt).
    pub fn of_status(status: u16) -> ErrorClass {
        match STATUSES.iter().find(|(s, _, _)| *s == status) {
            Some((_, _, class)) => *class,
            None if (400..500).contains(&status) => ErrorClass::InvalidInput,
            None => ErrorClass::Fatal,
        }
    }

    /// Whether the same request may succeed if sent again (after a wait).
    pub fn retries(self) -> bool {
        matches!(self, ErrorClass::Throttled | ErrorClass::Transient)
    }
}

/// Whether an answer with this status is worth another attempt.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    ErrorClass::of_status(status.as_u16()).retries()
}

/// The error code FLORA sends with `status` (the fake's injected failures use it).
#[cfg(feature = "test-util")]
pub(crate) fn code_for_status(status: u16) -> &'static str {
    STATUSES
        .iter()
        .find(|(s, _, _)| *s == status)
        .map_or("internal_error", |(_, code, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_throttled_and_transient_statuses_only() {
        let retried: Vec<u16> = (100..600)
            .filter(|s| ErrorClass::of_status(*s).retries())
            .collect();
        assert_eq!(retried, [408, 429, 500, 502, 503, 504]);
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 409, 422, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        assert_eq!(ErrorClass::of_status(418), ErrorClass::InvalidInput);
        assert_eq!(ErrorClass::of_status(302), ErrorClass::Fatal);
    }

    #[test]
    fn a_code_refines_its_status_but_never_stops_a_retry() {
        assert_eq!(
            ErrorClass::of(400, Some("invalid_api_key")),
            ErrorClass::Auth
        );
        assert_eq!(
            ErrorClass::of(422, Some("input_validation_error")),
            ErrorClass::InvalidInput
        );
        assert_eq!(
            ErrorClass::of(409, Some("idempotency_duplicate")),
            ErrorClass::Conflict
        );
        assert_eq!(ErrorClass::of(409, Some("whatever")), ErrorClass::Conflict);
        // A 503 that says "forbidden" is still worth waiting for.
        assert_eq!(
            ErrorClass::of(503, Some("forbidden")),
            ErrorClass::Throttled
        );
    }

    #[test]
    fn every_status_row_names_a_code_of_the_same_class_or_a_generic_one() {
        for (status, code, class) in STATUSES {
            let by_code = CODES.iter().find(|(k, _)| k == code).map(|(_, c)| *c);
            assert!(
                by_code.is_none_or(|c| c == *class || class.retries()),
                "{status} {code}: {class:?} vs {by_code:?}"
            );
        }
    }
}
