//! Fetching, reporting and writing (cargo feature `cli`): the one implementation behind
//! `cargo xtask regen` in this repository and the `flora-codegen` binary in users' crates.
//!
//! The generator core (`generate`, [`Build`](crate::Build)) stays free of network and CLI
//! dependencies; everything here is behind the feature.

pub mod fetch;
pub mod regen;
pub mod report;
pub mod surface;
pub mod write;

use std::io::IsTerminal;
use std::process::ExitCode;

pub use regen::{Layout, Options, Outcome, read_dir, regen, schema_text};

/// The fetch flags shared by `cargo xtask regen` and `flora-codegen fetch`.
#[derive(Debug, Clone, clap::Args)]
pub struct FetchArgs {
    /// Write nothing; fail with a diff if anything would change.
    #[arg(long)]
    pub check: bool,
    /// API base URL (default: FLORA_BASE_URL, else the production API).
    #[arg(long)]
    pub base_url: Option<String>,
    /// List the techniques of this workspace (ws_…); private techniques need it.
    #[arg(long)]
    pub workspace_id: Option<String>,
    /// Only fetch and update these slugs (others stay as they are). A slug the server does
    /// not list is an error.
    #[arg(long, num_args = 1..)]
    pub only: Vec<String>,
    /// Fail on warnings (e.g. a slot type this flora-codegen does not know), for CI.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Keep local schemas of techniques the server no longer lists.
    #[arg(long)]
    pub keep_local: bool,
    /// Allow a fetch to delete every local technique, or more than half of them.
    #[arg(long)]
    pub allow_mass_removal: bool,
    /// Schemas retrieved at once.
    #[arg(long, default_value_t = fetch::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

impl FetchArgs {
    /// The regen options these flags ask for (key from `FLORA_API_KEY`).
    pub fn options(&self, offline: bool) -> Options {
        Options {
            offline,
            check: self.check,
            api_key: std::env::var("FLORA_API_KEY").ok(),
            base_url: self.base_url.clone(),
            workspace_id: self.workspace_id.clone(),
            only: self.only.clone(),
            progress: std::io::stderr().is_terminal(),
            deny_warnings: self.deny_warnings,
            keep_local: self.keep_local,
            allow_mass_removal: self.allow_mass_removal,
            concurrency: self.concurrency,
        }
    }
}

/// Runs regen and prints its outcome; `rerun` is the command that updates stale files.
pub async fn run_and_print(layout: &Layout, opts: &Options, rerun: &str) -> ExitCode {
    let outcome = match regen(layout, opts).await {
        Ok(o) => o,
        Err(e) => {
            // The message ends with what happened to the tree (nothing, or which files changed).
            eprintln!("{e}");
            eprintln!("regen failed");
            return ExitCode::FAILURE;
        }
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
