//! `FakeFlora`: a typed, in-process fake FLORA for your tests (cargo feature `test-util`).
//!
//! A [`FakeFlora`] answers a real [`Client`]'s requests in-process, *below* the client's
//! retries, idempotency keys and polling, so your test exercises the same code as
//! production: no socket, no thread, no key, no bill. It runs on the test's own runtime, so
//! `#[tokio::test(start_paused = true)]` finishes a multi-poll run with the default
//! [`PollPolicy`](crate::PollPolicy) instantly.
//!
//! See [`FakeFlora`] for a complete test.
//!
//! Rules:
//! - [`FakeFlora::technique`] starts a rule for a typed technique: `.pending_polls(n)`,
//!   `.when(|input| …)`, then `.returns(outputs)`, `.fails(code, message)` or `.completes()`
//!   (deterministic placeholder outputs on `.invalid` hosts). Later rules win over earlier
//!   ones. A run of a technique without a matching rule is refused (fail closed), with an
//!   error naming the rule to add.
//! - Like the real API: the same idempotency key returns the same run (and with another
//!   request body, 422 `idempotency_conflict`); a host the fake does not serve (neither its
//!   API nor its media host) is unreachable, a connection error; inputs are validated
//!   against the technique's generated schema (400 `input_validation_error` with field
//!   errors); the dynamic layer (`technique`, `techniques`, `start_run`, `get_run`) works;
//!   uploads and downloads work with bytes kept in memory.
//! - [`FakeFlora::fail_next`] injects 429/5xx/connection failures into the next requests.
//! - [`FakeFlora::serve`] also answers on a real loopback socket, for curl or other languages.

mod core;
#[cfg(feature = "models")]
mod models;
mod multipart;
mod serve;
#[cfg(test)]
mod tests;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use self::core::Core;
#[cfg(feature = "models")]
pub use self::models::{ModelRuleBuilder, SentGeneration};
pub use self::serve::Served;
// The contract generated code implements lives below this module (generated code never
// names `testing`); these are its paths for users.
pub use crate::fake_contract::{
    FakeTechnique, FromWireInput, IntoWireOutput, WireInputs, WireOutputs,
};

use crate::client::Client;
use crate::technique::RunInput;

/// A failure to inject into the next requests ([`FakeFlora::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and the error code FLORA sends with it (401 `unauthorized`,
    /// 402 `insufficient_credits`, 429 `rate_limited`, 503 `service_unavailable`, …),
    /// without handling the request.
    Status(u16),
    /// Answer 429 with `Retry-After`.
    RateLimited {
        /// The `Retry-After` sent.
        retry_after: Duration,
    },
    /// The connection breaks before the answer arrives; the request is not handled.
    Connection,
    /// The request is handled (a run or asset is created), then the answer is lost as a 500:
    /// the case idempotency keys exist for.
    LostAnswer,
}

/// The shape of [`FakeFlora::rate_limit_shaped`]'s limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Limiter {
    /// `n` requests per calendar second; then 429 with the time left in that second
    /// (`retry-after-ms`).
    #[default]
    FixedWindow,
    /// A bucket of `n` tokens refilled at `n` a second, one per request; empty, 429 with
    /// `Retry-After: 1`.
    TokenBucket,
    /// At most `n` requests in any one second; then 429 with the time until the oldest of
    /// them leaves the second (`retry-after-ms`).
    SlidingWindow,
}

/// An in-process fake FLORA. Cheap to clone; clones share state.
///
/// A user's test of their own pipeline (the example from the README; `my_pipeline` is the
/// code under test):
///
/// ```
/// # #[cfg(feature = "techniques")]
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use flora_api::testing::FakeFlora;
/// use flora_api::techniques::{CctvCam, CctvCamOutputs};
/// use flora_api::ImageUrl;
///
/// # async fn my_pipeline(client: &flora_api::Client, face: ImageUrl) -> Result<ImageUrl, flora_api::Error> {
/// #     Ok(CctvCam { input_image: face }.run(client).await?.outputs.output_image)
/// # }
/// let face = || ImageUrl::parse("https://example.com/face.png").unwrap();
/// let fake = FakeFlora::new();
/// fake.technique::<CctvCam>()
///     .pending_polls(2)
///     .returns(CctvCamOutputs { output_image: ImageUrl::parse("https://cdn.example.invalid/o.png").unwrap() });
/// let client = fake.client(); // a real Client, default poll policy
/// let out = my_pipeline(&client, face()).await.unwrap();
/// assert_eq!(out.as_str(), "https://cdn.example.invalid/o.png");
/// assert_eq!(fake.runs::<CctvCam>(), vec![CctvCam { input_image: face() }]);
/// # }
/// # #[cfg(not(feature = "techniques"))] fn main() {}
/// ```
#[derive(Clone)]
pub struct FakeFlora {
    core: Arc<Core>,
}

impl fmt::Debug for FakeFlora {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeFlora").finish_non_exhaustive()
    }
}

impl Default for FakeFlora {
    fn default() -> Self {
        Self::new()
    }
}

/// The base URL of in-process fake clients (a reserved `.invalid` host: nothing real).
pub const FAKE_BASE_URL: &str = "https://flora.fake.invalid/api/v1";
/// The workspace fake clients use.
pub const FAKE_WORKSPACE_ID: &str = "ws_fake";
/// The project fake clients' generations land in (the only one the fake lists).
pub const FAKE_PROJECT_ID: &str = "prj_fake";

impl FakeFlora {
    /// An empty fake: no techniques, no rules.
    pub fn new() -> Self {
        FakeFlora {
            core: Arc::new(Core::new()),
        }
    }

    /// A real [`Client`] whose requests this fake answers in-process, with the default
    /// settings (retries, idempotency, default poll policy).
    pub fn client(&self) -> Client {
        self.client_builder().build().unwrap_or_else(|_| {
            // The builder above is fully valid; this branch is unreachable in practice.
            unreachable_client()
        })
    }

    /// The builder behind [`client`](Self::client), to change settings (poll policy, retries).
    pub fn client_builder(&self) -> crate::ClientBuilder {
        Client::builder()
            .api_key("sk_fake_flora")
            .base_url(FAKE_BASE_URL)
            .workspace_id(FAKE_WORKSPACE_ID)
            .project_id(FAKE_PROJECT_ID)
            .connector(self.core.clone())
    }

    /// Starts a rule for technique `T` (and registers its schema with the fake).
    pub fn technique<T: FakeTechnique>(&self) -> RuleBuilder<T> {
        self.core.register(
            T::SLUG,
            T::TECHNIQUE_ID,
            T::RUN_COST_USD,
            T::INPUTS,
            T::OUTPUTS,
        );
        RuleBuilder {
            core: self.core.clone(),
            pending_polls: 0,
            matcher: None,
            charges: None,
            estimated_seconds: None,
            _t: PhantomData,
        }
    }

    /// Registers an untyped technique from its schema (for example a file of `schemas/`),
    /// answering every run with placeholder outputs: what `cargo xtask sandbox` does.
    pub fn completes_untyped(&self, schema: &crate::TechniqueSchema) {
        self.core.register_schema(schema);
        self.core
            .add_rule(schema.slug_or_derived(), core::Rule::completes(2));
    }

    /// Registers a technique as generated code knows it (an item of a generated
    /// `TECHNIQUES`), answering every run with placeholder outputs after two pending polls.
    pub fn completes_technique(&self, info: &crate::TechniqueInfo) {
        self.core.register(
            info.slug,
            info.technique_id,
            info.run_cost_usd,
            info.inputs,
            info.outputs,
        );
        self.core.add_rule(info.slug, core::Rule::completes(2));
    }

    /// The typed inputs of every run of `T` started, in order (replays of one idempotency key
    /// count once).
    pub fn runs<T: FakeTechnique>(&self) -> Vec<T> {
        self.core
            .journal(T::SLUG)
            .iter()
            .filter_map(|inputs| match T::from_wire(&WireInputs::new(inputs)) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(technique = T::SLUG, error = %e, "run inputs not typed");
                    None
                }
            })
            .collect()
    }

    /// How many runs were created in all (replays of one idempotency key count once).
    pub fn run_count(&self) -> usize {
        self.core.run_count()
    }

    /// How many assets were created in all (replays of one idempotency key count once): an
    /// upload done once per distinct file shows here.
    pub fn asset_count(&self) -> usize {
        self.core.asset_count()
    }

    /// An ended run's `charged_cost` is left out of the first `listings` run listings that
    /// show it (`GET /technique-runs`), as FLORA's list reports a charge some time after the
    /// run ends; polling the run itself shows it at once.
    pub fn charge_settles_after(&self, listings: u32) {
        self.core.charge_settles_after(listings);
    }

    /// How many requests reached the fake (retries included).
    pub fn request_count(&self) -> usize {
        self.core.request_count()
    }

    /// Requests per route (retries included), e.g. `"POST /techniques/{slug}/runs"`,
    /// `"GET /technique-runs"`, `"GET media"`: where a program's requests go, to pin that a
    /// change saves the ones it meant to.
    pub fn request_counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.core.request_counts()
    }

    /// Answers the API only for this key, and any other (or none) with FLORA's 401
    /// `unauthorized`, to test what a program does with a wrong key. [`client`](Self::client)
    /// sends `sk_fake_flora`; set the key with [`client_builder`](Self::client_builder)`.api_key(..)`.
    pub fn require_key(&self, key: impl Into<String>) {
        self.core.require_key(key.into());
    }

    /// Limits API requests (creates, polls, listings) to `per_second` per second, as FLORA's
    /// per-workspace limit does; requests over it get 429 `rate_limited` with the time left in
    /// the second as `retry-after-ms`. A fixed one-second window: see
    /// [`rate_limit_shaped`](Self::rate_limit_shaped) for others.
    pub fn rate_limit(&self, per_second: u32) {
        self.core.rate_limit(per_second, Limiter::FixedWindow);
    }

    /// [`rate_limit`](Self::rate_limit) with a limiter of this shape (FLORA's is not
    /// published): a client tuned against one shape should be tried against all.
    pub fn rate_limit_shaped(&self, per_second: u32, shape: Limiter) {
        self.core.rate_limit(per_second, shape);
    }

    /// How many requests the rate limit answered with 429.
    pub fn rate_limited_count(&self) -> usize {
        self.core.rate_limited()
    }

    /// The spec's other duplicate-key behaviour: a repeated idempotency key (same body) is
    /// answered 409 `idempotency_duplicate` without the run id, instead of replaying the first
    /// answer. A client must then find the run by other means (the run listing).
    pub fn duplicate_keys_conflict(&self, on: bool) {
        self.core.duplicate_keys_conflict(on);
    }

    /// A server without the run history: `GET /technique-runs` answers 404, as an older
    /// deployment (or a proxy that does not pass it) would.
    pub fn without_run_history(&self) {
        self.core.without_run_history();
    }

    /// The server's clock as runs' `created_at` shows it: `offset_secs` away from this
    /// machine's, in milliseconds when `millis` (FLORA does not document the unit). For
    /// testing code that must not compare its own clock with the server's.
    pub fn server_clock(&self, offset_secs: f64, millis: bool) {
        self.core.server_clock(offset_secs, millis);
    }

    /// Makes each of the next `n` requests fail with `fault`; the client's own retries see
    /// them like real failures.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.core.push_faults(n, fault);
    }

    /// Makes each of the next `n` run creations (`POST …/runs`) fail with `fault`, whatever
    /// other requests come between: e.g. two creations in flight at once both losing their
    /// answer ([`Fault::LostAnswer`]). Faults from [`fail_next`](Self::fail_next) come first.
    pub fn fail_next_creates(&self, n: usize, fault: Fault) {
        self.core.push_create_faults(n, fault);
    }

    /// Every API answer takes `latency` (media is served at once), as over a real network:
    /// with it, requests a client sends together are in flight together.
    pub fn latency(&self, latency: std::time::Duration) {
        self.core.set_latency(latency);
    }

    /// How many run creations repeated an idempotency key already used (a retry after a
    /// lost answer, replayed or refused with 409): proof a test's lost answers were retried.
    pub fn repeated_key_count(&self) -> usize {
        self.core.repeated_keys()
    }

    /// The inputs run `run_id` was started with (uploaded files as their asset URLs; see
    /// [`media`](Self::media)), to check which run a client took for which item.
    pub fn run_inputs(&self, run_id: &str) -> Option<Vec<crate::RunInput>> {
        self.core.run_inputs(run_id)
    }

    /// What run `run_id` was charged, once it ended (`None` before, or when it charged
    /// nothing): what FLORA took, to compare with what a client booked.
    pub fn charged(&self, run_id: &str) -> Option<f64> {
        self.core.charged(run_id)
    }

    /// Bytes stored for a media URL this fake serves (uploads, placeholder outputs).
    pub fn media(&self, url: &str) -> Option<bytes::Bytes> {
        self.core.media(url)
    }

    /// Answers on `127.0.0.1:0` too (same state), until the handle is dropped. Media URLs
    /// made from then on point at the socket.
    pub async fn serve(&self) -> Result<Served, crate::Error> {
        serve::serve(self.core.clone(), 0).await
    }

    /// [`serve`](Self::serve) on a chosen loopback port.
    pub async fn serve_on(&self, port: u16) -> Result<Served, crate::Error> {
        serve::serve(self.core.clone(), port).await
    }
}

/// Never used: `client()` cannot fail with the fixed settings it uses.
#[allow(clippy::panic)]
fn unreachable_client() -> Client {
    panic!("FakeFlora::client: the fake client's fixed configuration was refused")
}

/// A rule being built for technique `T`; registered by [`returns`](Self::returns),
/// [`fails`](Self::fails) or [`completes`](Self::completes).
#[must_use = "a rule is registered only by `.returns(..)`, `.fails(..)` or `.completes()`"]
pub struct RuleBuilder<T> {
    core: Arc<Core>,
    pending_polls: u32,
    matcher: Option<core::Matcher>,
    charges: Option<f64>,
    estimated_seconds: Option<f64>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for RuleBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleBuilder")
            .field("pending_polls", &self.pending_polls)
            .field("when", &self.matcher.is_some())
            .field("charges", &self.charges)
            .field("estimated_seconds", &self.estimated_seconds)
            .finish()
    }
}

impl<T: FakeTechnique> RuleBuilder<T> {
    /// Polls answered `pending`/`running` before the final state (default 0).
    pub fn pending_polls(mut self, n: u32) -> Self {
        self.pending_polls = n;
        self
    }

    /// Applies the rule only to runs whose typed inputs match.
    pub fn when(mut self, matches: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.matcher = Some(Box::new(move |inputs: &[RunInput]| {
            T::from_wire(&WireInputs::new(inputs)).is_ok_and(|t| matches(&t))
        }));
        self
    }

    /// Completed runs are charged `usd` rather than the technique's listed `run_cost`, as a
    /// technique priced by its inputs (a video's length) is: for testing cost limits. With
    /// [`fails`](Self::fails), failed runs are charged it too (failed runs are free
    /// otherwise), for testing that nothing forgets what was charged.
    pub fn charges(mut self, usd: f64) -> Self {
        self.charges = Some(usd);
        self
    }

    /// The create answer carries `estimated_seconds` (FLORA's guess of the run's length):
    /// clients wait that long before their first poll.
    pub fn estimated_seconds(mut self, secs: f64) -> Self {
        self.estimated_seconds = Some(secs);
        self
    }

    /// Runs end `completed` with these outputs.
    pub fn returns(self, outputs: T::Outputs) {
        let mut wire = WireOutputs::default();
        T::outputs_to_wire(&outputs, &mut wire);
        self.register(core::Ending::Outputs(wire.into_values()));
    }

    /// Runs end `failed` with this `error_code` and `error_message`.
    pub fn fails(self, error_code: impl Into<String>, message: impl Into<String>) {
        self.register(core::Ending::Fails {
            code: error_code.into(),
            message: message.into(),
        });
    }

    /// Runs end `completed` with deterministic placeholder outputs (media on `.invalid`
    /// hosts, downloadable from the fake; text outputs as short text).
    pub fn completes(self) {
        self.register(core::Ending::Placeholders);
    }

    fn register(self, ending: core::Ending) {
        self.core.add_rule(
            T::SLUG,
            core::Rule {
                matcher: self.matcher,
                pending_polls: self.pending_polls,
                ending,
                charges: self.charges,
                estimated_seconds: self.estimated_seconds,
                uses_left: None,
                unsettled_reads: 0,
                quote: None,
            },
        );
    }
}
