//! The contract generated model structs implement ([`Model`]) and its typed check: the
//! struct's values through the one [`check_params`] before any request.

use crate::Client;
use crate::error::Error;
use crate::model::{ModelInfo, ParamInfo, ParamRule, ParamValue, check_params};

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
    /// The prompt.
    fn prompt(&self) -> &str;
    /// The params given (those left `None` are left out: FLORA uses its defaults).
    fn params(&self) -> Vec<(&'static str, ParamValue)>;

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
    let info = M::INFO;
    let mut out = serde_json::Map::new();
    for (name, value) in model.params() {
        if let ParamValue::Float(x) = value
            && !x.is_finite()
        {
            // JSON has no NaN or infinity: named here, before it would become `null`.
            return Err(Error::InvalidInput(format!(
                "model `{}`: param `{name}` is {x}, not a finite number; nothing was sent",
                info.model_id
            )));
        }
        if let ParamValue::Dict(numbers) = &value
            && let Some((key, x)) = numbers.iter().find(|(_, x)| !x.is_finite())
        {
            return Err(Error::InvalidInput(format!(
                "model `{}`: param `{name}.{key}` is {x}, not a finite number; nothing was sent",
                info.model_id
            )));
        }
        out.insert(name.to_owned(), value.to_json());
    }
    let rules: Vec<ParamRule<'static>> = info.params.iter().map(ParamInfo::rule).collect();
    check_params(info.model_id, model.prompt(), &rules, &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ParamInfo, ParamKind, push_param};

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
        type Output = crate::ImageUrl;
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
