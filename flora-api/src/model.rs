//! The contract generated model structs implement (feature `models`): a model's catalog
//! entry as data ([`ModelInfo`]), its params as typed values, and the one check that runs
//! before any request: FLORA does not validate parameter values (an unknown or out-of-range
//! value runs, completes and bills with the default), so every value is checked here against
//! the catalog the struct was generated from.

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

/// One parameter of a model, as the catalog describes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamInfo {
    /// The key sent in `params`.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamKind,
    /// The model requires it.
    pub required: bool,
    /// The least number allowed (numbers only).
    pub min: Option<f64>,
    /// The greatest number allowed (numbers only).
    pub max: Option<f64>,
    /// The allowed values (`string` with options only).
    pub options: &'static [&'static str],
    /// The named numbers of a `dict`, each with its range: `(name, min, max)`.
    pub properties: &'static [(&'static str, f64, f64)],
}

impl ParamInfo {
    /// A parameter of `kind` with no constraint: add them with the other constructors.
    pub const fn new(name: &'static str, kind: ParamKind, required: bool) -> Self {
        ParamInfo {
            name,
            kind,
            required,
            min: None,
            max: None,
            options: &[],
            properties: &[],
        }
    }

    /// With a numeric range.
    pub const fn range(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// With its allowed values.
    pub const fn options(mut self, options: &'static [&'static str]) -> Self {
        self.options = options;
        self
    }

    /// With a dict's named numbers.
    pub const fn properties(mut self, properties: &'static [(&'static str, f64, f64)]) -> Self {
        self.properties = properties;
        self
    }
}

/// A model's catalog entry, as generated code knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// `model_id`, sent as `model`.
    pub model_id: &'static str,
    /// `image`, `video`, `audio` or `text`, sent as `type`.
    pub kind: &'static str,
    /// Its parameters.
    pub params: &'static [ParamInfo],
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
    /// An integer (or a seed).
    Int(i64),
    /// A float.
    Float(f64),
    /// Named numbers.
    Dict(Vec<(&'static str, f64)>),
}

impl ParamValue {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        match self {
            ParamValue::String(s) => Value::String(s.clone()),
            ParamValue::Strings(v) => json!(v),
            ParamValue::Bool(b) => Value::Bool(*b),
            ParamValue::Int(i) => json!(i),
            ParamValue::Float(f) => json!(f),
            ParamValue::Dict(d) => {
                Value::Object(d.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect())
            }
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
        ParamValue::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToParam for f64 {
    fn to_param(&self) -> ParamValue {
        ParamValue::Float(*self)
    }
}

/// A FLORA model with typed params. Implemented by generated code.
pub trait Model {
    /// The catalog entry the struct was generated from.
    const INFO: ModelInfo;
    /// The prompt.
    fn prompt(&self) -> &str;
    /// The params given (those left `None` are left out: FLORA uses its defaults).
    fn params(&self) -> Vec<(&'static str, ParamValue)>;
}

/// Pushes `value` as param `name` unless it is `None` (generated code calls this).
#[doc(hidden)]
pub fn push_param<T: ToParam>(
    params: &mut Vec<(&'static str, ParamValue)>,
    name: &'static str,
    value: &Option<T>,
) {
    if let Some(v) = value {
        params.push((name, v.to_param()));
    }
}

/// Checks a model's prompt and params against its catalog entry before any request: the
/// prompt is not empty, required params are there, numbers are within their ranges (and a
/// seed not negative), options are among the allowed values. The error names the param, the
/// range or the values, and the model. Returns the `params` object to send.
pub fn checked_params<M: Model>(
    model: &M,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let info = M::INFO;
    let refuse = |what: String| {
        Error::InvalidInput(format!(
            "model `{}`: {what}; nothing was sent",
            info.model_id
        ))
    };
    if model.prompt().trim().is_empty() {
        return Err(refuse("the prompt is empty".to_owned()));
    }
    let given = model.params();
    for p in info.params {
        if p.required && !given.iter().any(|(n, _)| *n == p.name) {
            return Err(refuse(format!("param `{}` is required", p.name)));
        }
    }
    let in_range = |name: &str, x: f64, min: Option<f64>, max: Option<f64>| {
        let low = min.is_some_and(|m| x < m);
        let high = max.is_some_and(|m| x > m);
        if x.is_finite() && !low && !high {
            return Ok(());
        }
        let range = match (min, max) {
            (Some(a), Some(b)) => format!("from {a} to {b}"),
            (Some(a), None) => format!("at least {a}"),
            (None, Some(b)) => format!("at most {b}"),
            (None, None) => "a finite number".to_owned(),
        };
        Err(refuse(format!("param `{name}` is {x}, not {range}")))
    };
    let mut out = serde_json::Map::new();
    for (name, value) in &given {
        let Some(p) = info.params.iter().find(|p| p.name == *name) else {
            return Err(refuse(format!("param `{name}` is not one of the model's")));
        };
        match value {
            ParamValue::Int(i) => in_range(name, *i as f64, p.min, p.max)?,
            ParamValue::Float(f) => in_range(name, *f, p.min, p.max)?,
            ParamValue::String(s) if !p.options.is_empty() && !p.options.contains(&s.as_str()) => {
                return Err(refuse(format!(
                    "param `{name}` is {s:?}, not one of {}",
                    p.options.join(", ")
                )));
            }
            ParamValue::Dict(numbers) => {
                for (key, x) in numbers {
                    let range = p.properties.iter().find(|(k, _, _)| k == key);
                    let (min, max) = range.map_or((None, None), |(_, a, b)| (Some(*a), Some(*b)));
                    in_range(&format!("{name}.{key}"), *x, min, max)?;
                }
            }
            _ => {}
        }
        if p.kind == ParamKind::Seed && matches!(value, ParamValue::Int(i) if *i < 0) {
            return Err(refuse(format!("param `{name}` is a seed: 0 or more")));
        }
        out.insert((*name).to_owned(), value.to_json());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written as flora-codegen will write a model.
    #[derive(Debug, Default)]
    struct Flux {
        prompt: String,
        aspect_ratio: Option<String>,
        steps: Option<i64>,
        seed: Option<u64>,
        guidance: Option<f64>,
    }

    impl Model for Flux {
        const INFO: ModelInfo = ModelInfo {
            model_id: "t2i-flux",
            kind: "image",
            params: &[
                ParamInfo::new("aspect_ratio", ParamKind::String, false)
                    .options(&["square_1_1", "landscape_16_9"]),
                ParamInfo::new("steps", ParamKind::Int, false).range(Some(1.0), Some(50.0)),
                ParamInfo::new("seed", ParamKind::Seed, false),
                ParamInfo::new("guidance", ParamKind::Float, false).range(Some(0.0), Some(10.0)),
            ],
        };
        fn prompt(&self) -> &str {
            &self.prompt
        }
        fn params(&self) -> Vec<(&'static str, ParamValue)> {
            let mut p = Vec::new();
            push_param(&mut p, "aspect_ratio", &self.aspect_ratio);
            push_param(&mut p, "steps", &self.steps);
            push_param(&mut p, "seed", &self.seed);
            push_param(&mut p, "guidance", &self.guidance);
            p
        }
    }

    #[test]
    fn values_out_of_the_catalog_are_refused_naming_param_range_and_model() {
        let ok = Flux {
            prompt: "a cat".into(),
            aspect_ratio: Some("square_1_1".into()),
            steps: Some(50),
            ..Flux::default()
        };
        let sent = checked_params(&ok).unwrap();
        assert_eq!(sent.len(), 2, "params left None are left out: {sent:?}");
        let err = |m: Flux| checked_params(&m).unwrap_err().to_string();
        let e = err(Flux {
            prompt: "a".into(),
            steps: Some(51),
            ..Flux::default()
        });
        assert!(
            e.contains("`steps` is 51, not from 1 to 50") && e.contains("t2i-flux"),
            "{e}"
        );
        let e = err(Flux {
            prompt: "a".into(),
            aspect_ratio: Some("banana_9_9".into()),
            ..Flux::default()
        });
        assert!(e.contains("square_1_1, landscape_16_9"), "{e}");
        let e = err(Flux {
            prompt: "a".into(),
            guidance: Some(f64::NAN),
            ..Flux::default()
        });
        assert!(e.contains("`guidance`"), "{e}");
        let e = err(Flux::default());
        assert!(e.contains("prompt is empty"), "{e}");
    }
}
