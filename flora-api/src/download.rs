//! Files out: streamed, atomic downloads of output URLs, and `save_outputs`.
//!
//! FLORA's output URLs are "long-lived but not permanent; download to keep". A download goes
//! to a temporary file in the destination directory and is renamed into place only when
//! complete (length checked against `Content-Length`), so `dest` never holds a partial file.
//! Media hosts are other origins: the FLORA key and custom headers never go there.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE,
    LAST_MODIFIED, RANGE,
};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::client::{Client, Exchange, Failure, Verdict, Watch, failure_error};
use crate::connector::Origin;
use crate::content::{self, Family, safe_file_stem};
use crate::error::{Error, root_causes};
use crate::policy::retryable_status;
use crate::technique::TechniqueRun;
use crate::upload::Progress;
use crate::urls::{is_https_or_loopback, strip_query};
use crate::wire::{MediaType, RunOutput};

/// Settings of one download.
#[derive(Clone, Default)]
pub struct DownloadOptions {
    /// Called with `(bytes received, total if known)`.
    pub progress: Option<Progress>,
    /// File name (without extension) to use when the destination is a directory; else the
    /// sanitised last segment of the URL.
    pub file_stem: Option<String>,
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("file_stem", &self.file_stem)
            .finish()
    }
}

impl DownloadOptions {
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

/// Where a download goes.
enum Dest<'a> {
    /// Exactly this file.
    File(PathBuf),
    /// A name chosen in this directory.
    Dir(PathBuf),
    /// One output of `save_outputs`: named `<stem>.<ext>` with an extension of the output's
    /// kind, on a path no other output of the same call has claimed.
    Output {
        dir: PathBuf,
        stem: String,
        kind: Option<Family>,
        claimed: &'a Claimed,
    },
}

/// The file names one `save_outputs` has given (lowercased): no two outputs share a path.
type Claimed = std::sync::Mutex<std::collections::HashSet<String>>;

/// `<stem>.<ext>` (or `<stem>` without `ext`), else `<stem>-2.<ext>`, `-3`, …: the first
/// that no other output of the call has claimed.
fn claim(claimed: &Claimed, stem: &str, ext: Option<&str>) -> String {
    let name = |n: usize| {
        let stem = if n == 1 {
            stem.to_owned()
        } else {
            format!("{stem}-{n}")
        };
        match ext {
            Some(e) => format!("{stem}.{e}"),
            None => stem,
        }
    };
    let mut taken = claimed.lock().unwrap_or_else(|p| p.into_inner());
    let mut n = 1;
    while !taken.insert(name(n).to_ascii_lowercase()) {
        n += 1;
    }
    name(n)
}

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

    async fn download_to(
        &self,
        url: &str,
        dest: Dest<'_>,
        options: &DownloadOptions,
    ) -> Result<PathBuf, Error> {
        let shown = strip_query(url);
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::InvalidInput(format!("{shown:?} is not a URL ({e})")))?;
        if !is_https_or_loopback(&parsed) {
            return Err(Error::InvalidInput(format!(
                "{shown} is not an https:// URL; only https:// (or http:// on loopback) is \
                 downloaded"
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
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io("create", &dir, e))?;
        // Dropped (and deleted) on every error path: no partial file is ever left behind.
        let tmp = file_builder()
            .prefix(".flora-download-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(|e| io("create a temporary file in", &dir, e))?;
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
            Dest::Output {
                dir,
                stem,
                kind,
                claimed,
            } => {
                let ext = content_type
                    .as_deref()
                    .map_or("bin", |ct| content::saved_extension(ct, kind));
                dir.join(claim(claimed, &stem, Some(ext)))
            }
        };
        tmp.persist(&path)
            .map_err(|e| io("move the download into", &path, e.error))?;
        Ok(path)
    }
}

/// One download to a temporary file; across attempts it keeps what was written, so a broken
/// transfer resumes with `Range` where the host allows.
struct Fetch {
    url: url::Url,
    /// The URL without its query, for messages.
    shown: String,
    file: tokio::fs::File,
    tmp_path: PathBuf,
    written: u64,
    total: Option<u64>,
    resumable: bool,
    /// The first answer's strong `ETag`, else its `Last-Modified`: a resumed range must come
    /// from the same version of the resource (`If-Range`, and checked on the 206).
    validator: Option<String>,
    content_type: Option<String>,
    progress: Option<Progress>,
}

impl Fetch {
    fn problem(&self, problem: String) -> Error {
        Error::Download {
            url: self.shown.clone(),
            problem,
        }
    }

    /// Truncates the temporary file to `len` and writes on from there. Also after an attempt
    /// cut off mid-write, whose last bytes were never counted.
    async fn rewind(&mut self, len: u64) -> Result<(), Error> {
        self.written = len;
        let io = |source| Error::Io {
            action: "write",
            path: self.tmp_path.clone(),
            source,
        };
        self.file.set_len(len).await.map_err(io)?;
        self.file
            .seek(std::io::SeekFrom::Start(len))
            .await
            .map(drop)
            .map_err(io)
    }

    async fn receive(&mut self, response: reqwest::Response, watch: &Watch) -> Verdict<()> {
        let resuming = self.written > 0 && self.resumable;
        let status = response.status();
        match status {
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Verdict::Fail(Error::MediaGone {
                    url: self.shown.clone(),
                    status: status.as_u16(),
                });
            }
            StatusCode::PARTIAL_CONTENT if resuming => {
                // The range asked for, of the resource of the first answer: the start where
                // the file stands, and the total length the first answer gave.
                let range = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                let total_matches = |total: Option<u64>| match (total, self.total) {
                    (Some(now), Some(first)) => now == first,
                    _ => true,
                };
                let same_version = match (&self.validator, validator(response.headers())) {
                    (Some(first), Some(now)) => *first == now,
                    _ => true,
                };
                match range {
                    Some((start, total))
                        if start == self.written && total_matches(total) && same_version => {}
                    _ => {
                        // Not the range asked for: start over without ranges.
                        self.resumable = false;
                        return Verdict::retry(
                            self.problem("the host answered another range than asked".to_owned()),
                        );
                    }
                }
                if let Err(e) = self.rewind(self.written).await {
                    return Verdict::Fail(e);
                }
            }
            StatusCode::PARTIAL_CONTENT => {
                // Only a 200 answers a request for the whole file.
                self.resumable = false;
                return Verdict::retry(
                    self.problem(
                        "the host answered 206 Partial Content to a request for the whole file"
                            .to_owned(),
                    ),
                );
            }
            s if s.is_success() => {
                // A full body: start the file over.
                if let Err(e) = self.rewind(0).await {
                    return Verdict::Fail(e);
                }
                let headers = response.headers();
                self.total = response.content_length();
                self.validator = validator(headers);
                self.resumable = headers
                    .get(ACCEPT_RANGES)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("bytes"));
                self.content_type = headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(content::normalise)
                    .filter(|ct| ct != "application/octet-stream");
            }
            s => {
                let err = self.problem(format!("HTTP {}", s.as_u16()));
                return if retryable_status(s) {
                    Verdict::retry(err)
                } else {
                    Verdict::Fail(err)
                };
            }
        }
        // `identity` was asked: encoded bytes would not be the media.
        if let Some(encoding) = response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .filter(|e| !e.trim().eq_ignore_ascii_case("identity"))
        {
            return Verdict::Fail(self.problem(format!(
                "the host sent `{encoding}`-encoded bytes although `identity` was asked; \
                 saving them would not give the media file"
            )));
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    return Verdict::retry(self.problem(format!(
                        "the connection broke after {} bytes: {}",
                        self.written,
                        root_causes(&e.without_url())
                    )));
                }
            };
            if let Err(source) = self.file.write_all(&chunk).await {
                return Verdict::Fail(Error::Io {
                    action: "write",
                    path: self.tmp_path.clone(),
                    source,
                });
            }
            self.written += chunk.len() as u64;
            watch.moved(chunk.len() as u64);
            if let Some(p) = &self.progress {
                p(self.written, self.total);
            }
        }
        match self.total {
            Some(total) if self.written != total => {
                Verdict::retry(self.problem(format!("received {} of {total} bytes", self.written)))
            }
            _ => Verdict::Done(()),
        }
    }
}

impl Exchange for Fetch {
    type Output = ();

    fn origin(&self) -> Origin {
        Origin::Foreign
    }

    fn url(&self) -> &url::Url {
        &self.url
    }

    fn endpoint(&self) -> String {
        format!("the download of {}", self.shown)
    }

    fn streams(&self) -> bool {
        true
    }

    fn request(
        &mut self,
        shaper: &reqwest::Client,
        _watch: &Watch,
    ) -> Result<reqwest::RequestBuilder, Error> {
        // The bytes on disk must be the media: no transfer encoding (`gzip`, …) is accepted.
        let request = shaper
            .get(self.url.clone())
            .header(ACCEPT_ENCODING, "identity");
        Ok(
            match (&self.validator, self.written > 0 && self.resumable) {
                // A changed resource answers 200 with all of it, not a range of the new version.
                (Some(v), true) => request
                    .header(RANGE, format!("bytes={}-", self.written))
                    .header(IF_RANGE, v.as_str()),
                (None, true) => request.header(RANGE, format!("bytes={}-", self.written)),
                (_, false) => request,
            },
        )
    }

    async fn answer(&mut self, response: reqwest::Response, watch: &Watch) -> Verdict<()> {
        self.receive(response, watch).await
    }

    fn failed(&self, failure: Failure, attempts: u32, per_attempt: std::time::Duration) -> Error {
        match failure {
            Failure::Connection(e) => self.problem(root_causes(&e)),
            // Stalled or timed out: the shared error names the host and the bytes.
            other => failure_error(self, other, attempts, per_attempt),
        }
    }
}

/// Temporary files become the user's files: give them ordinary permissions (tempfile's
/// default is owner-only), as a plain `File::create` would under a usual umask.
fn file_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b
}

/// What identifies a version of a resource for `If-Range`: a strong `ETag` (a weak one may
/// not be used there), else `Last-Modified`.
fn validator(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    text(ETAG)
        .filter(|e| !e.starts_with("W/"))
        .or_else(|| text(LAST_MODIFIED))
        .map(str::to_owned)
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`): the start and, when known, the total length.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// Writes `text` to `path` atomically (temporary file + rename).
async fn write_text(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |action, source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let tmp = file_builder()
        .prefix(".flora-output-")
        .tempfile_in(dir)
        .map_err(|e| io("create", e))?;
    tokio::fs::write(tmp.path(), text)
        .await
        .map_err(|e| io("write", e))?;
    tmp.persist(path).map_err(|e| io("write", e.error))?;
    Ok(())
}

impl<O> TechniqueRun<O> {
    /// Saves every output of the run (typed and extra) into `dir`: media as
    /// `<output_id>.<ext>` (downloaded), text as `<output_id>.txt`. Returns the paths in
    /// output order.
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
        save_all(client, self.all_outputs(), dir.as_ref()).await
    }
}

/// A media output whose value is a URL to download (else it is saved as text).
fn is_media_url(o: &RunOutput) -> bool {
    o.kind != MediaType::Text
        && url::Url::parse(&o.url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
}

async fn save_all(
    client: &Client,
    outputs: &[RunOutput],
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| Error::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    let claimed = Claimed::default();
    // Text outputs' names are known now: claimed first, so they do not depend on which
    // download finishes first. Media names are claimed when their type is known.
    let text_paths: Vec<Option<PathBuf>> = outputs
        .iter()
        .map(|o| {
            (!is_media_url(o))
                .then(|| dir.join(claim(&claimed, &safe_file_stem(&o.output_id), Some("txt"))))
        })
        .collect();
    let claimed = &claimed;
    let mut jobs = Vec::new();
    for (o, text_path) in outputs.iter().zip(text_paths) {
        jobs.push(async move {
            match text_path {
                Some(path) => {
                    write_text(&path, &o.url).await?;
                    Ok(path)
                }
                None => {
                    let dest = Dest::Output {
                        dir: dir.to_path_buf(),
                        stem: safe_file_stem(&o.output_id),
                        kind: Family::of_output(&o.kind),
                        claimed,
                    };
                    client
                        .download_to(&o.url, dest, &DownloadOptions::default())
                        .await
                }
            }
        });
    }
    futures_util::future::try_join_all(jobs).await
}
