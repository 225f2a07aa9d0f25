//! What `floret` prints and how it exits: results on stdout (human text, one JSON document,
//! or JSON lines), progress and errors on stderr, the API key redacted from all of it, and
//! the documented exit codes.

use std::io::{IsTerminal, Write};

use serde_json::{Value, json};

use crate::error::Error;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: anything else.
    Other,
    /// 2: usage or input invalid; nothing was sent.
    Usage,
    /// 3: the run failed on FLORA's side.
    RunFailed,
    /// 4: authentication or permission (401/403).
    Auth,
    /// 5: rate limited after retries, insufficient credits (429/402), or `--max-cost`.
    Limited,
    /// 6: timed out waiting; the run keeps going.
    TimedOut,
    /// 130: interrupted by Ctrl-C while waiting.
    Interrupted,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Other => 1,
            Exit::Usage => 2,
            Exit::RunFailed => 3,
            Exit::Auth => 4,
            Exit::Limited => 5,
            Exit::TimedOut => 6,
            Exit::Interrupted => 130,
        }
    }
}

/// Why a command did not succeed, with what to print.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub exit: Exit,
    /// A stable machine-readable code (`invalid_input`, FLORA's error code, ...).
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub run_id: Option<String>,
}

impl Failure {
    pub(crate) fn new(exit: Exit, code: &str, message: impl Into<String>) -> Self {
        Failure {
            exit,
            code: code.to_owned(),
            message: message.into(),
            request_id: None,
            run_id: None,
        }
    }

    /// A usage or input problem found before anything was sent.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, "invalid_input", message)
    }

    pub(crate) fn run_id(mut self, run_id: &str) -> Self {
        self.run_id = Some(run_id.to_owned());
        self
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match &e {
            Error::Api(_) | Error::Idempotency { .. } => {
                let api = e.api();
                let status = api.map_or(0, |a| a.status);
                let exit = match status {
                    401 | 403 => Exit::Auth,
                    402 | 429 => Exit::Limited,
                    _ => Exit::Other,
                };
                let code = api
                    .map(|a| a.code.as_str().to_owned())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| format!("http_{status}"));
                let mut f = Failure::new(exit, &code, message);
                f.request_id = api.and_then(|a| a.request_id.clone());
                f
            }
            Error::RunFailed { run_id, code, .. } => {
                let code = code.as_ref().map_or("run_failed", |c| c.as_str());
                Failure::new(Exit::RunFailed, code, message).run_id(run_id)
            }
            Error::WaitTimeout { run_id, .. } => {
                Failure::new(Exit::TimedOut, "wait_timeout", message).run_id(run_id)
            }
            Error::InvalidInput(_) => Failure::usage(message),
            Error::Config(_) => Failure::new(Exit::Usage, "config", message),
            Error::Connection { .. } | Error::Timeout { .. } | Error::Stalled { .. } => {
                Failure::new(Exit::Other, "connection", message)
            }
            _ => Failure::new(Exit::Other, "error", message),
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Human,
    Json,
    Jsonl,
    Quiet,
}

impl Mode {
    pub(crate) fn of(json: bool, jsonl: bool, quiet: bool) -> Mode {
        match (json, jsonl, quiet) {
            (true, _, _) => Mode::Json,
            (_, true, _) => Mode::Jsonl,
            (_, _, true) => Mode::Quiet,
            _ => Mode::Human,
        }
    }
}

/// The one place output leaves: every line goes through the key's redaction.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub mode: Mode,
    key: Option<String>,
}

impl Out {
    pub(crate) fn new(mode: Mode, key: Option<&str>) -> Self {
        Out {
            mode,
            key: key.map(str::to_owned),
        }
    }

    /// The library's one redactor: the key as given and as sent (trimmed), any bearer
    /// token and any Authorization value.
    pub(crate) fn redact(&self, text: &str) -> String {
        crate::redact::redact(text, self.key.as_deref(), &[]).into_owned()
    }

    /// A result line for people (human mode only).
    pub(crate) fn line(&self, text: &str) {
        if self.mode == Mode::Human {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.redact(text));
        }
    }

    /// A note for people on stderr (not in quiet or JSON modes).
    pub(crate) fn note(&self, text: &str) {
        if self.mode == Mode::Human {
            eprintln!("{}", self.redact(text));
        }
    }

    /// The result document (JSON mode only).
    pub(crate) fn document(&self, value: &Value) {
        if self.mode == Mode::Json {
            let text = serde_json::to_string_pretty(value).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.redact(&text));
        }
    }

    /// One event (JSON lines mode only).
    pub(crate) fn event(&self, event: &str, mut fields: Value) {
        if self.mode == Mode::Jsonl {
            if let Some(map) = fields.as_object_mut() {
                map.insert("event".to_owned(), Value::String(event.to_owned()));
            }
            let text = serde_json::to_string(&fields).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.redact(&text));
            let _ = out.flush();
        }
    }

    /// The failure on stderr: one JSON object in the JSON modes, text otherwise.
    pub(crate) fn failure(&self, f: &Failure) {
        let message = self.redact(&f.message);
        match self.mode {
            Mode::Json | Mode::Jsonl => {
                let v = json!({
                    "code": f.code,
                    "message": message,
                    "request_id": f.request_id,
                    "run_id": f.run_id,
                    "exit": f.exit.code(),
                });
                eprintln!("{}", serde_json::to_string(&v).unwrap_or_default());
            }
            Mode::Human | Mode::Quiet => {
                eprintln!("error: {message}");
                if let Some(id) = &f.request_id {
                    eprintln!("  request id: {id} (quote it to FLORA support)");
                }
            }
        }
    }

    /// Whether to draw progress bars: people watching a terminal only.
    pub(crate) fn draws_progress(&self) -> bool {
        self.mode == Mode::Human && std::io::stderr().is_terminal()
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
        let timeout = Error::WaitTimeout {
            run_id: "run_2".into(),
            last_status: crate::RunStatus::Running,
            waited: std::time::Duration::from_secs(1),
        };
        assert_eq!(Failure::from(timeout).exit.code(), 6);
        assert_eq!(
            Failure::from(Error::InvalidInput("x".into())).exit.code(),
            2
        );
    }

    #[test]
    fn the_key_is_redacted_from_everything_printed() {
        let out = Out::new(Mode::Json, Some("sk_live_secret"));
        assert_eq!(
            out.redact("Authorization: Bearer sk_live_secret; again sk_live_secret"),
            "Authorization: Bearer [redacted]; again [redacted]"
        );
    }
}
