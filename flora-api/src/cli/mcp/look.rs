//! The tools that look around: `cost_so_far` (the session's ledger), `get_run` (one run,
//! with the paths this session saved its outputs to) and `list_runs`.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use super::{Server, job};

impl Server {
    pub(super) async fn look(&self, name: &str, args: &Map<String, Value>) -> CallToolResult {
        let client = &self.inner.client;
        let result = match name {
            "cost_so_far" => {
                let l = self.ledger();
                let usd = |x: f64| (x * 1e6).round() / 1e6;
                Ok(json!({
                    "charged_usd": usd(l.charged),
                    "in_flight_usd": usd(l.reserved),
                    "runs_with_unreported_charge": l.unknown,
                    "max_cost_usd": self.inner.max_cost,
                }))
            }
            "get_run" => match args.get("run_id").and_then(Value::as_str) {
                None => Err(json!({"error": "get_run needs `run_id`, a string"})),
                Some(id) => match client.get_run_by_id(id).await {
                    Ok(run) => {
                        let mut v = job::run_json(&run);
                        if let Some(saved) = self.inner.lock_saved().get(id) {
                            v["outputs"] = saved.clone();
                        }
                        Ok(v)
                    }
                    Err(e) => Err(job::error_json(&e, None)),
                },
            },
            "list_runs" => match args.get("technique").and_then(Value::as_str) {
                None => Err(json!({"error": "list_runs needs `technique`, a slug"})),
                Some(slug) => {
                    let limit = args
                        .get("limit")
                        .and_then(Value::as_u64)
                        .map_or(20, |l| l.clamp(1, 100));
                    let known = self
                        .inner
                        .techniques
                        .values()
                        .find(|t| t.schema.slug_or_derived() == slug)
                        .map(|t| t.schema.technique_id.clone());
                    let technique_id = match known {
                        Some(id) => Ok(id),
                        None => client.technique(slug).await.map(|s| s.technique_id),
                    };
                    let listed = match technique_id {
                        Ok(id) => {
                            let query = crate::ListRuns {
                                limit: Some(limit as u32),
                                technique_id: Some(id),
                                ..Default::default()
                            };
                            client.list_runs(&query).await
                        }
                        Err(e) => Err(e),
                    };
                    match listed {
                        Ok(page) => Ok(json!({
                            "runs": page.items.iter().map(job::run_json).collect::<Vec<_>>()
                        })),
                        Err(e) => Err(job::error_json(&e, None)),
                    }
                }
            },
            _ => Err(
                json!({"error": format!("no tool `{}`", crate::safe_text::plain_text(name, 80))}),
            ),
        };
        match result {
            Ok(v) => CallToolResult::success(vec![ContentBlock::text(self.clean_json(&v))]),
            Err(v) => self.error(v),
        }
    }
}
