//! Settings of one upload, and the progress callback uploads and downloads share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Progress of an upload or download: `(bytes done, total if known)`.
pub type Progress = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

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
    /// Base of the idempotency keys (`<key>:create`, `<key>:complete`, `<key>:retry`, and
    /// `<key>:create-signed` when a refused direct create falls back to the signed path);
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
