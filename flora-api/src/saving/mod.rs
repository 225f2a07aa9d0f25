//! The one save policy: every output of a run to a file, atomically, never replacing a file
//! that exists unless asked, each reported with its size and SHA-256. `save_outputs(dir)`,
//! `floret run --download` and batches all save through here. A destination is a directory
//! (`DIR/{slot}.{ext}`) or a template with `{slot}`, `{index}`, `{run_id}`, `{key}` (a batch
//! item) and `{ext}`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::download::{DEFAULT_MAX_DOWNLOAD, DownloadOptions};
use crate::error::Error;
use crate::technique::TechniqueRun;
use crate::wire::RunOutput;

mod paths;

pub(crate) use paths::Names;
#[cfg(feature = "cli")]
pub(crate) use paths::precheck;
#[cfg(feature = "batch")]
pub(crate) use paths::staging_dirs;
use paths::{fill, folder_of, io_failure, template, with_index};

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
mod tests;
