//! Fetching the catalog: the list endpoint is only the index; every listed technique's full
//! schema is retrieved on its own (`GET /techniques/{id}`), as FLORA's docs ask, with bounded
//! concurrency and the client's retries and 429 handling.

use std::collections::BTreeMap;
use std::time::Duration;

use flora_api::{Client, ListTechniques, TechniqueSchema};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::DEFAULT_CONCURRENCY;
use super::error::{RegenError, RegenErrorKind};
use super::options::FetchOptions;

fn api_message(e: flora_api::Error) -> RegenError {
    api_message_of("techniques", e)
}

fn api_message_of(what: &str, e: flora_api::Error) -> RegenError {
    match e.status() {
        Some(401) => RegenError::new(
            RegenErrorKind::Auth,
            format!(
                "FLORA rejected the API key (HTTP 401): check FLORA_API_KEY, or work offline \
                 (`--offline`) from the committed schemas.\n  {e}"
            ),
        ),
        _ => RegenError::new(
            RegenErrorKind::Fetch,
            format!("fetching {what} failed: {e}"),
        ),
    }
}

fn client(opts: &FetchOptions) -> Result<Client, String> {
    let mut builder = Client::builder().api_key(&opts.api_key);
    let base = opts
        .base_url
        .clone()
        .or_else(|| std::env::var(flora_api::ENV_BASE_URL).ok())
        .filter(|b| !b.trim().is_empty());
    if let Some(b) = base {
        builder = builder.base_url(b);
    }
    builder.build().map_err(|e| e.to_string())
}

fn bar(progress: bool) -> indicatif::ProgressBar {
    if progress {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Checks that a retrieved schema is the technique the listing named: stored under the
/// listed slug, another technique's schema would run the wrong technique.
fn same_technique(listed: &TechniqueSchema, full: &TechniqueSchema) -> Result<(), String> {
    let (slug, got_slug) = (listed.slug_or_derived(), full.slug_or_derived());
    // A retrieved schema without a slug of its own is named by the listing's.
    let other_slug = full
        .slug
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != slug);
    if full.technique_id != listed.technique_id || other_slug {
        return Err(format!(
            "GET /techniques/{} answered with technique `{}` (slug `{got_slug}`), not the listed \
             `{}` (slug `{slug}`); refusing to store it as {slug}.json",
            listed.technique_id, full.technique_id, listed.technique_id
        ));
    }
    Ok(())
}

/// Fetches every technique visible to the key: slug → raw technique object as retrieved.
pub async fn fetch(opts: &FetchOptions) -> Result<BTreeMap<String, Value>, RegenError> {
    let client = client(opts).map_err(RegenError::of(RegenErrorKind::Config))?;
    let listing = bar(opts.progress);
    listing.enable_steady_tick(Duration::from_millis(120));
    listing.set_message("listing techniques");
    let index: Vec<TechniqueSchema> = client
        .techniques(ListTechniques {
            limit: Some(100),
            workspace_id: opts.workspace_id.clone(),
            ..Default::default()
        })
        .inspect_ok(|_| listing.inc(1))
        .try_collect()
        .await
        .map_err(api_message)?;
    listing.finish_and_clear();

    let wanted: Vec<&TechniqueSchema> = index
        .iter()
        .filter(|t| opts.only.is_empty() || opts.only.iter().any(|s| s == t.slug_or_derived()))
        .collect();
    let unmatched: Vec<&str> = opts
        .only
        .iter()
        .filter(|s| !index.iter().any(|t| t.slug_or_derived() == s.as_str()))
        .map(String::as_str)
        .collect();
    if !unmatched.is_empty() {
        let mut known: Vec<&str> = index.iter().map(TechniqueSchema::slug_or_derived).collect();
        known.sort_unstable();
        known.truncate(20);
        return Err(RegenError::new(
            RegenErrorKind::Config,
            format!(
                "--only: no technique upstream has the slug {}; the key sees: {}{}",
                unmatched
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if known.is_empty() {
                    "no techniques".to_owned()
                } else {
                    known.join(", ")
                },
                if index.len() > known.len() {
                    ", …"
                } else {
                    ""
                }
            ),
        ));
    }
    // Slugs are file names: refuse unsafe ones, and two that would share a file on a
    // case-insensitive filesystem, before any request for their schemas.
    let mut by_folded: BTreeMap<String, &str> = BTreeMap::new();
    for t in &wanted {
        let slug = t.slug_or_derived();
        crate::naming::check_slug(slug).map_err(|e| {
            RegenError::new(RegenErrorKind::Schema, format!("{e}; refusing to write it"))
        })?;
        if let Some(other) = by_folded.insert(slug.to_lowercase(), slug) {
            return Err(RegenError::new(
                RegenErrorKind::Schema,
                if other == slug {
                    format!(
                        "two techniques share the slug `{slug}`; cannot give both a schema file"
                    )
                } else {
                    format!(
                        "techniques `{other}` and `{slug}` differ only by case; their schema files \
                     would overwrite each other on macOS and Windows"
                    )
                },
            ));
        }
    }

    let retrieving = if opts.progress {
        indicatif::ProgressBar::new(wanted.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    retrieving.set_style(
        indicatif::ProgressStyle::with_template("fetched {pos}/{len} {bar:30} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let concurrency = if opts.concurrency == 0 {
        DEFAULT_CONCURRENCY
    } else {
        opts.concurrency
    };
    let retrieved: Vec<(String, Value)> = futures_util::stream::iter(wanted)
        .map(|t| {
            let client = &client;
            let retrieving = &retrieving;
            async move {
                let full = client
                    .technique(&t.technique_id)
                    .await
                    .map_err(api_message)?;
                same_technique(t, &full).map_err(RegenError::of(RegenErrorKind::Schema))?;
                retrieving.inc(1);
                Ok::<_, RegenError>((t.slug_or_derived().to_owned(), full.raw().clone()))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    retrieving.finish_and_clear();
    Ok(retrieved.into_iter().collect())
}

/// Fetches the whole model catalog (`GET /models`, every type, every page): model id → the
/// entry as this version reads it (unknown fields kept). Ids are file names, so an unsafe
/// one, or two that differ only by case, is refused before anything is written. `None` when
/// the server has no model catalog (`GET /models` answers 404): the local entries then stay.
pub async fn fetch_models(
    opts: &FetchOptions,
) -> Result<Option<BTreeMap<String, Value>>, RegenError> {
    let client = client(opts).map_err(RegenError::of(RegenErrorKind::Config))?;
    let listing = bar(opts.progress);
    listing.enable_steady_tick(Duration::from_millis(120));
    listing.set_message("listing models");
    let models = match client.models(None).await {
        Ok(models) => models,
        Err(e) if e.status() == Some(404) => {
            listing.finish_and_clear();
            return Ok(None);
        }
        Err(e) => return Err(api_message_of("the model catalog", e)),
    };
    listing.finish_and_clear();
    let mut out = BTreeMap::new();
    let mut by_folded: BTreeMap<String, String> = BTreeMap::new();
    for m in models {
        crate::naming::check_slug(&m.model_id).map_err(|e| {
            RegenError::new(
                RegenErrorKind::Schema,
                format!("model id {:?}: {e}; refusing to write it", m.model_id),
            )
        })?;
        if let Some(other) = by_folded.insert(m.model_id.to_lowercase(), m.model_id.clone()) {
            return Err(RegenError::new(
                RegenErrorKind::Schema,
                format!(
                    "the catalog lists models `{other}` and `{}`, whose files would be one on \
                     macOS and Windows",
                    m.model_id
                ),
            ));
        }
        let value = serde_json::to_value(&m).map_err(|e| {
            RegenError::new(
                RegenErrorKind::Schema,
                format!("cannot serialise model `{}`: {e}", m.model_id),
            )
        })?;
        out.insert(m.model_id, value);
    }
    Ok(Some(out))
}
