//! Turns FLORA technique schemas into typed Rust for `flora-api`.
//!
//! Pipeline: parse each schema file and validate it into an IR where every name keeps its
//! Rust and wire spelling (`lower`), check names across techniques, emit tokens with
//! `quote` (`emit`), format with `prettyplease` (`render`). Problems are collected, never
//! thrown one at a time, and the generator does no I/O of its own.
//!
//! # Typed techniques in your own crate
//!
//! Your team's techniques (private to its workspace) get structs in your crate, from schema
//! files you commit (`flora-codegen fetch --schemas flora-schemas --workspace-id ws_…`, or
//! written by hand: the format is in [`schema_format`]).
//!
//! **build.rs mode**: nothing generated is committed.
//!
//! ```toml
//! [dependencies]
//! flora-api = { version = "0.1", default-features = false }
//! [build-dependencies]
//! flora-codegen = "0.1"
//! ```
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     flora_codegen::Build::new().schemas_dir("flora-schemas").generate()?;
//!     Ok(())
//! }
//! ```
//!
//! ```ignore
//! // src/main.rs
//! mod techniques { flora_api::include_techniques!(); }
//! use techniques::StickerMaker;
//! ```
//!
//! **CLI mode** (`cargo install flora-codegen --features cli`): `flora-codegen generate
//! --schemas flora-schemas --out src/techniques` writes `mod.rs` and one file per technique,
//! visible in review and docs; include them with `#[rustfmt::skip] mod techniques;`.
//!
//! # The library
//!
//! ```
//! use flora_codegen::{Config, SchemaFile, generate};
//! let schema = r#"{"technique_id": "tech_cctv-cam", "name": "CCTV Cam", "run_cost": 0.05,
//!   "inputs": [{"id": "input_image", "name": "Input Image", "type": "imageUrl"}],
//!   "outputs": [{"id": "output_image", "name": "Output Image", "type": "imageUrl"}]}"#;
//! let config = Config::new().module_path("my_app::techniques");
//! let out = generate(&[SchemaFile::new("schemas/cctv-cam.json", schema)], &config).unwrap();
//! assert!(out.files["cctv_cam.rs"].contains("pub struct CctvCam"));
//! assert!(out.files.contains_key("mod.rs"));
//! ```
//!
//! # A renamed or re-exported runtime
//!
//! Generated code names the runtime `::flora_api` unless told otherwise. A crate that
//! renames the dependency, or reaches flora-api through a facade crate, says so once:
//!
//! ```no_run
//! // build.rs of a crate whose Cargo.toml has `flora = { package = "flora-api", .. }`
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     flora_codegen::Build::new()
//!         .schemas_dir("flora-schemas")
//!         .runtime_path("::flora") // or "::my_facade::flora" for a re-export
//!         .generate()?;
//!     Ok(())
//! }
//! ```
//!
//! The `flora-codegen` binary takes the same setting as `--runtime-path`.
//!
//! # What is public
//!
//! [`Config`] and [`generate`] (the generator), [`Build`] (build scripts), [`SchemaFile`]
//! and the diagnostics types ([`Diagnostics`], [`Diagnostic`], [`Severity`]), and with the
//! `cli` feature the functions behind the binary's commands (module `cli`). The IR, naming and
//! doc-escaping modules are internal: generated code is the contract, not how it is made.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

use std::collections::BTreeMap;

mod build_script;
#[cfg(feature = "regen")]
#[cfg_attr(docsrs, doc(cfg(feature = "regen")))]
pub mod cli;
mod config;
mod diag;
mod docs;
mod emit;
mod ir;
mod lower;
mod models;
mod naming;
mod render;
mod schema_dir;

/// The schema files flora-codegen reads: their names, keys and slot types, with an example.
/// (Build errors point here.)
#[doc = include_str!("schema_format.md")]
pub mod schema_format {}

pub use build_script::{Build, BuildError, DEFAULT_OUT_FILE, MODELS_OUT_FILE};
pub use config::{Config, DEFAULT_RUNTIME_PATH};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use lower::SchemaFile;
pub use models::generate_models;

/// Every slot type the generator maps to a typed field: both spellings of each media kind
/// (`imageUrl`, `image_url`, …), then `text`. A schema with another type still generates,
/// with a warning (its inputs as `String`, its outputs as `RawOutput`).
///
/// ```
/// let known: Vec<&str> = flora_codegen::known_slot_types().collect();
/// assert!(known.contains(&"videoUrl") && known.contains(&"text"));
/// ```
pub fn known_slot_types() -> impl Iterator<Item = &'static str> {
    ir::Kind::known_wire_types()
}

/// The contract version generated code is written against. Generated code checks it against
/// the runtime's at compile time (`flora_api::__codegen::expect_contract`), so code from an
/// incompatible flora-codegen fails with a message that says to regenerate. Bump it (in both
/// crates) whenever generated code needs something of the runtime that older runtimes lack.
const CONTRACT: u32 = 1;

/// Generated files, keyed by path relative to the generated module's directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeneratedFiles {
    /// File name → contents. Always contains `mod.rs`.
    pub files: BTreeMap<String, String>,
    /// Fallbacks the caller should show (unknown slot types, ...); sorted.
    pub warnings: Diagnostics,
    /// The validated techniques, sorted by slug.
    techniques: Vec<ir::TechniqueSpec>,
}

/// The header of every generated technique file.
fn header(schema_path: &str) -> String {
    format!("// @generated by flora-codegen from {schema_path}. Do not edit.")
}

/// The header of the generated `mod.rs` for schemas in `dir`.
fn index_header(dir: &str) -> String {
    format!("// @generated by flora-codegen from {dir}/*.json. Do not edit.")
}

/// Whether `text` is a file flora-codegen wrote (its first line is the `@generated` header),
/// so a run may replace or delete it. Anything else in an output directory is the user's.
pub fn is_generated(text: &str) -> bool {
    text.starts_with("// @generated by flora-codegen ")
}

/// Validates every schema and generates one file per technique plus `mod.rs`.
///
/// The result does not depend on the order of `files`. On any error nothing is returned
/// but the full list of problems (warnings included); warnings alone do not stop generation
/// and come back in [`GeneratedFiles::warnings`]; with [`Config::deny_warnings`] they are the
/// `Err` (one holding warnings only, [`Diagnostics::has_errors`] is false). An
/// invalid [`Config`] is reported the same way, as a diagnostic naming the setting.
pub fn generate(files: &[SchemaFile], config: &Config) -> Result<GeneratedFiles, Diagnostics> {
    config.validate()?;
    let mut diags = Diagnostics::default();
    let mut sorted: Vec<&SchemaFile> = files.iter().collect();
    sorted.sort_by(|a, b| (a.slug(), &a.path).cmp(&(b.slug(), &b.path)));
    use rayon::prelude::*;
    let lowered: Vec<(Option<ir::TechniqueSpec>, Diagnostics)> = sorted
        .par_iter()
        .map(|f| {
            let mut d = Diagnostics::default();
            (lower::lower(f, &mut d), d)
        })
        .collect();
    let mut specs = Vec::with_capacity(lowered.len());
    for (spec, d) in lowered {
        diags.0.extend(d.0);
        specs.extend(spec);
    }
    lower::check_collisions(&specs, &mut diags);
    diags.0.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    // Denied warnings come back as they are: an `Err` without errors.
    if config.denies_warnings() && !diags.is_empty() {
        return Err(diags);
    }
    let mut out = GeneratedFiles {
        warnings: diags,
        ..GeneratedFiles::default()
    };
    let mut diags = Diagnostics::default();
    // Techniques are independent: emit and format them on all cores. The results are
    // collected in `specs` order and keyed in a BTreeMap, so the bytes do not depend on
    // scheduling.
    let rendered: Vec<(String, Result<String, Diagnostic>)> = specs
        .par_iter()
        .map(|spec| {
            let name = format!("{}.rs", naming::unraw(&spec.module.rust));
            let text = render::render(
                &spec.file,
                &header(&spec.file),
                emit::technique(spec, config),
            );
            (name, text)
        })
        .collect();
    for (name, text) in rendered {
        match text {
            Ok(text) => {
                out.files.insert(name, text);
            }
            Err(d) => diags.push(d),
        }
    }
    let dir = specs
        .first()
        .and_then(|s| s.file.rsplit_once(['/', '\\']).map(|(d, _)| d.to_owned()))
        .unwrap_or_else(|| ".".to_owned());
    match render::render(
        &dir,
        &index_header(&dir),
        emit::module_index(&specs, config),
    ) {
        Ok(text) => {
            out.files.insert("mod.rs".to_owned(), text);
        }
        Err(d) => diags.push(d),
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    out.techniques = specs;
    Ok(out)
}

impl GeneratedFiles {
    /// How many techniques were generated.
    pub fn technique_count(&self) -> usize {
        self.techniques.len()
    }

    /// Everything in one file, for `include!` (build-script mode): the index with each
    /// `pub mod x;` replaced by `pub mod x { <the text of x.rs> }`. Each technique's text is
    /// byte for byte the file [`files`](Self::files) holds.
    pub fn single_file(&self) -> String {
        single_file(&self.files)
    }
}

/// `files` (an index `mod.rs` and one file per module, as [`generate`] and
/// [`generate_models`] return them) as one file for `include!`: each `pub mod x;` of the
/// index replaced by `pub mod x { <the text of x.rs> }`.
pub fn single_file(files: &BTreeMap<String, String>) -> String {
    let index = files.get("mod.rs").map(String::as_str).unwrap_or("");
    let mut out = String::with_capacity(files.values().map(String::len).sum());
    for line in index.lines() {
        let decl = line
            .strip_prefix("pub mod ")
            .and_then(|rest| rest.strip_suffix(';'));
        match decl.and_then(|m| files.get(&format!("{}.rs", naming::unraw(m)))) {
            Some(text) => {
                out.push_str(line.trim_end_matches(';'));
                out.push_str(" {\n");
                out.push_str(text);
                out.push_str("}\n");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}
