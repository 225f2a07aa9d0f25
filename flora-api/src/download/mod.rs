//! Files out: streamed, atomic downloads of output URLs.
//!
//! FLORA's output URLs are "long-lived but not permanent; download to keep". A download goes
//! to a temporary file in the destination directory and is moved into place only when
//! complete (length checked against `Content-Length`), so `dest` never holds a partial file,
//! and never onto a file that exists unless asked. Media hosts are other origins: the FLORA
//! key and custom headers never go there. Saving every output of a run is `saving.rs`'s.

use std::path::{Path, PathBuf};

mod fetch;

use tokio::io::AsyncWriteExt;

use crate::client::Client;
use crate::content::{self, safe_file_stem};
use crate::error::Error;
use crate::kinds::MediaKind;
use crate::upload::Progress;
use crate::urls::{is_https_or_loopback, strip_query};
use crate::wire::{MediaType, RunOutput, SlotClass};
use fetch::Fetch;

/// The largest download [`DownloadOptions`] allow by default when a host announces no
/// length (8 GiB): a body that never ends must not fill the disk.
pub const DEFAULT_MAX_DOWNLOAD: u64 = 8 * 1024 * 1024 * 1024;

/// Settings of one download.
#[derive(Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Called with `(bytes received, total if known)`.
    pub progress: Option<Progress>,
    /// File name (without extension) to use when the destination is a directory; else the
    /// sanitised last segment of the URL.
    pub file_stem: Option<String>,
    /// Replace a file that exists at the destination. Off: an existing file is never
    /// replaced ([`Error::FileExists`]).
    pub overwrite: bool,
    /// The most bytes taken from a host ([`DEFAULT_MAX_DOWNLOAD`]). A host that announces
    /// more, or sends more than it announced, is refused at once.
    pub max_bytes: u64,
    /// A limit on the whole download, retries included (none by default: a transfer that
    /// keeps moving is never cut; one that stalls is, after `ClientBuilder::timeout`).
    pub deadline: Option<std::time::Duration>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            progress: None,
            file_stem: None,
            overwrite: false,
            max_bytes: DEFAULT_MAX_DOWNLOAD,
            deadline: None,
        }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("file_stem", &self.file_stem)
            .field("overwrite", &self.overwrite)
            .field("max_bytes", &self.max_bytes)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl DownloadOptions {
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
    /// Sets [`deadline`](Self::deadline).
    pub fn deadline(mut self, limit: std::time::Duration) -> Self {
        self.deadline = Some(limit);
        self
    }
    /// Sets [`progress`](Self::progress).
    pub fn progress(mut self, f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.progress = Some(std::sync::Arc::new(f));
        self
    }
    /// Sets [`file_stem`](Self::file_stem).
    pub fn file_stem(mut self, stem: impl Into<String>) -> Self {
        self.file_stem = Some(stem.into());
        self
    }
}

/// A media output whose value is a URL to download (else it is saved as text).
pub(crate) fn is_media_url(o: &RunOutput) -> bool {
    let url = || url::Url::parse(&o.url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    match o.kind.class() {
        SlotClass::Text => false,
        // An output of a type this version does not know is downloaded when it is a URL.
        SlotClass::Media(_) | SlotClass::Unknown(_) => url(),
    }
}

/// Where a download goes.
enum Dest {
    /// Exactly this file.
    File(PathBuf),
    /// A name chosen in this directory.
    Dir(PathBuf),
    /// One output being saved: `<stem>.<ext>` in a staging directory, with an extension of
    /// the output's kind (an image is never named `.mp4`, whatever the host says).
    Output {
        dir: PathBuf,
        stem: String,
        kind: Option<MediaKind>,
    },
}

/// # Downloads
///
/// An output URL to a file, atomically (a temporary file renamed into place), resumed with
/// `Range` where the host allows it. [`TechniqueRun::save_outputs`](crate::TechniqueRun::save_outputs)
/// saves every output of a run.
impl Client {
    /// Downloads `url` to `dest` and returns the path written.
    ///
    /// `dest` is a file path (parent directories are created), or an existing directory (or a
    /// path ending in `/`), in which case the file is named after the URL's last segment with
    /// an extension from the content type. Connection errors and 5xx are retried, resuming
    /// with `Range` when the host supports it. A failed download never leaves a partial file
    /// at `dest` and never replaces an existing file. Only `https://` (or loopback `http://`)
    /// URLs are fetched, without the FLORA key.
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client, url: flora_api::ImageUrl) -> Result<(), flora_api::Error> {
    /// let path = client.download(&url, "out/result.png").await?;
    /// # Ok(()) }
    /// ```
    pub async fn download(
        &self,
        url: impl AsRef<str>,
        dest: impl AsRef<Path>,
    ) -> Result<PathBuf, Error> {
        self.download_with(url, dest, DownloadOptions::default())
            .await
    }

    /// [`download`](Self::download) with progress and naming options.
    pub async fn download_with(
        &self,
        url: impl AsRef<str>,
        dest: impl AsRef<Path>,
        options: DownloadOptions,
    ) -> Result<PathBuf, Error> {
        let dest = dest.as_ref();
        let ends_with_sep = dest
            .as_os_str()
            .to_string_lossy()
            .ends_with(['/', std::path::MAIN_SEPARATOR]);
        let is_dir = ends_with_sep || tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir());
        let target = if is_dir {
            Dest::Dir(dest.to_path_buf())
        } else {
            Dest::File(dest.to_path_buf())
        };
        self.download_to(url.as_ref(), target, &options).await
    }

    /// Downloads one output into `dir` (a staging directory of the saver) as `<stem>.<ext>`,
    /// the extension one of `kind`'s.
    pub(crate) async fn download_output(
        &self,
        url: &str,
        dir: &Path,
        stem: &str,
        kind: &MediaType,
        options: &DownloadOptions,
    ) -> Result<PathBuf, Error> {
        let dest = Dest::Output {
            dir: dir.to_path_buf(),
            stem: stem.to_owned(),
            kind: kind.media_kind(),
        };
        self.download_to(url, dest, options).await
    }

    async fn download_to(
        &self,
        url: &str,
        dest: Dest,
        options: &DownloadOptions,
    ) -> Result<PathBuf, Error> {
        match options.deadline {
            Some(limit) => tokio::time::timeout(limit, self.download_unbounded(url, dest, options))
                .await
                .unwrap_or_else(|_elapsed| {
                    Err(Error::Download {
                        url: strip_query(url),
                        problem: format!(
                            "it did not finish within {} (DownloadOptions::deadline); nothing \
                             was saved",
                            crate::durations::human(limit)
                        ),
                    })
                }),
            None => self.download_unbounded(url, dest, options).await,
        }
    }

    async fn download_unbounded(
        &self,
        url: &str,
        dest: Dest,
        options: &DownloadOptions,
    ) -> Result<PathBuf, Error> {
        let shown = strip_query(url);
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::InvalidInput(format!("{shown:?} is not a URL ({e})")))?;
        // Plain http only from a loopback test server, and only for a client of a loopback
        // API: a production answer cannot point the client at a local service.
        let local_api = crate::urls::is_loopback(self.base_url());
        if !(parsed.scheme() == "https" || (local_api && is_https_or_loopback(&parsed))) {
            return Err(Error::InvalidInput(format!(
                "{shown} is not an https:// URL; only https:// is downloaded (http:// only from \
                 loopback, for a client of a loopback API)"
            )));
        }
        let dir = match &dest {
            Dest::Dir(d) | Dest::Output { dir: d, .. } => d.clone(),
            Dest::File(f) => match f.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        };
        let io = |action, path: &Path, source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        if let Dest::File(f) = &dest
            && !options.overwrite
            && tokio::fs::symlink_metadata(f).await.is_ok()
        {
            // Known before any byte is fetched.
            return Err(Error::FileExists { path: f.clone() });
        }
        // Folders this download creates are removed again if it fails (when still empty).
        let created = missing_ancestors(&dir).await;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io("create", &dir, e))?;
        sweep_leftovers(&dir);
        let result = self.fetch_into(shown, parsed, &dir, dest, options).await;
        if result.is_err() {
            for d in &created {
                let _ = tokio::fs::remove_dir(d).await;
            }
        }
        result
    }

    /// The download itself, into `dir` (which exists).
    async fn fetch_into(
        &self,
        shown: String,
        parsed: url::Url,
        dir: &Path,
        dest: Dest,
        options: &DownloadOptions,
    ) -> Result<PathBuf, Error> {
        let io = |action, path: &Path, source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        // Dropped (and deleted) on every error path: no partial file is ever left behind.
        let tmp = file_builder()
            .prefix(".flora-download-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| io("create a temporary file in", dir, e))?;
        let std_file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| io("open", tmp.path(), e))?;
        let file = tokio::fs::File::from_std(std_file);

        let mut fetch = Fetch {
            url: parsed,
            shown,
            file,
            tmp_path: tmp.path().to_path_buf(),
            written: 0,
            total: None,
            resumable: false,
            validator: None,
            content_type: None,
            progress: options.progress.clone(),
            max_bytes: options.max_bytes,
        };
        self.exchange(&mut fetch).await?;
        let Fetch {
            url: parsed,
            mut file,
            content_type,
            ..
        } = fetch;
        file.flush().await.map_err(|e| io("write", tmp.path(), e))?;
        file.sync_all()
            .await
            .map_err(|e| io("write", tmp.path(), e))?;
        drop(file);

        let path = match dest {
            Dest::File(f) => f,
            Dest::Dir(d) => {
                let stem = options.file_stem.clone().unwrap_or_else(|| {
                    let last = parsed
                        .path_segments()
                        .and_then(|mut s| s.next_back().map(str::to_owned))
                        .unwrap_or_default();
                    let last = percent_decode(&last);
                    match (Path::new(&last).file_stem(), content_type.is_some()) {
                        (Some(s), true) => s.to_string_lossy().into_owned(),
                        _ => last,
                    }
                });
                let stem = safe_file_stem(&stem);
                let name = match content_type.as_deref() {
                    Some(ct) => format!("{stem}.{}", content::saved_extension(ct, None)),
                    None => stem,
                };
                d.join(name)
            }
            Dest::Output { dir, stem, kind } => {
                let ext = content_type
                    .as_deref()
                    .map_or("bin", |ct| content::saved_extension(ct, kind));
                dir.join(format!("{stem}.{ext}"))
            }
        };
        if options.overwrite {
            tmp.persist(&path)
                .map_err(|e| io("move the download into", &path, e.error))?;
        } else {
            // Atomic: fails, replacing nothing, when a file appeared there meanwhile.
            tmp.persist_noclobber(&path).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::FileExists { path: path.clone() }
                } else {
                    io("move the download into", &path, e.error)
                }
            })?;
        }
        Ok(path)
    }
}

/// How old a leftover of ours must be before it is removed: older than any transfer that is
/// still moving leaves it (a live one touches its file at least every per-attempt timeout).
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Removes what a killed download or save left in `dir` (our temporary files and staging
/// folders, by their prefixes), once they are [`LEFTOVER_AGE`] old: nobody else's files,
/// and none a live transfer is still writing.
pub(crate) fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let stale = |p: &Path| {
        let newest = std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
            .chain(
                std::fs::symlink_metadata(p)
                    .ok()
                    .and_then(|m| m.modified().ok()),
            )
            .max();
        newest.is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > LEFTOVER_AGE))
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        let ours_file = name.starts_with(".flora-download-") && name.ends_with(".part");
        let ours_dir = name.starts_with(".flora-save-") || name.starts_with(".floret-");
        if !(ours_file || ours_dir) || !stale(&path) {
            continue;
        }
        let removed = if ours_dir && e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else if ours_file {
            std::fs::remove_file(&path)
        } else {
            continue;
        };
        if removed.is_ok() {
            tracing::info!(path = %path.display(), "removed a leftover of an interrupted transfer");
        }
    }
}

/// The prefix of a save's staging folder (tagged with its owner, if any): here, below
/// `saving`, which stages there, because the sweep of leftovers must know it too.
pub(crate) fn staging_prefix(tag: Option<&str>) -> String {
    match tag {
        // The tag comes from a journal: only its plain characters make a file name.
        Some(t) => {
            let t: String = t
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(40)
                .collect();
            format!(".flora-save-{t}-")
        }
        None => ".flora-save-".to_owned(),
    }
}

/// Removes the staging folders tagged `tag` in `dir` whatever their age: their owner (a
/// batch, under its lock) knows no live transfer of its own writes them.
#[cfg(feature = "batch")]
pub(crate) fn sweep_tagged(dir: &Path, tag: &str) {
    let prefix = staging_prefix(Some(tag));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let ours = e.file_name().to_string_lossy().starts_with(&prefix)
            && e.file_type().is_ok_and(|t| t.is_dir());
        if ours && std::fs::remove_dir_all(e.path()).is_ok() {
            tracing::info!(path = %e.path().display(), "removed a staging folder of a killed save");
        }
    }
}

/// `dir` and those of its ancestors that do not exist, deepest first.
async fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    for a in dir.ancestors() {
        if a.as_os_str().is_empty() || tokio::fs::symlink_metadata(a).await.is_ok() {
            break;
        }
        missing.push(a.to_path_buf());
    }
    missing
}

/// Temporary files become the user's files: give them ordinary permissions (tempfile's
/// default is owner-only), as a plain `File::create` would under a usual umask.
pub(super) fn file_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}
