//! Media URL newtypes: one type per media kind, so an image input cannot take a video.
//!
//! Each type accepts only absolute `https://` URLs with a host, written in standard form
//! (nothing the URL parser would have to repair), without control characters and at most
//! [`MAX_URL_LEN`] bytes long. What is stored and sent is the parser's serialisation of the
//! validated URL, never the raw input. There is deliberately no `From<String>`: a URL
//! becomes an [`ImageUrl`] only through a checked parse.

use std::fmt;
use std::str::FromStr;

/// Why a string was refused as a media URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: {reason}")]
pub struct MediaUrlError {
    kind: &'static str,
    input: String,
    reason: String,
}

impl MediaUrlError {
    /// The media kind that was being parsed (`image URL`, `video URL`, ...).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
    /// What was wrong with the input.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Longest input quoted back in an error, so a pasted blob does not flood a log.
const MAX_QUOTED: usize = 200;

/// Longest media URL accepted, in bytes. Signed URLs run to about 2 KiB; 8 KiB is the request
/// line limit of common HTTP servers, so a longer URL could not be fetched anyway.
pub const MAX_URL_LEN: usize = 8 * 1024;

/// Checks that `input` is an absolute `https://` URL with a host; the shared rule of all kinds.
/// Returns the URL as it will be sent.
fn validate(kind: &'static str, upload: &str, input: &str) -> Result<String, MediaUrlError> {
    let fail = |reason: &str| {
        let mut quoted: String = input.chars().take(MAX_QUOTED).collect();
        if quoted.len() < input.len() {
            quoted.push('…');
        }
        Err(MediaUrlError {
            kind,
            input: quoted,
            reason: reason.to_owned(),
        })
    };
    if input.is_empty() {
        return fail("the URL is empty; pass an absolute https:// URL");
    }
    if looks_like_a_path(input) {
        return fail(&format!(
            "this looks like a file path, not a URL; upload the file first: \
             `client.{upload}(path).await?` returns the URL to pass here"
        ));
    }
    if input.len() > MAX_URL_LEN {
        return fail(&format!(
            "the URL is {} bytes long; at most {MAX_URL_LEN} are accepted",
            input.len()
        ));
    }
    if let Some(c) = input.chars().find(|c| c.is_control()) {
        return fail(&format!(
            "URLs cannot contain control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    if input.chars().any(char::is_whitespace) {
        return fail("URLs cannot contain whitespace; percent-encode spaces as %20");
    }
    // The parser repairs many malformed inputs silently (`https:e.com`, backslashes, bad
    // percent escapes); such an input is refused rather than sent in a form nobody wrote.
    let violation = std::cell::Cell::new(None);
    let parsed = url::Url::options()
        .syntax_violation_callback(Some(&|v| {
            if violation.get().is_none() {
                violation.set(Some(v));
            }
        }))
        .parse(input);
    if let (Ok(_), Some(v)) = (&parsed, violation.get()) {
        return fail(&format!(
            "not a URL in standard form ({}); write it as https://host/path",
            v.description()
        ));
    }
    let url = match parsed {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return fail(&format!(
                "relative URLs are not accepted; pass an absolute https:// URL, or for a file \
                 on disk `client.{upload}(path).await?`"
            ));
        }
        Err(e) => return fail(&format!("not a valid URL ({e})")),
    };
    match url.scheme() {
        "https" => {}
        // Local test servers (FakeFlora, wiremock) serve media over plain http on loopback.
        "http" if crate::urls::is_loopback(&url) => {}
        "http" => {
            return fail(
                "scheme `http` is not allowed; FLORA only fetches media over https:// \
                 (http:// is accepted for localhost, 127.0.0.0/8 and ::1 only)",
            );
        }
        "file" => {
            return fail(&format!(
                "file:// URLs are files on this machine; upload the file first: \
                 `client.{upload}(path).await?`"
            ));
        }
        other => {
            return fail(&format!(
                "scheme `{other}` is not allowed; FLORA only fetches media over https://"
            ));
        }
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url.into()),
        _ => fail("the URL has no host"),
    }
}

/// Absolute Unix paths, `./`, `../`, `~/`, Windows drive paths and `file:` URLs.
fn looks_like_a_path(input: &str) -> bool {
    let b = input.as_bytes();
    let drive =
        b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
    input.starts_with('/')
        || input.starts_with("./")
        || input.starts_with("../")
        || input.starts_with("~/")
        || input.starts_with(".\\")
        || input.starts_with("\\\\")
        || drive
}

macro_rules! media_url {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $upload:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an absolute `https://` URL with a host, in standard form (nothing the URL
            /// parser would repair), without control characters, at most
            /// [`MAX_URL_LEN`](crate::MAX_URL_LEN) bytes.
            ///
            /// ```
            #[doc = concat!("# use flora_api::", stringify!($name), ";")]
            #[doc = concat!("let url = ", stringify!($name), "::parse(\"https://example.com/a.png\").unwrap();")]
            /// assert_eq!(url.as_str(), "https://example.com/a.png");
            #[doc = concat!("assert!(", stringify!($name), "::parse(\"http://example.com/a.png\").is_err());")]
            /// ```
            pub fn parse(input: &str) -> Result<Self, MediaUrlError> {
                validate($kind, $upload, input).map(Self)
            }

            /// The URL as validated and sent (the URL parser's serialisation).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The URL as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl FromStr for $name {
            type Err = MediaUrlError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = MediaUrlError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = MediaUrlError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

macro_rules! media_urls {
    ($(($kind:ident, $url:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {$(
        media_url!(
            #[doc = concat!("An `https://` URL of a FLORA ", $name, " input or output (`", $camel, "`).")]
            ///
            #[doc = concat!("A local file becomes one through [`Client::", stringify!($up), "`](crate::Client::", stringify!($up), ").")]
            $url,
            concat!($name, " URL"),
            stringify!($up)
        );
    )*};
}
crate::kinds::for_each_media_kind!(media_urls);

macro_rules! parse_as {
    ($(($kind:ident, $url:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {
        /// Checks `input` as a URL of `kind` (through that kind's type), for values whose kind
        /// is known only at run time; returns it as it would be sent.
        #[cfg(any(feature = "cli", feature = "batch"))]
        pub(crate) fn parse_as(kind: crate::kinds::MediaKind, input: &str) -> Result<String, MediaUrlError> {
            Ok(match kind {
                $(crate::kinds::MediaKind::$kind => $url::parse(input)?.into_string(),)*
            })
        }
    };
}
crate::kinds::for_each_media_kind!(parse_as);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_with_host() {
        let u = ImageUrl::parse("https://media.flora.ai/a.png?x=1").unwrap();
        assert_eq!(u.as_str(), "https://media.flora.ai/a.png?x=1");
        assert_eq!(u.to_string(), "https://media.flora.ai/a.png?x=1");
        let v: VideoUrl = "https://e.com/v.mp4".parse().unwrap();
        assert_eq!(v.as_ref(), "https://e.com/v.mp4");
        assert!(AudioUrl::try_from(String::from("https://e.com/a.mp3")).is_ok());
        assert!(DocumentUrl::try_from("https://e.com/d.pdf").is_ok());
    }

    #[test]
    fn rejects_bad_urls_with_reasons() {
        let cases = [
            ("http://e.com/a.png", "scheme `http`"),
            ("/home/me/face.png", "client.upload_image(path)"),
            ("./face.png", "looks like a file path"),
            ("C:\\photos\\face.png", "looks like a file path"),
            ("file:///home/me/face.png", "client.upload_image(path)"),
            ("photos/face.png", "client.upload_image(path)"),
            ("/relative/a.png", "relative"),
            ("a.png", "relative"),
            ("", "empty"),
            ("https://e.com/a b.png", "whitespace"),
            (" https://e.com/a.png", "whitespace"),
            ("ftp://e.com/a.png", "scheme `ftp`"),
            ("https://", "not a valid URL"),
            ("data:image/png;base64,AAAA", "scheme `data`"),
        ];
        for (input, want) in cases {
            let err = ImageUrl::parse(input).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{input:?}: {err} should mention {want}"
            );
            assert!(err.to_string().contains("image URL"), "{err}");
        }
    }

    #[test]
    fn malformed_or_repaired_inputs_are_refused() {
        let cases = [
            ("\u{1}https://e.com/a.png", "control character"),
            ("https://e.com/a.png\0", "control character"),
            ("https://e.com/a\u{7f}.png", "control character"),
            ("https:e.com/a.png", "standard form"),
            ("https:\\\\e.com\\a.png", "standard form"),
            ("https://e.com/a%zz.png", "standard form"),
            ("https://user:pw@e.com/a.png", "standard form"),
        ];
        for (input, want) in cases {
            let err = ImageUrl::parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err} should mention {want}");
        }
        let huge = format!("https://e.com/{}", "a".repeat(5 * 1024 * 1024));
        let err = ImageUrl::parse(&huge).unwrap_err().to_string();
        assert!(
            err.contains("at most 8192"),
            "{}",
            &err[..200.min(err.len())]
        );
        assert!(err.len() < 600, "{}", err.len());
        let ok = format!("https://e.com/{}", "a".repeat(MAX_URL_LEN - 14));
        assert_eq!(ok.len(), MAX_URL_LEN);
        assert!(ImageUrl::parse(&ok).is_ok());
    }

    #[test]
    fn what_is_sent_is_what_was_validated() {
        // The stored form is the parser's serialisation, and it parses back to itself.
        for input in [
            "https://E.COM/a.png",
            "https://e.com",
            "https://e.com/fa\u{e7}ade.png?x=1#f",
        ] {
            let u = ImageUrl::parse(input).unwrap();
            let again = ImageUrl::parse(u.as_str()).unwrap();
            assert_eq!(again, u, "{input}");
            assert_eq!(url::Url::parse(u.as_str()).unwrap().as_str(), u.as_str());
            assert_eq!(serde_json::to_value(&u).unwrap(), u.as_str());
        }
        assert_eq!(
            ImageUrl::parse("https://E.COM/a.png").unwrap().as_str(),
            "https://e.com/a.png"
        );
    }

    #[test]
    fn loopback_http_is_accepted_for_local_servers() {
        for ok in [
            "http://127.0.0.1:8080/a.png",
            "http://localhost/a.png",
            "http://[::1]:9/a",
        ] {
            assert!(ImageUrl::parse(ok).is_ok(), "{ok}");
        }
        assert!(ImageUrl::parse("http://10.0.0.1/a.png").is_err());
        let err = VideoUrl::parse("/tmp/clip.mp4").unwrap_err().to_string();
        assert!(err.contains("client.upload_video(path)"), "{err}");
    }

    #[test]
    fn error_names_the_kind() {
        let err = VideoUrl::parse("http://e.com").unwrap_err();
        assert_eq!(err.kind(), "video URL");
    }

    #[test]
    fn long_input_is_truncated_in_errors() {
        let long = format!("http://e.com/{}", "x".repeat(5000));
        let err = ImageUrl::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 400, "{}", err.len());
    }

    #[test]
    fn serde_round_trip_validates() {
        let u: ImageUrl = serde_json::from_str("\"https://e.com/a.png\"").unwrap();
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            "\"https://e.com/a.png\""
        );
        assert!(serde_json::from_str::<ImageUrl>("\"http://e.com/a.png\"").is_err());
    }
}
