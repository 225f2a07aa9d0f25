//! The contract generated model structs implement ([`Model`]) and its typed check: the
//! struct's values through the one [`check_params`] before any request.

use crate::Client;
use crate::error::Error;
use std::fmt;

use crate::ModelSchema;
use crate::model::{Fields, ModelInfo, ParamValue, check_params, damaged_code};

use super::{GenerateFuture, GenerationStartFuture};

/// A FLORA model with typed params. Implemented by generated code; `generate` and `start`
/// come with it, so bring it into scope:
///
/// ```no_run
/// use flora_api::Model;
/// use flora_api::models::T2iFlux2Pro;
/// # async fn example(client: flora_api::Client) -> Result<(), flora_api::Error> {
/// let done = T2iFlux2Pro { prompt: "a cat in a teacup".into(), aspect_ratio: None }
///     .generate(&client)
///     .await?;
/// println!("{} output(s), charged {}", done.outputs.len(), done.charge);
/// # Ok(()) }
/// ```
pub trait Model {
    /// The catalog entry the struct was generated from.
    const INFO: ModelInfo;
    /// What one output of a generation is parsed into: the URL type of the model's media
    /// type (`ImageUrl` for an image model, …), or `String` for a text model.
    type Output: crate::technique::OutputValue;
    /// The prompt and each param's value, in the order of the params of `INFO`'s entry
    /// (those left `None` are left out: FLORA uses its defaults).
    fn fields(&self) -> Fields<'_>;

    /// Checks the params, generates, and waits for the typed outputs and the settled charge
    /// ([`Client::generate`]).
    ///
    /// A provided method, not one generated per model: a crate of hundreds of models pays
    /// for it once (issue 30's compile budget).
    fn generate<'a>(&self, client: &'a Client) -> GenerateFuture<'a, Self::Output>
    where
        Self: Sized,
    {
        client.generate(self)
    }

    /// Checks the params and starts a generation without waiting
    /// ([`Client::start_generation`]).
    fn start<'a>(&self, client: &'a Client) -> GenerationStartFuture<'a, Self::Output>
    where
        Self: Sized,
    {
        client.start_generation(self)
    }
}

/// Checks a model's prompt and params against its catalog entry before any request (see
/// [`check_params`]) and returns the `params` object to send.
pub fn checked_params<M: Model>(
    model: &M,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    checked_request(model).map(|(_, params)| params)
}

/// [`checked_params`] and the prompt, from one reading of the fields.
pub(crate) fn checked_request<M: Model>(
    model: &M,
) -> Result<(String, serde_json::Map<String, serde_json::Value>), Error> {
    let schema = M::INFO.schema()?;
    let fields = model.fields();
    let params = to_params(M::INFO.model_id, &schema, &fields.values)?;
    check_params(M::INFO.model_id, fields.prompt, &schema.rules(), &params)?;
    Ok((fields.prompt.to_owned(), params))
}

/// The `params` object of a struct's values, named by its catalog entry.
fn to_params(
    model_id: &str,
    schema: &ModelSchema,
    values: &[Option<ParamValue>],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    if values.len() != schema.params.len() {
        return Err(damaged_code(
            model_id,
            format_args!(
                "has {} param fields for the {} params of its catalog entry",
                values.len(),
                schema.params.len()
            ),
        ));
    }
    let mut out = serde_json::Map::new();
    for (param, value) in schema.params.iter().zip(values) {
        let Some(value) = value else { continue };
        let name = &param.name;
        if let ParamValue::Float(x) = value
            && !x.is_finite()
        {
            // JSON has no NaN or infinity: named here, before it would become `null`.
            return Err(Error::InvalidInput(format!(
                "model `{model_id}`: param `{name}` is {x}, not a finite number; nothing was sent"
            )));
        }
        let keys: Vec<&str> = param.properties.keys().map(String::as_str).collect();
        if let ParamValue::Dict(numbers) = value
            && numbers.len() != keys.len()
        {
            return Err(damaged_code(
                model_id,
                format_args!(
                    "has {} numbers in param `{name}` for the {} of its catalog entry ({})",
                    numbers.len(),
                    keys.len(),
                    keys.join(", ")
                ),
            ));
        }
        if let ParamValue::Dict(numbers) = value
            && let Some((key, x)) = keys.iter().zip(numbers).find(|(_, x)| !x.is_finite())
        {
            return Err(Error::InvalidInput(format!(
                "model `{model_id}`: param `{name}.{key}` is {x}, not a finite number; nothing \
                 was sent"
            )));
        }
        out.insert(name.clone(), value.to_json(&keys));
    }
    Ok(out)
}

/// `Debug` of a generated model struct, written once here rather than derived per model (a
/// derived impl per model costs compile time in a crate of hundreds): the struct's name, its
/// prompt, and each param as it would be sent (`None` for one left out). A hand-written
/// [`Model`] can use it too.
pub fn debug_model<M: Model>(model: &M, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let name = std::any::type_name::<M>();
    let name = name.rsplit("::").next().unwrap_or(name);
    let fields = model.fields();
    let mut out = f.debug_struct(name);
    out.field("prompt", &fields.prompt);
    match M::INFO.schema() {
        Ok(schema) if schema.params.len() == fields.values.len() => {
            for (param, value) in schema.params.iter().zip(&fields.values) {
                let keys: Vec<&str> = param.properties.keys().map(String::as_str).collect();
                out.field(&param.name, &Shown(value.as_ref(), &keys));
            }
        }
        _ => {
            out.field("params", &fields.values);
        }
    }
    out.finish()
}

/// A param's value in `Debug`: as it would be sent (a non-finite number as it is, which the
/// check refuses), a dict's numbers by name, `None` when left out.
struct Shown<'a>(Option<&'a ParamValue>, &'a [&'a str]);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(ParamValue::String(s)) => write!(f, "{s:?}"),
            Some(ParamValue::Strings(v)) => write!(f, "{v:?}"),
            Some(ParamValue::Bool(b)) => write!(f, "{b}"),
            Some(ParamValue::Int(i)) => write!(f, "{i}"),
            Some(ParamValue::Seed(u)) => write!(f, "{u}"),
            Some(ParamValue::Float(x)) => write!(f, "{x:?}"),
            Some(ParamValue::Dict(numbers)) if numbers.len() == self.1.len() => {
                f.debug_map().entries(self.1.iter().zip(numbers)).finish()
            }
            Some(ParamValue::Dict(numbers)) => write!(f, "{numbers:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Written as flora-codegen writes a model.
    #[derive(Clone, Default)]
    struct Flux {
        prompt: String,
        aspect_ratio: Option<String>,
        steps: Option<i64>,
        seed: Option<u64>,
        guidance: Option<f64>,
        lora: Option<[f64; 2]>,
    }

    impl fmt::Debug for Flux {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            debug_model(self, f)
        }
    }

    impl Model for Flux {
        const INFO: ModelInfo = ModelInfo {
            model_id: "t2i-flux",
            kind: "image",
            json: r#"{"model_id": "t2i-flux", "name": "Flux", "type": "image", "params": [
                {"name": "aspect_ratio", "type": "string", "required": false,
                 "options": [{"value": "square_1_1", "label": "Square"},
                             {"value": "landscape_16_9", "label": "Wide"}]},
                {"name": "steps", "type": "int", "required": false, "min": 1, "max": 50},
                {"name": "seed", "type": "seed", "required": false},
                {"name": "guidance", "type": "float", "required": false, "min": 0, "max": 10},
                {"name": "lora", "type": "dict", "required": false, "properties": {
                    "scale": {"min": 0, "max": 2}, "strength": {"min": 0, "max": 1}}}
            ]}"#,
        };
        type Output = crate::ImageUrl;
        fn fields(&self) -> Fields<'_> {
            Fields::new(
                &self.prompt,
                &[
                    &self.aspect_ratio,
                    &self.steps,
                    &self.seed,
                    &self.guidance,
                    &self.lora,
                ],
            )
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
        let e = err(Flux {
            prompt: "a".into(),
            lora: Some([1.0, 1.5]),
            ..Flux::default()
        });
        assert!(e.contains("`lora.strength` is 1.5, not from 0 to 1"), "{e}");
        let e = err(Flux {
            prompt: "a".into(),
            lora: Some([f64::INFINITY, 0.5]),
            ..Flux::default()
        });
        assert!(
            e.contains("`lora.scale` is inf, not a finite number"),
            "{e}"
        );
        let e = err(Flux::default());
        assert!(e.contains("prompt is empty"), "{e}");
    }

    #[test]
    fn a_dict_is_sent_as_its_named_numbers() {
        let m = Flux {
            prompt: "a".into(),
            lora: Some([1.5, 0.25]),
            ..Flux::default()
        };
        let sent = checked_params(&m).unwrap();
        assert_eq!(
            serde_json::Value::Object(sent),
            serde_json::json!({"lora": {"scale": 1.5, "strength": 0.25}})
        );
    }

    #[test]
    fn debug_shows_each_param_as_sent_and_none_for_one_left_out() {
        let m = Flux {
            prompt: "a cat".into(),
            aspect_ratio: Some("square_1_1".into()),
            lora: Some([1.0, 0.5]),
            ..Flux::default()
        };
        assert_eq!(
            format!("{m:?}"),
            "Flux { prompt: \"a cat\", aspect_ratio: \"square_1_1\", steps: None, seed: None, \
             guidance: None, lora: {\"scale\": 1.0, \"strength\": 0.5} }"
        );
    }

    #[test]
    fn debug_shows_a_non_finite_number_as_it_is() {
        let m = Flux {
            prompt: "a".into(),
            guidance: Some(f64::NAN),
            lora: Some([f64::INFINITY, 0.5]),
            ..Flux::default()
        };
        let shown = format!("{m:?}");
        assert!(
            shown.contains("guidance: NaN") && shown.contains("\"scale\": inf"),
            "{shown}"
        );
    }

    /// A hand edit of the generated JSON is an error naming the model, never a panic.
    #[test]
    fn a_damaged_catalog_entry_is_an_error_with_nothing_sent() {
        struct Damaged;
        impl Model for Damaged {
            const INFO: ModelInfo = ModelInfo {
                model_id: "t2i-damaged",
                kind: "image",
                json: "{\"model_id\": \"t2i-damaged\", \"params\": [",
            };
            type Output = crate::ImageUrl;
            fn fields(&self) -> Fields<'_> {
                Fields::new("a", &[])
            }
        }
        let e = checked_params(&Damaged).unwrap_err().to_string();
        assert!(
            e.contains("t2i-damaged") && e.contains("regenerate") && e.contains("nothing was sent"),
            "{e}"
        );
        struct Misaligned;
        impl Model for Misaligned {
            const INFO: ModelInfo = ModelInfo {
                model_id: "t2i-flux",
                kind: "image",
                json: Flux::INFO.json,
            };
            type Output = crate::ImageUrl;
            fn fields(&self) -> Fields<'_> {
                Fields::new("a", &[&Some(3_i64)])
            }
        }
        let e = checked_params(&Misaligned).unwrap_err().to_string();
        assert!(e.contains("1 param fields for the 5 params"), "{e}");
        struct ShortDict;
        impl Model for ShortDict {
            const INFO: ModelInfo = Flux::INFO;
            type Output = crate::ImageUrl;
            fn fields(&self) -> Fields<'_> {
                let none: Option<i64> = None;
                Fields::new("a", &[&none, &none, &none, &none, &Some([1.0])])
            }
        }
        let e = checked_params(&ShortDict).unwrap_err().to_string();
        assert!(
            e.contains(
                "1 numbers in param `lora` for the 2 of its catalog entry (scale, strength)"
            ) && e.contains("regenerate"),
            "{e}"
        );
    }
}
