//! Input values given as text (a command line, a batch plan): classified as a local file,
//! an `https://` URL or text, and checked against the slot before anything is sent. Shared by
//! `floret run` and batches.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::kinds::MediaKind;
use crate::safe_text::plain_text;
use crate::upload::Upload;
use crate::wire::Slot;

/// A value given for an input, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputValue {
    /// Sent as given.
    Text(String),
    /// An `https://` URL, sent as given.
    Url(String),
    /// A local file of this kind, uploaded first; its URL is sent.
    File(PathBuf, MediaKind),
}

/// Classifies and checks one value: a URL must be `https://` and of the slot's kind where
/// its type shows; a path must be a regular, non-empty file whose bytes are a type FLORA
/// accepts for the slot; text must not be empty.
pub(crate) async fn check(slot: &Slot, value: &str) -> Result<InputValue, String> {
    let kind = &slot.kind;
    // Text, and a type this version does not know, are sent verbatim (as generated code does).
    let Some(media) = kind.media_kind() else {
        if value.is_empty() {
            return Err("empty text".to_owned());
        }
        return Ok(InputValue::Text(value.to_owned()));
    };
    // A scheme is case-insensitive: `HTTPS://…` is a URL, never a local path.
    let starts = |prefix: &str| {
        value
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    if starts("https://") {
        let parsed = crate::media::parse_as(media, value).map_err(|e| e.to_string())?;
        let upload = Upload::url(&parsed).map_err(|e| for_people(&e))?;
        upload.check(kind).await.map_err(|e| for_people(&e))?;
        return Ok(InputValue::Url(parsed));
    }
    if starts("http://") {
        return Err(
            "FLORA fetches inputs over https only; pass an https:// URL or a local file".to_owned(),
        );
    }
    if value.is_empty() {
        return Err("empty value (a local file or an https:// URL)".to_owned());
    }
    let path = PathBuf::from(value);
    match Upload::path(&path).check(kind).await {
        Ok(_) => Ok(InputValue::File(path, media)),
        Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Err(format!(
                "no such file (this {} input takes a local file or an https:// URL)",
                kind.as_str()
            ))
        }
        // The library names the file; the caller names the flag and the value already.
        Err(e) => {
            let text = for_people(&e);
            Err(text
                .strip_prefix(&format!("{value}: "))
                .map(str::to_owned)
                .unwrap_or(text))
        }
    }
}

/// Each distinct local file uploaded once per (content, kind): whichever value asks first
/// uploads it, the others wait for that upload and take its URL (or its failure). In memory,
/// for one `floret run` or one batch process; a batch's journal keeps the URLs across
/// processes and is asked first.
pub(crate) struct UploadOnce<E> {
    cells: std::sync::Mutex<HashMap<(String, MediaKind), OneUpload<E>>>,
}

/// One file's upload: its URL once made, or why it failed.
type OneUpload<E> = Arc<OnceCell<Result<String, E>>>;

impl<E: Clone> UploadOnce<E> {
    pub(crate) fn new() -> Self {
        UploadOnce {
            cells: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The URL of the file with SHA-256 `digest` as a `kind`: known, or `upload()`ed now.
    pub(crate) async fn url<Fut>(
        &self,
        digest: &str,
        kind: MediaKind,
        upload: impl FnOnce() -> Fut,
    ) -> Result<String, E>
    where
        Fut: Future<Output = Result<String, E>>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(cells.entry((digest.to_owned(), kind)).or_default())
        };
        cell.get_or_init(upload).await.clone()
    }
}

/// A local file's SHA-256 (hex), read on a blocking thread: what an upload is known by.
pub(crate) async fn file_digest(path: &Path) -> Result<String, crate::Error> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::saving::digest(&p))
        .await
        .map_err(|e| crate::Error::InvalidInput(format!("reading {}: {e}", path.display())))?
        .map(|(_, sha)| sha)
}

/// A library error as a person reads it: no `invalid input:` prefix, no advice about
/// library options they cannot set here.
fn for_people(e: &crate::Error) -> String {
    e.to_string()
        .trim_start_matches("invalid input: ")
        .replace("; if it is one, set `UploadOptions::content_type`", "")
        .replace(
            " (set `UploadOptions::content_type` if the detection is wrong)",
            "",
        )
}

/// Text from a schema as plain, single-line terminal text: escape sequences and control
/// characters (and bidirectional overrides) removed, whitespace collapsed, at most 400
/// characters.
#[cfg(feature = "cli")]
pub(crate) fn plain(text: &str) -> String {
    plain_text(text, 400)
}

/// A value (from a plan or a flag) as it is shown in a message: plain text, at most 80
/// characters.
pub(crate) fn shorten(value: &str) -> String {
    plain_text(value, 80)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn each_file_is_uploaded_once_per_kind_whoever_asks_and_however_many_at_once() {
        use super::{MediaKind, UploadOnce};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let once = UploadOnce::<String>::new();
        let uploads = AtomicUsize::new(0);
        let upload = |name: &'static str| {
            let uploads = &uploads;
            move || async move {
                uploads.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok::<_, String>(format!("https://cdn/{name}"))
            }
        };
        let (a, b) = tokio::join!(
            once.url("sha1", MediaKind::Image, upload("a")),
            once.url("sha1", MediaKind::Image, upload("b")),
        );
        assert_eq!(a, b, "the second waits for the first's upload");
        assert_eq!(uploads.load(Ordering::SeqCst), 1);
        let as_document = once.url("sha1", MediaKind::Document, upload("c")).await;
        assert_eq!(
            as_document.unwrap(),
            "https://cdn/c",
            "another kind is another upload"
        );
        assert_eq!(uploads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn values_in_messages_are_plain_and_short() {
        // A plan value cannot colour, reorder or break the line of a message.
        assert_eq!(
            super::shorten("a\u{1b}[31mb\u{202E}c\nd"),
            "abc d",
            "escapes, bidi overrides and newlines removed"
        );
        let long = super::shorten(&"x".repeat(200));
        assert_eq!(long.chars().count(), 80);
        assert!(long.ends_with('…'));
    }
}
