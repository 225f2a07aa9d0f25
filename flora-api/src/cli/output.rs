//! The one way out: every byte floret writes to stdout, stderr or its logs passes through
//! [`Out`] (or the log writer it makes), which takes the API key and any bearer token out
//! (the library's one redactor) and makes server text harmless on a terminal (no escape
//! sequences, control characters or bidi overrides). Writing never panics: a closed pipe
//! (`floret … | head -1`) ends the output, not the process.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use serde_json::{Value, json};

use super::report::Failure;
use crate::safe_text::{json_text, terminal_text};
use std::process::ExitCode;

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

    /// How a usage error that clap found is printed, before any flag could be read: as one
    /// JSON object when `--json` or `--jsonl` is among the words (before a `--`).
    pub(crate) fn for_usage_errors<S: AsRef<std::ffi::OsStr>>(words: &[S]) -> Mode {
        let words = || {
            words
                .iter()
                .map(AsRef::as_ref)
                .take_while(|a| *a != std::ffi::OsStr::new("--"))
        };
        Mode::of(
            words().any(|a| a == std::ffi::OsStr::new("--json")),
            words().any(|a| a == std::ffi::OsStr::new("--jsonl")),
            false,
        )
    }

    fn is_json(self) -> bool {
        matches!(self, Mode::Json | Mode::Jsonl)
    }
}

/// Where the key came from, for messages about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    Env,
    Stdin,
}

/// Which stream.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Writes `text` and a newline to a stream, ignoring a closed pipe or any other error: there
/// is nowhere left to report it.
fn emit(stream: Stream, text: &str) {
    let _ = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").and_then(|()| out.flush())
        }
        Stream::Stderr => writeln!(std::io::stderr().lock(), "{text}"),
    };
}

/// The redacting, sanitising writer behind everything floret prints.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub mode: Mode,
    key: Option<Arc<str>>,
    source: KeySource,
}

impl Out {
    pub(crate) fn new(mode: Mode, key: Option<&str>, source: KeySource) -> Self {
        Out {
            mode,
            key: key.map(Arc::from),
            source,
        }
    }

    /// The key taken out (as given and as sent; any bearer token or Authorization value).
    fn redacted<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        crate::redact::redact(text, self.key.as_deref(), &[])
    }

    /// `text` as it may reach a terminal: redacted, no escapes, controls or bidi overrides.
    pub(crate) fn clean(&self, text: &str) -> String {
        // Redacted again once escapes and controls are gone: a key split by an escape
        // (`sk_\x1b[mlive…`) is whole only after they are stripped.
        let stripped = terminal_text(&self.redacted(text));
        self.redacted(&stripped).into_owned()
    }

    /// A JSON value as pretty, harmless, redacted JSON (what `floret mcp` answers with).
    #[cfg(feature = "mcp")]
    pub(crate) fn redacted_json(&self, value: &Value) -> String {
        self.json(value, true)
    }

    /// A JSON value as one line (or pretty) of harmless, redacted JSON.
    fn json(&self, value: &Value, pretty: bool) -> String {
        let text = if pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        }
        .unwrap_or_default();
        json_text(&self.redacted(&text))
    }

    /// A result line for people (human mode only).
    pub(crate) fn line(&self, text: &str) {
        if self.mode == Mode::Human {
            emit(Stream::Stdout, &self.clean(text));
        }
    }

    /// A note for people on stderr (not in quiet or JSON modes).
    pub(crate) fn note(&self, text: &str) {
        if self.mode == Mode::Human {
            emit(Stream::Stderr, &self.clean(text));
        }
    }

    /// A line on stderr whatever the mode (an interrupt's message, a log line).
    pub(crate) fn always(&self, text: &str) {
        emit(Stream::Stderr, &self.clean(text));
    }

    /// The result document (JSON mode only).
    pub(crate) fn document(&self, value: &Value) {
        if self.mode == Mode::Json {
            emit(Stream::Stdout, &self.json(value, true));
        }
    }

    /// One event (JSON lines mode only).
    pub(crate) fn event(&self, event: &str, mut fields: Value) {
        if self.mode == Mode::Jsonl {
            if let Some(map) = fields.as_object_mut() {
                map.insert("event".to_owned(), Value::String(event.to_owned()));
            }
            emit(Stream::Stdout, &self.json(&fields, false));
        }
    }

    /// Bytes for stdout as they are, but redacted (shell completions).
    pub(crate) fn raw(&self, text: &str) {
        let _ = std::io::stdout()
            .lock()
            .write_all(self.redacted(text).as_bytes());
    }

    /// The failure on stderr: one JSON object in the JSON modes, text otherwise.
    pub(crate) fn failure(&self, f: &Failure) {
        let message = match self.source {
            KeySource::Env => f.message.clone(),
            KeySource::Stdin => f.message.replace(
                "check the API key (FLORA_API_KEY)",
                "check the API key given on standard input (--api-key-stdin)",
            ),
        };
        if self.mode.is_json() {
            let v = json!({
                "code": f.code,
                "message": message,
                "retry_class": f.retry_class,
                "request_id": f.request_id,
                "run_id": f.run_id,
                "idempotency_key": f.idempotency_key,
                "resume": f.resume,
                "exit": f.exit.code(),
            });
            emit(Stream::Stderr, &self.json(&v, false));
            return;
        }
        emit(Stream::Stderr, &self.clean(&format!("error: {message}")));
        if let Some(id) = &f.request_id {
            emit(
                Stream::Stderr,
                &self.clean(&format!("  request id: {id} (quote it to FLORA support)")),
            );
        }
        if let Some(resume) = &f.resume {
            emit(Stream::Stderr, &self.clean(&format!("  {resume}")));
        }
    }

    /// Whether to draw progress bars: people watching a terminal only.
    pub(crate) fn draws_progress(&self) -> bool {
        self.mode == Mode::Human && std::io::stderr().is_terminal()
    }

    /// The writer `-v` logs go through: each log line redacted and sanitised like the rest.
    pub(crate) fn log_writer(&self) -> LogWriter {
        LogWriter { out: self.clone() }
    }
}

/// The exit code for a result, after printing a failure.
pub(crate) fn finish(out: &Out, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            out.failure(&f);
            ExitCode::from(f.exit.code())
        }
    }
}

/// `-v` logs requests (and, for `run`, where the time went); `-vv` more. Every log line goes
/// through the output's redaction and sanitising.
pub(crate) fn init_logging(verbose: u8, out: &Out) {
    if verbose == 0 {
        return;
    }
    let level = if verbose == 1 {
        "flora_api=info"
    } else {
        "flora_api=debug"
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(out.log_writer())
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .try_init();
}

/// `tracing-subscriber`'s writer for floret's logs: one formatted event at a time, written
/// only through [`Out`].
#[derive(Clone)]
pub(crate) struct LogWriter {
    out: Out,
}

/// One log event being written; it leaves, cleaned, when dropped.
pub(crate) struct LogLine {
    out: Out,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end_matches('\n');
        if !text.is_empty() {
            emit(Stream::Stderr, &self.out.clean(text));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            out: self.out.clone(),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_printed_loses_the_key_and_terminal_controls() {
        let out = Out::new(Mode::Human, Some("sk_live_secret\n"), KeySource::Env);
        assert_eq!(
            out.clean("Authorization: Bearer sk_live_secret; again sk_live_secret\u{1b}[2J"),
            "Authorization: Bearer [redacted]; again [redacted]"
        );
        let json = out.json(&json!({"m": "sk_live_secret \u{202E}x"}), false);
        assert_eq!(json, r#"{"m":"[redacted] \u202ex"}"#);
    }

    #[test]
    fn a_log_line_is_cleaned_when_it_leaves() {
        use tracing_subscriber::fmt::MakeWriter;
        let out = Out::new(Mode::Human, Some("sk_live_secret"), KeySource::Stdin);
        let mut line = out.log_writer().make_writer();
        let _ = line.write(b"body: sk_live_secret\n");
        assert_eq!(
            out.clean(std::str::from_utf8(&line.buf).unwrap()),
            "body: [redacted]\n"
        );
    }
}
