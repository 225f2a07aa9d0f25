//! The validated, named form of a technique: what `emit` needs and nothing else.

use crate::naming::Name;

/// The Rust type a slot maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ImageUrl`
    Image,
    /// `VideoUrl`
    Video,
    /// `AudioUrl`
    Audio,
    /// `DocumentUrl`
    Document,
    /// `String`
    Text,
    /// `RawOutput` (outputs of unknown kind only)
    Raw,
    /// `String` sent verbatim with the schema's wire type (inputs of a type this version
    /// does not know; generated with a warning)
    Unknown,
}

impl Kind {
    /// The known wire types and their kinds; both spellings of each media type.
    pub const WIRE: &'static [(&'static str, Kind)] = &[
        ("imageUrl", Kind::Image),
        ("image_url", Kind::Image),
        ("videoUrl", Kind::Video),
        ("video_url", Kind::Video),
        ("audioUrl", Kind::Audio),
        ("audio_url", Kind::Audio),
        ("documentUrl", Kind::Document),
        ("document_url", Kind::Document),
        ("text", Kind::Text),
    ];

    /// The kind of a wire type string, if known.
    pub fn from_wire(wire: &str) -> Option<Kind> {
        Self::WIRE.iter().find(|(w, _)| *w == wire).map(|(_, k)| *k)
    }

    /// The `flora_api` type name.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Image => "ImageUrl",
            Kind::Video => "VideoUrl",
            Kind::Audio => "AudioUrl",
            Kind::Document => "DocumentUrl",
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
    use super::Kind;

    /// Issue 20, C: the generator's slot-type table and the runtime's are one table, checked
    /// both ways: every wire type the generator maps is parsed by the runtime to a value whose
    /// Rust type is the one the generator emits, and every spelling the runtime parses is
    /// one the generator maps (so no media type falls back to `String` by omission).
    #[test]
    fn generator_and_runtime_spell_every_slot_type_alike() {
        use flora_api::__codegen::{rust_type, slot_types};
        for (wire, kind) in Kind::WIRE {
            let parsed = flora_api::MediaType::from(*wire);
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
        assert_eq!(Kind::WIRE.len(), slot_types().len());
    }

    /// The version generated code checks is the runtime's.
    #[test]
    fn the_contract_versions_agree() {
        assert_eq!(crate::CONTRACT, flora_api::__codegen::CONTRACT);
    }
}
