//! Where outputs go: a directory or a template made into one path per output, distinct
//! by construction, checked before anything is paid for.

use std::path::{Path, PathBuf};

use super::SaveError;
use crate::content::safe_file_stem;
use crate::error::Error;
#[cfg(feature = "batch")]
use crate::wire::RunOutput;
#[cfg(feature = "cli")]
use crate::wire::{MediaType, SlotClass};

/// A directory becomes `DIR/{slot}.{ext}`, or `DIR/{slot}-{index}.{ext}` when two outputs'
/// file names would clash (the same id, or ids that clean to one name, ignoring case): a
/// directory always gives distinct names. Text with a single `{` is a template (`{{` is a
/// literal brace, for directories whose name holds one).
pub(super) fn template(spec: &str, ids: &[&str]) -> String {
    let literal = spec.replace("{{", "");
    if literal.contains('{') {
        return spec.to_owned();
    }
    let dir = spec.trim_end_matches(['/', '\\']);
    let dir = if dir.is_empty() { "." } else { dir };
    let stems: Vec<String> = ids
        .iter()
        .map(|id| safe_file_stem(id).to_lowercase())
        .collect();
    let shared = stems
        .iter()
        .enumerate()
        .any(|(i, s)| stems[..i].contains(s));
    if shared {
        format!("{dir}/{{slot}}-{{index}}.{{ext}}")
    } else {
        format!("{dir}/{{slot}}.{{ext}}")
    }
}

/// Where one output goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names<'a> {
    pub run_id: &'a str,
    /// The batch item's key (`""` outside batches).
    pub key: &'a str,
}

/// The template with `-{index}` before its extension (or at its end).
pub(super) fn with_index(template: &str) -> String {
    match template.strip_suffix(".{ext}") {
        Some(stem) => format!("{stem}-{{index}}.{{ext}}"),
        None => format!("{template}-{{index}}"),
    }
}

pub(super) fn fill(
    template: &str,
    slot: &str,
    index: usize,
    names: Names<'_>,
    ext: &str,
) -> PathBuf {
    // `{{` stands for a literal `{` (a directory named with a brace): kept out of the way.
    const BRACE: &str = "\u{0}";
    PathBuf::from(
        template
            .replace("{{", BRACE)
            .replace("{slot}", &safe_file_stem(slot))
            .replace("{index}", &index.to_string())
            .replace("{run_id}", &safe_file_stem(names.run_id))
            .replace("{key}", &safe_file_stem(names.key))
            .replace("{ext}", ext)
            .replace(BRACE, "{"),
    )
}

/// The folder a file goes in (`.` for a bare name).
pub(super) fn folder_of(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The folders [`save_all`] stages these outputs in (their files' folders), known before it
/// runs: a batch journals them first, so what a killed save leaves there is found again.
#[cfg(feature = "batch")]
pub(crate) fn staging_dirs(names: Names<'_>, outputs: &[RunOutput], spec: &str) -> Vec<PathBuf> {
    let ids: Vec<&str> = outputs.iter().map(|o| o.output_id.as_str()).collect();
    let template = template(spec, &ids);
    let mut dirs: Vec<PathBuf> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| folder_of(&fill(&template, &o.output_id, i, names, "ext")))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

pub(super) fn io_failure(action: &'static str, path: &Path, source: std::io::Error) -> SaveError {
    SaveError::Failed(Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    })
}

/// Every extension a saved output of this kind can get (the saver's own rule, from the
/// content table: one list, so the check before a run and the save after it agree).
#[cfg(feature = "cli")]
pub(super) fn extensions(kind: &MediaType) -> Vec<&'static str> {
    match kind.class() {
        SlotClass::Media(media) => crate::content::saved_extensions(Some(media)),
        SlotClass::Text => vec!["txt"],
        // Downloaded when it is a URL (any media type, `txt`, `json`, `bin`), else text.
        SlotClass::Unknown(_) => crate::content::saved_extensions(None),
    }
}

/// Before the run (nothing paid yet), everything about the destination that can be known:
/// two declared outputs on one path (refused: say which placeholder tells them apart); a
/// folder that cannot be created (a file in the way, no permission); a file that exists on
/// any name an output can get (unless `--overwrite`; a template naming `{run_id}` cannot
/// clash with earlier files).
#[cfg(feature = "cli")]
pub(crate) fn precheck(
    spec: &str,
    outputs: &[crate::wire::Slot],
    key: &str,
    overwrite: bool,
) -> Result<(), SaveError> {
    let ids: Vec<&str> = outputs.iter().map(|o| o.id.as_str()).collect();
    let template = template(spec, &ids);
    let names = Names {
        run_id: "{run_id}",
        key,
    };
    let probe: Vec<PathBuf> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| fill(&template, &o.id, i, names, "{ext}"))
        .collect();
    for (i, p) in probe.iter().enumerate() {
        if let Some(j) = probe[..i].iter().position(|q| q == p) {
            return Err(SaveError::Refused(format!(
                "--download {spec}: outputs `{}` and `{}` would both be saved as {}; add {{slot}} \
                 or {{index}} to the template (nothing was run)",
                crate::safe_text::plain_text(ids[j], 80),
                crate::safe_text::plain_text(ids[i], 80),
                p.display()
            )));
        }
    }
    for (i, o) in outputs.iter().enumerate() {
        for ext in extensions(&o.kind) {
            let path = fill(&template, &o.id, i, names, ext);
            creatable(spec, &path)?;
            let exists = std::fs::symlink_metadata(&path).is_ok();
            if exists && !overwrite && !template.contains("{run_id}") {
                return Err(SaveError::Refused(format!(
                    "--download {spec}: output `{}` would be saved as {}, which already exists; \
                     floret never replaces a file unless --overwrite (nothing was run)",
                    crate::safe_text::plain_text(&o.id, 80),
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Whether `path` can be written: the nearest existing ancestor of its folder is a folder
/// this process can create files in, and `path` is not a folder. Folders whose names hold an
/// unfilled placeholder are judged by their existing ancestor.
#[cfg(feature = "cli")]
pub(super) fn creatable(spec: &str, path: &Path) -> Result<(), SaveError> {
    let refuse =
        |why: String| SaveError::Refused(format!("--download {spec}: {why} (nothing was run)"));
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(refuse(format!(
            "{} is a folder, not a file",
            path.display()
        )));
    }
    let mut dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    loop {
        if dir.as_os_str().is_empty() {
            dir = PathBuf::from(".");
        }
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(refuse(format!(
                    "{} is a file, so {} cannot be created",
                    dir.display(),
                    path.parent().unwrap_or(Path::new(".")).display()
                )));
            }
            Err(_) => match dir.parent() {
                Some(up) => dir = up.to_path_buf(),
                None => break,
            },
        }
    }
    tempfile::Builder::new()
        .prefix(".flora-probe-")
        .tempfile_in(&dir)
        .map(drop)
        .map_err(|e| refuse(format!("cannot create files in {}: {e}", dir.display())))
}
