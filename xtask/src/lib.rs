//! The project's task runner: `cargo xtask regen` (and `cargo xtask bench`).
//!
//! The only crate that joins `flora-api` (to fetch schemas) and `flora-codegen` (to turn them
//! into Rust). It depends on `flora-api` without the generated `techniques` feature, so a
//! broken generated tree never stops you from regenerating it.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "extras")]
pub mod bench;
#[cfg(feature = "extras")]
pub mod bench_files;
pub mod doc_fixtures;
pub mod layers;
pub mod regen;
#[cfg(feature = "extras")]
pub mod sandbox;
pub mod scratch;
#[cfg(feature = "extras")]
pub mod synth;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
