//! A typed, retry-safe client for [FLORA](https://app.flora.ai) techniques.
//!
//! ```no_run
//! # #[cfg(feature = "techniques")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use flora_api::{Client, ImageUrl, techniques::CctvCam};
//!
//! let client = Client::from_env()?; // FLORA_API_KEY, optional FLORA_BASE_URL
//! let done = CctvCam { input_image: ImageUrl::parse("https://example.com/face.png")? }
//!     .run(&client)
//!     .await?;
//! println!("output: {}", done.outputs.output_image);
//! # Ok(()) }
//! ```
//!
//! # Where things are
//!
//! - **Typed techniques**: [`techniques`] (feature `techniques`, on by default) holds one
//!   struct per technique; a wrong input id, a wrong media type or a missing input is a
//!   compile error. [`Client::run`] starts a run and waits for its typed outputs,
//!   [`Client::start`] returns a [`RunHandle`] to wait on later. Your own techniques get the
//!   same structs through `flora-codegen` (`Build` in build.rs, or committed code).
//! - **The dynamic API**, without generated code: [`Client::start_run`] with [`RunInput`]s,
//!   [`Client::techniques`] / [`Client::technique`] for schemas, [`Client::get_run`],
//!   [`Client::runs`].
//! - **Uploads**: a local file to a FLORA asset URL of the right type,
//!   [`Client::upload_image`] (and `_video`, `_audio`, `_document`; `_with` for
//!   [`UploadOptions`]): streamed, sniffed, checked against what FLORA accepts.
//! - **Downloads**: [`Client::download`] (atomic: a temporary file renamed into place, resumed
//!   with `Range` where it can) and [`TechniqueRun::save_outputs`] for every output of a run.
//! - **Drift checks**: [`Client::verify`] compares a generated technique with the live schema
//!   before you spend money on a run.
//! - **Webhooks**: [`webhooks::verify`] checks a delivery's signature.
//! - **Testing**: [`testing::FakeFlora`](testing/struct.FakeFlora.html) (feature
//!   `test-util`), an in-process fake FLORA with typed rules, injected faults and paused-time
//!   polling, for your own tests.
//! - **Batches**: [`batch`](batch/index.html) (feature `batch`) runs thousands of inputs
//!   through one technique from a journal that survives a crash without paying twice.
//! - **The command line**: `floret` (feature `cli`; [`cli`](cli/index.html)), each technique's
//!   inputs as checked flags.
//! - **Retries that never double-bill**: every run creation carries an idempotency key that is
//!   reused on its retries, so a lost answer never starts (and bills) a second run.
//! - **Errors**: one [`Error`]; its `Display` says what failed, where, the root cause and the
//!   fix, and [`Error::is_retryable`] says whether trying again can help.
//!
//! # How requests are made
//!
//! Every request (API calls, the bytes of signed uploads, downloads) goes through one `send`
//! in [`Client`]: it takes an in-flight permit ([`ClientBuilder::max_in_flight`]) held until
//! the answer is read, bounds each attempt ([`ClientBuilder::timeout`]: in total, or on no
//! progress for a streamed file, [`Error::Stalled`]), retries with backoff and `Retry-After`,
//! and hands the request to one connector (reqwest over rustls with ring in production; the
//! in-process fake in `testing`). Each kind of request only says how to build an attempt and
//! how to judge its answer, so a new retry rule is written once, in that `send`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

// Generated code names this crate as `::flora_api`, so the same bytes compile inside this
// crate and in codegen's fixture tests.
extern crate self as flora_api;

// The modules, floor by floor: each imports only from floors below it (`cargo xtask
// layers` checks it in CI, at every depth).
// floor 0, data:
mod drift;
mod durations;
mod kinds;
mod redact;
#[cfg(any(feature = "cli", feature = "batch"))]
mod safe_text;
mod urls;
mod wire;
// floor 1, values:
mod codegen_contract;
mod error;
mod media;
mod policy;
// floor 2, contracts and the seam:
mod connector;
mod content;
#[cfg(feature = "test-util")]
mod fake_contract;
mod technique;
// floor 3, the client and its one `send`:
mod client;
// floor 4, the API:
mod endpoints;
mod futures;
mod pages;
mod poll;
mod reconcile;
mod waiter;
// floor 5, files and checks:
#[cfg(feature = "batch")]
#[cfg_attr(docsrs, doc(cfg(feature = "batch")))]
pub mod batch;
#[cfg(feature = "models")]
mod catalog;
mod download;
#[cfg(feature = "models")]
mod generation;
#[cfg(feature = "models")]
mod model;
mod saving;
mod upload;
#[cfg(any(feature = "cli", feature = "batch"))]
mod values;
mod verify;
pub mod webhooks;
// top: the fake, which implements the connector; nothing imports it.
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
// above the fake: `floret`, the command line (its `sandbox` serves the fake).
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;

/// Generated model structs, one module per model of `schemas/models/` (`cargo xtask
/// regen`): every param checked against the catalog before a generation is sent.
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
#[rustfmt::skip]
pub mod models;

/// Generated technique structs, one module per technique (`cargo xtask regen`).
#[cfg(feature = "techniques")]
#[cfg_attr(docsrs, doc(cfg(feature = "techniques")))]
#[rustfmt::skip]
pub mod techniques;

/// Includes the techniques a build script generated with `flora_codegen::Build` (the file
/// `flora_techniques.rs` in `OUT_DIR`, or the name given).
///
/// ```ignore
/// mod techniques {
///     flora_api::include_techniques!();
/// }
/// use techniques::StickerMaker;
/// ```
#[macro_export]
macro_rules! include_techniques {
    () => {
        include!(concat!(env!("OUT_DIR"), "/flora_techniques.rs"));
    };
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file));
    };
}

/// Includes the models a build script generated with `flora_codegen::Build::models_dir`
/// (the file `flora_models.rs` in `OUT_DIR`); they need this crate's feature `models`.
///
/// ```ignore
/// mod models {
///     flora_api::include_models!();
/// }
/// use flora_api::Model; // `generate` and `start`
/// use models::T2iFlux2Pro;
/// ```
#[macro_export]
macro_rules! include_models {
    () => {
        include!(concat!(env!("OUT_DIR"), "/flora_models.rs"));
    };
}

/// README's Rust examples, compiled as doctests (those that are programs are `no_run`): a
/// snippet a user pastes must compile.
#[cfg(all(
    doctest,
    feature = "techniques",
    feature = "test-util",
    feature = "batch",
    feature = "models"
))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// The `reqwest` this crate is built on, for [`ClientBuilder::http_client`].
pub use reqwest;

pub use client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_IN_FLIGHT, ENV_API_KEY, ENV_BASE_URL,
    ENV_CUSTOM_HEADERS, ENV_PROJECT_ID, ENV_WORKSPACE_ID, IDEMPOTENCY_HEADER,
};
pub use connector::install_crypto_provider;
pub use download::{DEFAULT_MAX_DOWNLOAD, DownloadOptions};
pub use drift::Drift;
pub use endpoints::{ListRuns, ListTechniques, StartOptions};
pub use error::{ApiError, ApiErrorCode, Error, ErrorClass, FieldError, RetryClass};
/// The contract version generated code checks at compile time, and the slot-type table
/// flora-codegen's tests check against its own.
#[doc(hidden)]
pub mod __codegen {
    pub use crate::codegen_contract::{CONTRACT, expect_contract, rust_type, slot_types};
}
/// The fake's contract, named by generated code (`flora_api::testing` is where users find it).
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub use fake_contract::{FakeTechnique, WireInputs, WireOutputs};
pub use futures::{RunFuture, StartFuture};
pub use kinds::MediaKind;
pub use media::{MAX_URL_LEN, MediaUrlError};
// `ImageUrl`, `VideoUrl`, … : one per row of the table of kinds.
macro_rules! reexport_media_urls {
    ($(($kind:ident, $url:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {
        pub use media::{$($url),*};
    };
}
kinds::for_each_media_kind!(reexport_media_urls);
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub use catalog::{ModelParam, ModelSchema, ParamOption, ParamRange, Project};
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub use endpoints::models::ListGenerations;
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub use generation::{
    Charge, DEFAULT_SETTLE_FOR, GenerateFuture, GenerateOptions, Generation, GenerationHandle,
    GenerationStartFuture, Model, checked_params, debug_model,
};
#[cfg(feature = "models")]
#[cfg_attr(docsrs, doc(cfg(feature = "models")))]
pub use model::{
    Choice, Fields, ModelInfo, ParamField, ParamKind, ParamRule, ParamValue, ToParam, check_params,
};
pub use pages::Page;
pub use policy::{PollPolicy, RetryPolicy};
pub use poll::RunHandle;
pub use redact::{REDACTED, redact};
pub use saving::SaveOptions;
pub use technique::{
    InputValue, OutputSet, OutputValue, RawOutput, RunInput, SlotInfo, Technique, TechniqueInfo,
    TechniqueRun, Untyped,
};
pub use upload::{DEFAULT_ASSET_DEADLINE, DIRECT_UPLOAD_MAX, Progress, Upload, UploadOptions};
pub use wire::{
    Asset, AssetStatus, CreatedRun, Extra, MediaType, Run, RunErrorCode, RunOutput, RunStatus,
    Slot, TechniqueSchema, UploadTarget, UploadedVia, Workspace,
};
