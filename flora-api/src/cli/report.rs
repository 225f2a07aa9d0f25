//! How `floret` exits and what it says when something went wrong: the one table of exit
//! codes (`--help` and README are checked against it), and library errors in floret's
//! terms (flags and commands, never library names).

use crate::error::{Error, ErrorClass, RetryClass};

/// The documented exit codes: one table, read by `--help` ([`exit_codes_help`]) and checked
/// against README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: anything else.
    Other,
    /// 2: usage or input invalid; nothing was sent, nothing paid.
    Usage,
    /// 3: the run failed on FLORA's side.
    RunFailed,
    /// 4: authentication or permission (401/403).
    Auth,
    /// 5: rate limited or overloaded after retries, insufficient credits (429/503/402), or `--max-cost`.
    Limited,
    /// 6: `--timeout` passed; the run (if one was started) keeps going.
    TimedOut,
    /// 7: the run completed but an output could not be saved.
    NotSaved,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl Exit {
    /// Every code but 0, in order.
    pub(crate) const ALL: [Exit; 8] = [
        Exit::Other,
        Exit::Usage,
        Exit::RunFailed,
        Exit::Auth,
        Exit::Limited,
        Exit::TimedOut,
        Exit::NotSaved,
        Exit::Interrupted,
    ];

    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Other => 1,
            Exit::Usage => 2,
            Exit::RunFailed => 3,
            Exit::Auth => 4,
            Exit::Limited => 5,
            Exit::TimedOut => 6,
            Exit::NotSaved => 7,
            Exit::Interrupted => 130,
        }
    }

    /// What the code means, as `--help` and README say it.
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Exit::Other => {
                "anything else (a run that may exist prints its key and the command that resumes it)"
            }
            Exit::Usage => "usage or input invalid: nothing was sent, nothing paid",
            Exit::RunFailed => "the run failed on FLORA's side (its error_code is printed)",
            Exit::Auth => "authentication or permission (HTTP 401/403)",
            Exit::Limited => {
                "rate limited or overloaded after retries, insufficient credits (HTTP 429/503/402), or a batch's --max-cost"
            }
            Exit::TimedOut => {
                "--timeout passed: the run id (or the idempotency key) and the command that resumes are printed"
            }
            Exit::NotSaved => {
                "the run completed but an output could not be saved: the command that saves it again is printed"
            }
            Exit::Interrupted => {
                "Ctrl-C (or SIGTERM): what was sent (if anything) and the command that resumes are printed"
            }
        }
    }
}

/// The exit-code section of `--help`, from the table.
pub(crate) fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n  0    completed\n");
    for e in Exit::ALL {
        text.push_str(&format!("  {:<4} {}\n", e.code(), e.meaning()));
    }
    text.push_str(
        "\nThe API key comes from FLORA_API_KEY (or --api-key-stdin), never from a flag value.",
    );
    text
}

/// Why a command did not succeed, with what to print (boxed: results stay small).
#[derive(Debug, Clone)]
pub(crate) struct Failure(Box<Details>);

impl std::ops::Deref for Failure {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

/// What a [`Failure`] says.
#[derive(Debug, Clone)]
pub(crate) struct Details {
    pub exit: Exit,
    /// A stable machine-readable code (`invalid_input`, FLORA's error code, ...).
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub run_id: Option<String>,
    /// The key a run may exist under (never pay twice: resume with it).
    pub idempotency_key: Option<String>,
    /// The command that picks up where this left off, shell-quoted.
    pub resume: Option<String>,
    /// For a failed run: `retry_now`, `retry_later`, `change_input` or `not_retryable`.
    pub retry_class: Option<&'static str>,
}

impl Failure {
    pub(crate) fn new(exit: Exit, code: &str, message: impl Into<String>) -> Self {
        Failure(Box::new(Details {
            exit,
            code: code.to_owned(),
            message: message.into(),
            request_id: None,
            run_id: None,
            idempotency_key: None,
            resume: None,
            retry_class: None,
        }))
    }

    /// A usage or input problem found before anything was sent.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, "invalid_input", message)
    }

    pub(crate) fn run_id(mut self, run_id: &str) -> Self {
        self.run_id = Some(run_id.to_owned());
        self
    }

    /// With the command that resumes (shown on its own line, and in JSON as `resume`).
    pub(crate) fn resume(mut self, command: String) -> Self {
        self.resume = Some(command);
        self
    }

    /// A failure after a run exists: never exit 2 (which promises nothing was sent).
    pub(crate) fn after_run(mut self, exit: Exit) -> Self {
        if self.exit == Exit::Usage {
            self.exit = exit;
        }
        self
    }
}

/// Library advice, in floret's terms: one table, so no message points a person at an API
/// they cannot call from a shell.
const FLORET_TERMS: &[(&str, &str)] = &[
    (
        "set FLORA_PROJECT_ID, `ClientBuilder::project_id` or `GenerateOptions::project_id`",
        "set FLORA_PROJECT_ID or give --project-id",
    ),
    (
        "; if this is a typed technique, its schema may have changed: run `cargo xtask regen` \
         (`client.verify::<Technique>()` lists what changed)",
        "; the technique's inputs may have changed: `floret show <slug>` lists them",
    ),
    (
        "; the technique's schema may have changed: run `cargo xtask regen`",
        "; the technique may have changed: `floret show <slug>` lists its inputs and outputs",
    ),
    (
        "raise `ClientBuilder::timeout` if the API is slow",
        "try again, or give a longer --timeout",
    ),
    (
        "or raise `ClientBuilder::timeout` if the host is slow",
        "or try again when the host is faster",
    ),
    (
        "poll it again later or raise the poll deadline",
        "`floret wait` picks it up (--timeout waits longer)",
    ),
    (" (or `ClientBuilder::base_url`)", " (or --base-url)"),
    (
        "; pass None to have one generated",
        "; leave --idempotency-key out to have one made",
    ),
    ("(`StartOptions::idempotency_key`)", "(--idempotency-key)"),
    (
        "inspect the run with `client.get_run`",
        "inspect it with `floret get`",
    ),
    (
        "look again later with `client.asset(",
        "it may become ready later (asset id: ",
    ),
    (" or raise `UploadOptions::poll_deadline`", ""),
    ("; if it is one, set `UploadOptions::content_type`", ""),
    (
        " (set `UploadOptions::content_type` if the detection is wrong)",
        "",
    ),
    ("; set `UploadOptions::content_type` to send it anyway", ""),
    (" (an overwrite option)", " (--overwrite)"),
    (" (DownloadOptions::deadline)", ""),
    (
        "raise DownloadOptions::max_bytes if the file is really that large",
        "the host may be broken",
    ),
    (" (DownloadOptions::max_bytes)", ""),
    ("invalid input: ", ""),
];

/// `text` with every library phrase of [`FLORET_TERMS`] said in floret's terms.
pub(crate) fn floret_terms(text: &str) -> String {
    let mut out = text.to_owned();
    for (library, floret) in FLORET_TERMS {
        if out.contains(library) {
            out = out.replace(library, floret);
        }
    }
    out
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = floret_terms(&e.to_string());
        let mut f = match &e {
            Error::RunMayExist {
                cause, candidates, ..
            } => {
                let mut f = Failure::from((**cause).clone_for_exit());
                f.code = "run_may_exist".to_owned();
                f.exit = Exit::Other;
                let mut message = format!(
                    "{}; FLORA may have created the run (and will bill it), but its answer was \
                     lost",
                    floret_terms(&cause.to_string())
                );
                if !candidates.is_empty() {
                    message.push_str(&format!(
                        "; runs from that time that may be it: {}",
                        candidates.join(", ")
                    ));
                }
                f.message = message;
                f.idempotency_key = e.idempotency_key().map(str::to_owned);
                return f;
            }
            Error::Api(_) | Error::Idempotency { .. } => {
                let api = e.api();
                let status = api.map_or(0, |a| a.status);
                let exit = match e.class() {
                    ErrorClass::Auth => Exit::Auth,
                    ErrorClass::Credits | ErrorClass::Throttled => Exit::Limited,
                    ErrorClass::InvalidInput | ErrorClass::NotFound => Exit::Usage,
                    // A key used already: its first run may exist (and be billed).
                    ErrorClass::Conflict | ErrorClass::Transient | ErrorClass::Fatal => Exit::Other,
                };
                let code = api
                    .map(|a| a.code.as_str().to_owned())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| format!("http_{status}"));
                let mut f = Failure::new(exit, &code, String::new());
                f.request_id = api.and_then(|a| a.request_id.clone());
                f
            }
            Error::RunFailed { run_id, code, .. } => {
                let name = code.as_ref().map_or("run_failed", |c| c.as_str());
                Failure::new(Exit::RunFailed, name, String::new()).run_id(run_id)
            }
            Error::WaitTimeout { run_id, .. } => {
                Failure::new(Exit::TimedOut, "wait_timeout", String::new()).run_id(run_id)
            }
            Error::InvalidInput(_) => Failure::usage(String::new()),
            Error::Config(_) => Failure::new(Exit::Usage, "config", String::new()),
            Error::Connection { .. } => Failure::new(Exit::Other, "connection", String::new()),
            Error::Timeout { .. } | Error::Stalled { .. } => {
                Failure::new(Exit::TimedOut, "timeout", String::new())
            }
            Error::FileExists { .. } => Failure::new(Exit::Usage, "file_exists", String::new()),
            _ => Failure::new(Exit::Other, "error", String::new()),
        };
        f.message = message;
        f.idempotency_key = e.idempotency_key().map(str::to_owned);
        f.retry_class = e.retry_class().map(RetryClass::as_str);
        f
    }
}

impl Error {
    /// A copy of what decides an exit code (status, code, request id); for the cause of a
    /// run that may exist.
    fn clone_for_exit(&self) -> Error {
        match self.api() {
            Some(api) => Error::Api(Box::new(api.clone())),
            None => Error::InvalidInput(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_documented_exit_codes() {
        let failed = Error::RunFailed {
            run_id: "run_1".into(),
            code: Some(crate::RunErrorCode::SafetyBlocked),
            message: None,
        };
        let f = Failure::from(failed);
        assert_eq!((f.exit.code(), f.code.as_str()), (3, "safety_blocked"));
        assert_eq!(f.run_id.as_deref(), Some("run_1"));
        assert_eq!(
            f.retry_class,
            Some("change_input"),
            "--json carries the class"
        );
        let provider = Failure::from(Error::RunFailed {
            run_id: "run_3".into(),
            code: Some(crate::RunErrorCode::GpuProviderError),
            message: Some("GPU out of memory".into()),
        });
        assert_eq!(provider.retry_class, Some("retry_now"));
        let timeout = Error::WaitTimeout {
            run_id: "run_2".into(),
            last_status: crate::RunStatus::Running,
            waited: std::time::Duration::from_secs(1),
        };
        let f = Failure::from(timeout);
        assert_eq!(f.exit.code(), 6);
        assert!(!f.message.contains("poll deadline"), "{}", f.message);
        assert_eq!(
            Failure::from(Error::InvalidInput("x".into())).exit.code(),
            2
        );
    }

    #[test]
    fn the_exit_code_table_is_the_help_text() {
        let help = exit_codes_help();
        for e in Exit::ALL {
            assert!(help.contains(&format!("  {:<4} {}", e.code(), e.meaning())));
        }
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        let mut unique = codes.clone();
        unique.dedup();
        assert_eq!(codes, unique, "codes are distinct and in order");
    }
}
