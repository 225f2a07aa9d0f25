//! Input values given as text (a command line, a batch plan): classified as a local file,
//! an `https://` URL or text, and checked against the slot before anything is sent. Shared by
//! `floret run` and batches.

use std::path::PathBuf;

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
