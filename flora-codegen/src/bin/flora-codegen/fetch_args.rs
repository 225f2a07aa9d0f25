//! The fetch flags, defined once for the two commands that fetch: `flora-codegen fetch` and
//! this repository's `cargo xtask regen` (which compiles this file too). clap types stay in
//! binaries; the library takes the plain settings these produce.

use std::io::IsTerminal;

use flora_codegen::Config;
use flora_codegen::cli::{DEFAULT_CONCURRENCY, FetchOptions, Options};

/// The fetch flags.
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
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

impl FetchArgs {
    /// The regen options these flags ask for (key from `FLORA_API_KEY`).
    pub fn options(&self, offline: bool) -> Options {
        Options {
            offline,
            check: self.check,
            fetch: FetchOptions {
                api_key: std::env::var("FLORA_API_KEY").unwrap_or_default(),
                base_url: self.base_url.clone(),
                workspace_id: self.workspace_id.clone(),
                only: self.only.clone(),
                progress: std::io::stderr().is_terminal(),
                concurrency: self.concurrency,
            },
            keep_local: self.keep_local,
            allow_mass_removal: self.allow_mass_removal,
        }
    }

    /// `config` with these flags' generation settings.
    pub fn config(&self, config: Config) -> Config {
        config.deny_warnings(self.deny_warnings)
    }
}
