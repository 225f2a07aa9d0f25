//! Bench 9: the clean debug build a user pays for `flora-api` (default features) in a crate of
//! their own, this checkout against a baseline commit, in turns.
//!
//! Each build starts from an empty target directory, offline, with the workspace's
//! `Cargo.lock`, so both trees build the same crate versions they ship with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::scratch;

/// A user crate next to a copy of the workspace, depending on its `flora-api` by path.
struct UserCrate {
    label: String,
    dir: PathBuf,
    target: PathBuf,
}

impl UserCrate {
    fn new(label: String, ws: &Path, name: &str) -> Result<Self, String> {
        let dir = ws.with_file_name(format!("{name}-user"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
        let manifest = format!(
            "[package]\nname = \"user-build\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[workspace]\n\n[dependencies]\n\
             flora-api = {{ path = {:?} }}\n\
             tokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n",
            ws.join("flora-api").to_string_lossy()
        );
        let write = |p: PathBuf, text: &str| std::fs::write(&p, text).map_err(|e| e.to_string());
        write(dir.join("Cargo.toml"), &manifest)?;
        write(
            dir.join("src/main.rs"),
            "#[tokio::main]\nasync fn main() -> Result<(), flora_api::Error> {\n    \
             let client = flora_api::Client::from_env()?;\n    \
             let t = client.technique(\"cctv-cam\").await?;\n    \
             println!(\"{}\", t.name);\n    Ok(())\n}\n",
        )?;
        std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
        Ok(UserCrate {
            label,
            target: dir.join("target"),
            dir,
        })
    }

    /// One clean build: the target directory is emptied first.
    fn clean_build(&self) -> Result<Duration, String> {
        let _ = std::fs::remove_dir_all(&self.target);
        let t = Instant::now();
        scratch::cargo(
            &self.dir,
            &self.target,
            &["build", "--quiet", "--offline"],
            &[],
        )?;
        Ok(t.elapsed())
    }

    /// Crates compiled for it (its lock file after the build).
    fn crate_count(&self) -> usize {
        std::fs::read_to_string(self.dir.join("Cargo.lock"))
            .map(|l| l.matches("[[package]]").count())
            .unwrap_or(0)
    }
}

pub fn run(quick: bool, baseline: Option<&str>) -> Result<String, String> {
    let runs = if quick { 1 } else { 2 };
    let (ws, _) = scratch::workspace("userbuild")?;
    let mut crates = vec![UserCrate::new(
        "this checkout".to_owned(),
        &ws,
        "userbuild",
    )?];
    if let Some(rev) = baseline {
        let base = crate::workspace_root().join("target/scratch/userbuild-baseline");
        let (ws, commit) = scratch::with_worktree(rev, &base.join("src"), |src| {
            Ok(scratch::workspace_from(src, "userbuild-baseline")?.0)
        })?;
        let label = format!("baseline {}", &commit[..commit.len().min(10)]);
        crates.insert(0, UserCrate::new(label, &ws, "userbuild-baseline")?);
    }
    let mut times = vec![Vec::new(); crates.len()];
    for _ in 0..runs {
        for (c, t) in crates.iter().zip(&mut times) {
            eprintln!("userbuild: clean build of a crate on {}", c.label);
            t.push(c.clean_build()?);
        }
    }
    let mut out = format!(
        "## 9. Clean debug build of a user crate on flora-api (default features; median of \
         {runs}, trees in turns)\n\n| flora-api from | crates in the lock | clean build |\n\
         |---|---:|---:|\n"
    );
    let medians: Vec<Duration> = times.into_iter().map(super::median).collect();
    for (c, m) in crates.iter().zip(&medians) {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} s |",
            c.label,
            c.crate_count(),
            m.as_secs_f64()
        );
    }
    if let [before, after] = medians.as_slice() {
        let _ = writeln!(
            out,
            "\nThis checkout / baseline: {:.2}×.",
            after.as_secs_f64() / before.as_secs_f64()
        );
    }
    out.push('\n');
    Ok(out)
}
