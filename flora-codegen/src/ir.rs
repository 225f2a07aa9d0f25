//! The validated, named form of a technique: what `emit` needs and nothing else.

use crate::naming::Name;

/// A media kind as generated code names it.
#[derive(Debug, PartialEq, Eq)]
pub struct Media {
    /// Both wire spellings (`imageUrl`, `image_url`).
    pub wire: [&'static str; 2],
    /// The runtime's URL type (`ImageUrl`).
    pub type_name: &'static str,
    /// The file doc examples show (`input.png`).
    pub example_file: &'static str,
}

/// The media kinds, one row each: the columns of flora-api's `MediaKind` table the generator
/// needs. This crate cannot depend on flora-api (the runtime depends on it for its own
/// tests), so this is a copy, compared with the runtime's table both ways by
/// `generator_and_runtime_agree_on_every_media_kind`.
pub const MEDIA: &[Media] = &[
    Media {
        wire: ["imageUrl", "image_url"],
        type_name: "ImageUrl",
        example_file: "input.png",
    },
    Media {
        wire: ["videoUrl", "video_url"],
        type_name: "VideoUrl",
        example_file: "input.mp4",
    },
    Media {
        wire: ["audioUrl", "audio_url"],
        type_name: "AudioUrl",
        example_file: "input.mp3",
    },
    Media {
        wire: ["documentUrl", "document_url"],
        type_name: "DocumentUrl",
        example_file: "input.pdf",
    },
];

/// The Rust type a slot maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A media URL type ([`MEDIA`]).
    Media(&'static Media),
    /// `String`
    Text,
    /// `RawOutput` (outputs of unknown kind only)
    Raw,
    /// `String` sent verbatim with the schema's wire type (inputs of a type this version
    /// does not know; generated with a warning)
    Unknown,
}

impl Kind {
    /// The kind of a wire type string, if known.
    pub fn from_wire(wire: &str) -> Option<Kind> {
        if wire == "text" {
            return Some(Kind::Text);
        }
        MEDIA
            .iter()
            .find(|m| m.wire.contains(&wire))
            .map(Kind::Media)
    }

    /// Every wire type string this version knows.
    pub fn known_wire_types() -> impl Iterator<Item = &'static str> {
        MEDIA
            .iter()
            .flat_map(|m| m.wire)
            .chain(std::iter::once("text"))
    }

    /// The `flora_api` type name.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Media(m) => m.type_name,
            Kind::Text | Kind::Unknown => "String",
            Kind::Raw => "RawOutput",
        }
    }
}

/// Human text and constraints of a slot, for docs only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlotDocs {
    /// Display name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// `specified_aspect_ratio`.
    pub aspect_ratio: Option<String>,
    /// `specified_duration` in seconds.
    pub duration: Option<f64>,
    /// `accepts_element`.
    pub accepts_element: bool,
    /// `allow_multiple`.
    pub allow_multiple: bool,
}

/// One input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotSpec {
    /// Field name (rust) and slot id (wire).
    pub name: Name,
    /// The type string exactly as in the schema.
    pub wire_type: String,
    /// The Rust type.
    pub kind: Kind,
    /// `optional: true` (inputs only).
    pub optional: bool,
    /// Docs.
    pub docs: SlotDocs,
}

/// One technique, ready to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct TechniqueSpec {
    /// The schema file it came from (`schemas/cctv-cam.json`).
    pub file: String,
    /// Module name (rust) and slug (wire).
    pub module: Name,
    /// Input struct name (rust) and slug (wire).
    pub struct_name: Name,
    /// `<Struct>Outputs`.
    pub outputs_name: String,
    /// `tech_…`.
    pub technique_id: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: Option<String>,
    /// USD per run.
    pub run_cost: f64,
    /// Inputs in schema order.
    pub inputs: Vec<SlotSpec>,
    /// Outputs in schema order.
    pub outputs: Vec<SlotSpec>,
}

#[cfg(test)]
mod tests {
    use super::{Kind, MEDIA};

    /// The generator's media table is the runtime's `MediaKind` table, checked both ways:
    /// every kind the runtime knows has a row here with the same spellings, type and example
    /// file; every wire type the generator maps is parsed by the runtime to a value whose Rust
    /// type is the one the generator emits (so no media type falls back to `String` by
    /// omission, and no generated type is one the runtime lacks).
    #[test]
    fn generator_and_runtime_agree_on_every_media_kind() {
        use flora_api::__codegen::{rust_type, slot_types};
        for kind in flora_api::MediaKind::ALL {
            let row = MEDIA
                .iter()
                .find(|m| m.type_name == kind.url_type())
                .unwrap_or_else(|| {
                    panic!(
                        "the runtime knows {kind} (`{}`); add its row to flora-codegen's MEDIA",
                        kind.url_type()
                    )
                });
            assert_eq!(row.wire, kind.wire_spellings(), "{kind}");
            assert_eq!(row.example_file, kind.example_file(), "{kind}");
        }
        assert_eq!(MEDIA.len(), flora_api::MediaKind::ALL.len());
        for wire in Kind::known_wire_types() {
            let kind = Kind::from_wire(wire).unwrap();
            let parsed = flora_api::MediaType::from(wire);
            assert_eq!(
                rust_type(&parsed),
                Some(kind.type_name()),
                "`{wire}`: the generator emits {} but the runtime reads it as {parsed:?}",
                kind.type_name()
            );
        }
        for (wire, value) in slot_types() {
            let kind = Kind::from_wire(wire)
                .unwrap_or_else(|| panic!("the runtime parses `{wire}`, the generator does not"));
            assert_eq!(Some(kind.type_name()), rust_type(value), "`{wire}`");
        }
        assert_eq!(Kind::known_wire_types().count(), slot_types().len());
    }

    /// The version generated code checks is the runtime's.
    #[test]
    fn the_contract_versions_agree() {
        assert_eq!(crate::CONTRACT, flora_api::__codegen::CONTRACT);
    }
}
