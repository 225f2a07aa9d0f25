//! `Build`: typed techniques from a build script, like `prost-build`/`tonic-build`.
//!
//! Reads a directory of schema files, writes one file into `OUT_DIR` that
//! `flora_api::include_techniques!()` includes, and tells cargo when to run again. No
//! network access: fetch schemas with `flora-codegen fetch` (or by hand) and commit them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::schema_dir::{self, ReadError};
use crate::{Config, Diagnostics, SchemaFile};

/// The default file written into `OUT_DIR` (what `include_techniques!()` includes).
pub const DEFAULT_OUT_FILE: &str = "flora_techniques.rs";

/// The file of generated models written into `OUT_DIR` (what `include_models!()` includes).
pub const MODELS_OUT_FILE: &str = "flora_models.rs";

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
///
/// Models too (typed generations, flora-api's feature `models`), from a directory of
/// `<model_id>.json` catalog entries, with or without techniques:
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     flora_codegen::Build::new().models_dir("flora-models").generate()?;
///     Ok(())
/// }
/// ```
///
/// and in the crate: `mod models { flora_api::include_models!(); }`.
#[derive(Debug, Clone, Default)]
pub struct Build {
    schemas_dir: Option<PathBuf>,
    models_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    out_file: Option<String>,
    config: Config,
}

/// Why a build-script generation failed. `Display` lists every problem with its file, JSON
/// pointer and fix; `Debug` shows the same text, so `fn main() -> Result<(), Box<dyn Error>>`
/// in a build script prints it readably.
#[non_exhaustive]
pub enum BuildError {
    /// Neither `schemas_dir` nor `models_dir` was called.
    NoSchemasDir,
    /// Neither `out_dir` nor the `OUT_DIR` variable (set by cargo for build scripts).
    NoOutDir,
    /// A setting is invalid (a module or runtime path that is not a Rust path).
    Config(Diagnostics),
    /// `out_file` is not a plain file name.
    OutFile(String),
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
            BuildError::Config(d) => write!(
                f,
                "flora_codegen::Build: invalid setting:\n{}",
                crate::config::describe(d)
            ),
            BuildError::OutFile(name) => write!(
                f,
                "flora_codegen::Build: `out_file` {name:?} is not a plain file name (no path \
                 separators, not `.` or `..`); it names a file in OUT_DIR, e.g. \
                 \"my_techniques.rs\""
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
            BuildError::Schemas(d) | BuildError::DeniedWarnings(d) | BuildError::Config(d) => {
                Some(d)
            }
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

    /// The directory of `<model_id>.json` model catalog entries (`GET /models` items, as
    /// `cargo xtask regen` or `flora-codegen fetch` store them), relative to the crate's
    /// manifest: generates one struct per model into [`MODELS_OUT_FILE`], which
    /// `flora_api::include_models!()` includes (flora-api's feature `models`).
    pub fn models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = Some(dir.into());
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
        self.config = self.config.deny_warnings(deny);
        self
    }

    /// The path users name the module by (`my_crate::techniques`): the struct docs'
    /// examples then become compiled doctests. Without it they are shown, not compiled.
    pub fn module_path(mut self, path: impl Into<String>) -> Self {
        self.config = self.config.module_path(path);
        self
    }

    /// The path generated code names the runtime by (default `::flora_api`): `"::flora"`
    /// when your Cargo.toml renames the dependency (`flora = { package = "flora-api", .. }`),
    /// `"::my_facade::flora"` when a facade crate re-exports it. See [`Config::runtime_path`].
    pub fn runtime_path(mut self, path: impl Into<String>) -> Self {
        self.config = self.config.runtime_path(path);
        self
    }

    /// Also emits the `flora_api::testing` impls (so `FakeFlora` rules and `runs::<T>()` work
    /// with these techniques), under `#[cfg(feature = "<feature>")]`. Declare that feature
    /// in your crate as `<feature> = ["flora-api/test-util"]` and enable it for tests.
    pub fn test_util_feature(mut self, feature: impl Into<String>) -> Self {
        self.config = self.config.test_util_feature(feature);
        self
    }

    /// Every generation setting at once (replacing those set before).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Generates, writes the file(s) and prints `cargo:` instructions. Returns the path of the
    /// techniques' file, or of the models' file when only [`models_dir`](Self::models_dir)
    /// was given.
    pub fn generate(&self) -> Result<PathBuf, BuildError> {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        self.generate_to(&mut lock)
    }

    /// [`generate`](Self::generate), with the `cargo:` lines written to `cargo` (for tests).
    pub fn generate_to(&self, cargo: &mut dyn Write) -> Result<PathBuf, BuildError> {
        if self.schemas_dir.is_none() && self.models_dir.is_none() {
            return Err(BuildError::NoSchemasDir);
        }
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        self.config.validate().map_err(BuildError::Config)?;
        let out_file = self.out_file.as_deref().unwrap_or(DEFAULT_OUT_FILE);
        if !is_plain_file_name(out_file) {
            return Err(BuildError::OutFile(out_file.to_owned()));
        }
        let mut written = None;
        if let Some(dir) = &self.schemas_dir {
            let files = read_dir(cargo, dir, None)?;
            let generated = match crate::generate(&files, &self.config) {
                Ok(g) => g,
                Err(d) if !d.has_errors() => return Err(BuildError::DeniedWarnings(d)),
                Err(d) => return Err(BuildError::Schemas(d)),
            };
            warn(cargo, &generated.warnings)?;
            let out = out_dir.join(out_file);
            write_if_changed(&out, &generated.single_file())?;
            written = Some(out);
        }
        if let Some(dir) = &self.models_dir {
            // Generated headers name the entries as regen stores them; problems name the
            // user's own files.
            let files = read_dir(cargo, dir, Some(REGEN_MODELS))?;
            let here = schema_dir::shown_name(dir);
            let (generated, warnings) = crate::generate_models(&files, &self.config)
                .map_err(|d| BuildError::Schemas(located(d, &here)))?;
            let warnings = located(warnings, &here);
            if self.config.denies_warnings() && !warnings.0.is_empty() {
                return Err(BuildError::DeniedWarnings(warnings));
            }
            warn(cargo, &warnings)?;
            let out = out_dir.join(MODELS_OUT_FILE);
            write_if_changed(&out, &crate::single_file(&generated))?;
            written.get_or_insert(out);
        }
        written.ok_or(BuildError::NoSchemasDir)
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io { path, source }
}

fn line(cargo: &mut dyn Write, text: String) -> Result<(), BuildError> {
    writeln!(cargo, "{text}").map_err(io_error(Path::new("<stdout>")))
}

/// The `.json` files of `dir`, each a rerun trigger, named `<shown>/<name>` in headers and
/// diagnostics (`shown` defaults to the directory's own name).
fn read_dir(
    cargo: &mut dyn Write,
    dir: &Path,
    shown: Option<&str>,
) -> Result<Vec<SchemaFile>, BuildError> {
    line(cargo, format!("cargo:rerun-if-changed={}", dir.display()))?;
    let schemas = schema_dir::read(dir, "json").map_err(|e| match e {
        ReadError::Io { path, source } => BuildError::Io { path, source },
        ReadError::Names(d) => BuildError::Schemas(d),
    })?;
    let shown = shown.map_or_else(|| schema_dir::shown_name(dir), str::to_owned);
    let mut files = Vec::with_capacity(schemas.len());
    for (name, text) in schemas {
        line(
            cargo,
            format!("cargo:rerun-if-changed={}", dir.join(&name).display()),
        )?;
        files.push(SchemaFile::new(format!("{shown}/{name}"), text));
    }
    Ok(files)
}

/// Where `cargo xtask regen` keeps model entries: the name generated headers give them.
const REGEN_MODELS: &str = "schemas/models";

/// `problems` naming files in `dir` (shown as `here`) rather than where regen keeps them.
fn located(mut problems: Diagnostics, here: &str) -> Diagnostics {
    for d in &mut problems.0 {
        if let Some(name) = d.file.strip_prefix(REGEN_MODELS) {
            d.file = format!("{here}{name}");
        }
    }
    problems
}

fn warn(cargo: &mut dyn Write, warnings: &Diagnostics) -> Result<(), BuildError> {
    for w in &warnings.0 {
        for text in w.to_string().lines() {
            line(cargo, format!("cargo:warning={text}"))?;
        }
    }
    Ok(())
}

/// Unchanged output keeps its mtime, so the crate is not rebuilt for nothing.
fn write_if_changed(out: &Path, text: &str) -> Result<(), BuildError> {
    if std::fs::read_to_string(out).ok().as_deref() != Some(text) {
        std::fs::write(out, text).map_err(io_error(out))?;
    }
    Ok(())
}

/// A name for a file inside the output directory: one normal path component.
fn is_plain_file_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(std::path::Component::Normal(n)) if n == name)
        && parts.next().is_none()
        && !name.contains(['/', '\\', ':'])
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
    fn a_model_warning_names_the_users_own_file() {
        let (tmp, _, o) = dirs(&[]);
        let m = tmp.path().join("my-models");
        std::fs::create_dir_all(&m).unwrap();
        let entry = r#"{"model_id": "t2i-x", "name": "X", "type": "image",
            "params": [{"name": "odd", "type": "tensor", "required": false}]}"#;
        std::fs::write(m.join("t2i-x.json"), entry).unwrap();
        let mut lines = Vec::new();
        Build::new()
            .models_dir(&m)
            .out_dir(&o)
            .generate_to(&mut lines)
            .unwrap();
        let lines = String::from_utf8(lines).unwrap();
        assert!(
            lines.contains("cargo:warning=warning: my-models/t2i-x.json#/params/0/type"),
            "{lines}"
        );
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

    /// Issue 20, defect 8: `out_file` names a file in the output directory, nothing else.
    // Was `defect_08` in its issue.
    #[test]
    fn out_file_is_a_plain_file_name() {
        let (tmp, s, o) = dirs(&[("cctv-cam.json", CCTV)]);
        for bad in [
            "../escaped.rs",
            "/tmp/abs.rs",
            "sub/x.rs",
            "..",
            ".",
            "",
            "C:x.rs",
            "a\\b.rs",
        ] {
            let err = Build::new()
                .schemas_dir(&s)
                .out_dir(&o)
                .out_file(bad)
                .generate_to(&mut Vec::new())
                .unwrap_err();
            assert!(matches!(err, BuildError::OutFile(_)), "{bad}: {err}");
            assert!(err.to_string().contains("plain file name"), "{err}");
        }
        assert!(!tmp.path().join("escaped.rs").exists());
        let path = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .out_file("mine.rs")
            .generate_to(&mut Vec::new())
            .unwrap();
        assert_eq!(path, o.join("mine.rs"));
    }

    /// Issue 20, defect 7: a module or runtime path must be a Rust path; anything else (code,
    /// newlines, a code fence) is refused before anything is written.
    // Was `defect_07` in its issue.
    #[test]
    fn paths_that_are_not_rust_paths_are_refused() {
        let (_tmp, s, o) = dirs(&[("cctv-cam.json", CCTV)]);
        let hostile = "crate::x; fn evil(){}\n```\nfn more() {}\n```";
        let err = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .module_path(hostile)
            .generate_to(&mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, BuildError::Config(_)), "{err}");
        assert!(err.to_string().contains("`module_path`"), "{err}");
        let err = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .runtime_path("::flora_api; fn evil(){}")
            .generate_to(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("`runtime_path`"), "{err}");
        assert!(
            std::fs::read_dir(&o).unwrap().next().is_none(),
            "nothing written"
        );
    }

    /// Issue 20, B: the runtime path reaches every runtime name in generated code.
    #[test]
    fn the_runtime_path_names_the_runtime_everywhere() {
        let (_tmp, s, o) = dirs(&[("cctv-cam.json", CCTV)]);
        let path = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .runtime_path("::my_facade::flora")
            .module_path("my_app::techniques")
            .test_util_feature("test-util")
            .generate_to(&mut Vec::new())
            .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains("flora_api"), "{text}");
        assert!(
            text.contains("impl ::my_facade::flora::Technique for CctvCam"),
            "{text}"
        );
        assert!(
            text.contains("::my_facade::flora::__codegen::expect_contract("),
            "{text}"
        );
        assert!(
            text.contains("my_facade::flora::Client::from_env()"),
            "{text}"
        );
    }

    /// Issue 20, defect 10: a schema file whose name is not UTF-8 is refused by name, as
    /// `generate` and `fetch` refuse it (one reader, `schema_dir::read`).
    // Was `defect_10` in its issue.
    #[cfg(unix)]
    #[test]
    fn a_schema_name_that_is_not_utf8_is_refused_by_name() {
        use std::os::unix::ffi::OsStrExt;
        let (_tmp, s, o) = dirs(&[("cctv-cam.json", CCTV)]);
        std::fs::write(s.join(std::ffi::OsStr::from_bytes(b"caf\xe9.json")), CCTV).unwrap();
        let err = Build::new()
            .schemas_dir(&s)
            .out_dir(&o)
            .generate_to(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("caf\u{FFFD}.json"), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }
}
