//! The one save policy: every output of a run to a file, atomically, never replacing a file
//! that exists unless asked, each reported with its size and SHA-256. `save_outputs(dir)`,
//! `floret run --download` and batches all save through here. A destination is a directory
//! (`DIR/{slot}.{ext}`) or a template with `{slot}`, `{index}`, `{run_id}`, `{key}` (a batch
//! item) and `{ext}`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::content::safe_file_stem;
use crate::download::{DEFAULT_MAX_DOWNLOAD, DownloadOptions};
use crate::error::Error;
use crate::technique::TechniqueRun;
#[cfg(feature = "cli")]
use crate::wire::MediaType;
use crate::wire::RunOutput;

/// How [`TechniqueRun::save_outputs_with`] saves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SaveOptions {
    /// Replace files that exist. Off: a file that exists is never replaced
    /// ([`Error::FileExists`]); a file that already holds the very bytes is kept as is.
    pub overwrite: bool,
    /// The most bytes taken for one output when its host announces no length
    /// ([`DownloadOptions::max_bytes`]).
    pub max_bytes: u64,
    /// Names the staging folders `.flora-save-{tag}-…`, so their owner (a batch, under its
    /// lock) can remove what a killed process of its own left at once, not only once it is
    /// old (`download::sweep_leftovers`).
    pub(crate) staging_tag: Option<String>,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            overwrite: false,
            max_bytes: DEFAULT_MAX_DOWNLOAD,
            staging_tag: None,
        }
    }
}

impl SaveOptions {
    /// Sets [`overwrite`](Self::overwrite).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }
    /// Tags the staging folders with their owner (see the field).
    #[cfg(feature = "batch")]
    pub(crate) fn staging_tag(mut self, tag: &str) -> Self {
        self.staging_tag = Some(tag.to_owned());
        self
    }
}

impl<O> TechniqueRun<O> {
    /// Saves every output of the run (typed and extra) into `dir`: media as
    /// `<output_id>.<ext>` (downloaded, the extension one of the output's kind), text as
    /// `<output_id>.txt`; when two names would clash (also ignoring case), every file is
    /// `<output_id>-<index>.<ext>`. A file that exists is never replaced
    /// ([`Error::FileExists`]; [`save_outputs_with`](Self::save_outputs_with) can).
    /// Returns the paths in output order.
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client, face: flora_api::ImageUrl) -> Result<(), flora_api::Error> {
    /// let done = flora_api::techniques::CctvCam { input_image: face }.run(&client).await?;
    /// let saved = done.save_outputs(&client, "out/").await?;
    /// # Ok(()) }
    /// ```
    pub async fn save_outputs(
        &self,
        client: &Client,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, Error> {
        let mut spec = dir.as_ref().to_string_lossy().into_owned();
        // A directory, even one whose name holds a `{`.
        spec = spec.replace('{', "{{");
        self.save_to(client, &spec, &SaveOptions::default()).await
    }

    /// Saves every output to `dest`, a directory or a template
    /// (`"out/{run_id}-{slot}.{ext}"`; `{slot}`, `{index}`, `{run_id}`, `{ext}`), with
    /// `options`. A template that would give two outputs one path is refused before anything
    /// is downloaded.
    ///
    /// ```no_run
    /// # #[cfg(feature = "techniques")]
    /// # async fn demo(client: flora_api::Client, face: flora_api::ImageUrl) -> Result<(), flora_api::Error> {
    /// use flora_api::SaveOptions;
    /// let done = flora_api::techniques::CctvCam { input_image: face }.run(&client).await?;
    /// let saved = done
    ///     .save_outputs_with(&client, "out/{run_id}-{slot}.{ext}", SaveOptions::default().overwrite(true))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn save_outputs_with(
        &self,
        client: &Client,
        dest: &str,
        options: SaveOptions,
    ) -> Result<Vec<PathBuf>, Error> {
        self.save_to(client, dest, &options).await
    }

    async fn save_to(
        &self,
        client: &Client,
        spec: &str,
        options: &SaveOptions,
    ) -> Result<Vec<PathBuf>, Error> {
        let names = Names {
            run_id: &self.run_id,
            key: "",
        };
        let saved = save_all(client, names, self.all_outputs(), spec, options, None)
            .await
            .map_err(SaveError::into_error)?;
        Ok(saved
            .into_iter()
            .map(|s| {
                tracing::debug!(slot = %s.slot, index = s.index, bytes = s.bytes, sha256 = %s.sha256, path = %s.path.display(), "output saved");
                s.path
            })
            .collect())
    }
}

/// Why outputs were not saved.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// The destination is not usable (two outputs on one path, a file that exists): nothing
    /// was written for this output.
    Refused(String),
    /// The file exists and replacing was not asked for.
    Exists(PathBuf),
    /// Downloading or writing failed.
    Failed(Error),
}

impl SaveError {
    /// As the library reports it.
    fn into_error(self) -> Error {
        match self {
            SaveError::Refused(m) => Error::InvalidInput(m),
            SaveError::Exists(path) => Error::FileExists { path },
            SaveError::Failed(e) => e,
        }
    }
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Refused(m) => f.write_str(m),
            SaveError::Exists(p) => write!(
                f,
                "{} already exists; it is never replaced unless asked (--overwrite)",
                p.display()
            ),
            SaveError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// One saved output.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    pub slot: String,
    pub index: usize,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

impl Saved {
    /// As `floret run --download` reports it.
    #[cfg(feature = "cli")]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "slot": self.slot,
            "index": self.index,
            "path": self.path.display().to_string(),
            "bytes": self.bytes,
            "sha256": self.sha256,
        })
    }
}

/// A directory becomes `DIR/{slot}.{ext}`, or `DIR/{slot}-{index}.{ext}` when two outputs'
/// file names would clash (the same id, or ids that clean to one name, ignoring case): a
/// directory always gives distinct names. Text with a single `{` is a template (`{{` is a
/// literal brace, for directories whose name holds one).
fn template(spec: &str, ids: &[&str]) -> String {
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
fn with_index(template: &str) -> String {
    match template.strip_suffix(".{ext}") {
        Some(stem) => format!("{stem}-{{index}}.{{ext}}"),
        None => format!("{template}-{{index}}"),
    }
}

fn fill(template: &str, slot: &str, index: usize, names: Names<'_>, ext: &str) -> PathBuf {
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
fn folder_of(path: &Path) -> PathBuf {
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

fn io_failure(action: &'static str, path: &Path, source: std::io::Error) -> SaveError {
    SaveError::Failed(Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    })
}

/// Every extension a saved output of this kind can get (the saver's own rule, from the
/// content table: one list, so the check before a run and the save after it agree).
#[cfg(feature = "cli")]
fn extensions(kind: &MediaType) -> Vec<&'static str> {
    match kind {
        MediaType::Text => vec!["txt"],
        other => {
            let family = crate::content::Family::of_output(other);
            let mut exts = crate::content::saved_extensions(family);
            if family.is_none() {
                exts.push("txt");
            }
            exts
        }
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
fn creatable(spec: &str, path: &Path) -> Result<(), SaveError> {
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

/// Saves every output (or, with `only`, the outputs at those indices, named as among all);
/// refuses, before downloading anything, a template that gives two outputs one path.
pub(crate) async fn save_all(
    client: &Client,
    names: Names<'_>,
    outputs: &[RunOutput],
    spec: &str,
    options: &SaveOptions,
    only: Option<&[usize]>,
) -> Result<Vec<Saved>, SaveError> {
    let ids: Vec<&str> = outputs.iter().map(|o| o.output_id.as_str()).collect();
    let mut template = template(spec, &ids);
    // With every extension alike, distinct outputs must get distinct paths. The declared
    // outputs were checked before the run; an output the schema did not declare that lands
    // on another's path makes every name carry its index, never a refusal after paying.
    let clash = |template: &str| {
        let probe: Vec<PathBuf> = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| fill(template, &o.output_id, i, names, "ext"))
            .collect();
        probe
            .iter()
            .enumerate()
            .find(|(i, p)| probe[..*i].contains(p))
            .map(|(_, p)| p.clone())
    };
    if clash(&template).is_some() {
        template = with_index(&template);
    }
    if let Some(p) = clash(&template) {
        return Err(SaveError::Refused(format!(
            "--download {spec}: two outputs would both be saved as {}; add {{slot}} or \
             {{index}} to the template",
            p.display()
        )));
    }
    let mut saved = Vec::with_capacity(outputs.len());
    for (i, o) in outputs.iter().enumerate() {
        if only.is_none_or(|only| only.contains(&i)) {
            saved.push(save_one(client, names, o, i, &template, options).await?);
        }
    }
    Ok(saved)
}

async fn save_one(
    client: &Client,
    names: Names<'_>,
    o: &RunOutput,
    index: usize,
    template: &str,
    options: &SaveOptions,
) -> Result<Saved, SaveError> {
    // The parent of the final path holds the temporary file, so the final step is a rename
    // or a link within one directory.
    let parent = folder_of(&fill(template, &o.output_id, index, names, "ext"));
    std::fs::create_dir_all(&parent).map_err(|e| io_failure("create", &parent, e))?;
    crate::download::sweep_leftovers(&parent);
    let prefix = crate::download::staging_prefix(options.staging_tag.as_deref());
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&parent)
        .map_err(|e| io_failure("create", &parent, e))?;
    let (tmp, ext) = if crate::download::is_media_url(o) {
        let download = DownloadOptions::default().max_bytes(options.max_bytes);
        let path = client
            .download_output(&o.url, staging.path(), "output", &o.kind, &download)
            .await
            .map_err(SaveError::Failed)?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bin".to_owned());
        (path, ext)
    } else {
        let path = staging.path().join("output.txt");
        std::fs::write(&path, &o.url).map_err(|e| io_failure("write", &path, e))?;
        (path, "txt".to_owned())
    };
    let dest = fill(template, &o.output_id, index, names, &ext);
    place(&tmp, &dest, options.overwrite)?;
    let (bytes, sha256) = digest(&dest).map_err(SaveError::Failed)?;
    Ok(Saved {
        slot: o.output_id.clone(),
        index,
        path: dest,
        bytes,
        sha256,
    })
}

/// Moves `tmp` to `dest`: replacing with `overwrite`, else only where nothing exists (a
/// hard link is created or fails atomically).
fn place(tmp: &Path, dest: &Path, overwrite: bool) -> Result<(), SaveError> {
    if overwrite {
        return std::fs::rename(tmp, dest).map_err(|e| io_failure("write", dest, e));
    }
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => Ok(()),
        // The very bytes are there already (a save interrupted after this file): kept as is.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && same_bytes(tmp, dest) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(SaveError::Exists(dest.to_path_buf()))
        }
        // A filesystem without hard links: the same check, then a rename.
        Err(_) if !dest.exists() && std::fs::symlink_metadata(dest).is_err() => {
            std::fs::rename(tmp, dest).map_err(|e| io_failure("write", dest, e))
        }
        Err(e) => Err(io_failure("write", dest, e)),
    }
}

/// Whether two files hold the same bytes (a regular file at `b`, same size, same digest).
fn same_bytes(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| {
        std::fs::symlink_metadata(p)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
    };
    match (size(a), size(b)) {
        (Some(x), Some(y)) if x == y => {
            matches!((digest(a), digest(b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

/// A file's size and SHA-256 (hex), streamed: saved outputs, and batches' uploads by content.
pub(crate) fn digest(path: &Path) -> Result<(u64, String), Error> {
    let io = |source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok((bytes, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_templates_name_each_output() {
        assert_eq!(template("out/", &["image"]), "out/{slot}.{ext}");
        assert_eq!(
            template("out", &["frame", "frame"]),
            "out/{slot}-{index}.{ext}"
        );
        let names = Names {
            run_id: "run_1",
            key: "row 7",
        };
        assert_eq!(
            fill("o/{run_id}-{key}-{slot}.{ext}", "a/../b", 0, names, "png"),
            PathBuf::from("o/run_1-row_7-a_.._b.png")
        );
        // Keys come from plans: a device name or a very long key is made safe too.
        let long = "k".repeat(300);
        for (key, part) in [("con", "_con".to_owned()), (long.as_str(), "k".repeat(100))] {
            let names = Names { run_id: "r", key };
            assert_eq!(
                fill("{key}.{ext}", "s", 0, names, "png"),
                PathBuf::from(format!("{part}.png"))
            );
        }
    }

    #[test]
    fn place_never_replaces_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("t");
        let dest = dir.path().join("d");
        std::fs::write(&tmp, "new").unwrap();
        std::fs::write(&dest, "mine").unwrap();
        let err = place(&tmp, &dest, false).unwrap_err();
        assert!(matches!(err, SaveError::Exists(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "mine");
        place(&tmp, &dest, true).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");
    }

    #[test]
    fn the_same_bytes_already_in_place_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("t");
        let dest = dir.path().join("d");
        std::fs::write(&tmp, "same").unwrap();
        std::fs::write(&dest, "same").unwrap();
        place(&tmp, &dest, false).unwrap();
        // Same size, other bytes: refused.
        std::fs::write(&dest, "SAME").unwrap();
        assert!(matches!(
            place(&tmp, &dest, false),
            Err(SaveError::Exists(_))
        ));
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "SAME");
    }
}
