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

mod assets;
mod runs;

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
    /// USD charged for a completed run instead of the technique's `run_cost`.
    pub charges: Option<f64>,
    /// `estimated_seconds` in the create answer.
    pub estimated_seconds: Option<f64>,
}

impl Rule {
    pub fn completes(pending_polls: u32) -> Self {
        Rule {
            matcher: None,
            pending_polls,
            ending: Ending::Placeholders,
            charges: None,
            estimated_seconds: None,
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
    /// Run listings after the run ended in which its charge is still missing
    /// (`FakeFlora::charge_settles_after`).
    unsettled_listings: u32,
    /// Unix seconds when it was created (run listings are filtered by it).
    created_at: f64,
    polls_left: u32,
    polls_total: u32,
    /// What the create answer estimated, if the rule says.
    estimated_seconds: Option<f64>,
    /// The final run fields (`status`, `outputs`/`error_*`, `charged_cost`).
    last: Value,
    /// The inputs it was started with.
    inputs: Vec<RunInput>,
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
    media: HashMap<String, (Bytes, String)>,
    faults: VecDeque<Fault>,
    /// `FakeFlora::fail_next_creates`: faults for run creations only.
    create_faults: VecDeque<Fault>,
    /// Run creations that repeated an earlier idempotency key (replayed or refused).
    repeated_keys: usize,
    /// `FakeFlora::latency`: how long each API answer takes.
    latency: std::time::Duration,
    next_id: u64,
    requests: usize,
    /// Requests per route (`FakeFlora::request_counts`).
    by_route: std::collections::BTreeMap<&'static str, usize>,
    /// `FakeFlora::charge_settles_after`: listings of an ended run that omit its charge.
    charge_settles_after: u32,
    /// `FakeFlora::rate_limit`: API requests allowed per second, and the current second's
    /// start and count.
    rate_limit: Option<u32>,
    /// Its shape, and each shape's memory.
    limiter: super::Limiter,
    rate_window: Option<(std::time::Instant, u32)>,
    bucket: Option<(f64, std::time::Instant)>,
    recent: VecDeque<std::time::Instant>,
    /// API requests answered 429 by the rate limit.
    rate_limited: usize,
    /// `FakeFlora::duplicate_keys_conflict`: a repeated key answers 409 instead of a replay.
    duplicate_conflict: bool,
    /// `FakeFlora::server_clock`: seconds added to this machine's clock for `created_at`, and
    /// whether it is sent in milliseconds.
    clock: (f64, bool),
}

/// A request as the fake sees it.
pub(crate) struct FakeRequest {
    pub method: String,
    pub path: String,
    /// The query string (without `?`), or `""`.
    pub query: String,
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

/// Bytes served for placeholder media: a tiny valid file of each kind (a 1×1 PNG, an MP4 of
/// no frames, a WAV of no samples, a one-page PDF), so what a sandbox saves opens.
fn placeholder_bytes(kind: &MediaType) -> (Bytes, &'static str, &'static str) {
    match kind {
        MediaType::VideoUrl => (Bytes::from_static(PLACEHOLDER_MP4), "video/mp4", "mp4"),
        MediaType::AudioUrl => (Bytes::from_static(PLACEHOLDER_WAV), "audio/wav", "wav"),
        MediaType::DocumentUrl => (
            Bytes::from_static(PLACEHOLDER_PDF),
            "application/pdf",
            "pdf",
        ),
        _ => (Bytes::from_static(PLACEHOLDER_PNG), "image/png", "png"),
    }
}

const PLACEHOLDER_PNG: &[u8] = b"\x89PNG\x0d\x0a\x1a\x0a\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0bIDATx\x9cc`\x00\x02\x00\x00\x05\x00\x01z^\xab?\x00\x00\x00\x00IEND\xaeB`\x82";
const PLACEHOLDER_MP4: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41\x00\x00\x00tmoov\x00\x00\x00lmvhd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";
const PLACEHOLDER_WAV: &[u8] = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00";
const PLACEHOLDER_PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>\nendobj\nxref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \ntrailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n184\n%%EOF\n";

pub(crate) struct Core {
    state: Mutex<State>,
    media_base: Mutex<String>,
    /// The origins the fake answers for (its API host and its media host), parsed once.
    origins: Mutex<[Option<url::Origin>; 2]>,
}

fn origin(base: &str) -> Option<url::Origin> {
    url::Url::parse(base).ok().map(|u| u.origin())
}

impl Core {
    pub fn new() -> Self {
        let media = "https://media.fake.invalid";
        Core {
            state: Mutex::new(State::default()),
            media_base: Mutex::new(media.to_owned()),
            origins: Mutex::new([origin(super::FAKE_BASE_URL), origin(media)]),
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
        let theirs = url.origin();
        let origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
        origins.iter().flatten().any(|o| *o == theirs)
    }

    pub fn set_media_base(&self, base: String) {
        let parsed = origin(&base);
        match self.media_base.lock() {
            Ok(mut g) => *g = base,
            Err(p) => *p.into_inner() = base,
        }
        self.origins.lock().unwrap_or_else(|p| p.into_inner())[1] = parsed;
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

    pub fn request_counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.with(|st| st.by_route.clone())
    }

    pub fn asset_count(&self) -> usize {
        self.with(|st| st.assets.len())
    }

    pub fn charge_settles_after(&self, listings: u32) {
        self.with(|st| st.charge_settles_after = listings);
    }

    pub fn require_key(&self, key: String) {
        self.with(|st| st.required_key = Some(key));
    }

    pub fn rate_limit(&self, per_second: u32, shape: super::Limiter) {
        self.with(|st| {
            st.rate_limit = Some(per_second.max(1));
            st.limiter = shape;
        });
    }

    pub fn rate_limited(&self) -> usize {
        self.with(|st| st.rate_limited)
    }

    pub fn duplicate_keys_conflict(&self, on: bool) {
        self.with(|st| st.duplicate_conflict = on);
    }

    pub fn server_clock(&self, offset_secs: f64, millis: bool) {
        self.with(|st| st.clock = (offset_secs, millis));
    }

    /// The rate limit's verdict for one API request: the `Retry-After` header to send when
    /// over it (the header a limiter of that shape sends).
    fn over_limit(&self) -> Option<(&'static str, String)> {
        self.with(|st| {
            let limit = st.rate_limit?;
            let now = std::time::Instant::now();
            let second = std::time::Duration::from_secs(1);
            let refused = match st.limiter {
                super::Limiter::FixedWindow => {
                    let (start, count) = match st.rate_window {
                        Some((start, count)) if now.duration_since(start) < second => {
                            (start, count)
                        }
                        _ => (now, 0),
                    };
                    if count >= limit {
                        st.rate_window = Some((start, count));
                        let left = second.saturating_sub(now.duration_since(start));
                        Some(("retry-after-ms", left.as_millis().max(1).to_string()))
                    } else {
                        st.rate_window = Some((start, count + 1));
                        None
                    }
                }
                super::Limiter::TokenBucket => {
                    // `limit` tokens, refilled at `limit` a second; a request takes one.
                    let (tokens, last) = st.bucket.unwrap_or((f64::from(limit), now));
                    let tokens = (tokens
                        + now.duration_since(last).as_secs_f64() * f64::from(limit))
                    .min(f64::from(limit));
                    if tokens >= 1.0 {
                        st.bucket = Some((tokens - 1.0, now));
                        None
                    } else {
                        st.bucket = Some((tokens, now));
                        Some(("retry-after", "1".to_owned()))
                    }
                }
                super::Limiter::SlidingWindow => {
                    // At most `limit` requests in any second.
                    while st
                        .recent
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= second)
                    {
                        st.recent.pop_front();
                    }
                    if st.recent.len() >= limit as usize {
                        let oldest = st.recent.front().copied().unwrap_or(now);
                        let left = second.saturating_sub(now.duration_since(oldest));
                        Some(("retry-after-ms", left.as_millis().max(1).to_string()))
                    } else {
                        st.recent.push_back(now);
                        None
                    }
                }
            };
            if refused.is_some() {
                st.rate_limited += 1;
            }
            refused
        })
    }

    pub fn push_faults(&self, n: usize, fault: Fault) {
        self.with(|st| st.faults.extend(std::iter::repeat_n(fault, n)));
    }

    pub fn push_create_faults(&self, n: usize, fault: Fault) {
        self.with(|st| st.create_faults.extend(std::iter::repeat_n(fault, n)));
    }

    pub fn set_latency(&self, latency: std::time::Duration) {
        self.with(|st| st.latency = latency);
    }

    /// How long an answer to a request for `path` takes (`FakeFlora::latency`: the API's
    /// answers only, not media).
    pub fn latency_for(&self, path: &str) -> std::time::Duration {
        if path.starts_with("/api/") {
            self.with(|st| st.latency)
        } else {
            std::time::Duration::ZERO
        }
    }

    pub fn repeated_keys(&self) -> usize {
        self.with(|st| st.repeated_keys)
    }

    pub fn run_inputs(&self, id: &str) -> Option<Vec<RunInput>> {
        self.with(|st| st.runs.get(id).map(|r| r.inputs.clone()))
    }

    /// What an ended run was charged (`None` while it runs, or when it charged nothing).
    pub fn charged(&self, id: &str) -> Option<f64> {
        self.with(|st| {
            let run = st.runs.get(id)?;
            if run.polls_left > 0 {
                return None;
            }
            run.last["charged_cost"].as_f64()
        })
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
            query: request.url().query().unwrap_or("").to_owned(),
            headers: request.headers().clone(),
            body,
        };
        let latency = self.latency_for(&req.path);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        to_reqwest(self.respond(req))
    }

    /// Answers one request, with a `Date` on the fake's clock (`FakeFlora::server_clock`), as
    /// any HTTP server sends.
    pub fn respond(&self, req: FakeRequest) -> FakeResponse {
        let mut answer = self.respond_undated(req);
        if let FakeResponse::Answer { headers, .. } = &mut answer {
            let offset = self.with(|st| st.clock.0);
            let now = std::time::SystemTime::now();
            let at = if offset >= 0.0 {
                now.checked_add(crate::durations::from_secs_saturating(offset))
            } else {
                now.checked_sub(crate::durations::from_secs_saturating(-offset))
            };
            if let Some(at) = at {
                headers.push(("date", httpdate::fmt_http_date(at)));
            }
        }
        answer
    }

    fn respond_undated(&self, req: FakeRequest) -> FakeResponse {
        let create = req.method == "POST"
            && req.path.starts_with("/api/v1/techniques/")
            && req.path.ends_with("/runs");
        let route = route_of(&req.method, &req.path);
        let fault = self.with(|st| {
            st.requests += 1;
            *st.by_route.entry(route).or_default() += 1;
            match st.faults.pop_front() {
                Some(f) => Some(f),
                None if create => st.create_faults.pop_front(),
                None => None,
            }
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
        // Keep in step with `route_of`, which names these routes for `request_counts`.
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        // The per-workspace limit counts API requests (creates, polls, listings), as FLORA's.
        if let ["api", ..] = &segs[..]
            && let Some(retry_after) = self.over_limit()
        {
            return FakeResponse::Answer {
                status: 429,
                headers: vec![
                    ("content-type", "application/json".to_owned()),
                    retry_after,
                ],
                body: Bytes::from_static(
                    br#"{"error":{"code":"rate_limited","message":"rate limit exceeded (FakeFlora::rate_limit)"}}"#,
                ),
            };
        }
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
            ("GET", ["api", "v1", "technique-runs"]) => self.history(&req.query),
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

/// A request's route as the API reference writes it (ids as placeholders), for
/// `FakeFlora::request_counts`; the routes `Core::route` serves.
fn route_of(method: &str, path: &str) -> &'static str {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segs.as_slice()) {
        (_, ["media", "upload", _]) => "upload to a signed target",
        ("GET", ["media", ..]) => "GET media",
        ("GET", ["api", "v1", "techniques"]) => "GET /techniques",
        ("GET", ["api", "v1", "techniques", _]) => "GET /techniques/{slug}",
        ("POST", ["api", "v1", "techniques", _, "runs"]) => "POST /techniques/{slug}/runs",
        ("GET", ["api", "v1", "techniques", _, "runs", _]) => "GET /techniques/{slug}/runs/{id}",
        ("GET", ["api", "v1", "runs", _]) => "GET /runs/{id}",
        ("GET", ["api", "v1", "technique-runs"]) => "GET /technique-runs",
        ("GET", ["api", "v1", "workspaces"]) => "GET /workspaces",
        ("POST", ["api", "v1", "assets"]) => "POST /assets",
        ("GET", ["api", "v1", "assets", _]) => "GET /assets/{id}",
        ("POST", ["api", "v1", "assets", _, "complete"]) => "POST /assets/{id}/complete",
        ("POST", ["api", "v1", "assets", _, "retry"]) => "POST /assets/{id}/retry",
        _ => "other",
    }
}
