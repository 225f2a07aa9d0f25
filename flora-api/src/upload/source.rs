//! What to upload: a file on disk, bytes in memory, or a URL for FLORA to fetch.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::Error;
use crate::urls::{is_https_or_loopback, strip_query};

/// What to upload: a file on disk, bytes in memory, or a URL for FLORA to fetch.
///
/// Strings and paths convert to [`Upload::path`]; a URL is only ever an upload through
/// [`Upload::url`] (a string starting with `http://` or `https://` given as a path is refused,
/// never guessed).
///
/// ```
/// use flora_api::Upload;
/// let a = Upload::path("photos/face.png");
/// let b: Upload = "photos/face.png".into(); // the same
/// let c = Upload::bytes(vec![0x89, b'P', b'N', b'G'], "face.png");
/// let d = Upload::url("https://example.com/face.png").unwrap();
/// # let _ = (a, b, c, d);
/// ```
#[derive(Clone)]
pub struct Upload {
    pub(super) source: Source,
}

#[derive(Clone)]
pub(super) enum Source {
    Path(PathBuf),
    Bytes {
        bytes: Bytes,
        file_name: String,
    },
    Url(String),
    /// A URL passed where a path was expected; refused when uploading.
    UrlAsPath(String),
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Path(p) => f.debug_tuple("Upload::path").field(p).finish(),
            Source::Bytes { bytes, file_name } => f
                .debug_struct("Upload::bytes")
                .field("len", &bytes.len())
                .field("file_name", file_name)
                .finish(),
            Source::Url(u) | Source::UrlAsPath(u) => {
                f.debug_tuple("Upload::url").field(&strip_query(u)).finish()
            }
        }
    }
}

impl Upload {
    /// A file on disk, streamed when uploaded.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Upload {
            source: Source::Path(path.into()),
        }
    }

    /// Bytes in memory, with the file name to store them under (an extension is added from
    /// the detected type when missing).
    pub fn bytes(bytes: impl Into<Bytes>, file_name: impl Into<String>) -> Self {
        Upload {
            source: Source::Bytes {
                bytes: bytes.into(),
                file_name: file_name.into(),
            },
        }
    }

    /// A public `https://` URL for FLORA to fetch and re-host (technique runtimes load media
    /// only from FLORA's own and allowlisted hosts). `http://` only on loopback.
    pub fn url(url: &str) -> Result<Self, Error> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::InvalidInput(format!(
                "Upload::url: {:?} is not a URL ({e})",
                strip_query(url)
            ))
        })?;
        if !is_https_or_loopback(&parsed) || parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::InvalidInput(format!(
                "Upload::url: {:?} must be an https:// URL with a host",
                strip_query(url)
            )));
        }
        Ok(Upload {
            source: Source::Url(parsed.into()),
        })
    }
}

fn path_or_mistaken_url(s: String) -> Upload {
    let lower = s.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Upload {
            source: Source::UrlAsPath(s),
        }
    } else {
        Upload::path(s)
    }
}

/// A path (never a URL: see [`Upload::url`]).
impl From<&str> for Upload {
    fn from(s: &str) -> Self {
        path_or_mistaken_url(s.to_owned())
    }
}

/// A path (never a URL: see [`Upload::url`]).
impl From<String> for Upload {
    fn from(s: String) -> Self {
        path_or_mistaken_url(s)
    }
}

impl From<&Path> for Upload {
    fn from(p: &Path) -> Self {
        Upload::path(p)
    }
}

impl From<PathBuf> for Upload {
    fn from(p: PathBuf) -> Self {
        Upload::path(p)
    }
}

impl From<&PathBuf> for Upload {
    fn from(p: &PathBuf) -> Self {
        Upload::path(p.clone())
    }
}
