//! What a fetch and a regen are asked to do: plain settings (the binaries' clap flags make
//! them), below both.

/// What to fetch and how. `Debug` shows the key as `[redacted]`.
///
/// ```
/// let opts = flora_codegen::cli::FetchOptions {
///     api_key: "sk_live_secret".into(),
///     ..Default::default()
/// };
/// assert!(!format!("{opts:?}").contains("sk_live_secret"));
/// ```
#[derive(Clone, Default)]
pub struct FetchOptions {
    /// API key (for `regen`, empty means offline).
    pub api_key: String,
    /// Base URL override (else `FLORA_BASE_URL`, else production).
    pub base_url: Option<String>,
    /// Workspace whose techniques to list.
    pub workspace_id: Option<String>,
    /// Only these slugs (each must exist upstream).
    pub only: Vec<String>,
    /// Schemas retrieved at once (0 means the default, 8).
    pub concurrency: usize,
    /// Show progress (a terminal is attached).
    pub progress: bool,
}

/// What `regen` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Never fetch, even with a key.
    pub offline: bool,
    /// Write nothing; report whether anything would change.
    pub check: bool,
    /// What to fetch and how (an empty key means offline); `only` also limits what is
    /// updated.
    pub fetch: FetchOptions,
    /// Keep local schemas of techniques the server no longer lists.
    pub keep_local: bool,
    /// Allow a fetch to remove every technique, or more than half of them.
    pub allow_mass_removal: bool,
}

impl std::fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchOptions")
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    ""
                } else {
                    "[redacted]"
                },
            )
            .field("base_url", &self.base_url)
            .field("workspace_id", &self.workspace_id)
            .field("only", &self.only)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress)
            .finish()
    }
}
