//! Scratch copies of the workspace under `target/scratch/`, for work that must not touch the
//! real tree: building `flora-api` with synthetic or fixture techniques.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// A fresh copy of the workspace sources at `target/scratch/<name>/ws`, and the target dir
/// to build it in (`target/scratch/target`, shared by all scratch copies so dependencies
/// build once).
pub fn workspace(name: &str) -> Result<(PathBuf, PathBuf), String> {
    workspace_from(&crate::workspace_root(), name)
}

/// [`workspace`] copied from another checkout of the project (`root`), e.g. a git worktree
/// of an older commit; still placed under this workspace's `target/scratch/`.
pub fn workspace_from(root: &Path, name: &str) -> Result<(PathBuf, PathBuf), String> {
    let base = crate::workspace_root().join("target").join("scratch");
    let ws = base.join(name).join("ws");
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&ws).map_err(|e| e.to_string())?;
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root.join(f), ws.join(f)).map_err(|e| format!("{f}: {e}"))?;
    }
    for d in ["flora-api", "flora-codegen", "xtask"] {
        copy_dir(&root.join(d), &ws.join(d))?;
    }
    Ok((ws, base.join("target")))
}

/// Checks out `rev` as a detached git worktree at `dir`, runs `f` on it, and removes the
/// worktree again (whatever `f` returns): no worktree stays registered in the repository.
/// Returns `f`'s value and the full commit id.
pub fn with_worktree<T>(
    rev: &str,
    dir: &Path,
    f: impl FnOnce(&Path) -> Result<T, String>,
) -> Result<(T, String), String> {
    let root = crate::workspace_root();
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let commit = git(&["rev-parse", "--verify", &format!("{rev}^{{commit}}")])?;
    let dir_s = dir.to_string_lossy();
    let _ = git(&["worktree", "remove", "--force", &dir_s]);
    let _ = std::fs::remove_dir_all(dir);
    let _ = git(&["worktree", "prune"]);
    git(&["worktree", "add", "--detach", &dir_s, &commit])?;
    let out = f(dir);
    git(&["worktree", "remove", "--force", &dir_s])?;
    Ok((out?, commit))
}

/// Replaces the scratch copy's generated techniques with `files`.
pub fn write_techniques(
    ws: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    let dir = ws.join("flora-api/src/techniques");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (name, text) in files {
        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs cargo in the scratch copy; fails with cargo's output on error.
pub fn cargo(ws: &Path, target: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args)
        .current_dir(ws)
        .env("CARGO_TARGET_DIR", target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` failed in {}:\n{}{}",
            args.join(" "),
            ws.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
