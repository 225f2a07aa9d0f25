//! Files in: upload a path, bytes or a URL as a FLORA asset, typed by media kind.
//!
//! FLORA's three paths, as its own SDK takes them: a URL is re-hosted (`POST /assets
//! {source: url}`); a file of at most 4 MiB goes in one multipart `POST /assets`; a larger one
//! reserves a signed target, sends the bytes there (streamed from disk with a known
//! `Content-Length`, never with the FLORA key), then completes. Every path ends by polling the
//! asset until `ready`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::client::{Client, is_https_or_loopback};
use crate::content::{self, Family};
use crate::endpoints::{check_path_id, idempotency_key};
use crate::error::{ApiErrorCode, Error};
use crate::media::{AudioUrl, DocumentUrl, ImageUrl, VideoUrl};
use crate::transport::{Body, Call, backoff, host, retryable_status};
use crate::wire::{Asset, AssetStatus};

/// Files up to this size (inclusive) go in one multipart `POST /assets`; larger ones take
/// the signed-upload path. FLORA's SDK uses the same split (4 × 1024 × 1024 bytes).
pub const DIRECT_UPLOAD_MAX: u64 = 4 * 1024 * 1024;

/// Default wait for an uploaded asset to become `ready` (as FLORA's SDK).
pub const DEFAULT_ASSET_DEADLINE: Duration = Duration::from_secs(120);

/// Time between asset status checks (the first is immediate).
const ASSET_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes read from disk per chunk of a streamed upload: large enough to keep up with curl on
/// loopback (bench 7), small enough that memory stays flat.
const CHUNK: usize = 512 * 1024;

/// Progress of an upload or download: `(bytes done, total if known)`.
pub type Progress = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// What to upload: a file on disk, bytes in memory, or a URL for FLORA to fetch.
///
/// Strings and paths convert to [`Upload::path`]; a URL is only ever an upload through
/// [`Upload::url`] (a string starting with `http://` or `https://` given as a path is refused,
/// never guessed).
///
/// ```
/// use flora_api::Upload;
/// let a = Upload::path("photos/face.png");
/// let b: Upload = "photos/face.png".into(); // the same
/// let c = Upload::bytes(vec![0x89, b'P', b'N', b'G'], "face.png");
/// let d = Upload::url("https://example.com/face.png").unwrap();
/// # let _ = (a, b, c, d);
/// ```
#[derive(Clone)]
pub struct Upload {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Path(PathBuf),
    Bytes {
        bytes: Bytes,
        file_name: String,
    },
    Url(String),
    /// A URL passed where a path was expected; refused when uploading.
    UrlAsPath(String),
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Path(p) => f.debug_tuple("Upload::path").field(p).finish(),
            Source::Bytes { bytes, file_name } => f
                .debug_struct("Upload::bytes")
                .field("len", &bytes.len())
                .field("file_name", file_name)
                .finish(),
            Source::Url(u) | Source::UrlAsPath(u) => {
                f.debug_tuple("Upload::url").field(&strip_query(u)).finish()
            }
        }
    }
}

impl Upload {
    /// A file on disk, streamed when uploaded.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Upload {
            source: Source::Path(path.into()),
        }
    }

    /// Bytes in memory, with the file name to store them under (an extension is added from
    /// the detected type when missing).
    pub fn bytes(bytes: impl Into<Bytes>, file_name: impl Into<String>) -> Self {
        Upload {
            source: Source::Bytes {
                bytes: bytes.into(),
                file_name: file_name.into(),
            },
        }
    }

    /// A public `https://` URL for FLORA to fetch and re-host (technique runtimes load media
    /// only from FLORA's own and allowlisted hosts). `http://` only on loopback.
    pub fn url(url: &str) -> Result<Self, Error> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::InvalidInput(format!(
                "Upload::url: {:?} is not a URL ({e})",
                strip_query(url)
            ))
        })?;
        if !is_https_or_loopback(&parsed) || parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::InvalidInput(format!(
                "Upload::url: {:?} must be an https:// URL with a host",
                strip_query(url)
            )));
        }
        Ok(Upload {
            source: Source::Url(parsed.into()),
        })
    }
}

fn path_or_mistaken_url(s: String) -> Upload {
    let lower = s.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Upload {
            source: Source::UrlAsPath(s),
        }
    } else {
        Upload::path(s)
    }
}

/// A path (never a URL: see [`Upload::url`]).
impl From<&str> for Upload {
    fn from(s: &str) -> Self {
        path_or_mistaken_url(s.to_owned())
    }
}

/// A path (never a URL: see [`Upload::url`]).
impl From<String> for Upload {
    fn from(s: String) -> Self {
        path_or_mistaken_url(s)
    }
}

impl From<&Path> for Upload {
    fn from(p: &Path) -> Self {
        Upload::path(p)
    }
}

impl From<PathBuf> for Upload {
    fn from(p: PathBuf) -> Self {
        Upload::path(p)
    }
}

impl From<&PathBuf> for Upload {
    fn from(p: &PathBuf) -> Self {
        Upload::path(p.clone())
    }
}

/// Settings of one upload. Every field is optional.
///
/// ```
/// use std::time::Duration;
/// let options = flora_api::UploadOptions::default()
///     .workspace_id("ws_123")
///     .folder("shoots/2026")
///     .poll_deadline(Duration::from_secs(300))
///     .progress(|done, total| eprintln!("{done}/{total:?} bytes"));
/// ```
#[derive(Clone, Default)]
pub struct UploadOptions {
    /// Workspace (`ws_…`); else the client's, else the only one the key sees.
    pub workspace_id: Option<String>,
    /// Folder in the workspace's assets.
    pub folder: Option<String>,
    /// Content type, overriding detection (and FLORA's allowed-type check).
    pub content_type: Option<String>,
    /// File name to store (an extension is added from the content type when missing).
    pub file_name: Option<String>,
    /// Project to attach the asset to.
    pub project_id: Option<String>,
    /// Base of the idempotency keys (`<key>:create`, `<key>:complete`, `<key>:retry`);
    /// a fresh UUID per upload when `None`.
    pub idempotency_key: Option<String>,
    /// Called with `(bytes sent, total)` while the bytes go out.
    pub progress: Option<Progress>,
    /// How long to wait for the asset to become `ready` (default 120 s).
    pub poll_deadline: Option<Duration>,
}

impl fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadOptions")
            .field("workspace_id", &self.workspace_id)
            .field("folder", &self.folder)
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name)
            .field("project_id", &self.project_id)
            .field("idempotency_key", &self.idempotency_key)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("poll_deadline", &self.poll_deadline)
            .finish()
    }
}

impl UploadOptions {
    /// Sets [`workspace_id`](Self::workspace_id).
    pub fn workspace_id(mut self, id: impl Into<String>) -> Self {
        self.workspace_id = Some(id.into());
        self
    }
    /// Sets [`folder`](Self::folder).
    pub fn folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = Some(folder.into());
        self
    }
    /// Sets [`content_type`](Self::content_type).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
    /// Sets [`file_name`](Self::file_name).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = Some(name.into());
        self
    }
    /// Sets [`project_id`](Self::project_id).
    pub fn project_id(mut self, id: impl Into<String>) -> Self {
        self.project_id = Some(id.into());
        self
    }
    /// Sets [`idempotency_key`](Self::idempotency_key).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
    /// Sets [`progress`](Self::progress).
    pub fn progress(mut self, f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    /// Sets [`poll_deadline`](Self::poll_deadline).
    pub fn poll_deadline(mut self, d: Duration) -> Self {
        self.poll_deadline = Some(d);
        self
    }
}

/// A URL without query and fragment, for messages (signed URLs carry tokens there).
pub(crate) fn strip_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.into()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or("").to_owned(),
    }
}

/// Local bytes to send: a file streamed from disk, or bytes already in memory.
#[derive(Clone)]
enum Local {
    File(PathBuf),
    Memory(Bytes),
}

/// Everything known about local bytes before the first request.
struct Prepared {
    local: Local,
    len: u64,
    content_type: String,
    file_name: String,
}

impl Local {
    /// A body for one attempt, reporting progress as chunks go out. Rebuilt per attempt.
    async fn body(&self, len: u64, progress: Option<Progress>) -> Result<reqwest::Body, Error> {
        match self {
            Local::Memory(bytes) => {
                if let Some(p) = &progress {
                    p(len, Some(len));
                }
                Ok(reqwest::Body::from(bytes.clone()))
            }
            Local::File(path) => {
                let file = std::fs::File::open(path).map_err(|source| Error::Io {
                    action: "open",
                    path: path.clone(),
                    source,
                })?;
                // One blocking reader per upload, a few chunks ahead: memory stays at
                // (queue + 1) chunks, and the async side never waits on a read per chunk.
                let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
                tokio::task::spawn_blocking(move || {
                    use std::io::Read;
                    let mut file = file;
                    loop {
                        let mut buf = vec![0u8; CHUNK];
                        let n = match file.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => n,
                            Err(e) => {
                                let _ = tx.blocking_send(Err(e));
                                return;
                            }
                        };
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return; // the request was dropped
                        }
                    }
                });
                let mut done = 0u64;
                let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|chunk| (chunk, rx))
                })
                .map(move |chunk| {
                    if let (Ok(c), Some(p)) = (&chunk, &progress) {
                        done += c.len() as u64;
                        p(done, Some(len));
                    }
                    chunk
                });
                Ok(reqwest::Body::wrap_stream(stream))
            }
        }
    }
}

impl Client {
    /// Uploads a file, bytes or a URL and waits until the asset is `ready`.
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// use flora_api::{Upload, UploadOptions};
    /// let asset = client.upload(Upload::path("deck.pdf"), UploadOptions::default()).await?;
    /// println!("{} is at {:?}", asset.asset_id, asset.url);
    /// # Ok(()) }
    /// ```
    pub async fn upload(
        &self,
        source: impl Into<Upload>,
        options: UploadOptions,
    ) -> Result<Asset, Error> {
        self.upload_family(source.into(), options, None).await
    }

    /// Uploads an image and returns its URL, ready for an `imageUrl` input.
    ///
    /// ```no_run
    /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
    /// let face: flora_api::ImageUrl = client.upload_image("photos/face.png").await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_image(&self, source: impl Into<Upload>) -> Result<ImageUrl, Error> {
        self.upload_image_with(source, UploadOptions::default())
            .await
    }

    /// [`upload_image`](Self::upload_image) with options.
    pub async fn upload_image_with(
        &self,
        source: impl Into<Upload>,
        options: UploadOptions,
    ) -> Result<ImageUrl, Error> {
        let asset = self
            .upload_family(source.into(), options, Some(Family::Image))
            .await?;
        Ok(ImageUrl::parse(ready_url(&asset)?)?)
    }

    /// Uploads a video and returns its URL, ready for a `videoUrl` input.
    pub async fn upload_video(&self, source: impl Into<Upload>) -> Result<VideoUrl, Error> {
        self.upload_video_with(source, UploadOptions::default())
            .await
    }

    /// [`upload_video`](Self::upload_video) with options.
    pub async fn upload_video_with(
        &self,
        source: impl Into<Upload>,
        options: UploadOptions,
    ) -> Result<VideoUrl, Error> {
        let asset = self
            .upload_family(source.into(), options, Some(Family::Video))
            .await?;
        Ok(VideoUrl::parse(ready_url(&asset)?)?)
    }

    /// Uploads an audio file and returns its URL, ready for an `audioUrl` input.
    pub async fn upload_audio(&self, source: impl Into<Upload>) -> Result<AudioUrl, Error> {
        self.upload_audio_with(source, UploadOptions::default())
            .await
    }

    /// [`upload_audio`](Self::upload_audio) with options.
    pub async fn upload_audio_with(
        &self,
        source: impl Into<Upload>,
        options: UploadOptions,
    ) -> Result<AudioUrl, Error> {
        let asset = self
            .upload_family(source.into(), options, Some(Family::Audio))
            .await?;
        Ok(AudioUrl::parse(ready_url(&asset)?)?)
    }

    /// Uploads a document (PDF) and returns its URL, ready for a `documentUrl` input.
    pub async fn upload_document(&self, source: impl Into<Upload>) -> Result<DocumentUrl, Error> {
        self.upload_document_with(source, UploadOptions::default())
            .await
    }

    /// [`upload_document`](Self::upload_document) with options.
    pub async fn upload_document_with(
        &self,
        source: impl Into<Upload>,
        options: UploadOptions,
    ) -> Result<DocumentUrl, Error> {
        let asset = self
            .upload_family(source.into(), options, Some(Family::Document))
            .await?;
        Ok(DocumentUrl::parse(ready_url(&asset)?)?)
    }

    /// `GET /assets/{asset_id}`.
    pub async fn asset(&self, asset_id: &str) -> Result<Asset, Error> {
        check_path_id("asset id", asset_id)?;
        self.send_json(Call::get(self.url(&["assets", asset_id])?))
            .await
    }

    /// The workspace for an upload: explicit, else the client's, else the only one the key
    /// sees (asked once, then cached).
    async fn upload_workspace(&self, explicit: Option<&str>) -> Result<String, Error> {
        if let Some(ws) = explicit.or(self.inner.workspace_id.as_deref()) {
            if !ws.starts_with("ws_") || ws.len() == 3 {
                return Err(Error::InvalidInput(format!(
                    "workspace id {ws:?} must start with `ws_`"
                )));
            }
            return Ok(ws.to_owned());
        }
        self.inner
            .workspace_cache
            .get_or_try_init(|| async {
                let all = self.workspaces().await?;
                match all.as_slice() {
                    [one] => Ok(one.workspace_id.clone()),
                    [] => Err(Error::InvalidInput(
                        "uploads need a workspace, and the API key sees none; check the key"
                            .to_owned(),
                    )),
                    many => Err(Error::InvalidInput(format!(
                        "uploads need a workspace and the API key sees {}: {}; pass \
                         `UploadOptions::workspace_id`, or set `ClientBuilder::workspace_id` \
                         or FLORA_WORKSPACE_ID",
                        many.len(),
                        many.iter()
                            .map(|w| match &w.name {
                                Some(n) => format!("{} ({n})", w.workspace_id),
                                None => w.workspace_id.clone(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            })
            .await
            .cloned()
    }

    async fn upload_family(
        &self,
        source: Upload,
        options: UploadOptions,
        family: Option<Family>,
    ) -> Result<Asset, Error> {
        let explicit = options.content_type.as_deref().map(content::normalise);
        // Everything that can be checked locally is checked before any request.
        let prepared = match &source.source {
            Source::UrlAsPath(u) => {
                return Err(Error::InvalidInput(format!(
                    "{:?} was given as a file path but is a URL; to have FLORA fetch it, pass \
                     `Upload::url(..)?`",
                    strip_query(u)
                )));
            }
            Source::Url(u) => {
                let guessed = explicit.clone().or_else(|| {
                    let path = url::Url::parse(u).ok()?.path().to_owned();
                    mime_guess::from_path(path)
                        .first()
                        .map(|m| content::normalise(m.essence_str()))
                });
                // Without a type the server decides; a clear mismatch is refused here.
                if let Some(ct) = &guessed
                    && family.is_some()
                {
                    content::check(&strip_query(u), ct, family, true)?;
                }
                None
            }
            Source::Path(path) => {
                Some(prepare_file(path, &options, explicit.as_deref(), family).await?)
            }
            Source::Bytes { bytes, file_name } => {
                let name = options
                    .file_name
                    .clone()
                    .unwrap_or_else(|| file_name.clone());
                Some(prepare(
                    Local::Memory(bytes.clone()),
                    bytes.len() as u64,
                    &bytes[..bytes.len().min(8192)],
                    &name,
                    explicit.as_deref(),
                    family,
                )?)
            }
        };
        let workspace = self
            .upload_workspace(options.workspace_id.as_deref())
            .await?;
        let key_base = idempotency_key(options.idempotency_key.as_deref())?;
        let ctx = UploadCtx {
            workspace,
            options,
            key_base,
        };
        let created = match (&source.source, prepared) {
            (Source::Url(u), _) => {
                let mut body = ctx.fields();
                body.insert("source".into(), Value::String(u.clone()));
                if !body.contains_key("file_name") {
                    let last = url::Url::parse(u)
                        .ok()
                        .and_then(|p| p.path_segments()?.next_back().map(str::to_owned))
                        .filter(|s| !s.is_empty());
                    if let Some(last) = last {
                        body.insert("file_name".into(), Value::String(last));
                    }
                }
                self.create_asset(Body::Json(Value::Object(body)), &ctx)
                    .await?
            }
            (_, Some(p)) if p.len <= DIRECT_UPLOAD_MAX => self.upload_direct(&p, &ctx).await?,
            (_, Some(p)) => self.upload_signed(&p, &ctx).await?,
            (_, None) => {
                return Err(Error::InvalidInput("nothing to upload".to_owned()));
            }
        };
        tracing::info!(asset_id = %created.asset_id, status = %created.status, "asset created");
        let deadline = ctx.options.poll_deadline.unwrap_or(DEFAULT_ASSET_DEADLINE);
        self.wait_for_asset(&created.asset_id, deadline).await
    }

    async fn create_asset(&self, body: Body, ctx: &UploadCtx) -> Result<Asset, Error> {
        let call = Call {
            method: Method::POST,
            url: self.url(&["assets"])?,
            body: Some(body),
            idempotency_key: Some(ctx.key("create")),
        };
        self.send_json(call).await
    }

    /// One multipart `POST /assets`; falls back to the signed path when the server does not
    /// take files directly (an older deployment answers JSON-only errors).
    async fn upload_direct(&self, p: &Prepared, ctx: &UploadCtx) -> Result<Asset, Error> {
        let bytes = match &p.local {
            Local::Memory(b) => b.clone(),
            Local::File(path) => {
                Bytes::from(tokio::fs::read(path).await.map_err(|source| Error::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?)
            }
        };
        let fields = ctx.fields();
        let (name, ct) = (p.file_name.clone(), p.content_type.clone());
        let form_bytes = bytes.clone();
        let form: crate::transport::FormFn = Arc::new(move || {
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in &fields {
                if let Value::String(s) = v {
                    form = form.text(k.clone(), s.clone());
                }
            }
            let part = reqwest::multipart::Part::bytes(form_bytes.to_vec()).file_name(name.clone());
            let part = part.mime_str(&ct).unwrap_or_else(|_| {
                reqwest::multipart::Part::bytes(form_bytes.to_vec()).file_name(name.clone())
            });
            form.part("file", part)
        });
        if let Some(progress) = &ctx.options.progress {
            progress(0, Some(p.len));
        }
        match self.create_asset(Body::Multipart(form), ctx).await {
            Ok(asset) => {
                if let Some(progress) = &ctx.options.progress {
                    progress(p.len, Some(p.len));
                }
                Ok(asset)
            }
            Err(e) if refuses_direct(&e) => {
                tracing::info!(error = %e, "direct upload refused; using the signed upload");
                let memory = Prepared {
                    local: Local::Memory(bytes),
                    len: p.len,
                    content_type: p.content_type.clone(),
                    file_name: p.file_name.clone(),
                };
                self.upload_signed(&memory, ctx).await
            }
            Err(e) => Err(e),
        }
    }

    /// Reserve, send the bytes to the storage host, complete.
    async fn upload_signed(&self, p: &Prepared, ctx: &UploadCtx) -> Result<Asset, Error> {
        let mut body = ctx.fields();
        body.insert("source".into(), json!("signed-url"));
        body.insert("content_type".into(), json!(p.content_type));
        body.insert("file_name".into(), json!(p.file_name));
        let reserved = self
            .create_asset(Body::Json(Value::Object(body)), ctx)
            .await?;
        let asset_id = reserved.asset_id.clone();
        check_path_id("asset id", &asset_id)?;
        let mut target = reserved;
        let mut renewed = false;
        loop {
            match self.send_bytes(&target, p, ctx).await {
                Ok(()) => break,
                // An expired or refused target is renewed once with `POST /assets/{id}/retry`.
                Err(Error::UploadHost { status, .. })
                    if !renewed && matches!(status, 400 | 401 | 403 | 404 | 410) =>
                {
                    tracing::info!(%asset_id, status, "upload target refused; renewing it");
                    renewed = true;
                    target = self
                        .send_json(Call {
                            method: Method::POST,
                            url: self.url(&["assets", &asset_id, "retry"])?,
                            body: None,
                            idempotency_key: Some(ctx.key("retry")),
                        })
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        let completed: Result<Asset, Error> = self
            .send_json(Call {
                method: Method::POST,
                url: self.url(&["assets", &asset_id, "complete"])?,
                body: None,
                idempotency_key: Some(ctx.key("complete")),
            })
            .await;
        match completed {
            Ok(a) => Ok(a),
            // "Already complete" (e.g. a retried complete whose first answer was lost): the
            // asset says where it is.
            Err(e)
                if e.api()
                    .is_some_and(|a| a.status == 409 && a.code == ApiErrorCode::Conflict) =>
            {
                tracing::info!(%asset_id, "complete answered 409 conflict; checking the asset");
                self.asset(&asset_id).await
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes to the storage host, with retries on connection errors and 5xx. No FLORA
    /// key or custom header goes there: this uses the separate media client.
    async fn send_bytes(&self, target: &Asset, p: &Prepared, ctx: &UploadCtx) -> Result<(), Error> {
        let (url, form) = match (&target.upload, &target.upload_url) {
            (Some(t), _) => (t.url.clone(), Some(t)),
            (None, Some(u)) => (u.clone(), None),
            (None, None) => {
                return Err(Error::InvalidInput(format!(
                    "FLORA reserved asset {} without an upload target; try again later",
                    target.asset_id
                )));
            }
        };
        let parsed = url::Url::parse(&url).map_err(|e| {
            Error::InvalidInput(format!(
                "the upload target of asset {} is not a URL ({e})",
                target.asset_id
            ))
        })?;
        if !is_https_or_loopback(&parsed) {
            return Err(Error::InvalidInput(format!(
                "the upload target of asset {} is not https://; refusing to send the file there",
                target.asset_id
            )));
        }
        let inner = &self.inner;
        let mut delays = backoff(inner.backoff_min, inner.backoff_max, inner.max_retries);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let body = p.local.body(p.len, ctx.options.progress.clone()).await?;
            let request = match form {
                Some(t) => {
                    let method = t
                        .method
                        .as_deref()
                        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                        .unwrap_or(Method::POST);
                    let mut multipart = reqwest::multipart::Form::new();
                    // Signed POST policies want every field before the file.
                    for (k, v) in &t.form_fields {
                        multipart = multipart.text(k.clone(), v.clone());
                    }
                    let part = reqwest::multipart::Part::stream_with_length(body, p.len)
                        .file_name(p.file_name.clone())
                        .mime_str(&p.content_type)
                        .map_err(|e| Error::InvalidInput(format!("content type: {e}")))?;
                    let field = t.file_field.clone().unwrap_or_else(|| "file".to_owned());
                    inner
                        .media_http
                        .request(method, parsed.clone())
                        .multipart(multipart.part(field, part))
                }
                None => inner
                    .media_http
                    .put(parsed.clone())
                    .header(CONTENT_LENGTH, p.len)
                    .header(CONTENT_TYPE, p.content_type.clone())
                    .body(body),
            };
            let outcome = match request.build() {
                Ok(r) => self.execute(r, true).await,
                Err(e) => Err(e),
            };
            let retry = match outcome {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let err = Error::UploadHost {
                        asset_id: target.asset_id.clone(),
                        host: host(&parsed),
                        status: status.as_u16(),
                        body: text.chars().take(500).collect(),
                    };
                    if !retryable_status(status) {
                        return Err(err);
                    }
                    err
                }
                Err(e) => Error::Connection {
                    endpoint: format!("the upload of asset {}", target.asset_id),
                    host: host(&parsed),
                    attempts,
                    source: e.without_url(),
                },
            };
            match delays.next() {
                Some(d) => {
                    tracing::debug!(error = %retry, ?d, "upload attempt failed; retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(retry),
            }
        }
    }

    /// Checks the asset at once, then about every second, until `ready` or `failed`.
    async fn wait_for_asset(&self, asset_id: &str, deadline: Duration) -> Result<Asset, Error> {
        let start = Instant::now();
        loop {
            let asset = self.asset(asset_id).await?;
            match asset.status {
                AssetStatus::Ready => return Ok(asset),
                AssetStatus::Failed => {
                    return Err(Error::AssetFailed {
                        asset_id: asset.asset_id,
                        message: asset.failure_message,
                    });
                }
                _ => {}
            }
            let waited = start.elapsed();
            if waited >= deadline {
                return Err(Error::AssetTimeout {
                    asset_id: asset.asset_id,
                    last_status: asset.status,
                    waited,
                });
            }
            tokio::time::sleep(ASSET_POLL_INTERVAL.min(deadline - waited)).await;
        }
    }
}

/// What one upload shares across its calls.
struct UploadCtx {
    workspace: String,
    options: UploadOptions,
    key_base: String,
}

impl UploadCtx {
    /// The idempotency key of one mutating call, stable across its retries.
    fn key(&self, step: &str) -> String {
        format!("{}:{step}", self.key_base)
    }

    /// The fields every create sends.
    fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("workspace_id".into(), json!(self.workspace));
        let o = &self.options;
        for (k, v) in [
            ("folder", &o.folder),
            ("project_id", &o.project_id),
            ("file_name", &o.file_name),
            ("content_type", &o.content_type),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        m
    }
}

/// The server does not take multipart bodies on `POST /assets` (JSON-only deployments).
fn refuses_direct(e: &Error) -> bool {
    e.api().is_some_and(|a| {
        matches!(a.status, 405 | 413 | 415)
            || (a.status == 400 && a.code == ApiErrorCode::InvalidJson)
    })
}

fn ready_url(asset: &Asset) -> Result<&str, Error> {
    asset.url.as_deref().ok_or_else(|| Error::AssetFailed {
        asset_id: asset.asset_id.clone(),
        message: Some("the asset is ready but has no url".to_owned()),
    })
}

async fn prepare_file(
    path: &Path,
    options: &UploadOptions,
    explicit: Option<&str>,
    family: Option<Family>,
) -> Result<Prepared, Error> {
    let io = |action, source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let meta = tokio::fs::metadata(path).await.map_err(|e| io("read", e))?;
    if meta.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is a directory; upload one file at a time",
            path.display()
        )));
    }
    let mut head = vec![0u8; 8192];
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io("open", e))?;
    let mut filled = 0;
    while filled < head.len() {
        let n = file
            .read(&mut head[filled..])
            .await
            .map_err(|e| io("read", e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    head.truncate(filled);
    let name = options.file_name.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".to_owned())
    });
    prepare(
        Local::File(path.to_path_buf()),
        meta.len(),
        &head,
        &name,
        explicit,
        family,
    )
    .map_err(|e| match e {
        Error::InvalidInput(m) => Error::InvalidInput(format!("{}: {m}", path.display())),
        other => other,
    })
}

fn prepare(
    local: Local,
    len: u64,
    head: &[u8],
    name: &str,
    explicit: Option<&str>,
    family: Option<Family>,
) -> Result<Prepared, Error> {
    if len == 0 {
        return Err(Error::InvalidInput(format!(
            "{name} is empty (0 bytes); there is nothing to upload"
        )));
    }
    let content_type = match explicit {
        Some(ct) => ct.to_owned(),
        None => content::detect(head, Some(name)).ok_or_else(|| {
            Error::InvalidInput(format!(
                "cannot tell the type of {name} from its bytes or extension; set \
                 `UploadOptions::content_type`"
            ))
        })?,
    };
    content::check(name, &content_type, family, explicit.is_some())?;
    Ok(Prepared {
        local,
        len,
        file_name: content::with_extension(name, &content_type),
        content_type,
    })
}
