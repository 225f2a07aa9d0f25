//! What a fetch or a regen failed with, by what the person running it does about it.

use std::fmt;

/// Why a fetch or a regen failed. [`kind`](Self::kind) says what to do about it; `Display`
/// is the whole message: what failed, how to fix it, and what happened to the tree (nothing,
/// or exactly which files changed).
///
/// ```
/// # #[cfg(feature = "regen")]
/// # {
/// use flora_codegen::cli::{RegenError, RegenErrorKind};
/// let e = flora_codegen::cli::read_schemas(std::path::Path::new("no/such/dir")).unwrap_err();
/// assert_eq!(e.kind(), RegenErrorKind::Io);
/// assert!(e.to_string().contains("no/such/dir"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegenError {
    kind: RegenErrorKind,
    message: String,
}

/// What kind of problem a [`RegenError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegenErrorKind {
    /// FLORA refused the API key: fix `FLORA_API_KEY`, or work offline.
    Auth,
    /// Fetching failed: the network, a server error, an answer that makes no sense.
    Fetch,
    /// A schema (fetched or local) cannot be stored or generated as it is.
    Schema,
    /// The options or the generator's configuration are wrong (`--only` with an unknown slug,
    /// an invalid runtime path, a build without fetching asked to fetch).
    Config,
    /// Reading or writing files failed.
    Io,
    /// Refused to do something destructive nobody asked for (deleting most techniques,
    /// replacing a file flora-codegen did not write).
    Refused,
}

impl RegenError {
    pub(crate) fn new(kind: RegenErrorKind, message: impl Into<String>) -> Self {
        RegenError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> RegenErrorKind {
        self.kind
    }

    /// The same error with `note` on a line of its own (what happened to the tree).
    pub(crate) fn note(mut self, note: &str) -> Self {
        self.message.push('\n');
        self.message.push_str(note);
        self
    }

    /// A maker of errors of `kind`, for `map_err`.
    #[cfg(feature = "cli")]
    pub(crate) fn of(kind: RegenErrorKind) -> impl Fn(String) -> RegenError {
        move |message| RegenError::new(kind, message)
    }
}

impl fmt::Display for RegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegenError {}
