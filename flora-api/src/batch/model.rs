//! A model batch's target (feature `models`): a plan row is a prompt and params, read by
//! the model's param types (the reading `floret generate`'s flags get) and checked by the
//! one `check_params` before anything is paid; each item is one `POST /generate` under a
//! derived `Idempotency-Key` header, its exact body journaled. Below the batch itself: it
//! knows rows, bodies and the client, not the batch that drives them.

use serde_json::{Map, Value};

use super::journal::ModelMeta;
use super::plan::{PlanItem, PlanValues};
use super::validate;
use crate::catalog::ModelSchema;
use crate::client::Client;
use crate::error::Error;
use crate::model::GenerationRequest;
use crate::poll::{Resend, Submission};
use crate::values::shorten;
use crate::wire::CreatedRun;

/// USD per credit (FLORA's catalog prices models in credits; 4 credits settled as 0.004).
pub(crate) const USD_PER_CREDIT: f64 = 0.001;

/// The plan column that holds the prompt (a model param of that name cannot be set).
const PROMPT: &str = "prompt";

/// A model batch's target, fixed in its journal.
pub(crate) struct ModelTarget {
    pub schema: ModelSchema,
    pub project_id: String,
    pub workspace_id: String,
}

impl ModelTarget {
    /// From the journal: the catalog entry the rows were checked against.
    pub(crate) fn of(meta: &ModelMeta) -> Result<ModelTarget, String> {
        let schema: ModelSchema = serde_json::from_value(meta.catalog.clone())
            .map_err(|e| format!("its model's catalog entry cannot be read: {e}"))?;
        Ok(ModelTarget {
            schema,
            project_id: meta.project_id.clone(),
            workspace_id: meta.workspace_id.clone(),
        })
    }

    /// The `/generate` request of a plan row, checked; the error says what is wrong with it.
    pub(crate) fn request(&self, values: &PlanValues) -> Result<GenerationRequest, String> {
        let (prompt, params) = prompt_and_params(&self.schema, values)?;
        Ok(GenerationRequest {
            model_id: self.schema.model_id.clone(),
            kind: self.schema.kind.clone(),
            prompt,
            params,
            workspace_id: self.workspace_id.clone(),
            project_id: self.project_id.clone(),
        })
    }

    /// A journaled body read back as the request it was made from.
    pub(crate) fn journaled(&self, body: &str) -> Result<GenerationRequest, String> {
        let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("it has no `{k}`"))
        };
        Ok(GenerationRequest {
            model_id: text("model")?,
            kind: text("type")?,
            prompt: text("prompt")?,
            params: v
                .get("params")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            workspace_id: text("workspace_id")?,
            project_id: text("project_id")?,
        })
    }
}

impl PlanItem {
    /// An item from a typed model value (a generated struct), checked now like a single
    /// generation (`Err` naming the param, nothing sent) and kept as a plan row: the prompt
    /// and each param as text, read back by the param types of the entry the batch is created
    /// with, and checked again. Run the items with
    /// [`Batch::create_generations`](crate::batch::Batch::create_generations), given the live
    /// entry of the same model (`client.model(id)`: it carries the price `max_cost` is
    /// checked against):
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// use flora_api::Model;
    /// use flora_api::batch::{Batch, BatchOptions, PlanItem};
    /// use flora_api::models::T2iFlux2Pro;
    /// let items = ["a cat", "a dog"]
    ///     .iter()
    ///     .map(|prompt| {
    ///         let m = T2iFlux2Pro { prompt: prompt.to_string(), aspect_ratio: None };
    ///         PlanItem::generation(*prompt, &m)
    ///     })
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// let model = client.model(T2iFlux2Pro::INFO.model_id).await?; // the live entry
    /// let batch = Batch::create_generations(&client, "pets.journal".as_ref(), &model, &items,
    ///     BatchOptions::default()).await?;
    /// println!("{:?}", batch.run().await?);
    /// # Ok(()) }
    /// ```
    pub fn generation<M: crate::Model>(key: impl Into<String>, model: &M) -> Result<Self, Error> {
        let (prompt, params) = crate::generation::checked_request(model)?;
        let mut values = PlanValues::default();
        values.push(PROMPT, prompt);
        for (name, value) in params {
            let texts = texts_of(&value);
            let refuse = |what: &str| {
                Error::InvalidInput(format!(
                    "model `{}`: param `{name}` {what}, which a batch row cannot hold",
                    M::INFO.model_id
                ))
            };
            // A dict number's text is `NAME=X`, read back split at the first `=` and trimmed.
            if let Value::Object(numbers) = &value
                && numbers.keys().any(|k| k.contains('=') || k.trim() != k)
            {
                return Err(refuse(
                    "has a number whose name holds `=` or starts or ends with a space",
                ));
            }
            if texts.is_empty() {
                return Err(refuse("is an empty list (leave it `None`)"));
            }
            for text in texts {
                values.push(name.clone(), text);
            }
        }
        Ok(PlanItem::new(key, values))
    }
}

/// A checked param value as the texts of a plan cell (the reading of
/// `crate::generation::text::param_from_text` gives it back): a list's items, a dict's
/// `NAME=X` pairs, one text otherwise.
fn texts_of(value: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match value {
        Value::Array(items) => items.iter().map(text).collect(),
        Value::Object(numbers) => numbers.iter().map(|(k, x)| format!("{k}={x}")).collect(),
        other => vec![text(other)],
    }
}

/// What one generation of `model` is listed at, USD.
pub(crate) fn run_cost(model: &ModelSchema) -> Option<f64> {
    model.estimated_credits.map(|c| c * USD_PER_CREDIT)
}

/// A row's prompt and params: each cell read as its param's type, then the one check.
fn prompt_and_params(
    model: &ModelSchema,
    values: &PlanValues,
) -> Result<(String, Map<String, Value>), String> {
    let prompt = match values.get(PROMPT).map(Vec::as_slice) {
        Some([one]) => one.clone(),
        Some(_) => return Err("`prompt` must be one text, not a list".to_owned()),
        None => return Err("it has no `prompt`".to_owned()),
    };
    let mut params = Map::new();
    for (name, texts) in values.iter().filter(|(name, _)| *name != PROMPT) {
        let Some(param) = model.params.iter().find(|p| &p.name == name) else {
            let known: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "`{}` is not a param of the model (its params: {}; the prompt is the \
                 `prompt` column)",
                shorten(name),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        let Some(rule) = param.rule() else {
            return Err(format!(
                "param `{name}` has a type this version cannot check (`{}`); leave the column \
                 out (FLORA uses its default)",
                shorten(&param.kind)
            ));
        };
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let value = crate::generation::text::param_from_text(rule.kind, &texts).map_err(|bad| {
            format!(
                "param `{name}` = {:?}: must be {}",
                shorten(&bad.text),
                bad.wanted
            )
        })?;
        params.insert(name.clone(), value);
    }
    match crate::model::check_params(&model.model_id, &prompt, &model.rules(), &params) {
        Ok(()) => Ok((prompt, params)),
        // The check's own words, without what the plan's message says once for all rows.
        Err(Error::InvalidInput(m)) => {
            let m = m
                .strip_prefix(&format!("model `{}`: ", model.model_id))
                .unwrap_or(&m);
            Err(m.strip_suffix("; nothing was sent").unwrap_or(m).to_owned())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Every row of the plan checked against `model` (all problems at once, each naming its
/// row by key and line), before anything is sent.
pub(crate) fn validate_generations(model: &ModelSchema, items: &[PlanItem]) -> Result<(), Error> {
    let mut problems = validate::duplicate_keys(items);
    if items.is_empty() {
        problems.push("the plan has no items".to_owned());
    }
    for item in items {
        if let Err(why) = prompt_and_params(model, &item.values) {
            let line = if item.line > 0 {
                format!(" (line {})", item.line)
            } else {
                String::new()
            };
            problems.push(format!("item {:?}{line}: {why}", shorten(&item.key)));
        }
    }
    validate::refuse(
        problems,
        &format!("checked against model `{}`", model.model_id),
    )
}

/// One `POST /generate` under `key` through the client's one submit (sent once: the batch's
/// window is its retry strategy; a 409 comes back as the error the batch reconciles).
pub(super) async fn start(
    client: &Client,
    request: &GenerationRequest,
    key: &str,
) -> Result<CreatedRun, Error> {
    let (created, _) = client
        .submit(Submission {
            base_key: key.to_owned(),
            attempt: 1,
            request: Resend::Generation(request.clone()),
            retry: None,
        })
        .await?;
    created.ok_or_else(|| Error::Config("a generation's start returned no created run".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::texts_of;
    use crate::batch::PlanItem;
    use crate::generation::text::param_from_text;
    use crate::model::{Fields, ModelInfo, ParamKind};
    use crate::{ImageUrl, Model};
    use serde_json::json;

    /// A model whose values a batch row cannot hold as they are.
    struct Odd {
        urls: Option<Vec<String>>,
        dict: Option<[f64; 1]>,
    }

    impl Model for Odd {
        const INFO: ModelInfo = ModelInfo {
            model_id: "t2i-odd",
            kind: "image",
            json: r#"{"model_id": "t2i-odd", "type": "image", "params": [
                {"name": "urls", "type": "string[]"},
                {"name": "dict", "type": "dict", "properties": {"a=b": {"min": 0, "max": 1}}}
            ]}"#,
        };
        type Output = ImageUrl;
        fn fields(&self) -> Fields<'_> {
            Fields::new("a cat", &[&self.urls, &self.dict])
        }
    }

    struct Spaced(Option<[f64; 1]>);

    impl Model for Spaced {
        const INFO: ModelInfo = ModelInfo {
            model_id: "t2i-spaced",
            kind: "image",
            json: r#"{"model_id": "t2i-spaced", "type": "image", "params": [
                {"name": "dict", "type": "dict", "properties": {" scale": {"min": 0, "max": 2}}}
            ]}"#,
        };
        type Output = ImageUrl;
        fn fields(&self) -> Fields<'_> {
            Fields::new("a cat", &[&self.0])
        }
    }

    /// What would read back as another value is refused when the item is made, naming the
    /// param; what reads back the same is kept.
    #[test]
    fn a_typed_value_a_row_cannot_hold_as_it_is_is_refused_naming_the_param() {
        let err = |m: &dyn Fn() -> Result<PlanItem, crate::Error>| m().unwrap_err().to_string();
        let e = err(&|| {
            let odd = Odd {
                urls: Some(Vec::new()),
                dict: None,
            };
            PlanItem::generation("a", &odd)
        });
        assert!(e.contains("`urls` is an empty list"), "{e}");
        let e = err(&|| {
            PlanItem::generation(
                "a",
                &Odd {
                    urls: None,
                    dict: Some([0.5]),
                },
            )
        });
        assert!(
            e.contains("`dict` has a number whose name holds `=`"),
            "{e}"
        );
        let e = err(&|| PlanItem::generation("a", &Spaced(Some([1.0]))));
        assert!(e.contains("starts or ends with a space"), "{e}");
        let odd = Odd {
            urls: Some(vec!["x".into()]),
            dict: None,
        };
        let item = PlanItem::generation("a", &odd).unwrap();
        assert_eq!(item.values.get("urls"), Some(&vec!["x".to_owned()]));
        assert_eq!(item.values.get("prompt"), Some(&vec!["a cat".to_owned()]));
    }

    /// A typed value kept as a plan row's texts reads back as the same value.
    #[test]
    fn a_value_as_plan_texts_reads_back_the_same_for_every_param_type() {
        let cases = [
            (ParamKind::String, json!("a \"quoted\" = value")),
            (ParamKind::Strings, json!(["https://e.com/a.png", "b"])),
            (ParamKind::Bool, json!(false)),
            (ParamKind::Int, json!(-7)),
            (ParamKind::Seed, json!(18_446_744_073_709_551_615_u64)),
            (ParamKind::Float, json!(0.1)),
            (ParamKind::Float, json!(1e300)),
            (ParamKind::Dict, json!({"scale": 1.5, "strength": 0.0})),
        ];
        for (kind, value) in cases {
            let texts = texts_of(&value);
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            assert_eq!(param_from_text(kind, &texts), Ok(value.clone()), "{kind:?}");
        }
    }
}
