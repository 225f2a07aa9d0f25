//! What to do about a failed run, decided once: FLORA's own retry hint for each run error
//! code (its measured failure codes, `shared/reference/flora-generations.md` §4), with the
//! one trap it documents: a safety refusal reported under a provider error.

use crate::wire::RunErrorCode;

/// What to do about a failed run. A retry is always a **new run**, billed again.
///
/// ```
/// use flora_api::{RetryClass, RunErrorCode};
/// assert_eq!(RunErrorCode::from("GENERATION_QUEUE_TOO_LARGE").retry_class(), RetryClass::RetryLater);
/// // A safety refusal under a provider error is not worth paying for again.
/// let class = RetryClass::of(
///     Some(&RunErrorCode::GpuProviderError),
///     Some("rejected by the safety system: safety_violations=[sexual]"),
/// );
/// assert_eq!(class, RetryClass::ChangeInput);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryClass {
    /// A transient failure: a new run now may succeed.
    RetryNow,
    /// The provider is overloaded or failing: a new run later, after backing off.
    RetryLater,
    /// The input was refused (moderation, invalid parameters, a refusal): the same run
    /// again fails again; change the input.
    ChangeInput,
    /// Billing, access, a cancelled run, or a code this version does not know: do not
    /// start it again unattended.
    NotRetryable,
}

/// Code → class, as FLORA's team documents each code.
const RUN_CODES: &[(RunErrorCode, RetryClass)] = {
    use RetryClass::*;
    use RunErrorCode::*;
    &[
        (ModelTimeout, RetryNow),
        (InternalError, RetryNow),
        (ProviderError, RetryLater),
        (SafetyBlocked, ChangeInput),
        (InputUnreachable, ChangeInput),
        (GenerationProviderTimeout, RetryNow),
        (GenerationFailedToStart, RetryNow),
        (GpuProviderError, RetryNow),
        (GenerationFailedToUpload, RetryNow),
        (GenerationGenericError, RetryNow),
        (GenerationFailedToUpdate, RetryNow),
        (ServerError, RetryNow),
        (GenerationFailedToGet, RetryNow),
        (GenerationPregenerationFailed, RetryNow),
        (GenerationPostgenerationFailed, RetryNow),
        (GenerationMapAfterRequestFailed, RetryNow),
        (GenerationDownstreamServiceError, RetryLater),
        (GenerationQueueTooLarge, RetryLater),
        (GenerationInvalidProviderResponse, RetryLater),
        (GenerationQueueNotMoving, RetryLater),
        (GenerationNoResult, RetryLater),
        (GenerationCircuitBreakerOpen, RetryLater),
        (GenerationModalPollError, RetryLater),
        (AudioGenerationError, RetryLater),
        (GenerationProviderFailedToGetStatus, RetryLater),
        (GenerationPromptModerated, ChangeInput),
        (GenerationInvalidParams, ChangeInput),
        (LlmRefusal, ChangeInput),
        (GenerationInvalidUrl, ChangeInput),
        (GenerationInputValidation, ChangeInput),
        (GenerationEndpointNotFound, ChangeInput),
        (GenerationMapBeforeRequestFailed, ChangeInput),
        (GenerationProviderNotSupported, ChangeInput),
        (BillingNotEnoughCredits, NotRetryable),
        (BillingCreditsLimitExceeded, NotRetryable),
        (BillingWouldExceedLimit, NotRetryable),
        (BillingFailedToReserveCredits, NotRetryable),
        (GenerationNotPaid, NotRetryable),
        (GenerationCancelled, NotRetryable),
    ]
};

/// Words in a failed run's message that mean the input was refused, whatever the code says.
const REFUSAL_WORDS: &[&str] = &["safety", "moderat", "refus", "policy", "policies"];

impl RetryClass {
    /// The class of a failed run with this code and message: the code's class, except that
    /// a message naming safety, moderation, a refusal or a policy makes it
    /// [`ChangeInput`](Self::ChangeInput) (FLORA reports safety refusals under
    /// `GPU_PROVIDER_ERROR` and `GENERATION_NO_RESULT`). No code: not retryable.
    pub fn of(code: Option<&RunErrorCode>, message: Option<&str>) -> RetryClass {
        let refused = message.is_some_and(|m| {
            let m = m.to_lowercase();
            REFUSAL_WORDS.iter().any(|w| m.contains(w))
        });
        if refused {
            return RetryClass::ChangeInput;
        }
        code.map_or(RetryClass::NotRetryable, RunErrorCode::retry_class)
    }

    /// `retry_now`, `retry_later`, `change_input` or `not_retryable` (floret's `--json`).
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::RetryNow => "retry_now",
            RetryClass::RetryLater => "retry_later",
            RetryClass::ChangeInput => "change_input",
            RetryClass::NotRetryable => "not_retryable",
        }
    }

    /// Retry now or later: the two classes a new run of the same input may cure.
    pub fn is_transient(self) -> bool {
        matches!(self, RetryClass::RetryNow | RetryClass::RetryLater)
    }
}

impl RunErrorCode {
    /// FLORA's retry hint for this code alone (see [`RetryClass::of`] for the message's say).
    /// Every `ACCESS_*` and `*_ENTITLEMENT_REQUIRED` code, and a code this version does not
    /// know, is not retryable.
    pub fn retry_class(&self) -> RetryClass {
        RUN_CODES
            .iter()
            .find(|(code, _)| code == self)
            .map_or(RetryClass::NotRetryable, |(_, class)| *class)
    }
}

impl std::fmt::Display for RetryClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_has_floras_class_and_unknown_ones_are_not_retried() {
        // Every variant but `Other` is in the table (a new code is one row there).
        for (wire, code) in RunErrorCode::SPELLINGS {
            assert!(
                RUN_CODES.iter().any(|(c, _)| c == code),
                "{wire} has no retry class"
            );
        }
        assert_eq!(
            RunErrorCode::ModelTimeout.retry_class(),
            RetryClass::RetryNow
        );
        assert_eq!(
            RunErrorCode::from("GENERATION_PROMPT_MODERATED").retry_class(),
            RetryClass::ChangeInput
        );
        for unknown in [
            "ACCESS_DENIED",
            "VIDEO_ENTITLEMENT_REQUIRED",
            "SOMETHING_NEW",
        ] {
            assert_eq!(
                RunErrorCode::from(unknown).retry_class(),
                RetryClass::NotRetryable,
                "{unknown}"
            );
        }
    }

    #[test]
    fn a_refusal_in_the_message_wins_over_a_transient_code() {
        let gpu = Some(&RunErrorCode::GpuProviderError);
        assert_eq!(
            RetryClass::of(gpu, Some("CUDA out of memory")),
            RetryClass::RetryNow
        );
        for message in [
            "rejected by the safety system: safety_violations=[sexual]",
            "Content Moderation flagged the prompt",
            "the model refused",
            "violates our usage policy",
        ] {
            assert_eq!(
                RetryClass::of(gpu, Some(message)),
                RetryClass::ChangeInput,
                "{message}"
            );
        }
        assert_eq!(RetryClass::of(None, None), RetryClass::NotRetryable);
    }
}
