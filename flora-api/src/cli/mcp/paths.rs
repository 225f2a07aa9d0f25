//! Where an agent may make `floret mcp` read local files: inside the allowed directories,
//! judged after every symlink is resolved, before the file is opened.

use std::path::{Path, PathBuf};

/// The allowed directories, canonical.
#[derive(Debug, Clone)]
pub(crate) struct Allowed(Vec<PathBuf>);

impl Allowed {
    /// `dirs` made canonical (each must exist), or the current directory when none is given.
    pub(crate) fn new(dirs: &[PathBuf]) -> Result<Allowed, String> {
        let given: Vec<PathBuf> = if dirs.is_empty() {
            vec![std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?]
        } else {
            dirs.to_vec()
        };
        let mut out = Vec::with_capacity(given.len());
        for d in given {
            let c = std::fs::canonicalize(&d)
                .map_err(|e| format!("--allow-dir {}: {e}", d.display()))?;
            if !c.is_dir() {
                return Err(format!("--allow-dir {}: not a directory", d.display()));
            }
            out.push(c);
        }
        Ok(Allowed(out))
    }

    /// The canonical path of `value` (relative to the current directory), if it is a file
    /// inside an allowed directory; else why not, naming the directories.
    pub(crate) fn check(&self, value: &str) -> Result<PathBuf, String> {
        let path = Path::new(value);
        let real = std::fs::canonicalize(path)
            .map_err(|e| format!("`{}`: cannot read it ({e})", shown(value)))?;
        if !self.0.iter().any(|dir| real.starts_with(dir)) {
            return Err(format!(
                "`{}` is outside the directories floret may read ({}); nothing was sent. \
                 Start floret mcp with --allow-dir to allow another",
                shown(value),
                self.0
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !real.is_file() {
            return Err(format!("`{}` is not a file", shown(value)));
        }
        Ok(real)
    }

    /// No directory at all: every local path is refused.
    pub(crate) fn none() -> Allowed {
        Allowed(Vec::new())
    }

    /// The directories, for the server's instructions.
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.0
    }
}

fn shown(value: &str) -> String {
    crate::safe_text::plain_text(value, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_allowed_dirs_are_refused_even_through_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("inside");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(inside.join("a.png"), b"x").unwrap();
        std::fs::write(outside.join("secret.txt"), b"x").unwrap();
        let allowed = Allowed::new(std::slice::from_ref(&inside)).unwrap();
        assert!(
            allowed
                .check(inside.join("a.png").to_str().unwrap())
                .is_ok()
        );
        let e = allowed
            .check(outside.join("secret.txt").to_str().unwrap())
            .unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let dotdot = inside.join("..").join("outside").join("secret.txt");
        assert!(allowed.check(dotdot.to_str().unwrap()).is_err());
        #[cfg(unix)]
        {
            let link = inside.join("link.txt");
            std::os::unix::fs::symlink(outside.join("secret.txt"), &link).unwrap();
            assert!(
                allowed.check(link.to_str().unwrap()).is_err(),
                "a symlink inside pointing outside is refused"
            );
        }
        assert!(allowed.check(inside.to_str().unwrap()).is_err(), "a dir");
    }
}
