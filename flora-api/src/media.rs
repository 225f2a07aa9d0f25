//! Media URL newtypes: one type per media kind, so an image input cannot take a video.
//!
//! Each type accepts only absolute `https://` URLs with a host. There is deliberately no
//! `From<String>`: a URL becomes an [`ImageUrl`] only through a checked parse.

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

/// Checks that `input` is an absolute `https://` URL with a host; the shared rule of all kinds.
fn validate(kind: &'static str, input: &str) -> Result<(), MediaUrlError> {
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
    if input.chars().any(char::is_whitespace) {
        return fail("URLs cannot contain whitespace; percent-encode spaces as %20");
    }
    let url = match url::Url::parse(input) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return fail("relative URLs are not accepted; pass an absolute https:// URL");
        }
        Err(e) => return fail(&format!("not a valid URL ({e})")),
    };
    if url.scheme() != "https" {
        return fail(&format!(
            "scheme `{}` is not allowed; FLORA only fetches media over https://",
            url.scheme()
        ));
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => fail("the URL has no host"),
    }
}

macro_rules! media_url {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an absolute `https://` URL with a host.
            ///
            /// ```
            #[doc = concat!("# use flora_api::", stringify!($name), ";")]
            #[doc = concat!("let url = ", stringify!($name), "::parse(\"https://example.com/a.png\").unwrap();")]
            /// assert_eq!(url.as_str(), "https://example.com/a.png");
            #[doc = concat!("assert!(", stringify!($name), "::parse(\"http://example.com/a.png\").is_err());")]
            /// ```
            pub fn parse(input: &str) -> Result<Self, MediaUrlError> {
                validate($kind, input)?;
                Ok(Self(input.to_owned()))
            }

            /// The URL exactly as given.
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
                validate($kind, &s)?;
                Ok(Self(s))
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

media_url!(
    /// An `https://` URL of an image, for `imageUrl` inputs and outputs.
    ImageUrl,
    "image URL"
);
media_url!(
    /// An `https://` URL of a video, for `videoUrl` inputs and outputs.
    VideoUrl,
    "video URL"
);
media_url!(
    /// An `https://` URL of an audio file, for `audioUrl` inputs and outputs.
    AudioUrl,
    "audio URL"
);
media_url!(
    /// An `https://` URL of a document, for `documentUrl` inputs and outputs.
    DocumentUrl,
    "document URL"
);

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
