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

    /// The canonical path of `value`, if it is a file inside an allowed directory; else why
    /// not, naming the directories. `~/…` is under the home directory; a relative path is
    /// relative to the current directory or to an allowed directory (an MCP client starts its
    /// servers anywhere, often in `/`), and must name exactly one file.
    pub(crate) fn check(&self, value: &str) -> Result<PathBuf, String> {
        let path = expand_home(value)?;
        if path.is_relative() {
            return self.relative(value, &path);
        }
        let real = std::fs::canonicalize(&path)
            .map_err(|e| format!("`{}`: cannot read it ({e})", shown(value)))?;
        self.inside(value, real)
    }

    /// `real` (canonical) if it is a file inside an allowed directory.
    fn inside(&self, value: &str, real: PathBuf) -> Result<PathBuf, String> {
        if !self.0.iter().any(|dir| real.starts_with(dir)) {
            return Err(format!(
                "`{}` is outside the directories floret may read ({}); nothing was sent. \
                 Start floret mcp with --allow-dir to allow another",
                shown(value),
                self.listed()
            ));
        }
        if !real.is_file() {
            return Err(format!("`{}` is not a file", shown(value)));
        }
        Ok(real)
    }

    /// A relative path looked up from the current directory (a client that starts floret
    /// in the project, as Claude Code does) and from each allowed directory (one that starts
    /// it in `/`): the one file inside the allowed directories it names.
    fn relative(&self, value: &str, path: &Path) -> Result<PathBuf, String> {
        let bases = std::env::current_dir()
            .into_iter()
            .chain(self.0.iter().cloned());
        let mut found: Vec<PathBuf> = Vec::new();
        // Why a path that exists was refused (outside, not a file): said over "no such file".
        let mut refused = None;
        for base in bases {
            let Ok(real) = std::fs::canonicalize(base.join(path)) else {
                continue;
            };
            match self.inside(value, real) {
                Ok(real) if !found.contains(&real) => found.push(real),
                Ok(_) => {}
                Err(why) => {
                    refused.get_or_insert(why);
                }
            }
        }
        if found.is_empty()
            && let Some(why) = refused
        {
            return Err(why);
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(format!(
                "`{}`: no such file in the directories floret may read ({}); give its full path",
                shown(value),
                self.listed()
            )),
            _ => Err(format!(
                "`{}` names a file in more than one allowed directory ({}); give its full path",
                shown(value),
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn listed(&self) -> String {
        if self.0.is_empty() {
            return "none: start floret mcp with --allow-dir DIR".to_owned();
        }
        self.0
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
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

/// `~` and `~/…` under the home directory (`HOME`, else `USERPROFILE`); any other path as
/// it is (`~user/…` is not expanded).
fn expand_home(value: &str) -> Result<PathBuf, String> {
    let rest = match value.strip_prefix('~') {
        Some("") => "",
        Some(rest) if rest.starts_with('/') || rest.starts_with(std::path::MAIN_SEPARATOR) => {
            &rest[1..]
        }
        _ => return Ok(PathBuf::from(value)),
    };
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            format!(
                "`{}`: no home directory is known (HOME is not set); give the full path",
                shown(value)
            )
        })?;
    Ok(PathBuf::from(home).join(rest))
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

    #[test]
    fn a_relative_path_is_looked_up_in_the_allowed_dirs_too() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("sub/only-a.png"), b"x").unwrap();
        std::fs::write(a.join("both.png"), b"x").unwrap();
        std::fs::write(b.join("both.png"), b"x").unwrap();
        let allowed = Allowed::new(&[a.clone(), b.clone()]).unwrap();
        let real = allowed.check("sub/only-a.png").unwrap();
        assert_eq!(
            real,
            std::fs::canonicalize(a.join("sub/only-a.png")).unwrap()
        );
        let e = allowed.check("both.png").unwrap_err();
        assert!(e.contains("more than one"), "{e}");
        let e = allowed.check("missing.png").unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        // `..` out of every allowed dir is still outside.
        std::fs::write(root.path().join("secret.txt"), b"x").unwrap();
        let e = allowed.check("../secret.txt").unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert!(Allowed::none().check("both.png").is_err());
    }

    #[test]
    fn a_tilde_path_is_under_the_home_directory() {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if let Some(home) = home {
            assert_eq!(expand_home("~/a.png").unwrap(), home.join("a.png"));
            assert_eq!(expand_home("~").unwrap(), home);
        }
        assert_eq!(
            expand_home("~user/a.png").unwrap(),
            PathBuf::from("~user/a.png")
        );
        assert_eq!(expand_home("/x/~/a").unwrap(), PathBuf::from("/x/~/a"));
    }
}
