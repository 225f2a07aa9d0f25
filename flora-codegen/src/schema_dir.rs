//! Reading a directory of generator inputs or outputs, the same way for `Build`, `generate`,
//! `fetch` and `cargo xtask regen`: every `*.<ext>` regular file, sorted by name; a file
//! name that is not UTF-8 is refused by name (never skipped, never read under a lossy name).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};

/// Why a directory could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The directory or a file in it could not be read (a missing directory is `NotFound`).
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Files whose names are not UTF-8, one diagnostic each.
    Names(Diagnostics),
}

impl ReadError {
    #[cfg(any(feature = "regen", test))]
    pub(crate) fn is_missing_dir(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                write!(f, "{} does not exist ({source})", path.display())
            }
            ReadError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            ReadError::Names(d) => write!(f, "{d}"),
        }
    }
}

/// Name → contents of every `*.<ext>` regular file in `dir` (symlinks to files included).
pub(crate) fn read(dir: &Path, ext: &str) -> Result<BTreeMap<String, String>, ReadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReadError::Io { path, source }
    };
    let mut out = BTreeMap::new();
    let mut bad = Diagnostics::default();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_none_or(|e| e != ext) || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            bad.push(Diagnostic::new(
                &path.display().to_string(),
                "",
                "the file name is not valid UTF-8, so it cannot name a technique or a module",
                "rename the file (its name is the technique's slug: ASCII letters, digits, `-`, `_`)",
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        out.insert(name.to_owned(), text);
    }
    if !bad.is_empty() {
        bad.0.sort();
        return Err(ReadError::Names(bad));
    }
    Ok(out)
}

/// How a schema directory is named in generated headers: its own name (the last component
/// of its canonical path), so the bytes do not depend on how the path was typed (`s`, `./s`,
/// `/home/me/app/s`) or where the command ran.
pub(crate) fn shown_name(dir: &Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "schemas".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sorted_regular_files_and_names_the_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), "b").unwrap();
        std::fs::write(dir.path().join("a.json"), "a").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("d.json")).unwrap();
        let files = read(dir.path(), "json").unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["a.json", "b.json"]);
        let err = read(&dir.path().join("nope"), "json").unwrap_err();
        assert!(err.is_missing_dir());
        assert!(err.to_string().contains("nope does not exist"), "{err}");
    }

    #[test]
    fn the_shown_name_does_not_depend_on_how_the_path_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("flora-schemas");
        std::fs::create_dir(&s).unwrap();
        assert_eq!(shown_name(&s), "flora-schemas");
        assert_eq!(shown_name(&s.join(".")), "flora-schemas");
        assert_eq!(
            shown_name(&s.join("..").join("flora-schemas/")),
            "flora-schemas"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_utf8_is_refused_by_name() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.json");
        std::fs::write(dir.path().join(name), "{}").unwrap();
        let err = read(dir.path(), "json").unwrap_err();
        assert!(err.to_string().contains("caf\u{FFFD}.json"), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }
}
