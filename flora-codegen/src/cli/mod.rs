//! Fetching, reporting and writing: the one implementation behind `cargo xtask regen` in
//! this repository and the `flora-codegen` binary in users' crates.
//!
//! Feature `regen` gives the offline part (change reports, all-or-nothing writes, `--check`
//! diffs); feature `cli` adds fetching from the API and the binary. The generator core
//! (`generate`, [`Build`](crate::Build)) stays free of network and CLI dependencies.

mod error;
#[cfg(feature = "cli")]
mod fetch;
mod fetching;
mod model_changes;
mod options;
mod plans;
mod regen;
mod regen_models;
mod report;
mod surface;
mod write;

use std::process::ExitCode;

pub use error::{RegenError, RegenErrorKind};
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub use fetch::{fetch, fetch_models};

/// Default number of schemas retrieved at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
pub use options::{FetchOptions, Options};
pub use plans::schema_text;
pub use regen::{Layout, Outcome, read_schemas, regen};
pub use regen_models::ModelLayout;

/// `text` without the API key, any bearer token or Authorization value (flora-api's one
/// redactor, `flora_api::redact`): nothing the commands print may carry the key, even when a
/// server or proxy echoes the `Authorization` header back in an error body.
#[cfg(feature = "cli")]
pub fn redact(text: &str, api_key: Option<&str>) -> String {
    flora_api::redact(text, api_key, &[]).into_owned()
}

/// `text` as it is: without the `cli` feature nothing is fetched, so no server text can echo
/// a key (with it, flora-api's one redactor).
#[cfg(not(feature = "cli"))]
pub fn redact(text: &str, _api_key: Option<&str>) -> String {
    text.to_owned()
}

/// Runs regen and prints its outcome; `rerun` is the command that updates stale files.
/// Messages name [`Layout::command`]; the API key is redacted from everything printed.
pub async fn run_and_print(layout: &Layout, opts: &Options, rerun: &str) -> ExitCode {
    let key = Some(opts.fetch.api_key.as_str()).filter(|k| !k.is_empty());
    let outcome = match regen(layout, opts).await {
        Ok(o) => o,
        Err(e) => {
            // The message ends with what happened to the tree (nothing, or which files changed).
            eprintln!("{}", redact(&e.to_string(), key));
            eprintln!("{} failed", layout.command);
            return ExitCode::FAILURE;
        }
    };
    let outcome = Outcome {
        source: redact(&outcome.source, key),
        report: redact(&outcome.report, key),
        diff: redact(&outcome.diff, key),
        ..outcome
    };
    println!("{}", outcome.source);
    print!("{}", outcome.report);
    if !outcome.absent_upstream.is_empty() && (opts.check || opts.keep_local) {
        let verb = if opts.keep_local {
            "kept (--keep-local)"
        } else {
            "would be deleted (--keep-local keeps them)"
        };
        println!(
            "Not listed upstream, {verb}: {}",
            outcome.absent_upstream.join(", ")
        );
    }
    if opts.check {
        if outcome.up_to_date() {
            println!("Up to date.");
            return ExitCode::SUCCESS;
        }
        print!("{}", outcome.diff);
        eprintln!(
            "{} file(s) are stale; run `{rerun}` to update them",
            outcome.changed_files.len()
        );
        return ExitCode::FAILURE;
    }
    if outcome.up_to_date() {
        println!("Nothing changed.");
    } else {
        for f in &outcome.changed_files {
            let verb = if outcome.removed_files.contains(f) {
                "removed"
            } else {
                "wrote"
            };
            println!("  {verb} {f}");
        }
    }
    ExitCode::SUCCESS
}
