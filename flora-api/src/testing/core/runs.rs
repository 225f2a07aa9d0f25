//! The fake's techniques and runs: schemas, listing, starting (with rules and input
//! validation, as FLORA validates) and polling.

use super::*;

impl Core {
    pub(super) fn schema_json(slug: &str, e: &Entry) -> Value {
        if let Some(given @ Value::Object(_)) = &e.given {
            let mut given = given.clone();
            if given.get("slug").is_none() {
                given["slug"] = json!(slug);
            }
            return given;
        }
        let slots = |s: &[Slot]| -> Vec<Value> {
            s.iter()
                .map(|i| json!({"id": i.id, "name": i.id, "type": i.kind, "optional": i.optional}))
                .collect()
        };
        json!({
            "technique_id": e.technique_id, "slug": slug, "name": e.name, "run_cost": e.run_cost,
            "inputs": slots(&e.inputs), "outputs": slots(&e.outputs),
        })
    }

    pub(super) fn list_techniques(&self) -> FakeResponse {
        let list: Vec<Value> = self.with(|st| {
            st.techniques
                .iter()
                .map(|(s, e)| Self::schema_json(s, e))
                .collect()
        });
        json_answer(
            200,
            &json!({"techniques": list, "meta": {"next_cursor": null}}),
        )
    }

    pub(super) fn find<'a>(st: &'a mut State, slug_or_id: &str) -> Option<(String, &'a mut Entry)> {
        let slug = st
            .techniques
            .iter()
            .find(|(s, e)| *s == slug_or_id || e.technique_id == slug_or_id)
            .map(|(s, _)| s.clone())?;
        st.techniques.get_mut(&slug).map(|e| (slug, e))
    }

    pub(super) fn schema(&self, slug: &str) -> FakeResponse {
        self.with(|st| match Self::find(st, slug) {
            Some((s, e)) => json_answer(200, &Self::schema_json(&s, e)),
            None => error(
                404,
                "not_found",
                &format!("technique `{slug}` is not registered with FakeFlora"),
                &[],
            ),
        })
    }

    pub(super) fn start(
        &self,
        slug: &str,
        body: &[u8],
        header_key: Option<String>,
    ) -> FakeResponse {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return error(400, "invalid_json", "the body is not JSON", &[]);
        };
        let key = header_key.or_else(|| body["idempotency_key"].as_str().map(str::to_owned));
        let inputs: Vec<RunInput> = body["inputs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        RunInput::new(
                            i["id"].as_str().unwrap_or("").to_owned(),
                            i["type"].as_str().unwrap_or("").to_owned(),
                            i["value"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let media_base = self.media_base();
        let request = json!({"technique": slug, "inputs": body["inputs"]});
        self.with(|st| {
            if let Some((id, first)) = key.as_ref().and_then(|k| st.run_keys.get(k)).cloned() {
                st.repeated_keys += 1;
                // The same key with another request is refused, as FLORA documents.
                if first != request {
                    return error(
                        422,
                        "idempotency_conflict",
                        "this idempotency key was used with a different request body",
                        &[],
                    );
                }
                // The spec's other behaviour: a repeated key within two hours is a 409 without
                // the run id (`FakeFlora::duplicate_keys_conflict`).
                if st.duplicate_conflict {
                    return error(
                        409,
                        "idempotency_duplicate",
                        "a request with this idempotency key was already processed",
                        &[],
                    );
                }
                // The same key is the same run (a retry after a lost answer): its first answer.
                return match st.runs.get(&id) {
                    Some(run) => json_answer(201, &Self::created_json(&id, run)),
                    None => error(404, "not_found", &format!("run `{id}` not found"), &[]),
                };
            }
            let decided = match Self::find(st, slug) {
                None => Err(error(404, "not_found", &no_rule(slug), &[])),
                Some((slug, entry)) => {
                    decide(&slug, entry, &inputs, &media_base).map(|d| (slug, d))
                }
            };
            let (slug, (final_fields, polls, media, estimated_seconds)) = match decided {
                Ok(d) => d,
                Err(answer) => return answer,
            };
            for (path, bytes, ct) in media {
                st.media.insert(path, (bytes, ct));
            }
            st.next_id += 1;
            let id = format!("run_fake{:04}", st.next_id);
            let run = RunState {
                slug: slug.clone(),
                unsettled_listings: 0,
                created_at: {
                    let (offset, millis) = st.clock;
                    let secs = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64())
                        + offset;
                    if millis {
                        (secs * 1000.0).round()
                    } else {
                        secs
                    }
                },
                polls_left: polls,
                polls_total: polls,
                estimated_seconds,
                last: final_fields,
                inputs: inputs.clone(),
                generation: None,
            };
            let answer = Self::created_json(&id, &run);
            st.runs.insert(id.clone(), run);
            st.run_order.push(id.clone());
            if let Some(k) = key {
                st.run_keys.insert(k, (id.clone(), request));
            }
            st.journal.push((slug, inputs));
            json_answer(201, &answer)
        })
    }

    /// The answer to the POST that created a run (and to a replay of it).
    fn created_json(id: &str, run: &RunState) -> Value {
        let mut v = json!({
            "run_id": id, "status": "pending", "progress": 0, "created_at": run.created_at
        });
        if let Some(s) = run.estimated_seconds {
            v["estimated_seconds"] = json!(s);
        }
        v
    }

    pub(super) fn run_json(id: &str, run: &RunState, status: Option<&str>) -> Value {
        let mut v = match status {
            Some(s) => json!({"status": s, "progress": 50}),
            None => run.last.clone(),
        };
        v["run_id"] = json!(id);
        v["created_at"] = json!(run.created_at);
        v["technique"] = json!({"slug": run.slug});
        v
    }

    pub(super) fn poll(&self, id: &str) -> FakeResponse {
        self.with(|st| match st.runs.get_mut(id) {
            None => error(404, "not_found", &format!("run `{id}` not found"), &[]),
            Some(run) => {
                if run.polls_left > 0 {
                    // The first half of the pending polls say `pending`, the rest `running`.
                    // In u64: `pending_polls(u32::MAX)` must not overflow.
                    let status = if u64::from(run.polls_left) * 2 > u64::from(run.polls_total) {
                        "pending"
                    } else {
                        "running"
                    };
                    run.polls_left -= 1;
                    let mut v = Self::run_json(id, run, Some(status));
                    if let Some(g) = run.generation.as_mut() {
                        Self::generation_json(&mut v, g, false);
                    }
                    json_answer(200, &v)
                } else {
                    let mut v = Self::run_json(id, run, None);
                    if let Some(g) = run.generation.as_mut() {
                        Self::generation_json(&mut v, g, true);
                    }
                    json_answer(200, &v)
                }
            }
        })
    }

    /// `GET /technique-runs`: newest first, filtered by `technique_id` and `status`, in
    /// pages of `limit` (at most 100) with an opaque cursor. A listing counts as a moment for
    /// every run of the technique, as a poll does for one: runs with pending polls move on.
    /// An ended run's charge is left out of the first listings after its end
    /// (`FakeFlora::charge_settles_after`), as FLORA's list reports it late.
    pub(super) fn history(&self, query: &str) -> FakeResponse {
        let (params, limit, offset) = paging(query, 'o');
        let (list, more) = self.with(|st| {
            let technique = params.get("technique_id");
            let of_technique = |st: &State, run: &RunState| {
                technique.is_none_or(|t| {
                    st.techniques
                        .get(&run.slug)
                        .is_some_and(|e| &e.technique_id == t)
                })
            };
            // A listing is a moment passing for every run of the technique, shown or not
            // (a filtered list of ended runs still sees runs end): pending ones move on.
            let ids: Vec<String> = st.run_order.clone();
            for id in &ids {
                let tick = st
                    .runs
                    .get(id)
                    .is_some_and(|r| r.polls_left > 0 && of_technique(st, r));
                if tick && let Some(run) = st.runs.get_mut(id) {
                    run.polls_left -= 1;
                }
            }
            let wanted: Vec<String> = ids
                .iter()
                .rev()
                .filter(|id| {
                    st.runs.get(*id).is_some_and(|run| {
                        of_technique(st, run)
                            && params
                                .get("status")
                                .is_none_or(|s| s == Self::status_now(run))
                    })
                })
                .cloned()
                .collect();
            let page: Vec<String> = wanted.iter().skip(offset).take(limit).cloned().collect();
            let settles = st.charge_settles_after;
            let list = page
                .iter()
                .filter_map(|id| {
                    let run = st.runs.get_mut(id)?;
                    Some(Self::listed(id, run, settles))
                })
                .collect::<Vec<Value>>();
            (list, wanted.len() > offset + limit)
        });
        let next = more.then(|| format!("o{}", offset + limit));
        json_answer(
            200,
            &json!({"technique_runs": list, "meta": {"next_cursor": next}}),
        )
    }

    /// The status a poll would answer now.
    pub(super) fn status_now(run: &RunState) -> &str {
        if run.polls_left == 0 {
            run.last["status"].as_str().unwrap_or("completed")
        } else if u64::from(run.polls_left) * 2 > u64::from(run.polls_total) {
            "pending"
        } else {
            "running"
        }
    }

    /// One run as listed (its charge left out of the first listings after its end).
    fn listed(id: &str, run: &mut RunState, settles: u32) -> Value {
        if run.polls_left > 0 {
            let status = Self::status_now(run).to_owned();
            return Self::run_json(id, run, Some(&status));
        }
        let mut v = Self::run_json(id, run, None);
        if run.unsettled_listings < settles {
            run.unsettled_listings += 1;
            if let Some(m) = v.as_object_mut() {
                m.remove("charged_cost");
            }
        }
        v
    }
}

/// A listing's query: its parameters, the page size (`limit`, 1–100, default 20) and the
/// offset its opaque cursor (`{prefix}{offset}`) stands for.
pub(super) fn paging(query: &str, prefix: char) -> (HashMap<String, String>, usize, usize) {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let offset = params
        .get("cursor")
        .and_then(|c| c.strip_prefix(prefix))
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    (params, limit, offset)
}

/// The fail-closed message: a technique unknown to the fake, or known without a rule.
fn no_rule(slug: &str) -> String {
    format!(
        "FakeFlora: technique `{slug}` has no rule; add one before running it, e.g. \
         `fake.technique::<YourTechnique>().completes()` (or `.returns(..)` / `.fails(..)`)"
    )
}

/// Media placeholders to store: `(path, bytes, content type)`.
pub(super) type Media = Vec<(String, Bytes, String)>;

/// Validates a run's inputs and picks its rule: the final run fields, the pending polls and
/// the placeholder media to store; or the error answer.
fn decide(
    slug: &str,
    entry: &Entry,
    inputs: &[RunInput],
    media_base: &str,
) -> Result<(Value, u32, Media, Option<f64>), FakeResponse> {
    let problems = validate(&entry.inputs, inputs);
    if !problems.is_empty() {
        let summary = problems
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(error(400, "input_validation_error", &summary, &problems));
    }
    let Some(rule) = entry
        .rules
        .iter()
        .rev()
        .find(|r| r.matcher.as_ref().is_none_or(|m| m(inputs)))
    else {
        let message = if entry.rules.is_empty() {
            no_rule(slug)
        } else {
            format!(
                "FakeFlora: no rule of technique `{slug}` matches these inputs ({} rule(s) \
                 with `.when(..)` tried); add a rule without `.when` or one that matches",
                entry.rules.len()
            )
        };
        return Err(error(404, "not_found", &message, &[]));
    };
    let (fields, media) = ending_fields(slug, entry, rule, media_base);
    Ok((fields, rule.pending_polls, media, rule.estimated_seconds))
}

/// The final fields of a run ended by `rule` (`status`, `outputs` or `error_*`,
/// `charged_cost`), and the placeholder media to store.
pub(super) fn ending_fields(
    slug: &str,
    entry: &Entry,
    rule: &Rule,
    media_base: &str,
) -> (Value, Media) {
    let mut media = Vec::new();
    let fields = match &rule.ending {
        Ending::Outputs(o) => json!({
            "status": "completed", "progress": 100, "outputs": o,
            "charged_cost": rule.charges.unwrap_or(entry.run_cost), "completed_at": 2
        }),
        Ending::Fails { code, message } => json!({
            "status": "failed", "error_code": code, "error_message": message,
            "charged_cost": rule.charges.unwrap_or(0.0), "completed_at": 2
        }),
        Ending::Placeholders => {
            let mut outs = Vec::new();
            for o in &entry.outputs {
                let (bytes, ct, ext) = match MediaType::from(o.kind.as_str()).class() {
                    SlotClass::Text => {
                        outs.push(json!({"output_id": o.id, "type": o.kind,
                            "url": format!("placeholder text for `{}`", o.id)}));
                        continue;
                    }
                    SlotClass::Media(kind) => {
                        let (bytes, ct) = kind.placeholder();
                        let ext = crate::content::extension(ct).unwrap_or("bin");
                        (bytes, ct, ext)
                    }
                    // Bytes of no known type for a type this version does not know.
                    SlotClass::Unknown(_) => {
                        (&b"placeholder"[..], "application/octet-stream", "bin")
                    }
                };
                let url = {
                    let bytes = bytes::Bytes::from_static(bytes);
                    // The id as one path segment (`a b` → `a+b`, `a?b` → `a%3Fb`), so
                    // the URL asks for exactly the path stored.
                    let stem: String =
                        url::form_urlencoded::byte_serialize(o.id.as_bytes()).collect();
                    let path = format!("/media/placeholder/{slug}/{stem}.{ext}");
                    media.push((path.clone(), bytes, ct.to_owned()));
                    format!("{media_base}{path}")
                };
                outs.push(json!({"output_id": o.id, "type": o.kind, "url": url}));
            }
            json!({
                "status": "completed", "progress": 100, "outputs": outs,
                "charged_cost": rule.charges.unwrap_or(entry.run_cost), "completed_at": 2
            })
        }
    };
    (fields, media)
}

/// Unknown ids, wrong types and missing required inputs, as `(field, message)`.
fn validate(slots: &[Slot], inputs: &[RunInput]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match slots.iter().find(|s| s.id == input.id) {
            None => problems.push((
                format!("inputs.{i}.id"),
                format!("unknown input `{}`", input.id),
            )),
            Some(s) if MediaType::from(s.kind.as_str()) != MediaType::from(&*input.kind) => {
                problems.push((
                    format!("inputs.{i}.type"),
                    format!("input `{}` is `{}`, not `{}`", s.id, s.kind, input.kind),
                ))
            }
            Some(_) => {}
        }
    }
    for s in slots.iter().filter(|s| !s.optional) {
        if !inputs.iter().any(|i| i.id == s.id) {
            problems.push((s.id.clone(), "Required".to_owned()));
        }
    }
    problems
}
