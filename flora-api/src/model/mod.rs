//! The contract generated model structs implement (feature `models`): a model's catalog
//! entry as data ([`ModelInfo`]), its params as typed values, and the one check that runs
//! before any request: FLORA does not validate parameter values (an unknown or out-of-range
//! value runs, completes and bills with the default), so every value is checked here against
//! the catalog the struct was generated from.

mod choice;

pub use choice::Choice;

use crate::error::Error;

/// The type of a model parameter, as the catalog names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamKind {
    /// `string` (with `options`: one of them).
    String,
    /// `string[]`.
    Strings,
    /// `bool`.
    Bool,
    /// `int` (or `int?`: may be left out).
    Int,
    /// `seed`: a non-negative integer.
    Seed,
    /// `float`.
    Float,
    /// `dict`: named numbers, each with its own range.
    Dict,
}

/// A model's catalog entry, as generated code keeps it: the id and type sent with each
/// generation, and the entry itself as JSON, which the runtime reads when it checks or
/// shows a value ([`ModelInfo::schema`]). JSON rather than Rust constants because a crate
/// holds hundreds of models and a string costs almost nothing to compile (bench 2), and
/// because the typed check then reads the same [`ModelSchema`](crate::ModelSchema) as
/// `floret generate` does from the live catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// `model_id`, sent as `model`.
    pub model_id: &'static str,
    /// `image`, `video`, `audio` or `text`, sent as `type`.
    pub kind: &'static str,
    /// The catalog entry as JSON, as far as the check reads it, holding exactly the params
    /// the struct has, in the order of its fields (a param of a type the generator did not
    /// know is left out). Params and dict numbers left out for their names (no Rust name, or
    /// one another has) are listed under `left_out`, so that
    /// [`verify_model`](crate::Client::verify_model) does not report them.
    pub json: &'static str,
}

/// The one error for generated model code that disagrees with itself (its JSON entry edited,
/// or a `Model` whose fields do not match its entry): `what` is wrong, nothing was sent, and
/// regenerating fixes it.
pub(crate) fn damaged_code(model_id: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!(
        "the generated code of model `{model_id}` {what}; nothing was sent: regenerate it \
         (`cargo xtask regen`, or rebuild with flora-codegen's `Build`)"
    ))
}

/// A parameter's value, ready to send.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParamValue {
    /// A string (an option's wire value, for enum-like params).
    String(String),
    /// A list of strings.
    Strings(Vec<String>),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A seed (never negative).
    Seed(u64),
    /// A float.
    Float(f64),
    /// A dict's numbers, in the order of its param's `properties` (by name).
    Dict(Vec<f64>),
}

impl ParamValue {
    /// As JSON; a dict's numbers are named by `property_names`, in order.
    pub(crate) fn to_json(&self, property_names: &[&str]) -> serde_json::Value {
        use serde_json::{Value, json};
        match self {
            ParamValue::String(s) => Value::String(s.clone()),
            ParamValue::Strings(v) => json!(v),
            ParamValue::Bool(b) => Value::Bool(*b),
            ParamValue::Int(i) => json!(i),
            ParamValue::Seed(u) => json!(u),
            ParamValue::Float(f) => json!(f),
            ParamValue::Dict(d) => Value::Object(
                property_names
                    .iter()
                    .zip(d)
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect(),
            ),
        }
    }
}

/// A typed parameter value (generated enums implement it for their options).
pub trait ToParam {
    /// The value to send.
    fn to_param(&self) -> ParamValue;
}

impl ToParam for String {
    fn to_param(&self) -> ParamValue {
        ParamValue::String(self.clone())
    }
}
impl ToParam for Vec<String> {
    fn to_param(&self) -> ParamValue {
        ParamValue::Strings(self.clone())
    }
}
impl ToParam for bool {
    fn to_param(&self) -> ParamValue {
        ParamValue::Bool(*self)
    }
}
impl ToParam for i64 {
    fn to_param(&self) -> ParamValue {
        ParamValue::Int(*self)
    }
}
impl ToParam for u64 {
    fn to_param(&self) -> ParamValue {
        ParamValue::Seed(*self)
    }
}
impl ToParam for f64 {
    fn to_param(&self) -> ParamValue {
        ParamValue::Float(*self)
    }
}

impl<const N: usize> ToParam for [f64; N] {
    fn to_param(&self) -> ParamValue {
        ParamValue::Dict(self.to_vec())
    }
}

/// A generated struct's field as a param: `None` leaves the param out. One impl per field
/// type, written once here, so a generated model needs no per-param code.
pub trait ParamField {
    /// The value to send, if any.
    fn param_value(&self) -> Option<ParamValue>;
}

impl<T: ToParam> ParamField for Option<T> {
    fn param_value(&self) -> Option<ParamValue> {
        self.as_ref().map(ToParam::to_param)
    }
}

macro_rules! required_fields {
    ($($t:ty),*) => {$(
        impl ParamField for $t {
            fn param_value(&self) -> Option<ParamValue> {
                Some(self.to_param())
            }
        }
    )*};
}
required_fields!(String, Vec<String>, bool, i64, u64, f64);

impl<const N: usize> ParamField for [f64; N] {
    fn param_value(&self) -> Option<ParamValue> {
        Some(self.to_param())
    }
}

/// A model struct's prompt and param values ([`Model::fields`](crate::Model::fields)): the
/// values in the order of the params of its [`ModelInfo::json`] entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields<'a> {
    /// The prompt.
    pub prompt: &'a str,
    /// Each param's value; `None` leaves it out.
    pub values: Vec<Option<ParamValue>>,
}

impl<'a> Fields<'a> {
    /// The fields of a generated struct: its prompt and its params' fields, in order.
    pub fn new(prompt: &'a str, fields: &[&dyn ParamField]) -> Self {
        Fields {
            prompt,
            values: fields.iter().map(|f| f.param_value()).collect(),
        }
    }
}

impl ParamKind {
    /// The kind of a catalog type name (`int?` is an `Int` that may be left out); `None` for
    /// a type this version does not know.
    pub fn from_wire(kind: &str) -> Option<ParamKind> {
        Some(match kind {
            "string" => ParamKind::String,
            "string[]" => ParamKind::Strings,
            "bool" => ParamKind::Bool,
            "int" | "int?" => ParamKind::Int,
            "seed" => ParamKind::Seed,
            "float" => ParamKind::Float,
            "dict" => ParamKind::Dict,
            _ => return None,
        })
    }

    /// The catalog's name of the type.
    pub fn as_wire(self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Strings => "string[]",
            ParamKind::Bool => "bool",
            ParamKind::Int => "int",
            ParamKind::Seed => "seed",
            ParamKind::Float => "float",
            ParamKind::Dict => "dict",
        }
    }
}

/// One param's constraints, borrowed from a catalog entry ([`ModelSchema`](crate::ModelSchema)),
/// live or kept by generated code: what [`check_params`] checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRule<'a> {
    /// The key sent in `params`.
    pub name: &'a str,
    /// Its type.
    pub kind: ParamKind,
    /// The model requires it.
    pub required: bool,
    /// The least number allowed.
    pub min: Option<f64>,
    /// The greatest number allowed.
    pub max: Option<f64>,
    /// The allowed values (empty: any string).
    pub options: Vec<&'a str>,
    /// A dict's named numbers with their ranges.
    pub properties: Vec<(&'a str, f64, f64)>,
}

/// The one check of a generation's prompt and params against its model's catalog entry,
/// before any request: the prompt is not empty; required params are there; no param the
/// model does not have; each value has its param's type; numbers are finite and within their
/// ranges (a seed a whole number, 0 or more); a string with options is one of them; a dict
/// holds only its named numbers, each within its range. The error names the param, the
/// range or the allowed values, and the model, and says nothing was sent.
///
/// Typed model structs go through it ([`checked_params`](crate::checked_params)), and so does `floret generate`
/// with a live catalog entry.
pub fn check_params(
    model_id: &str,
    prompt: &str,
    rules: &[ParamRule<'_>],
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Error> {
    use serde_json::Value;
    let refuse =
        |what: String| Error::InvalidInput(format!("model `{model_id}`: {what}; nothing was sent"));
    if prompt.trim().is_empty() {
        return Err(refuse("the prompt is empty".to_owned()));
    }
    for rule in rules {
        if rule.required && !params.contains_key(rule.name) {
            return Err(refuse(format!("param `{}` is required", rule.name)));
        }
    }
    let in_range = |name: &str, x: f64, min: Option<f64>, max: Option<f64>| {
        let low = min.is_some_and(|m| x < m);
        let high = max.is_some_and(|m| x > m);
        if x.is_finite() && !low && !high {
            return Ok(());
        }
        let range = range_text(min, max).unwrap_or_else(|| "a finite number".to_owned());
        Err(refuse(format!("param `{name}` is {x}, not {range}")))
    };
    for (name, value) in params {
        let Some(rule) = rules.iter().find(|r| r.name == name) else {
            let known: Vec<&str> = rules.iter().map(|r| r.name).collect();
            return Err(refuse(format!(
                "param `{name}` is not one of the model's ({})",
                if known.is_empty() {
                    "it has none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        let wrong = |wanted: &str| refuse(format!("param `{name}` must be {wanted}, not {value}"));
        match (rule.kind, value) {
            (ParamKind::String, Value::String(s)) => {
                if !rule.options.is_empty() && !rule.options.contains(&s.as_str()) {
                    return Err(refuse(format!(
                        "param `{name}` is {s:?}, not one of {}",
                        rule.options.join(", ")
                    )));
                }
            }
            (ParamKind::String, _) => return Err(wrong("a string")),
            (ParamKind::Strings, Value::Array(items)) if items.iter().all(Value::is_string) => {}
            (ParamKind::Strings, _) => return Err(wrong("a list of strings")),
            (ParamKind::Bool, Value::Bool(_)) => {}
            (ParamKind::Bool, _) => return Err(wrong("true or false")),
            (ParamKind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                in_range(name, n.as_f64().unwrap_or(f64::NAN), rule.min, rule.max)?;
            }
            (ParamKind::Int, _) => return Err(wrong("a whole number")),
            (ParamKind::Seed, Value::Number(n)) if n.is_u64() => {
                in_range(name, n.as_f64().unwrap_or(f64::NAN), rule.min, rule.max)?;
            }
            (ParamKind::Seed, _) => return Err(wrong("a seed: a whole number, 0 or more")),
            (ParamKind::Float, Value::Number(n)) => {
                in_range(name, n.as_f64().unwrap_or(f64::NAN), rule.min, rule.max)?;
            }
            (ParamKind::Float, _) => return Err(wrong("a number")),
            (ParamKind::Dict, Value::Object(numbers)) => {
                for (key, x) in numbers {
                    let Some((_, min, max)) = rule.properties.iter().find(|(k, _, _)| k == key)
                    else {
                        if rule.properties.is_empty() {
                            continue;
                        }
                        let known: Vec<&str> = rule.properties.iter().map(|p| p.0).collect();
                        return Err(refuse(format!(
                            "param `{name}` has no number `{key}` (it has {})",
                            known.join(", ")
                        )));
                    };
                    let Some(x) = x.as_f64() else {
                        return Err(refuse(format!(
                            "param `{name}.{key}` must be a number, not {x}"
                        )));
                    };
                    in_range(&format!("{name}.{key}"), x, Some(*min), Some(*max))?;
                }
            }
            (ParamKind::Dict, _) => return Err(wrong("an object of numbers")),
        }
    }
    Ok(())
}

/// A numeric range in words (`from 1 to 50`, `at least 1`), as errors and help say it.
pub(crate) fn range_text(min: Option<f64>, max: Option<f64>) -> Option<String> {
    match (min, max) {
        (Some(a), Some(b)) => Some(format!("from {a} to {b}")),
        (Some(a), None) => Some(format!("at least {a}")),
        (None, Some(b)) => Some(format!("at most {b}")),
        (None, None) => None,
    }
}

/// A checked `POST /generate` body, kept to send again (a retry after a failed run).
#[derive(Debug, Clone)]
pub(crate) struct GenerationRequest {
    pub model_id: String,
    pub kind: String,
    pub prompt: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub workspace_id: String,
    pub project_id: String,
}

impl GenerationRequest {
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "type": self.kind,
            "prompt": self.prompt,
            "model": self.model_id,
            "workspace_id": self.workspace_id,
            "project_id": self.project_id,
        });
        if !self.params.is_empty() {
            body["params"] = serde_json::Value::Object(self.params.clone());
        }
        body
    }
}
