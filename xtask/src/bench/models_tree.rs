//! Bench 2's models tree: `n` synthetic generated models (`flora_codegen::generate_models`
//! on [`synth::model_catalog`]) in a crate of their own, `bench-models`, a member of the
//! scratch workspace the techniques tree is built in, on `flora-api` with its `models`
//! feature. Built with the same target directory as the techniques tree, so dependencies are
//! shared.
//!
//! Measured like the techniques tree: touch `lib.rs`, rebuild (incremental), and the same
//! with `CARGO_INCREMENTAL=0`. Never in turns with the techniques tree: each touch of
//! `flora-api/src/lib.rs` there makes this crate's `flora-api` stale, and its rebuild would be
//! measured here. Each mode's first build (not measured) absorbs it instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{scratch, synth};

/// The crate's directory in the scratch workspace, and its package name.
const CRATE: &str = "bench-models";

pub(super) struct ModelsTree {
    ws: PathBuf,
    target: PathBuf,
}

impl ModelsTree {
    /// Adds the `bench-models` crate (no models yet) to the scratch workspace `ws`.
    pub(super) fn new(ws: &Path, target: &Path) -> Result<Self, String> {
        let krate = ws.join(CRATE);
        std::fs::create_dir_all(krate.join("src")).map_err(|e| e.to_string())?;
        let write = |path: PathBuf, text: &str| {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(
            krate.join("Cargo.toml"),
            &format!(
                "[package]\nname = \"{CRATE}\"\nversion = \"0.0.0\"\nedition.workspace = true\n\
                 publish = false\n\n[dependencies]\n\
                 flora-api = {{ workspace = true, features = [\"models\"] }}\n"
            ),
        )?;
        write(
            krate.join("src/lib.rs"),
            "//! Synthetic generated models (xtask's compile bench).\n\
             #[rustfmt::skip]\npub mod models;\n",
        )?;
        let manifest = ws.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
        let member = format!("\"{CRATE}\"");
        if !text.contains(&member) {
            let Some(at) = text.find("members = [") else {
                return Err(format!("no `members = [` in {}", manifest.display()));
            };
            let at = at + "members = [".len();
            let text = format!("{}{member}, {}", &text[..at], &text[at..]);
            write(manifest, &text)?;
        }
        Ok(ModelsTree {
            ws: ws.to_owned(),
            target: target.to_owned(),
        })
    }

    /// Writes `n` synthetic models; returns their generated lines (`mod.rs` left out). The
    /// synthetic catalog is all the generator knows: a warning fails the bench.
    pub(super) fn write(&self, n: usize) -> Result<usize, String> {
        let (files, warnings) = flora_codegen::generate_models(
            &synth::model_schema_files(n, 42),
            &flora_codegen::Config::new(),
        )
        .map_err(|d| d.to_string())?;
        if !warnings.is_empty() {
            return Err(format!("the synthetic models gave warnings:\n{warnings}"));
        }
        let dir = self.ws.join(CRATE).join("src/models");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        }
        Ok(super::generated_lines(&files))
    }

    /// One build of the crate (dependencies as they are).
    pub(super) fn build(&self, env: &[(&str, &str)]) -> Result<Duration, String> {
        let t = Instant::now();
        scratch::cargo(
            &self.ws,
            &self.target,
            &["build", "--quiet", "-p", CRATE, "--lib"],
            env,
        )?;
        Ok(t.elapsed())
    }

    /// The median of `runs` rebuilds after touching `lib.rs`, after one build not measured.
    pub(super) fn measure(&self, runs: usize, env: &[(&str, &str)]) -> Result<Duration, String> {
        self.build(env)?;
        let lib = self.ws.join(CRATE).join("src/lib.rs");
        let mut times = Vec::new();
        for _ in 0..runs {
            super::touch(&lib)?;
            times.push(self.build(env)?);
        }
        Ok(super::median(times))
    }
}
