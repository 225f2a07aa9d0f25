//! Every media kind FLORA knows, in one table: its wire spellings, its URL type, its upload
//! helpers, the content types FLORA accepts for it, its name in `--help`, the file the fake
//! serves for it and the example file docs show.
//!
//! The table is [`for_each_media_kind!`]: each module that needs something per kind (the wire
//! enum, the URL newtypes, the upload helpers, the `Technique` value impls) hands it a macro
//! that makes its part from the rows, and [`MediaKind`]'s methods read the data columns. Adding
//! a kind is one row here, and every `match` over kinds is exhaustive (no `_` arm), so the
//! compiler names each decision a new kind needs. flora-codegen keeps its own copy of the
//! columns it needs (it cannot depend on this crate); its tests compare the two both ways.

mod placeholders;

/// The table of media kinds; calls `$then!` with every row.
///
/// A row is `(Kind, UrlType, "camelWire", "snake_wire", "short name", upload_fn,
/// upload_fn_with, "example file") { data }`: the first part is what other modules make items
/// from, the `{ data }` part is read only through [`MediaKind`]'s methods.
macro_rules! for_each_media_kind {
    ($then:ident) => {
        $then! {
            (Image, ImageUrl, "imageUrl", "image_url", "image", upload_image, upload_image_with, "input.png") {
                noun: "an image",
                value_name: "IMAGE",
                families: &["image"],
                content_types: &[
                    ("image/jpeg", "jpg"),
                    ("image/png", "png"),
                    ("image/webp", "webp"),
                    ("image/gif", "gif"),
                    ("image/avif", "avif"),
                    ("image/heic", "heic"),
                    ("image/heif", "heif"),
                ],
                placeholder: (placeholders::PNG, "image/png"),
            }
            (Video, VideoUrl, "videoUrl", "video_url", "video", upload_video, upload_video_with, "input.mp4") {
                noun: "a video",
                value_name: "VIDEO",
                families: &["video"],
                content_types: &[
                    ("video/mp4", "mp4"),
                    ("video/webm", "webm"),
                    ("video/quicktime", "mov"),
                ],
                placeholder: (placeholders::MP4, "video/mp4"),
            }
            (Audio, AudioUrl, "audioUrl", "audio_url", "audio", upload_audio, upload_audio_with, "input.mp3") {
                noun: "an audio file",
                value_name: "AUDIO",
                families: &["audio"],
                content_types: &[
                    ("audio/mpeg", "mp3"),
                    ("audio/wav", "wav"),
                    ("audio/ogg", "ogg"),
                ],
                placeholder: (placeholders::WAV, "audio/wav"),
            }
            (Document, DocumentUrl, "documentUrl", "document_url", "document", upload_document, upload_document_with, "input.pdf") {
                noun: "a document",
                value_name: "DOCUMENT",
                families: &["application", "text"],
                content_types: &[("application/pdf", "pdf")],
                placeholder: (placeholders::PDF, "application/pdf"),
            }
        }
    };
}
pub(crate) use for_each_media_kind;

/// The data columns of one row.
struct Row {
    wire: &'static str,
    snake: &'static str,
    name: &'static str,
    url_type: &'static str,
    example_file: &'static str,
    noun: &'static str,
    value_name: &'static str,
    families: &'static [&'static str],
    content_types: &'static [(&'static str, &'static str)],
    placeholder: (&'static [u8], &'static str),
}

macro_rules! media_kind_enum {
    ($(($kind:ident, $url:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) { $($data:tt)* })*) => {
        /// A media kind FLORA knows: what an `imageUrl` (`videoUrl`, …) slot holds.
        ///
        /// ```
        /// use flora_api::{MediaKind, MediaType};
        /// let kind = MediaType::from("video_url").media_kind();
        /// assert_eq!(kind, Some(MediaKind::Video));
        /// assert_eq!(MediaKind::Video.wire(), "videoUrl");
        /// assert!(MediaKind::Video.content_types().contains(&("video/mp4", "mp4")));
        /// assert_eq!(MediaType::Text.media_kind(), None);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MediaKind {
            $(
                #[doc = concat!("`", $camel, "` (`", $snake, "`): [`", stringify!($url), "`](crate::", stringify!($url), ").")]
                $kind,
            )*
        }

        impl MediaKind {
            /// Every kind, in table order.
            pub const ALL: &'static [MediaKind] = &[$(MediaKind::$kind),*];

            const fn row(self) -> &'static Row {
                match self {
                    $(MediaKind::$kind => &Row {
                        wire: $camel,
                        snake: $snake,
                        name: $name,
                        url_type: stringify!($url),
                        example_file: $example,
                        $($data)*
                    },)*
                }
            }
        }
    };
}
for_each_media_kind!(media_kind_enum);

impl MediaKind {
    /// The wire spelling FLORA's docs use (`imageUrl`).
    pub fn wire(self) -> &'static str {
        self.row().wire
    }

    /// Both wire spellings this crate reads (`imageUrl`, `image_url`).
    pub fn wire_spellings(self) -> [&'static str; 2] {
        [self.row().wire, self.row().snake]
    }

    /// The short name (`image`), as in `image URL`.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The kind of this short name (`image`): what a model of catalog type `image` makes.
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn named(name: &str) -> Option<MediaKind> {
        MediaKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The name of its URL type in this crate (`ImageUrl`), as generated code writes it.
    pub fn url_type(self) -> &'static str {
        self.row().url_type
    }

    /// The content types FLORA accepts for it, each with the extension a file of it gets.
    pub fn content_types(self) -> &'static [(&'static str, &'static str)] {
        self.row().content_types
    }

    /// The value name in `floret`'s `--help` (`IMAGE`).
    pub fn value_name(self) -> &'static str {
        self.row().value_name
    }

    /// The example file docs show for an input of this kind (`input.png`).
    pub fn example_file(self) -> &'static str {
        self.row().example_file
    }

    /// The kind with an article, for messages (`an image`).
    pub(crate) fn noun(self) -> &'static str {
        self.row().noun
    }

    /// The kind a (normalised) content type belongs to, by its top-level type.
    pub(crate) fn of_content_type(content_type: &str) -> Option<MediaKind> {
        let top = content_type.split('/').next().unwrap_or("");
        MediaKind::ALL
            .iter()
            .copied()
            .find(|k| k.row().families.contains(&top))
    }

    /// The smallest valid file of this kind and its content type: what FakeFlora serves.
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn placeholder(self) -> (&'static [u8], &'static str) {
        self.row().placeholder
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_distinct_spellings_and_a_placeholder_of_an_accepted_type() {
        let mut seen = std::collections::HashSet::new();
        for kind in MediaKind::ALL {
            for w in kind.wire_spellings() {
                assert!(seen.insert(w), "{w} twice");
            }
            let (bytes, ct) = kind.placeholder();
            assert!(!bytes.is_empty(), "{kind}");
            assert!(
                kind.content_types().iter().any(|(t, _)| *t == ct),
                "{kind}: its placeholder's type {ct} is not one FLORA accepts for it"
            );
            assert_eq!(MediaKind::of_content_type(ct), Some(*kind), "{ct}");
        }
        assert_eq!(
            MediaKind::of_content_type("text/plain"),
            Some(MediaKind::Document)
        );
        assert_eq!(MediaKind::of_content_type("font/woff"), None);
    }
}
