//! `cargo xtask regen`: the shared regen of `flora_codegen::cli` with this workspace's
//! paths (`schemas/`, `flora-api/src/techniques/`). No fetch or report logic lives here.

use std::path::Path;

pub use flora_codegen::cli::{Layout, Options, Outcome, read_schemas, schema_text};

/// Runs regen on the workspace at `root`.
pub async fn regen(root: &Path, opts: &Options) -> Result<Outcome, String> {
    flora_codegen::cli::regen(&Layout::workspace(root), opts)
        .await
        .map_err(|e| e.to_string())
}
