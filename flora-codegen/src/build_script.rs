//! `Build`: typed techniques from a build script, like `prost-build`/`tonic-build`.
//!
//! Reads a directory of schema files, writes one file into `OUT_DIR` that
//! `flora_api::include_techniques!()` includes, and tells cargo when to run again. No
//! network access: fetch schemas with `flora-codegen fetch` (or by hand) and commit them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Diagnostics, Options, SchemaFile};

/// The default file written into `OUT_DIR` (what `include_techniques!()` includes).
pub const DEFAULT_OUT_FILE: &str = "flora_techniques.rs";

/// Generates typed techniques from a build script.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     flora_codegen::Build::new().schemas_dir("flora-schemas").generate()?;
///     Ok(())
/// }
/// ```
///
/// and in the crate: `mod techniques { flora_api::include_techniques!(); }`.
#[derive(Debug, Clone, Default)]
pub struct Build {
    schemas_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    out_file: Option<String>,
    deny_warnings: bool,
    module_path: Option<String>,
    test_util_feature: Option<String>,
}

/// Why a build-script generation failed. `Display` lists every problem with its file, JSON
/// pointer and fix; `Debug` shows the same text, so `fn main() -> Result<(), Box<dyn Error>>`
/// in a build script prints it readably.
#[non_exhaustive]
pub enum BuildError {
    /// `schemas_dir` was not called.
    NoSchemasDir,
    /// Neither `out_dir` nor the `OUT_DIR` variable (set by cargo for build scripts).
    NoOutDir,
    /// A file or directory could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Invalid schemas (with any warnings).
    Schemas(Diagnostics),
    /// Warnings, denied by [`Build::deny_warnings`].
    DeniedWarnings(Diagnostics),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoSchemasDir => f.write_str(
                "flora_codegen::Build: call `.schemas_dir(\"…\")` with the directory of \
                 technique schema files",
            ),
            BuildError::NoOutDir => f.write_str(
                "flora_codegen::Build: OUT_DIR is not set (run it from a build script, or call \
                 `.out_dir(..)`)",
            ),
            BuildError::Io { path, source } => {
                write!(f, "flora_codegen::Build: {}: {source}", path.display())
            }
            BuildError::Schemas(d) => write!(f, "invalid FLORA technique schemas:\n{d}"),
            BuildError::DeniedWarnings(d) => {
                write!(f, "{d} (denied by `Build::deny_warnings`)")
            }
        }
    }
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Io { source, .. } => Some(source),
            BuildError::Schemas(d) | BuildError::DeniedWarnings(d) => Some(d),
            _ => None,
        }
    }
}

impl Build {
    /// A builder with the defaults: no warnings denied, `flora_techniques.rs` in `OUT_DIR`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The directory of `<slug>.json` schema files, relative to the crate's manifest.
    pub fn schemas_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.schemas_dir = Some(dir.into());
        self
    }

    /// Where to write (default: the `OUT_DIR` cargo gives build scripts).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The file name in the output directory (default [`DEFAULT_OUT_FILE`]); include a
    /// custom one with `flora_api::include_techniques!("name.rs")`.
    pub fn out_file(mut self, name: impl Into<String>) -> Self {
        self.out_file = Some(name.into());
        self
    }

    /// Fail the build on warnings (a slot type this flora-codegen does not know, ...).
    pub fn deny_warnings(mut self, deny: bool) -> Self {
        self.deny_warnings = deny;
        self
    }

    /// The path users name the module by (`my_crate::techniques`): the struct docs'
    /// examples then become compiled doctests. Without it they are shown, not compiled.
    pub fn module_path(mut self, path: impl Into<String>) -> Self {
        self.module_path = Some(path.into());
        self
    }

    /// Also emits the `flora_api::testing` impls (so `FakeFlora` rules and `runs::<T>()` work
    /// with these techniques), under `#[cfg(feature = "<feature>")]`. Declare that feature
    /// in your crate as `<feature> = ["flora-api/test-util"]` and enable it for tests.
    pub fn test_util_feature(mut self, feature: impl Into<String>) -> Self {
        self.test_util_feature = Some(feature.into());
        self
    }

    /// Generates, writes the file and prints `cargo:` instructions. Returns the file's path.
    pub fn generate(&self) -> Result<PathBuf, BuildError> {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        self.generate_to(&mut lock)
    }

    /// [`generate`](Self::generate), with the `cargo:` lines written to `cargo` (for tests).
    pub fn generate_to(&self, cargo: &mut dyn Write) -> Result<PathBuf, BuildError> {
        let dir = self.schemas_dir.as_ref().ok_or(BuildError::NoSchemasDir)?;
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Io { path, source }
        };
        let line = |cargo: &mut dyn Write, text: String| {
            writeln!(cargo, "{text}").map_err(io(Path::new("<stdout>")))
        };
        line(cargo, format!("cargo:rerun-if-changed={}", dir.display()))?;
        let shown = dir
            .display()
            .to_string()
            .trim_end_matches(['/', '\\'])
            .to_owned();
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(io(dir))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            line(cargo, format!("cargo:rerun-if-changed={}", path.display()))?;
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(SchemaFile::new(format!("{shown}/{name}"), text));
        }
        let options = Options {
            module_path: self.module_path.clone(),
            test_util_feature: self.test_util_feature.clone(),
        };
        let generated = crate::generate_with(&files, &options).map_err(BuildError::Schemas)?;
        for w in &generated.warnings.0 {
            for text in w.to_string().lines() {
                line(cargo, format!("cargo:warning={text}"))?;
            }
        }
        if self.deny_warnings && !generated.warnings.is_empty() {
            return Err(BuildError::DeniedWarnings(generated.warnings));
        }
        let out = out_dir.join(self.out_file.as_deref().unwrap_or(DEFAULT_OUT_FILE));
        let text = generated.single_file();
        // Unchanged output keeps its mtime, so the crate is not rebuilt for nothing.
        if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&out, text).map_err(io(&out))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CCTV: &str = r#"{"technique_id": "tech_cctv-cam", "name": "CCTV", "run_cost": 0.05,
        "inputs": [{"id": "input_image", "type": "imageUrl"}],
        "outputs": [{"id": "output_image", "type": "imageUrl"}]}"#;
    const ODD: &str = r#"{"technique_id": "tech_odd", "run_cost": 0,
        "inputs": [{"id": "steps", "type": "number"}], "outputs": []}"#;

    fn dirs(schemas: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let s = tmp.path().join("flora-schemas");
        let o = tmp.path().join("out");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::create_dir_all(&o).unwrap();
        for (name, text) in schemas {
            std::fs::write(s.join(name), text).unwrap();
        }
        (tmp, s, o)
    }

    #[test]
    fn writes_one_file_and_reruns_on_every_schema() {
        let (_tmp, s, o) = dirs(&[("cctv-cam.json", CCTV)]);
        let mut lines = Vec::new();
        let path = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .generate_to(&mut lines)
            .unwrap();
        let lines = String::from_utf8(lines).unwrap();
        assert!(lines.contains(&format!("cargo:rerun-if-changed={}\n", s.display())));
        assert!(lines.contains(&format!(
            "cargo:rerun-if-changed={}\n",
            s.join("cctv-cam.json").display()
        )));
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("pub mod cctv_cam {\n// @generated by flora-codegen from "));
        assert!(text.contains("pub use cctv_cam::{CctvCam, CctvCamOutputs};"));
        assert!(
            text.contains("```ignore"),
            "no compiled doctest without a module path"
        );
    }

    #[test]
    fn warnings_become_cargo_warnings_and_can_be_denied() {
        let (_tmp, s, o) = dirs(&[("odd.json", ODD)]);
        let mut lines = Vec::new();
        Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .generate_to(&mut lines)
            .unwrap();
        let lines = String::from_utf8(lines).unwrap();
        let warnings: Vec<&str> = lines
            .lines()
            .filter(|l| l.starts_with("cargo:warning="))
            .collect();
        assert_eq!(warnings.len(), 2, "{lines}");
        assert!(warnings[0].contains("odd.json#/inputs/0/type"), "{lines}");
        let err = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .deny_warnings(true)
            .generate_to(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, BuildError::DeniedWarnings(_)), "{err}");
    }

    #[test]
    fn invalid_schemas_fail_with_every_diagnostic() {
        let (_tmp, s, o) = dirs(&[
            ("a.json", r#"{"run_cost": 0, "inputs": [], "outputs": []}"#),
            ("b.json", "{ not json"),
        ]);
        let err = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .generate_to(&mut Vec::new())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("flora-schemas/a.json#: missing `technique_id`"),
            "{msg}"
        );
        assert!(msg.contains("flora-schemas/b.json#: invalid JSON"), "{msg}");
        assert!(msg.contains("2 errors"), "{msg}");
        let as_dyn: &dyn std::error::Error = &err;
        assert!(as_dyn.source().is_some());
        assert!(
            std::fs::read_dir(&o).unwrap().next().is_none(),
            "nothing written"
        );
        assert!(matches!(
            Build::new().out_dir(&o).generate_to(&mut Vec::new()),
            Err(BuildError::NoSchemasDir)
        ));
        let err = Build::new()
            .schemas_dir(s.join("missing"))
            .out_dir(&o)
            .generate_to(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
