//! The fake's models and generations, with what FLORA's own team measured
//! (`flora-generations.md` §3): params are *not* validated (an unknown value runs and bills);
//! the `Idempotency-Key` header of a repeated `POST /generate` answers 409 with no run, for
//! a run that completed or failed alike (a key is only recorded when a run was created, so a
//! refused request releases it); the create answer's `charged_cost` is a quote, not the
//! charge; failed runs report `progress: 100`; a charge can settle late; a malformed
//! `prj_` id answers 500 `unknown_error`.

use super::runs::{ending_fields, paging};
use super::*;

/// A generation's own fields.
#[derive(Clone)]
pub(crate) struct GenRun {
    pub model_id: String,
    pub project_id: String,
    pub prompt: String,
    /// Reads of the ended run left that omit its charge.
    pub unsettled_reads: u32,
}

use crate::testing::FAKE_PROJECT_ID;

/// Fields a `POST /generate` body may hold (the spec's body is `additionalProperties: false`;
/// `callback_url` is documented and sent by the TypeScript SDK).
const BODY_FIELDS: [&str; 7] = [
    "type",
    "prompt",
    "model",
    "workspace_id",
    "project_id",
    "params",
    "callback_url",
];

impl Core {
    /// Registers a model: its catalog JSON, and an entry with one output of its type.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    pub fn register_model(&self, catalog: Value) {
        let Some(id) = catalog["model_id"].as_str().map(str::to_owned) else {
            return;
        };
        // One output of the model's media kind; text for a text (or unknown) model.
        let output = catalog["type"]
            .as_str()
            .and_then(crate::kinds::MediaKind::named)
            .map_or("text", crate::kinds::MediaKind::wire);
        let credits = catalog["estimated_credits"].as_f64().unwrap_or(10.0);
        self.with(|st| {
            st.models.entry(id.clone()).or_insert_with(|| {
                (
                    Entry {
                        technique_id: id.clone(),
                        name: id.clone(),
                        // 1 credit is about 0.001 USD.
                        run_cost: credits / 1000.0,
                        inputs: Vec::new(),
                        outputs: vec![Slot {
                            id: "output".to_owned(),
                            kind: output.to_owned(),
                            optional: false,
                        }],
                        rules: Vec::new(),
                        given: None,
                    },
                    catalog,
                )
            });
        });
    }

    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    pub fn add_model_rule(&self, model_id: &str, rule: Rule) {
        self.with(|st| {
            if let Some((e, _)) = st.models.get_mut(model_id) {
                e.rules.push(rule);
            }
        });
    }

    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    pub fn generation_journal(&self) -> Vec<(String, String, Value)> {
        self.with(|st| st.generation_journal.clone())
    }

    pub(super) fn list_models(&self, query: &str) -> FakeResponse {
        let kind = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "type")
            .map(|(_, v)| v.into_owned());
        let list: Vec<Value> = self.with(|st| {
            st.models
                .values()
                .map(|(_, c)| c.clone())
                .filter(|c| kind.as_deref().is_none_or(|k| c["type"] == k))
                .collect()
        });
        json_answer(200, &json!({"models": list, "meta": {"next_cursor": null}}))
    }

    pub(super) fn list_projects(&self) -> FakeResponse {
        json_answer(
            200,
            &json!({"projects": [{
                "project_id": FAKE_PROJECT_ID, "name": "Fake project",
                "workspace_id": crate::testing::FAKE_WORKSPACE_ID, "origin": "api",
                "last_modified": null, "created_at": 1
            }], "meta": {"next_cursor": null}}),
        )
    }

    /// `POST /generate`.
    pub(super) fn generate(&self, body: &[u8], key: Option<String>) -> FakeResponse {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return error(400, "invalid_json", "the body is not a JSON object", &[]);
        };
        if let Some(extra) = body.keys().find(|k| !BODY_FIELDS.contains(&k.as_str())) {
            let message = format!("Unrecognized key: \"{extra}\"");
            return error(
                400,
                "input_validation_error",
                &message,
                &[(extra.clone(), message.clone())],
            );
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let (kind, prompt, model_id, project_id) = (
            text("type"),
            text("prompt"),
            text("model"),
            text("project_id"),
        );
        for (field, value) in [
            ("type", &kind),
            ("prompt", &prompt),
            ("workspace_id", &text("workspace_id")),
            ("project_id", &project_id),
        ] {
            if value.is_empty() {
                let m = format!("{field}: Required");
                return error(
                    400,
                    "input_validation_error",
                    &m,
                    &[(field.to_owned(), "Required".to_owned())],
                );
            }
        }
        // Measured: a malformed project id is a 500, not a 404.
        if !project_id.starts_with("prj_") || project_id.len() == 4 {
            return error(500, "unknown_error", "An unknown error occurred.", &[]);
        }
        if project_id != FAKE_PROJECT_ID {
            return error(
                404,
                "not_found",
                &format!("project `{project_id}` not found"),
                &[],
            );
        }
        let media_base = self.media_base();
        self.with(|st| {
            // A repeated key: 409 with no run, whatever became of the first one.
            if let Some(k) = &key
                && st.generation_keys.contains(k)
            {
                st.repeated_keys += 1;
                return error(
                    409,
                    "idempotency_duplicate",
                    "a request with this idempotency key was already processed",
                    &[],
                );
            }
            let Some((entry, catalog)) = st.models.get_mut(&model_id) else {
                let ids: Vec<&String> = st.models.keys().collect();
                let m = format!(
                    "unknown model `{model_id}`; accessible models: {}",
                    ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                );
                return error(400, "input_validation_error", &m, &[("model".to_owned(), m.clone())]);
            };
            if catalog["type"].as_str().is_some_and(|t| t != kind) {
                let m = format!("model `{model_id}` makes `{}`, not `{kind}`", catalog["type"]);
                return error(400, "input_validation_error", &m, &[("type".to_owned(), m.clone())]);
            }
            let Some(index) = entry
                .rules
                .iter()
                .rposition(|r| r.uses_left != Some(0))
            else {
                let m = format!(
                    "FakeFlora: model `{model_id}` has no rule left; add one before generating, \
                     e.g. `fake.model::<YourModel>().completes()`"
                );
                return error(404, "not_found", &m, &[]);
            };
            let rule = &mut entry.rules[index];
            if let Some(n) = &mut rule.uses_left {
                *n -= 1;
            }
            let rule = &entry.rules[index];
            let (mut fields, media) = ending_fields(&model_id, entry, rule, &media_base);
            if fields["status"] == "failed" {
                // Measured: failed runs report progress 100 (and are refunded).
                fields["progress"] = json!(100);
            } else if rule.charges.is_none() {
                // Unless the rule says, the charge is not the quote (measured 0.253 quoted,
                // 0.873 charged): twice the estimate.
                fields["charged_cost"] = json!(entry.run_cost * 2.0);
            }
            let quote = rule.quote.unwrap_or(entry.run_cost);
            let (polls, estimated, unsettled) =
                (rule.pending_polls, rule.estimated_seconds, rule.unsettled_reads);
            for (path, bytes, ct) in media {
                st.media.insert(path, (bytes, ct));
            }
            st.next_id += 1;
            let id = format!("run_fakegen{:04}", st.next_id);
            let params = body.get("params").cloned().unwrap_or(json!({}));
            let run = RunState {
                slug: model_id.clone(),
                unsettled_listings: 0,
                created_at: {
                    let (offset, millis) = st.clock;
                    let secs = crate::reconcile::unix_now() + offset;
                    if millis { (secs * 1000.0).round() } else { secs }
                },
                polls_left: polls,
                polls_total: polls,
                estimated_seconds: estimated,
                last: fields,
                inputs: Vec::new(),
                generation: Some(GenRun {
                    model_id: model_id.clone(),
                    project_id: project_id.clone(),
                    prompt: prompt.clone(),
                    unsettled_reads: unsettled,
                }),
            };
            let mut answer = json!({
                "run_id": id, "type": "generation", "model": {"model_id": model_id},
                "technique": null, "action": null, "project_id": project_id,
                "charged_cost": quote, "poll_url": format!("{}/runs/{id}", crate::testing::FAKE_BASE_URL),
            });
            if let Some(s) = estimated {
                answer["estimated_seconds"] = json!(s);
            }
            st.runs.insert(id.clone(), run);
            st.run_order.push(id.clone());
            if let Some(k) = key {
                st.generation_keys.insert(k);
            }
            st.generation_journal.push((model_id, prompt, params));
            json_answer(201, &answer)
        })
    }

    /// A generation's fields over a run's JSON, and its late charge.
    pub(super) fn generation_json(v: &mut Value, gen_run: &mut GenRun, ended: bool) {
        v["type"] = json!("generation");
        v["model"] = json!({"model_id": gen_run.model_id});
        v["project_id"] = json!(gen_run.project_id);
        v["prompt"] = json!(gen_run.prompt);
        if let Some(m) = v.as_object_mut() {
            m.remove("technique");
        }
        if ended && gen_run.unsettled_reads > 0 {
            gen_run.unsettled_reads -= 1;
            if let Some(m) = v.as_object_mut() {
                m.remove("charged_cost");
            }
        }
    }

    /// `GET /generations`: newest first, filtered by `project_id`, `status` and `run_ids`,
    /// in pages of `limit` (1–100, default 20) with an opaque cursor. A listing is a moment
    /// passing for every generation, as a poll is for one.
    pub(super) fn list_generations(&self, query: &str) -> FakeResponse {
        let (params, limit, offset) = paging(query, 'g');
        let run_ids: Option<Vec<&str>> = params.get("run_ids").map(|r| r.split(',').collect());
        let (list, more) = self.with(|st| {
            let ids: Vec<String> = st.run_order.clone();
            for id in &ids {
                if let Some(run) = st.runs.get_mut(id)
                    && run.generation.is_some()
                    && run.polls_left > 0
                {
                    run.polls_left -= 1;
                }
            }
            let wanted: Vec<String> = ids
                .iter()
                .rev()
                .filter(|id| {
                    st.runs.get(*id).is_some_and(|run| {
                        run.generation.as_ref().is_some_and(|g| {
                            params.get("project_id").is_none_or(|p| *p == g.project_id)
                        }) && params
                            .get("status")
                            .is_none_or(|s| s == Self::status_now(run))
                            && run_ids.as_ref().is_none_or(|r| r.contains(&id.as_str()))
                    })
                })
                .cloned()
                .collect();
            let page: Vec<String> = wanted.iter().skip(offset).take(limit).cloned().collect();
            let list = page
                .iter()
                .filter_map(|id| {
                    let run = st.runs.get_mut(id)?;
                    let ended = run.polls_left == 0;
                    let status = Self::status_now(run).to_owned();
                    let mut v = Self::run_json(id, run, (!ended).then_some(status.as_str()));
                    let g = run.generation.as_mut()?;
                    Self::generation_json(&mut v, g, ended);
                    Some(v)
                })
                .collect::<Vec<Value>>();
            (list, wanted.len() > offset + limit)
        });
        let next = more.then(|| format!("g{}", offset + limit));
        json_answer(
            200,
            &json!({"generations": list, "meta": {"next_cursor": next}}),
        )
    }
}
