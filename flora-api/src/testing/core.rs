//! The fake's state and its answers, shared by the in-process seam and `serve()`.
//!
//! Requests are routed by path: `/api/v1/...` is the API, `/media/...` the media host (and
//! the signed-upload target). Answers use the real wire format, so the client's decoding,
//! retries and polling run as in production.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::BodyExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use super::Fault;
use super::multipart;
use crate::connector::{Connector, Origin, Sending};
use crate::technique::{RunInput, SlotInfo};
use crate::wire::{MediaType, TechniqueSchema};

/// Decides whether a rule applies to a run's inputs.
pub(crate) type Matcher = Box<dyn Fn(&[RunInput]) -> bool + Send + Sync>;

/// How a run ends.
pub(crate) enum Ending {
    Outputs(Vec<Value>),
    Fails { code: String, message: String },
    Placeholders,
}

pub(crate) struct Rule {
    pub matcher: Option<Matcher>,
    pub pending_polls: u32,
    pub ending: Ending,
}

impl Rule {
    pub fn completes(pending_polls: u32) -> Self {
        Rule {
            matcher: None,
            pending_polls,
            ending: Ending::Placeholders,
        }
    }
}

#[derive(Clone)]
struct Slot {
    id: String,
    kind: String,
    optional: bool,
}

struct Entry {
    technique_id: String,
    name: String,
    run_cost: f64,
    inputs: Vec<Slot>,
    outputs: Vec<Slot>,
    rules: Vec<Rule>,
    /// The schema as registered (`completes_untyped`), served as given: names, descriptions
    /// and fields the fake does not model stay as the user wrote them.
    given: Option<Value>,
}

struct RunState {
    slug: String,
    polls_left: u32,
    polls_total: u32,
    /// The final run fields (`status`, `outputs`/`error_*`, `charged_cost`).
    last: Value,
}

struct AssetState {
    json: Value,
}

#[derive(Default)]
struct State {
    techniques: BTreeMap<String, Entry>,
    runs: HashMap<String, RunState>,
    run_order: Vec<String>,
    /// Idempotency key -> (run id, the request it started: technique and inputs).
    run_keys: HashMap<String, (String, Value)>,
    /// The API key the API part answers (`FakeFlora::require_key`); any key when `None`.
    required_key: Option<String>,
    /// Idempotency key -> the first answer of `POST /assets` under it.
    asset_answers: HashMap<String, Value>,
    journal: Vec<(String, Vec<RunInput>)>,
    /// Signed upload targets renewed so far (each renewal's form differs).
    renewals: u64,
    assets: HashMap<String, AssetState>,
    asset_keys: HashMap<String, String>,
    media: HashMap<String, (Bytes, String)>,
    faults: VecDeque<Fault>,
    next_id: u64,
    requests: usize,
}

/// A request as the fake sees it.
pub(crate) struct FakeRequest {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl FakeRequest {
    /// The `Content-Type` header, or `""`.
    fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

/// An answer, or a broken connection.
pub(crate) enum FakeResponse {
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    Broken,
}

fn json_answer(status: u16, v: &Value) -> FakeResponse {
    FakeResponse::Answer {
        status,
        headers: vec![("content-type", "application/json".to_owned())],
        body: Bytes::from(v.to_string()),
    }
}

fn error(status: u16, code: &str, message: &str, fields: &[(String, String)]) -> FakeResponse {
    let mut e = json!({"error": {"code": code, "message": message}});
    if !fields.is_empty() {
        e["error"]["fields"] = Value::Array(
            fields
                .iter()
                .map(|(f, m)| json!({"field": f, "message": m}))
                .collect(),
        );
    }
    json_answer(status, &e)
}

/// Bytes served for placeholder media: a valid signature of each kind, then a short tail.
fn placeholder_bytes(kind: &MediaType) -> (Bytes, &'static str, &'static str) {
    match kind {
        MediaType::VideoUrl => (
            Bytes::from_static(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isomFAKE"),
            "video/mp4",
            "mp4",
        ),
        MediaType::AudioUrl => (
            Bytes::from_static(b"ID3\x04\0\0\0\0\0\0FAKE"),
            "audio/mpeg",
            "mp3",
        ),
        MediaType::DocumentUrl => (
            Bytes::from_static(b"%PDF-1.4\n%FAKE\n"),
            "application/pdf",
            "pdf",
        ),
        _ => (
            Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRFAKE"),
            "image/png",
            "png",
        ),
    }
}

pub(crate) struct Core {
    state: Mutex<State>,
    media_base: Mutex<String>,
}

impl Core {
    pub fn new() -> Self {
        Core {
            state: Mutex::new(State::default()),
            media_base: Mutex::new("https://media.fake.invalid".to_owned()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic inside the lock (a user's `when` closure) must not poison every later test.
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn media_base(&self) -> String {
        match self.media_base.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Whether `url` is on the fake's API host or its media host (scheme, host and port).
    fn serves(&self, url: &url::Url) -> bool {
        let media = self.media_base();
        [super::FAKE_BASE_URL, media.as_str()]
            .iter()
            .filter_map(|base| url::Url::parse(base).ok())
            .any(|base| base.origin() == url.origin())
    }

    pub fn set_media_base(&self, base: String) {
        match self.media_base.lock() {
            Ok(mut g) => *g = base,
            Err(p) => *p.into_inner() = base,
        }
    }

    pub fn register(
        &self,
        slug: &str,
        technique_id: &str,
        run_cost: f64,
        inputs: &[SlotInfo],
        outputs: &[SlotInfo],
    ) {
        let slots = |s: &[SlotInfo]| {
            s.iter()
                .map(|i| Slot {
                    id: i.id.to_owned(),
                    kind: i.kind.to_owned(),
                    optional: i.optional,
                })
                .collect()
        };
        self.with(|st| {
            st.techniques
                .entry(slug.to_owned())
                .or_insert_with(|| Entry {
                    technique_id: technique_id.to_owned(),
                    name: slug.to_owned(),
                    run_cost,
                    inputs: slots(inputs),
                    outputs: slots(outputs),
                    rules: Vec::new(),
                    given: None,
                });
        });
    }

    pub fn register_schema(&self, schema: &TechniqueSchema) {
        let slots = |s: &Option<Vec<crate::Slot>>| {
            s.iter()
                .flatten()
                .map(|i| Slot {
                    id: i.id.clone(),
                    kind: i.kind.as_str().to_owned(),
                    optional: i.optional,
                })
                .collect()
        };
        self.with(|st| {
            st.techniques
                .entry(schema.slug_or_derived().to_owned())
                .or_insert_with(|| Entry {
                    technique_id: schema.technique_id.clone(),
                    name: schema.name.clone(),
                    run_cost: schema.run_cost.unwrap_or(0.0),
                    inputs: slots(&schema.inputs),
                    outputs: slots(&schema.outputs),
                    rules: Vec::new(),
                    given: Some(match schema.raw() {
                        Value::Object(_) => schema.raw().clone(),
                        // Built in code rather than parsed: its serialised form.
                        _ => serde_json::to_value(schema).unwrap_or(Value::Null),
                    }),
                });
        });
    }

    pub fn add_rule(&self, slug: &str, rule: Rule) {
        self.with(|st| {
            if let Some(e) = st.techniques.get_mut(slug) {
                e.rules.push(rule);
            }
        });
    }

    pub fn journal(&self, slug: &str) -> Vec<Vec<RunInput>> {
        self.with(|st| {
            st.journal
                .iter()
                .filter(|(s, _)| s == slug)
                .map(|(_, i)| i.clone())
                .collect()
        })
    }

    pub fn run_count(&self) -> usize {
        self.with(|st| st.runs.len())
    }

    pub fn request_count(&self) -> usize {
        self.with(|st| st.requests)
    }

    pub fn require_key(&self, key: String) {
        self.with(|st| st.required_key = Some(key));
    }

    pub fn push_faults(&self, n: usize, fault: Fault) {
        self.with(|st| st.faults.extend(std::iter::repeat_n(fault, n)));
    }

    pub fn media(&self, url: &str) -> Option<Bytes> {
        let path = url::Url::parse(url).ok()?.path().to_owned();
        self.with(|st| st.media.get(&path).map(|(b, _)| b.clone()))
    }

    /// One reqwest request in, one reqwest response out.
    pub async fn handle(&self, mut request: reqwest::Request) -> reqwest::Response {
        let body = match request.body_mut().take() {
            Some(b) => match b.collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => Bytes::new(),
            },
            None => Bytes::new(),
        };
        let req = FakeRequest {
            method: request.method().as_str().to_owned(),
            path: request.url().path().to_owned(),
            headers: request.headers().clone(),
            body,
        };
        to_reqwest(self.respond(req))
    }

    /// Answers one request.
    pub fn respond(&self, req: FakeRequest) -> FakeResponse {
        let fault = self.with(|st| {
            st.requests += 1;
            st.faults.pop_front()
        });
        match fault {
            Some(Fault::Status(s)) => {
                return error(s, code_for_status(s), "injected by FakeFlora", &[]);
            }
            Some(Fault::RateLimited { retry_after }) => {
                return FakeResponse::Answer {
                    status: 429,
                    headers: vec![
                        ("content-type", "application/json".to_owned()),
                        ("retry-after-ms", retry_after.as_millis().to_string()),
                    ],
                    body: Bytes::from_static(
                        br#"{"error":{"code":"rate_limited","message":"injected by FakeFlora"}}"#,
                    ),
                };
            }
            Some(Fault::Connection) => return FakeResponse::Broken,
            Some(Fault::LostAnswer) => {
                let _ = self.route(req);
                return error(
                    500,
                    "internal_error",
                    "answer lost (injected by FakeFlora)",
                    &[],
                );
            }
            None => {}
        }
        self.route(req)
    }

    fn route(&self, req: FakeRequest) -> FakeResponse {
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        // The API checks the key (when the test asked for one); the media host never sees it.
        if let (Some(wanted), ["api", ..]) = (self.with(|st| st.required_key.clone()), &segs[..]) {
            let sent = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if sent != Some(wanted.as_str()) {
                return error(401, "unauthorized", "invalid or missing API key", &[]);
            }
        }
        let key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match (req.method.as_str(), segs.as_slice()) {
            (_, ["media", "upload", id]) => self.receive_upload(id, &req),
            ("GET", ["media", ..]) => self.serve_media(&req.path),
            ("GET", ["api", "v1", "techniques"]) => self.list_techniques(),
            ("GET", ["api", "v1", "techniques", slug]) => self.schema(slug),
            ("POST", ["api", "v1", "techniques", slug, "runs"]) => self.start(slug, &req.body, key),
            ("GET", ["api", "v1", "techniques", _, "runs", id] | ["api", "v1", "runs", id]) => {
                self.poll(id)
            }
            ("GET", ["api", "v1", "technique-runs"]) => self.history(),
            ("GET", ["api", "v1", "workspaces"]) => json_answer(
                200,
                &json!({"workspaces": [{"workspace_id": super::FAKE_WORKSPACE_ID, "name": "Fake"}]}),
            ),
            ("POST", ["api", "v1", "assets"]) => self.create_asset(&req, key),
            ("GET", ["api", "v1", "assets", id]) => self.asset(id),
            ("POST", ["api", "v1", "assets", id, "complete"]) => self.complete_asset(id),
            ("POST", ["api", "v1", "assets", id, "retry"]) => self.renew_target(id),
            _ => error(
                404,
                "not_found",
                &format!("FakeFlora does not serve {} {}", req.method, req.path),
                &[],
            ),
        }
    }

    fn schema_json(slug: &str, e: &Entry) -> Value {
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

    fn list_techniques(&self) -> FakeResponse {
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

    fn find<'a>(st: &'a mut State, slug_or_id: &str) -> Option<(String, &'a mut Entry)> {
        let slug = st
            .techniques
            .iter()
            .find(|(s, e)| *s == slug_or_id || e.technique_id == slug_or_id)
            .map(|(s, _)| s.clone())?;
        st.techniques.get_mut(&slug).map(|e| (slug, e))
    }

    fn schema(&self, slug: &str) -> FakeResponse {
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

    fn start(&self, slug: &str, body: &[u8], header_key: Option<String>) -> FakeResponse {
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
                // The same key with another request is refused, as FLORA documents.
                if first != request {
                    return error(
                        422,
                        "idempotency_conflict",
                        "this idempotency key was used with a different request body",
                        &[],
                    );
                }
                // The same key is the same run (a retry after a lost answer).
                return json_answer(
                    201,
                    &json!({"run_id": id, "status": "pending", "progress": 0, "created_at": 0}),
                );
            }
            let decided = match Self::find(st, slug) {
                None => Err(error(404, "not_found", &no_rule(slug), &[])),
                Some((slug, entry)) => {
                    decide(&slug, entry, &inputs, &media_base).map(|d| (slug, d))
                }
            };
            let (slug, (final_fields, polls, media)) = match decided {
                Ok(d) => d,
                Err(answer) => return answer,
            };
            for (path, bytes, ct) in media {
                st.media.insert(path, (bytes, ct));
            }
            st.next_id += 1;
            let id = format!("run_fake{:04}", st.next_id);
            st.runs.insert(
                id.clone(),
                RunState {
                    slug: slug.clone(),
                    polls_left: polls,
                    polls_total: polls,
                    last: final_fields,
                },
            );
            st.run_order.push(id.clone());
            if let Some(k) = key {
                st.run_keys.insert(k, (id.clone(), request));
            }
            st.journal.push((slug, inputs));
            json_answer(
                201,
                &json!({"run_id": id, "status": "pending", "progress": 0, "created_at": 1}),
            )
        })
    }

    fn run_json(id: &str, run: &RunState, status: Option<&str>) -> Value {
        let mut v = match status {
            Some(s) => json!({"status": s, "progress": 50}),
            None => run.last.clone(),
        };
        v["run_id"] = json!(id);
        v["created_at"] = json!(1);
        v["technique"] = json!({"slug": run.slug});
        v
    }

    fn poll(&self, id: &str) -> FakeResponse {
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
                    json_answer(200, &Self::run_json(id, run, Some(status)))
                } else {
                    json_answer(200, &Self::run_json(id, run, None))
                }
            }
        })
    }

    fn history(&self) -> FakeResponse {
        let list: Vec<Value> = self.with(|st| {
            st.run_order
                .iter()
                .rev()
                .filter_map(|id| st.runs.get(id).map(|r| Self::run_json(id, r, None)))
                .collect()
        });
        json_answer(
            200,
            &json!({"technique_runs": list, "meta": {"next_cursor": null}}),
        )
    }

    fn new_asset(&self, st: &mut State, key: Option<String>, json: Value) -> Value {
        st.next_id += 1;
        let id = format!("asset_fake{:04}", st.next_id);
        let mut json = json;
        json["asset_id"] = json!(id);
        json["workspace_id"] = json!(super::FAKE_WORKSPACE_ID);
        json["visibility"] = json!("workspace");
        st.assets
            .insert(id.clone(), AssetState { json: json.clone() });
        if let Some(k) = key {
            st.asset_keys.insert(k, id);
        }
        json
    }

    /// `POST /assets`. A key seen before replays its first answer as it was (a signed
    /// reserve's with its upload target), as FLORA replays.
    fn create_asset(&self, req: &FakeRequest, key: Option<String>) -> FakeResponse {
        if let Some(first) = key
            .as_ref()
            .and_then(|k| self.with(|st| st.asset_answers.get(k).cloned()))
        {
            return json_answer(201, &first);
        }
        let answer = self.new_asset_from(req, key.clone());
        if let (
            Some(k),
            FakeResponse::Answer {
                status: 201, body, ..
            },
        ) = (key, &answer)
            && let Ok(first) = serde_json::from_slice::<Value>(body)
        {
            self.with(|st| st.asset_answers.insert(k, first));
        }
        answer
    }

    fn new_asset_from(&self, req: &FakeRequest, key: Option<String>) -> FakeResponse {
        let media_base = self.media_base();
        let ct = req.content_type();
        self.with(|st| {
            if ct.starts_with("multipart/form-data") {
                let Some(form) = multipart::parse(&ct, &req.body) else {
                    return error(400, "input_validation_error", "malformed multipart body", &[]);
                };
                let Some(file) = form.file("file") else {
                    return error(400, "input_validation_error", "no `file` part", &[]);
                };
                let name = file.file_name.clone().unwrap_or_else(|| "upload".to_owned());
                let content_type = file.content_type.clone().unwrap_or_default();
                if let Some(refused) = refuse_type(&content_type) {
                    return refused;
                }
                let a = self.new_asset(st, key, json!({"status": "ready", "uploaded_via": "direct", "name": name, "content_type": content_type, "size_bytes": file.data.len()}));
                let id = a["asset_id"].as_str().unwrap_or("").to_owned();
                let (url, path) = asset_url(&media_base, &id, &name);
                st.media.insert(path, (file.data.clone(), content_type));
                if let Some(s) = st.assets.get_mut(&id) {
                    s.json["url"] = json!(url);
                }
                let mut a = a;
                a["url"] = json!(url);
                return json_answer(201, &a);
            }
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return error(400, "invalid_json", "the body is not JSON", &[]);
            };
            match body["source"].as_str() {
                Some("signed-url") => {
                    if let Some(refused) = body["content_type"].as_str().and_then(refuse_type) {
                        return refused;
                    }
                    let name = body["file_name"].as_str().unwrap_or("upload").to_owned();
                    let mut a = self.new_asset(st, key, json!({"status": "pending_upload", "uploaded_via": "signed_url", "name": name, "content_type": body["content_type"]}));
                    let id = a["asset_id"].as_str().unwrap_or("").to_owned();
                    a["url"] = json!(asset_url(&media_base, &id, &name).0);
                    a["upload"] = json!({"url": format!("{media_base}/media/upload/{id}"), "method": "POST", "file_field": "file", "form_fields": {"key": id}});
                    if let Some(s) = st.assets.get_mut(&id) {
                        s.json["url"] = a["url"].clone();
                    }
                    json_answer(201, &a)
                }
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    let a = self.new_asset(st, key, json!({"status": "ready", "uploaded_via": "url", "url": url}));
                    json_answer(201, &a)
                }
                _ => error(
                    400,
                    "input_validation_error",
                    "pass `source` as \"signed-url\" or an https URL",
                    &[("source".to_owned(), "invalid".to_owned())],
                ),
            }
        })
    }

    fn receive_upload(&self, id: &str, req: &FakeRequest) -> FakeResponse {
        let ct = req.content_type();
        let (data, file_ct) = if ct.starts_with("multipart/form-data") {
            match multipart::parse(&ct, &req.body).and_then(|f| f.file("file").cloned()) {
                Some(f) => (f.data, f.content_type.unwrap_or_default()),
                None => {
                    return FakeResponse::Answer {
                        status: 400,
                        headers: vec![],
                        body: Bytes::from_static(b"no file part"),
                    };
                }
            }
        } else {
            (req.body.clone(), ct)
        };
        self.with(|st| {
            let Some(a) = st.assets.get(id) else {
                return FakeResponse::Answer {
                    status: 404,
                    headers: vec![],
                    body: Bytes::new(),
                };
            };
            let path = a.json["url"]
                .as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            st.media.insert(path, (data, file_ct));
            FakeResponse::Answer {
                status: 204,
                headers: vec![],
                body: Bytes::new(),
            }
        })
    }

    fn complete_asset(&self, id: &str) -> FakeResponse {
        self.with(|st| match st.assets.get_mut(id) {
            None => error(404, "not_found", "asset not found", &[]),
            Some(a) if a.json["status"] == "ready" => {
                error(409, "conflict", "the asset is already complete", &[])
            }
            Some(a) => {
                a.json["status"] = json!("ready");
                json_answer(200, &a.json)
            }
        })
    }

    /// `POST /assets/{id}/retry`: like FLORA, a fresh signed upload reservation for an asset
    /// still waiting for its bytes.
    fn renew_target(&self, id: &str) -> FakeResponse {
        let media_base = self.media_base();
        self.with(|st| {
            st.renewals += 1;
            let renewal = st.renewals;
            match st.assets.get(id) {
                None => error(404, "not_found", "asset not found", &[]),
                Some(a) if a.json["status"] != "pending_upload" => error(
                    409,
                    "conflict",
                    "the asset is not waiting for an upload",
                    &[],
                ),
                Some(a) => {
                    let mut answer = a.json.clone();
                    answer["upload"] = json!({
                        "url": format!("{media_base}/media/upload/{id}"),
                        "method": "POST",
                        "file_field": "file",
                        "form_fields": {"key": id, "renewal": renewal.to_string()},
                    });
                    json_answer(200, &answer)
                }
            }
        })
    }

    fn asset(&self, id: &str) -> FakeResponse {
        self.with(|st| match st.assets.get(id) {
            None => error(404, "not_found", "asset not found", &[]),
            Some(a) => json_answer(200, &a.json),
        })
    }

    fn serve_media(&self, path: &str) -> FakeResponse {
        self.with(|st| match st.media.get(path) {
            Some((bytes, ct)) => FakeResponse::Answer {
                status: 200,
                headers: vec![("content-type", ct.clone())],
                body: bytes.clone(),
            },
            None => FakeResponse::Answer {
                status: 404,
                headers: vec![],
                body: Bytes::from_static(b"not found"),
            },
        })
    }
}

/// The error code FLORA sends with an HTTP status, for injected failures.
fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "input_validation_error",
        401 => "unauthorized",
        402 => "insufficient_credits",
        403 => "forbidden",
        404 => "not_found",
        409 => "idempotency_duplicate",
        422 => "idempotency_conflict",
        429 => "rate_limited",
        503 => "service_unavailable",
        _ => "internal_error",
    }
}

/// The URL of an asset's bytes on the media host, and its path (the key the bytes are kept
/// under): the file name percent-encoded as one segment, so `IMG 0001.png` or `a#b.png` give
/// valid URLs that resolve to the bytes.
fn asset_url(media_base: &str, id: &str, name: &str) -> (String, String) {
    match url::Url::parse(media_base) {
        Ok(mut u) => {
            if let Ok(mut segments) = u.path_segments_mut() {
                segments
                    .pop_if_empty()
                    .extend(["media", "assets", id, name]);
            }
            let path = u.path().to_owned();
            (u.into(), path)
        }
        // The media base is the fake's own (a constant or `serve()`'s address): valid.
        Err(_) => {
            let path = format!("/media/assets/{id}/upload");
            (format!("{media_base}{path}"), path)
        }
    }
}

/// FLORA stores only the types it lists (jpeg, png, webp, gif, avif, heic, heif, mp4, webm,
/// quicktime, mpeg, wav, ogg, pdf); the fake refuses the others as a 400 on `content_type`.
fn refuse_type(content_type: &str) -> Option<FakeResponse> {
    let ct = crate::content::normalise(content_type);
    if crate::content::ALLOWED.iter().any(|(t, _)| *t == ct) {
        return None;
    }
    let allowed: Vec<&str> = crate::content::ALLOWED.iter().map(|(t, _)| *t).collect();
    Some(error(
        400,
        "input_validation_error",
        &format!(
            "unsupported content type `{ct}`; allowed: {}",
            allowed.join(", ")
        ),
        &[(
            "content_type".to_owned(),
            "unsupported content type".to_owned(),
        )],
    ))
}

/// The fail-closed message: a technique unknown to the fake, or known without a rule.
fn no_rule(slug: &str) -> String {
    format!(
        "FakeFlora: technique `{slug}` has no rule; add one before running it, e.g. \
         `fake.technique::<YourTechnique>().completes()` (or `.returns(..)` / `.fails(..)`)"
    )
}

/// Media placeholders to store: `(path, bytes, content type)`.
type Media = Vec<(String, Bytes, String)>;

/// Validates a run's inputs and picks its rule: the final run fields, the pending polls and
/// the placeholder media to store; or the error answer.
fn decide(
    slug: &str,
    entry: &Entry,
    inputs: &[RunInput],
    media_base: &str,
) -> Result<(Value, u32, Media), FakeResponse> {
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
    let mut media = Vec::new();
    let fields = match &rule.ending {
        Ending::Outputs(o) => json!({
            "status": "completed", "progress": 100, "outputs": o,
            "charged_cost": entry.run_cost, "completed_at": 2
        }),
        Ending::Fails { code, message } => json!({
            "status": "failed", "error_code": code, "error_message": message,
            "charged_cost": 0, "completed_at": 2
        }),
        Ending::Placeholders => {
            let mut outs = Vec::new();
            for o in &entry.outputs {
                let kind = MediaType::from(o.kind.as_str());
                let url = if kind == MediaType::Text {
                    format!("placeholder text for `{}`", o.id)
                } else {
                    let (bytes, ct, ext) = placeholder_bytes(&kind);
                    let path = format!("/media/placeholder/{slug}/{}.{ext}", o.id);
                    media.push((path.clone(), bytes, ct.to_owned()));
                    format!("{media_base}{path}")
                };
                outs.push(json!({"output_id": o.id, "type": o.kind, "url": url}));
            }
            json!({
                "status": "completed", "progress": 100, "outputs": outs,
                "charged_cost": entry.run_cost, "completed_at": 2
            })
        }
    };
    Ok((fields, rule.pending_polls, media))
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

fn to_reqwest(resp: FakeResponse) -> reqwest::Response {
    let built = match resp {
        FakeResponse::Answer {
            status,
            headers,
            body,
        } => {
            let mut b = http::Response::builder().status(status);
            b = b.header("content-length", body.len());
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(reqwest::Body::from(body))
        }
        FakeResponse::Broken => {
            // The only way to hand the client a transport error: a body that fails to read,
            // which the client treats like a dropped connection.
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset (injected by FakeFlora)",
                ))
            });
            http::Response::builder()
                .status(200)
                .body(reqwest::Body::wrap_stream(stream))
        }
    };
    match built {
        Ok(r) => reqwest::Response::from(r),
        Err(_) => reqwest::Response::from(http::Response::new(reqwest::Body::from(Bytes::new()))),
    }
}

/// The in-process seam: the client sends every request, of every origin, here. A host the
/// fake does not serve (neither its API nor its media host) is unreachable, as in production.
impl Connector for Core {
    fn send(&self, request: reqwest::Request, _origin: Origin) -> Sending<'_> {
        Box::pin(async move {
            if !self.serves(request.url()) {
                return Ok(to_reqwest(FakeResponse::Broken));
            }
            Ok(self.handle(request).await)
        })
    }

    /// Answers come at once; a timer under a paused test clock would only fire spuriously.
    fn timeouts_apply(&self) -> bool {
        false
    }
}
