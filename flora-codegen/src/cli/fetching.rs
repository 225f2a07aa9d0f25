//! The network half of regen (feature `cli`): technique schemas and the model catalog
//! fetched, or, without the feature, a fetch refused before anything is read.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::RegenError;
use super::options::Options;

#[cfg(feature = "cli")]
pub(super) async fn fetch_all(opts: &Options) -> Result<BTreeMap<String, Value>, RegenError> {
    super::fetch(&opts.fetch).await
}

/// Without the network half of the crate, a fetch is refused (before anything is read).
#[cfg(not(feature = "cli"))]
pub(super) async fn fetch_all(_: &Options) -> Result<BTreeMap<String, Value>, RegenError> {
    Err(RegenError::new(
        super::error::RegenErrorKind::Config,
        "this build of flora-codegen cannot fetch (built without its `cli` feature): run \
         offline (`--offline`), or build it with `--features cli`",
    ))
}

#[cfg(feature = "cli")]
pub(super) async fn fetch_models(
    opts: &Options,
) -> Result<Option<BTreeMap<String, Value>>, RegenError> {
    super::fetch_models(&opts.fetch).await
}

#[cfg(not(feature = "cli"))]
pub(super) async fn fetch_models(
    opts: &Options,
) -> Result<Option<BTreeMap<String, Value>>, RegenError> {
    fetch_all(opts).await.map(Some)
}
