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
