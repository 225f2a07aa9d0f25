//! Models as tools (`generate_<model_id>`): the prompt and the params of the catalog entry,
//! their allowed values as JSON Schema enums and their ranges as bounds, so an agent sees
//! what is valid; every call still goes through the one check (`check_params`) before
//! anything is sent, since FLORA bills an unknown value with its default.

use rmcp::RoleServer;
use rmcp::model::CallToolResponse;
use rmcp::service::RequestContext;
use serde_json::{Map, Value, json};

use super::Server;
use super::job::{Ended, Progress, fingerprint, run_json, save_outputs};
use crate::catalog::ModelSchema;
use crate::generation::{Charge, GenerateOptions};
use crate::model::ParamKind;
use crate::technique::RawOutput;
use crate::wire::RunOutput;

/// The USD of a credit, as FLORA's own team measured it (4 credits settled as 0.004 USD).
const USD_PER_CREDIT: f64 = 0.001;

/// A model as a tool.
#[derive(Debug, Clone)]
pub(crate) struct ModelTool {
    /// `generate_<model_id>`, in MCP's tool name characters.
    pub name: String,
    pub schema: ModelSchema,
}

impl ModelTool {
    pub(crate) fn new(schema: ModelSchema) -> ModelTool {
        let name = super::tools::tool_name(&schema.model_id).replacen("run_", "generate_", 1);
        ModelTool { name, schema }
    }

    /// Its estimated cost of a generation, in USD.
    fn estimate(&self) -> Option<f64> {
        self.schema.estimated_credits.map(|c| c * USD_PER_CREDIT)
    }

    pub(crate) fn description(&self) -> String {
        let m = &self.schema;
        let mut text = format!("Generate with {} ({} model", m.name.trim(), m.kind);
        if let Some(p) = &m.provider {
            text.push_str(&format!(" by {}", p.trim()));
        }
        text.push(')');
        if let Some(usd) = self.estimate() {
            text.push_str(&format!(", about {usd:.3} USD a generation"));
        }
        text.push_str(
            ". Every param is checked against the catalog before anything is sent. Waits for \
             the generation and saves its outputs.",
        );
        crate::safe_text::plain_text(&text, 1024)
    }

    /// The prompt and every param this version can check (others are not offered).
    pub(crate) fn input_schema(&self) -> Map<String, Value> {
        let mut properties = Map::new();
        properties.insert(
            "prompt".into(),
            json!({"type": "string", "minLength": 1, "description": "The prompt"}),
        );
        let mut required = vec![json!("prompt")];
        for p in &self.schema.params {
            let Some(rule) = p.rule() else { continue };
            let mut about = p.label.clone().unwrap_or_else(|| p.name.clone());
            if let Some(d) = p.description.as_deref().filter(|d| !d.trim().is_empty()) {
                about.push_str(". ");
                about.push_str(d.trim());
            }
            if let Some(d) = &p.default {
                about.push_str(&format!(" (default {d})"));
            }
            let mut prop = match rule.kind {
                ParamKind::String if !p.options.is_empty() => {
                    let labels: Vec<String> = p
                        .options
                        .iter()
                        .map(|o| format!("{} = {}", o.value, o.label))
                        .collect();
                    about.push_str(&format!(". Values: {}", labels.join(", ")));
                    json!({"type": "string", "enum": p.options.iter().map(|o| o.value.clone()).collect::<Vec<_>>()})
                }
                ParamKind::String => json!({"type": "string"}),
                ParamKind::Strings => json!({"type": "array", "items": {"type": "string"}}),
                ParamKind::Bool => json!({"type": "boolean"}),
                ParamKind::Int => bounded(json!({"type": "integer"}), p.min, p.max),
                ParamKind::Seed => json!({"type": "integer", "minimum": 0}),
                ParamKind::Float => bounded(json!({"type": "number"}), p.min, p.max),
                ParamKind::Dict if !p.properties.is_empty() => {
                    let mut numbers = Map::new();
                    for (k, r) in &p.properties {
                        numbers.insert(
                            k.clone(),
                            json!({"type": "number", "minimum": r.min, "maximum": r.max}),
                        );
                    }
                    json!({"type": "object", "properties": numbers, "additionalProperties": false})
                }
                _ => continue,
            };
            prop["description"] = json!(crate::safe_text::plain_text(&about, 512));
            properties.insert(p.name.clone(), prop);
            if p.required {
                required.push(json!(p.name));
            }
        }
        super::tools::object_schema(properties, required)
    }
}

fn bounded(mut v: Value, min: Option<f64>, max: Option<f64>) -> Value {
    // Whole bounds as integers (`1`, not `1.0`), as an integer's schema reads.
    let number = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 9e15 {
            json!(x as i64)
        } else {
            json!(x)
        }
    };
    if let Some(m) = min {
        v["minimum"] = number(m);
    }
    if let Some(m) = max {
        v["maximum"] = number(m);
    }
    v
}

impl Server {
    /// A `generate_<model>` call: checked, joined or started, followed, saved.
    pub(super) async fn generate(
        &self,
        m: &ModelTool,
        args: &Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let prompt = args
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut params = args.clone();
        params.remove("prompt");
        // The one check, before anything is sent.
        if let Err(e) =
            crate::model::check_params(&m.schema.model_id, &prompt, &m.schema.rules(), &params)
        {
            return self
                .error(json!({
                    "error": super::super::report::floret_terms(&e.to_string()),
                    "retry_class": "change_input",
                }))
                .into();
        }
        let tool = m.clone();
        self.join_or_start(
            &m.schema.model_id,
            fingerprint(&m.name, args),
            m.estimate(),
            move |inner, key, progress| async move {
                execute(&inner, &tool, prompt, params, &key, &progress).await
            },
            context,
        )
        .await
    }
}

async fn execute(
    inner: &super::Inner,
    m: &ModelTool,
    prompt: String,
    params: Map<String, Value>,
    key: &str,
    progress: &tokio::sync::watch::Sender<Progress>,
) -> Ended {
    let cost = m.estimate().unwrap_or(0.0);
    let started = inner
        .client
        .start_generation_untyped(
            &m.schema,
            &prompt,
            params,
            GenerateOptions::idempotency_key(key),
        )
        .await;
    let mut handle = match started {
        Ok(h) => h,
        Err(e) => {
            inner.release(cost, None, super::job::may_exist(&e));
            return Err(super::job::error_json(&e, None));
        }
    };
    let run_id = handle.run_id().to_owned();
    progress.send_modify(|p| {
        p.run_id = Some(run_id.clone());
        p.status = "pending".into();
    });
    let waited = handle
        .wait_with(|run: &crate::wire::Run| {
            progress.send_modify(|p| {
                p.status = run.status.as_str().to_owned();
                p.percent = run.progress.or(p.percent);
            });
        })
        .await;
    let done: crate::generation::Generation<RawOutput> = match waited {
        Ok(done) => done,
        Err(e) => {
            let charged = match &e {
                crate::Error::RunFailed { .. } => Some(0.0),
                _ => None,
            };
            inner.release(cost, charged, true);
            return Err(super::job::error_json(&e, Some(&run_id)));
        }
    };
    let charged = match done.charge {
        Charge::Settled(x) => Some(x),
        Charge::Unsettled { .. } => None,
    };
    inner.release(cost, charged, true);
    let outputs: Vec<RunOutput> = done
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| RunOutput {
            output_id: format!("output{}", i + 1),
            kind: o.kind.clone(),
            url: o.value.clone(),
            extra: Default::default(),
        })
        .collect();
    let mut result = run_json(&done.run);
    result["model"] = json!(m.schema.model_id);
    result["charge"] = json!(done.charge.to_string());
    result["outputs"] = json!(
        outputs
            .iter()
            .map(|o| json!({"slot": o.output_id, "url": o.url}))
            .collect::<Vec<_>>()
    );
    save_outputs(inner, &done.run_id, &outputs, &mut result).await;
    Ok(result)
}
