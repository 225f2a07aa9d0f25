//! Files in: upload a path, bytes or a URL as a FLORA asset, typed by media kind.
//!
//! FLORA's three paths, as its own SDK takes them: a URL is re-hosted (`POST /assets
//! {source: url}`); a file of at most 4 MiB goes in one multipart `POST /assets`; a larger one
//! reserves a signed target, sends the bytes there (streamed from disk with a known
//! `Content-Length`, never with the FLORA key), then completes. Every path ends by polling the
//! asset until `ready`.

mod local;
mod options;
mod protocols;
mod source;
mod wait;

use std::time::Duration;

use serde_json::Value;

use crate::client::{Body, Call, Client};
use crate::content;
use crate::endpoints::{check_path_id, idempotency_key};
use crate::error::Error;
use crate::kinds::MediaKind;
use crate::urls::strip_query;
use crate::wire::{Asset, MediaType};
use local::{Local, Prepared, prepare, prepare_file};
use protocols::UploadCtx;
use source::Source;

pub use options::{Progress, UploadOptions};
pub use source::Upload;

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

impl Upload {
    /// Checks, without sending anything, everything an upload for a slot of type `kind`
    /// checks before its first request: a file exists, is a regular non-empty file, and its
    /// bytes are a type FLORA accepts for that kind; a URL's evident type matches. Returns
    /// the content type that would be sent (`None` for a URL without one). Check every file
    /// of a job first, and nothing is uploaded when one of them is wrong.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), flora_api::Error> {
    /// use flora_api::{MediaType, Upload};
    /// let ct = Upload::path("face.png").check(&MediaType::ImageUrl).await?;
    /// assert_eq!(ct.as_deref(), Some("image/png"));
    /// # Ok(()) }
    /// ```
    pub async fn check(&self, kind: &MediaType) -> Result<Option<String>, Error> {
        let family = kind.media_kind();
        let prepared = check_local(self, &UploadOptions::default(), None, family).await?;
        Ok(match (prepared, &self.source) {
            (Some(p), _) => Some(p.content_type),
            (None, Source::Url(u)) => url::Url::parse(u).ok().and_then(|u| {
                mime_guess::from_path(u.path())
                    .first()
                    .map(|m| content::normalise(m.essence_str()))
            }),
            (None, _) => None,
        })
    }
}

macro_rules! typed_uploads {
    ($(($kind:ident, $url:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {
        /// # Uploads of one kind
        ///
        /// One pair per [`MediaKind`]: the file's bytes must be of that kind (sniffed, not
        /// taken from its name) and a type FLORA accepts for it, checked before any request.
        impl Client {$(
            #[doc = concat!("Uploads ", $name, " and returns its URL, ready for a `", $camel, "` input.")]
            ///
            /// ```no_run
            /// # async fn demo(client: flora_api::Client) -> Result<(), flora_api::Error> {
            #[doc = concat!("let url: flora_api::", stringify!($url), " = client.", stringify!($up), "(\"", $example, "\").await?;")]
            /// # Ok(()) }
            /// ```
            pub async fn $up(&self, source: impl Into<Upload>) -> Result<crate::media::$url, Error> {
                self.$upw(source, UploadOptions::default()).await
            }

            #[doc = concat!("[`", stringify!($up), "`](Self::", stringify!($up), ") with options.")]
            pub async fn $upw(
                &self,
                source: impl Into<Upload>,
                options: UploadOptions,
            ) -> Result<crate::media::$url, Error> {
                let asset = self
                    .upload_family(source.into(), options, Some(MediaKind::$kind))
                    .await?;
                Ok(crate::media::$url::parse(ready_url(&asset)?)?)
            }
        )*}

        impl Client {
            /// Uploads for a slot of `kind` through that kind's typed helper and returns the
            /// checked URL as text: for the command line and batches, which know the kind
            /// only at run time.
            #[cfg(any(feature = "cli", feature = "batch"))]
            pub(crate) async fn upload_for_slot(
                &self,
                source: Upload,
                kind: MediaKind,
                options: UploadOptions,
            ) -> Result<String, Error> {
                Ok(match kind {
                    $(MediaKind::$kind => self.$upw(source, options).await?.to_string(),)*
                })
            }
        }
    };
}
crate::kinds::for_each_media_kind!(typed_uploads);

/// # Uploads
///
/// A local file (or bytes) to a FLORA asset URL of the right type: streamed, sniffed and
/// checked against what FLORA accepts before any request.
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

    /// `GET /assets/{asset_id}`.
    pub async fn asset(&self, asset_id: &str) -> Result<Asset, Error> {
        check_path_id("asset id", asset_id)?;
        self.send_json(Call::get(self.url(&["assets", asset_id])?))
            .await
    }

    /// The workspace for an upload (or a generation: `purpose`): explicit, else the
    /// client's, else the only one the key sees (asked once, then cached).
    pub(crate) async fn resolved_workspace(
        &self,
        explicit: Option<&str>,
        purpose: &str,
    ) -> Result<String, Error> {
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
                    [] => Err(Error::InvalidInput(format!(
                        "{purpose} needs a workspace, and the API key sees none; check the key"
                    ))),
                    many => Err(Error::InvalidInput(format!(
                        "{purpose} needs a workspace and the API key sees {}: {}; set \
                         `ClientBuilder::workspace_id` or FLORA_WORKSPACE_ID (or, for an \
                         upload, `UploadOptions::workspace_id`)",
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
        family: Option<MediaKind>,
    ) -> Result<Asset, Error> {
        let explicit = options.content_type.as_deref().map(content::normalise);
        // Everything that can be checked locally is checked before any request.
        let prepared = check_local(&source, &options, explicit.as_deref(), family).await?;
        let workspace = self
            .resolved_workspace(options.workspace_id.as_deref(), "an upload")
            .await?;
        let key_base = idempotency_key(options.idempotency_key.as_deref())?;
        let ctx = UploadCtx {
            workspace,
            options,
            key_base,
        };
        let created = match (&source.source, prepared) {
            (Source::Url(u), _) => {
                // The name given, else the URL's last segment (as FLORA's SDK); with the
                // extension of the content type given, as checked.
                let name = ctx.options.file_name.clone().or_else(|| {
                    url::Url::parse(u)
                        .ok()
                        .and_then(|p| p.path_segments()?.next_back().map(str::to_owned))
                        .filter(|s| !s.is_empty())
                });
                let name = match (name, explicit.as_deref()) {
                    (Some(n), Some(ct)) => Some(content::with_extension(&n, ct)),
                    (n, _) => n,
                };
                let mut body = ctx.fields(name.as_deref(), explicit.as_deref());
                body.insert("source".into(), Value::String(u.clone()));
                self.create_asset(Body::Json(Value::Object(body)), &ctx, "create")
                    .await?
            }
            (_, Some(p)) if p.len <= DIRECT_UPLOAD_MAX => self.upload_direct(&p, &ctx).await?,
            (_, Some(p)) => self.upload_signed(&p, &ctx, "create").await?,
            (_, None) => {
                return Err(Error::InvalidInput("nothing to upload".to_owned()));
            }
        };
        tracing::info!(asset_id = %created.asset_id, status = %created.status, "asset created");
        let deadline = ctx.options.poll_deadline.unwrap_or(DEFAULT_ASSET_DEADLINE);
        self.wait_for_asset(&created.asset_id, created.status, deadline)
            .await
    }
}

fn ready_url(asset: &Asset) -> Result<&str, Error> {
    asset.url.as_deref().ok_or_else(|| Error::AssetFailed {
        asset_id: asset.asset_id.clone(),
        message: Some("the asset is ready but has no url".to_owned()),
    })
}

/// Everything an upload checks before its first request; the local bytes, prepared, for a
/// file or bytes (`None` for a URL, which FLORA fetches).
async fn check_local(
    source: &Upload,
    options: &UploadOptions,
    explicit: Option<&str>,
    family: Option<MediaKind>,
) -> Result<Option<Prepared>, Error> {
    Ok(match &source.source {
        Source::UrlAsPath(u) => {
            return Err(Error::InvalidInput(format!(
                "{:?} was given as a file path but is a URL; to have FLORA fetch it, pass \
                 `Upload::url(..)?`",
                strip_query(u)
            )));
        }
        Source::Url(u) => {
            let guessed = explicit.map(str::to_owned).or_else(|| {
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
        Source::Path(path) => Some(prepare_file(path, options, explicit, family).await?),
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
                explicit,
                family,
            )?)
        }
    })
}
