//! Problems found in schema files, collected rather than thrown one at a time.

use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The schema cannot be turned into code; nothing is written.
    Error,
    /// Code was generated, with a fallback the user should know about (an unknown slot
    /// type became a `String` field, ...). `--deny-warnings` turns these into errors.
    Warning,
}

/// One problem: where it is, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The schema file, e.g. `schemas/cctv-cam.json`.
    pub file: String,
    /// A JSON pointer into the file (`/inputs/2/type`), or `""` for the whole file.
    pub pointer: String,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    pub(crate) fn new(
        file: &str,
        pointer: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_owned(),
            pointer: pointer.into(),
            severity: Severity::Error,
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn warning(
        file: &str,
        pointer: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Self::new(file, pointer, message, hint)
        }
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{level}: {}#{}: {}",
            self.file, self.pointer, self.message
        )?;
        if !self.hint.is_empty() {
            write!(f, "\n  help: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Every problem found in one generation, sorted by file and pointer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// No problems.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Number of errors (problems that stop generation).
    pub fn errors(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let errors = self.errors();
        let warnings = self.0.len() - errors;
        if errors == 0 {
            return write!(
                f,
                "{warnings} warning{} in technique schemas",
                if warnings == 1 { "" } else { "s" }
            );
        }
        write!(
            f,
            "{errors} error{} in technique schemas",
            if errors == 1 { "" } else { "s" }
        )?;
        if warnings > 0 {
            write!(
                f,
                " (and {warnings} warning{})",
                if warnings == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
