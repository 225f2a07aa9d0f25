//! The tools `floret mcp` lists: one per technique (`run_<slug>`, its inputs as a JSON
//! Schema), and three to look around (`list_runs`, `get_run`, `cost_so_far`). Pure data
//! from schemas, so the list is snapshot-tested.

use serde_json::{Map, Value, json};

use super::super::inputs::{self, InputFlag};
use crate::wire::{MediaType, TechniqueSchema};

/// A technique as a tool: its schema and its inputs' flags (the same checks as `floret run`).
#[derive(Debug, Clone)]
pub(crate) struct TechniqueTool {
    /// `run_<slug>`, in the characters MCP allows in a tool name.
    pub name: String,
    pub schema: TechniqueSchema,
    pub flags: Vec<InputFlag>,
}

/// Whether a slug or model id is plain enough to name a tool and a file: ASCII letters,
/// digits, `-`, `_` and `.`, at most 120 characters. Others are not offered: a client
/// refuses such names, and a slug carrying escapes could carry anything.
pub(crate) fn plain_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 120
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The tool name of a technique: `run_` and its slug, anything but ASCII letters, digits,
/// `_`, `-` and `.` replaced by `_` (MCP's tool name rule), at most 128 characters.
pub(crate) fn tool_name(slug: &str) -> String {
    let clean: String = slug
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("run_{clean}");
    name.truncate(128);
    name
}

impl TechniqueTool {
    /// The tool of a schema; `Err` names why the technique cannot be offered.
    pub(crate) fn new(schema: TechniqueSchema) -> Result<TechniqueTool, String> {
        let flags = inputs::flags(&schema)?;
        Ok(TechniqueTool {
            name: tool_name(schema.slug_or_derived()),
            schema,
            flags,
        })
    }

    /// What the agent reads: name, description, cost per run, and how media is given.
    pub(crate) fn description(&self) -> String {
        let s = &self.schema;
        let mut text = s.name.trim().to_owned();
        if let Some(d) = s.description.as_deref().filter(|d| !d.trim().is_empty()) {
            text.push_str(": ");
            text.push_str(d.trim());
        }
        if !text.ends_with(['.', '!', '?']) {
            text.push('.');
        }
        if let Some(cost) = s.run_cost {
            text.push_str(&format!(" Costs {cost} USD a run."));
        }
        text.push_str(
            " Media inputs take an https URL or a local file path inside the allowed \
             directories (absolute, `~/…`, or relative to one of them). Waits for the run and saves \
             its outputs.",
        );
        crate::safe_text::plain_text(&text, 1024)
    }

    /// The JSON Schema of the tool's arguments: one property per input (an array where the
    /// input takes several values), the inputs that are not optional required, nothing else.
    pub(crate) fn input_schema(&self) -> Map<String, Value> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for f in &self.flags {
            let slot = &f.slot;
            let what = match slot.kind.media_kind() {
                Some(kind) => format!("{}: an https URL or a local file path", kind.noun()),
                None if slot.kind == MediaType::Text => "text".to_owned(),
                None => format!("a value of type `{}`", slot.kind),
            };
            let mut about = slot.name.clone().unwrap_or_else(|| slot.id.clone());
            if let Some(d) = slot.description.as_deref().filter(|d| !d.trim().is_empty()) {
                about.push_str(". ");
                about.push_str(d.trim());
            }
            let one = json!({
                "type": "string",
                "description": crate::safe_text::plain_text(&format!("{about} ({what})"), 512),
            });
            let property = if f.multiple {
                json!({"type": "array", "items": one, "minItems": 1})
            } else {
                one
            };
            properties.insert(slot.id.clone(), property);
            if !slot.optional {
                required.push(Value::String(slot.id.clone()));
            }
        }
        object_schema(properties, required)
    }
}

/// A tool's input schema: an object of exactly these properties, `required` among them.
pub(super) fn object_schema(
    properties: Map<String, Value>,
    required: Vec<Value>,
) -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// The tools that look around, each `(name, description, input schema)`.
pub(crate) fn fixed_tools() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "list_runs",
            "Recent runs of a technique, newest first: id, status, progress, charged cost.",
            json!({
                "type": "object",
                "properties": {
                    "technique": {"type": "string", "description": "The technique's slug"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100}
                },
                "required": ["technique"],
                "additionalProperties": false
            }),
        ),
        (
            "get_run",
            "One run by id: status, progress, outputs (URLs) and charged cost. Use it for a run \
             a call answered as still running.",
            json!({
                "type": "object",
                "properties": {"run_id": {"type": "string"}},
                "required": ["run_id"],
                "additionalProperties": false
            }),
        ),
        (
            "cost_so_far",
            "What this session has spent (USD, settled charges), what runs in flight may \
             still cost, and the session's limit.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_keep_to_mcp_characters() {
        assert_eq!(tool_name("cctv-cam"), "run_cctv-cam");
        assert_eq!(tool_name("a b/é"), "run_a_b__");
        assert_eq!(tool_name(&"x".repeat(300)).len(), 128);
    }
}
