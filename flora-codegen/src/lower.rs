//! Schema file → IR, collecting every problem with its JSON pointer.
//!
//! Reads the JSON tree directly (not through a derived model) so each problem can name the
//! exact place: `schemas/foo.json#/inputs/2/type`. Accepts both casings the API has used.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{Kind, SlotDocs, SlotSpec, TechniqueSpec};
use crate::naming;

/// A schema file as read from disk (or from memory in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// Path as shown in messages, e.g. `schemas/cctv-cam.json`. Its stem is the slug.
    pub path: String,
    /// The file's text.
    pub contents: String,
}

impl SchemaFile {
    /// A schema file from a path and its text.
    pub fn new(path: impl Into<String>, contents: impl Into<String>) -> Self {
        SchemaFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    /// The slug: the file name without directory and `.json`.
    pub fn slug(&self) -> Option<&str> {
        let name = self.path.rsplit(['/', '\\']).next()?;
        name.strip_suffix(".json").filter(|s| !s.is_empty())
    }
}

const REGEN_HINT: &str = "fix the file or fetch it again (`flora-codegen fetch`, or `cargo xtask regen` in flora-codegen's repository)";
const FORMAT_HINT: &str = "the schema format is in flora-codegen's docs: `flora_codegen::schema_format` (docs.rs/flora-codegen, or flora-codegen/src/schema_format.md)";

struct Ctx<'a> {
    file: &'a str,
    diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    fn err(
        &mut self,
        pointer: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::new(self.file, pointer, message, hint));
    }

    /// The first present spelling of a field.
    fn field<'v>(obj: &'v Map<String, Value>, names: &[&str]) -> Option<(&'v str, &'v Value)> {
        names
            .iter()
            .find_map(|n| obj.get_key_value(*n))
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.as_str(), v))
    }

    fn opt_string(&mut self, obj: &Map<String, Value>, at: &str, names: &[&str]) -> Option<String> {
        let (key, v) = Self::field(obj, names)?;
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.err(
                    format!("{at}/{key}"),
                    format!("`{key}` must be a string, found {}", kind_of(other)),
                    REGEN_HINT,
                );
                None
            }
        }
    }

    fn opt_number(&mut self, obj: &Map<String, Value>, at: &str, names: &[&str]) -> Option<f64> {
        let (key, v) = Self::field(obj, names)?;
        match v.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.err(
                    format!("{at}/{key}"),
                    format!("`{key}` must be a number, found {}", kind_of(v)),
                    REGEN_HINT,
                );
                None
            }
        }
    }

    fn opt_bool(&mut self, obj: &Map<String, Value>, at: &str, names: &[&str]) -> bool {
        match Self::field(obj, names) {
            None => false,
            Some((_, Value::Bool(b))) => *b,
            Some((key, other)) => {
                self.err(
                    format!("{at}/{key}"),
                    format!("`{key}` must be true or false, found {}", kind_of(other)),
                    REGEN_HINT,
                );
                false
            }
        }
    }
}

/// Module names that are file names of the generated tree itself.
const RESERVED_MODULES: &[&str] = &["mod"];

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn known_types() -> String {
    Kind::known_wire_types()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses and validates one schema file. Problems go to `diags`; `None` when any was found.
pub fn lower(file: &SchemaFile, diags: &mut Diagnostics) -> Option<TechniqueSpec> {
    let before = diags.errors();
    let mut cx = Ctx {
        file: &file.path,
        diags,
    };
    let Some(slug) = file.slug() else {
        cx.err(
            "",
            "the file name must be `<slug>.json`",
            "rename the file after the technique's slug",
        );
        return None;
    };
    let root: Value = match serde_json::from_str(&file.contents) {
        Ok(v) => v,
        Err(e) => {
            cx.err(
                "",
                {
                    let location = format!(" at line {} column {}", e.line(), e.column());
                    let what = e.to_string();
                    let what = what.strip_suffix(&location).unwrap_or(&what).to_owned();
                    format!(
                        "invalid JSON at line {}, column {}: {what}",
                        e.line(),
                        e.column()
                    )
                },
                REGEN_HINT,
            );
            return None;
        }
    };
    let Value::Object(obj) = &root else {
        cx.err(
            "",
            format!(
                "a technique schema must be a JSON object, found {}",
                kind_of(&root)
            ),
            REGEN_HINT,
        );
        return None;
    };

    if let Err(problem) = naming::check_slug(slug) {
        cx.err(
            "",
            problem,
            "rename the schema file (its name is the slug); slugs are file names on every OS",
        );
    }
    let module = naming::snake(slug);
    let struct_name = naming::upper_camel(slug);
    if module.is_none() || struct_name.is_none() {
        cx.err(
            "",
            format!("slug `{slug}` has no letters or digits to build a Rust name from"),
            "rename the schema file",
        );
    }
    if let Some(m) = &module
        && RESERVED_MODULES.contains(&naming::unraw(&m.rust))
    {
        cx.err(
            "",
            format!(
                "slug `{slug}` would become the module file `{}.rs`, which is the generated \
                 index of all techniques",
                naming::unraw(&m.rust)
            ),
            "rename the schema file (and the technique's slug in FLORA)",
        );
    }

    let technique_id = cx.opt_string(obj, "", &["technique_id", "techniqueId"]);
    match &technique_id {
        None if Ctx::field(obj, &["technique_id", "techniqueId"]).is_none() => cx.err(
            "",
            "missing `technique_id`",
            format!(
                "add `\"technique_id\": \"tech_{slug}\"` (the technique's `tech_…` id), or \
                 fetch the schema (`flora-codegen fetch`); {FORMAT_HINT}"
            ),
        ),
        Some(id) if !id.starts_with("tech_") || id.len() == 5 => cx.err(
            format!(
                "/{}",
                Ctx::field(obj, &["technique_id", "techniqueId"]).map_or("technique_id", |f| f.0)
            ),
            format!("technique id `{id}` is not of the form `tech_…`"),
            REGEN_HINT,
        ),
        _ => {}
    }
    let display_name = cx.opt_string(obj, "", &["name"]);
    let description = cx.opt_string(obj, "", &["description"]);
    // `-0.0` is zero: never document "-0.0 USD".
    let run_cost = cx
        .opt_number(obj, "", &["run_cost", "runCost"])
        .map(|c| if c == 0.0 { 0.0 } else { c });
    match run_cost {
        None if Ctx::field(obj, &["run_cost", "runCost"]).is_none() => cx.err(
            "",
            "missing `run_cost`",
            format!(
                "add `\"run_cost\": 0.05` (USD per run, a number), or fetch the schema \
                 (`flora-codegen fetch`); {FORMAT_HINT}"
            ),
        ),
        Some(c) if c < 0.0 => cx.err(
            format!(
                "/{}",
                Ctx::field(obj, &["run_cost", "runCost"]).map_or("run_cost", |f| f.0)
            ),
            format!("`run_cost` is negative ({c})"),
            REGEN_HINT,
        ),
        _ => {}
    }

    let inputs = slots(&mut cx, obj, "inputs", true);
    let outputs = slots(&mut cx, obj, "outputs", false);

    if cx.diags.errors() > before {
        return None;
    }
    let (Some(module), Some(struct_name), Some(technique_id), Some(run_cost)) =
        (module, struct_name, technique_id, run_cost)
    else {
        return None;
    };
    Some(TechniqueSpec {
        file: file.path.clone(),
        // `Self_` (escaped keyword) gets `SelfOutputs`: the suffix already makes it no keyword.
        outputs_name: format!(
            "{}Outputs",
            naming::unraw(&struct_name.rust).trim_end_matches('_')
        ),
        module,
        struct_name,
        technique_id,
        display_name: display_name.unwrap_or_else(|| slug.to_owned()),
        description,
        run_cost,
        inputs,
        outputs,
    })
}

fn slots(cx: &mut Ctx<'_>, obj: &Map<String, Value>, key: &str, is_input: bool) -> Vec<SlotSpec> {
    let list = match obj.get(key) {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            cx.err(
                "",
                format!("missing `{key}`"),
                format!(
                    "add `\"{key}\": [{{\"id\": \"…\", \"type\": \"imageUrl\"}}]` (or `[]`), or \
                     fetch the technique (`flora-codegen fetch`); {FORMAT_HINT}"
                ),
            );
            return Vec::new();
        }
        Some(other) => {
            cx.err(
                format!("/{key}"),
                format!("`{key}` must be an array, found {}", kind_of(other)),
                REGEN_HINT,
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(list.len());
    // Rust field name -> (pointer, wire id) of the first slot that took it.
    let mut taken: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("/{key}/{i}");
        let Value::Object(slot) = item else {
            cx.err(
                &at,
                format!("a slot must be an object, found {}", kind_of(item)),
                REGEN_HINT,
            );
            continue;
        };
        let id = match slot.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) => {
                cx.err(format!("{at}/id"), "`id` is empty", REGEN_HINT);
                continue;
            }
            None | Some(Value::Null) => {
                cx.err(
                    &at,
                    "missing `id`",
                    "every slot needs the id the API knows it by",
                );
                continue;
            }
            Some(other) => {
                cx.err(
                    format!("{at}/id"),
                    format!("`id` must be a string, found {}", kind_of(other)),
                    REGEN_HINT,
                );
                continue;
            }
        };
        let wire_type = match slot.get("type") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                cx.err(
                    &at,
                    format!("slot `{id}` is missing `type`"),
                    format!("use one of {}", known_types()).as_str(),
                );
                continue;
            }
            Some(other) => {
                cx.err(
                    format!("{at}/type"),
                    format!("`type` must be a string, found {}", kind_of(other)),
                    REGEN_HINT,
                );
                continue;
            }
        };
        // FLORA adds slot types without notice: an unknown one degrades (with a warning),
        // it never blocks the whole catalog.
        let kind = match Kind::from_wire(&wire_type) {
            Some(k) => k,
            None => {
                let (kind, became) = if is_input {
                    (
                        Kind::Unknown,
                        "a `String` field, sent verbatim with this wire type",
                    )
                } else {
                    (Kind::Raw, "a `RawOutput` field (the output as sent)")
                };
                cx.diags.push(Diagnostic::warning(
                    cx.file,
                    format!("{at}/type"),
                    format!(
                        "{} `{id}` has type `{wire_type}`, unknown to this flora-codegen; it \
                         became {became}",
                        &key[..key.len() - 1]
                    ),
                    format!(
                        "known types are {}; update flora-codegen to get a typed field (the \
                         change will then be reported as BREAKING)",
                        known_types()
                    ),
                ));
                kind
            }
        };
        let optional = cx.opt_bool(slot, &at, &["optional"]);
        let docs = SlotDocs {
            name: cx.opt_string(slot, &at, &["name"]),
            description: cx.opt_string(slot, &at, &["description"]),
            aspect_ratio: cx.opt_string(
                slot,
                &at,
                &["specified_aspect_ratio", "specifiedAspectRatio"],
            ),
            duration: cx.opt_number(slot, &at, &["specified_duration", "specifiedDuration"]),
            accepts_element: cx.opt_bool(slot, &at, &["accepts_element", "acceptsElement"]),
            allow_multiple: cx.opt_bool(slot, &at, &["allow_multiple", "allowMultiple"]),
        };
        let Some(name) = naming::snake(&id) else {
            cx.err(
                format!("{at}/id"),
                format!(
                    "{} id `{id}` has no letters or digits to build a field name from",
                    &key[..key.len() - 1]
                ),
                "this id cannot be used from Rust; report it to the technique's author",
            );
            continue;
        };
        if let Some((first_at, first_id)) = taken.get(&name.rust) {
            let what = if first_id == &id {
                "is declared twice"
            } else {
                "collides"
            };
            cx.err(
                format!("{at}/id"),
                format!(
                    "{} `{id}` {what}: it and `{first_id}` (at #{first_at}) both become field `{}`",
                    &key[..key.len() - 1],
                    name.rust
                ),
                "rename one of them in the technique; flora-codegen never merges or suffixes names",
            );
            continue;
        }
        taken.insert(name.rust.clone(), (at.clone(), id.clone()));
        out.push(SlotSpec {
            name,
            wire_type,
            kind,
            optional: optional && is_input,
            docs,
        });
    }
    out
}

/// Reports techniques whose Rust names clash (struct, outputs struct or module).
pub fn check_collisions(specs: &[TechniqueSpec], diags: &mut Diagnostics) {
    // Schema files are named by slug: two that differ only by case are one file on macOS
    // and Windows (`FooBar.json`, `foobar.json`), even where their Rust names differ.
    let mut folded: BTreeMap<String, &TechniqueSpec> = BTreeMap::new();
    for spec in specs {
        if let Some(other) = folded.insert(spec.module.wire.to_lowercase(), spec)
            && other.module.wire != spec.module.wire
        {
            diags.push(Diagnostic::new(
                &spec.file,
                "",
                format!(
                    "the slug `{}` differs from `{}` ({}) only by case: the two schema files \
                     are one file on macOS and Windows",
                    spec.module.wire, other.module.wire, other.file
                ),
                "remove or rename one of the schema files",
            ));
        }
    }
    // Every generated name in the `techniques` namespace -> the file that produced it.
    let mut owners: BTreeMap<(&'static str, String), (&str, &'static str)> = BTreeMap::new();
    for spec in specs {
        // Modules and types share Rust's type namespace, but a snake_case module name can
        // never equal an UpperCamelCase type name, so they are checked apart.
        let names = [
            (
                ("type", naming::unraw(&spec.struct_name.rust).to_owned()),
                "struct",
            ),
            (("type", spec.outputs_name.clone()), "outputs struct"),
            (
                ("mod", naming::unraw(&spec.module.rust).to_owned()),
                "module",
            ),
        ];
        for (key, what) in names {
            let name = key.1.clone();
            if let Some((other, other_what)) = owners.get(&key) {
                diags.push(Diagnostic::new(
                    &spec.file,
                    "",
                    format!(
                        "the {what} `{name}` generated for this technique clashes with the \
                         {other_what} of the same name generated for {other}"
                    ),
                    "two slugs map to one Rust name; remove or rename one of the schema files",
                ));
            } else {
                owners.insert(key, (&spec.file, what));
            }
        }
    }
}
