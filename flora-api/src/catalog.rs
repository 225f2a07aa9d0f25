//! The model catalog as the API sends it (`GET /models`), and projects (`GET /projects`),
//! read tolerantly: a field this version does not know is kept, a param of an unknown type is
//! kept with its type as sent (and offered to nobody: [`ModelParam::rule`] is `None`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::model::{ModelInfo, ParamKind, ParamRule, damaged_code};
use crate::wire::Extra;

/// One model of the catalog (`GET /models`): what it makes, what it costs, its params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSchema {
    /// The id sent as `model` (`t2i-flux-2-pro`).
    pub model_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `image`, `video`, `audio` or `text` (kept as sent), sent as the generation's `type`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Who runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// What it can do, as the catalog words it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Credits a generation is estimated to cost (1 credit is about 0.001 USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_credits: Option<f64>,
    /// Seconds a generation is estimated to take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_seconds: Option<f64>,
    /// Its params.
    #[serde(default)]
    pub params: Vec<ModelParam>,
    /// In beta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<bool>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One param of a model, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelParam {
    /// The key sent in `params`.
    pub name: String,
    /// `string`, `string[]`, `bool`, `int`, `int?`, `seed`, `float`, `dict`, kept as sent.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The model requires it.
    #[serde(default)]
    pub required: bool,
    /// What FLORA uses when it is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The least number allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The greatest number allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Display label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The allowed values of an enum-like param.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ParamOption>,
    /// A dict's named numbers with their ranges.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, ParamRange>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One allowed value of an enum-like param.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamOption {
    /// The value sent.
    pub value: String,
    /// Display label.
    #[serde(default)]
    pub label: String,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A dict's named number: its range and default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamRange {
    /// Least.
    pub min: f64,
    /// Greatest.
    pub max: f64,
    /// Default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<f64>,
}

impl ModelParam {
    /// Its constraints for [`check_params`](crate::check_params); `None` for a type this
    /// version does not know (such a param cannot be checked, so it is not offered).
    pub fn rule(&self) -> Option<ParamRule<'_>> {
        Some(ParamRule {
            name: &self.name,
            kind: ParamKind::from_wire(&self.kind)?,
            required: self.required,
            min: self.min,
            max: self.max,
            options: self.options.iter().map(|o| o.value.as_str()).collect(),
            properties: self
                .properties
                .iter()
                .map(|(k, r)| (k.as_str(), r.min, r.max))
                .collect(),
        })
    }
}

impl ModelSchema {
    /// The constraints of every param this version can check.
    pub fn rules(&self) -> Vec<ParamRule<'_>> {
        self.params.iter().filter_map(ModelParam::rule).collect()
    }
}

impl ModelInfo {
    /// The catalog entry generated code was made from ([`ModelInfo::json`]). An error only
    /// if that JSON was edited into something else: regenerate the code.
    pub fn schema(&self) -> Result<ModelSchema, Error> {
        let schema: ModelSchema = serde_json::from_str(self.json).map_err(|e| {
            damaged_code(
                self.model_id,
                format_args!("holds a catalog entry that does not parse ({e})"),
            )
        })?;
        if (schema.model_id.as_str(), schema.kind.as_str()) != (self.model_id, self.kind) {
            return Err(damaged_code(
                self.model_id,
                format_args!(
                    "({}) holds the catalog entry of `{}` ({})",
                    self.kind, schema.model_id, schema.kind
                ),
            ));
        }
        Ok(schema)
    }
}

/// A project: where generations land (`GET /projects`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// `prj_…` id.
    pub project_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Its workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_param_of_an_unknown_type_is_kept_but_never_checked_or_offered() {
        let m: ModelSchema = serde_json::from_value(serde_json::json!({
            "model_id": "t2i-x", "name": "X", "type": "image", "provider": "P",
            "capabilities": [], "estimated_credits": 4, "estimated_seconds": 25,
            "params": [
                {"name": "a", "type": "matrix", "required": false},
                {"name": "b", "type": "int", "required": true, "min": 1, "max": 3},
            ],
            "shiny": true
        }))
        .unwrap();
        assert_eq!(m.params.len(), 2);
        assert_eq!(m.params[0].kind, "matrix");
        let rules = m.rules();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].name, "b");
        assert_eq!(m.extra["shiny"], true);
    }
}
