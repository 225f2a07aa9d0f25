//! The fake's state and its answers, shared by the in-process seam and `serve()`.
//!
//! Requests are routed by path: `/api/v1/...` is the API, `/media/...` the media host (and
//! the signed-upload target). Answers use the real wire format, so the client's decoding,
//! retries and polling run as in production.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

mod assets;
mod generations;
mod http;
mod limit;
mod runs;

pub(crate) use http::{FakeRequest, FakeResponse};
use http::{error, json_answer, to_reqwest};

use super::Fault;
use super::multipart;
use crate::technique::{RunInput, SlotInfo};
use crate::wire::{MediaType, SlotClass, TechniqueSchema};

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
    /// How many more runs it ends (`None`: every run); a used-up rule is skipped.
    pub uses_left: Option<u32>,
    /// Generations: reads of the ended run that leave out its charge (a late settle).
    pub unsettled_reads: u32,
    /// Generations: the create answer's `charged_cost` (a quote), if not the estimate.
    pub quote: Option<f64>,
}

impl Rule {
    pub fn completes(pending_polls: u32) -> Self {
        Rule {
            matcher: None,
            pending_polls,
            ending: Ending::Placeholders,
            charges: None,
            estimated_seconds: None,
            uses_left: None,
            unsettled_reads: 0,
            quote: None,
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
    /// A generation's own fields (`POST /generate`), `None` for a technique run.
    generation: Option<generations::GenRun>,
}

struct AssetState {
    json: Value,
}

#[derive(Default)]
struct State {
    techniques: BTreeMap<String, Entry>,
    /// Models by id: the entry (its rules and output) and its catalog JSON.
    models: BTreeMap<String, (Entry, Value)>,
    /// Idempotency keys of `POST /generate` that created a run: a repeat answers 409.
    generation_keys: std::collections::HashSet<String>,
    /// Generations started, in order: model, prompt, params as sent.
    generation_journal: Vec<(String, String, Value)>,
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
    /// `FakeFlora::without_run_history`: `GET /technique-runs` answers 404.
    no_history: bool,
    /// `FakeFlora::server_clock`: seconds added to this machine's clock for `created_at`, and
    /// whether it is sent in milliseconds.
    clock: (f64, bool),
}

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

    pub fn without_run_history(&self) {
        self.with(|st| st.no_history = true);
    }

    pub(super) fn has_run_history(&self) -> bool {
        self.with(|st| !st.no_history)
    }

    pub fn server_clock(&self, offset_secs: f64, millis: bool) {
        self.with(|st| st.clock = (offset_secs, millis));
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
}
