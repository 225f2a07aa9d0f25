//! FLORA's three upload protocols: a URL re-hosted, a small file in one multipart create, a
//! larger one through a signed target (reserve, send the bytes, complete).

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Map, Value, json};

use super::local::{Local, Prepared};
use super::{Progress, UploadOptions};
use crate::client::{Body, Call, Client, Exchange, Verdict, Watch, read_capped};
use crate::connector::Origin;
use crate::endpoints::check_path_id;
use crate::error::retryable_status;
use crate::error::{ApiErrorCode, Error};
use crate::urls::{host, is_https_or_loopback};
use crate::wire::{Asset, UploadTarget};

impl Client {
    /// `POST /assets` under the idempotency key `<base>:<step>`: one step per distinct body.
    pub(super) async fn create_asset(
        &self,
        body: Body,
        ctx: &UploadCtx,
        step: &str,
    ) -> Result<Asset, Error> {
        let call = Call::new(Method::POST, self.url(&["assets"])?)
            .body(body)
            .idempotency_key(ctx.key(step));
        self.send_json(call).await
    }

    /// One multipart `POST /assets`; falls back to the signed path when the server does not
    /// take files directly (an older deployment answers JSON-only errors).
    pub(super) async fn upload_direct(
        &self,
        p: &Prepared,
        ctx: &UploadCtx,
    ) -> Result<Asset, Error> {
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
        // The caller's name and type go as fields only when given, as FLORA's SDK sends them,
        // but always as checked here (`image/jpeg`, `face.jpg`, not `image/jpg`, `face`).
        let given = &ctx.options;
        let fields = ctx.fields(
            given.file_name.as_ref().map(|_| p.file_name.as_str()),
            given.content_type.as_ref().map(|_| p.content_type.as_str()),
        );
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in &fields {
            if let Value::String(s) = v {
                form = form.text(k.clone(), s.clone());
            }
        }
        let part = reqwest::multipart::Part::stream_with_length(bytes.clone(), p.len)
            .file_name(p.file_name.clone());
        let part = match part.mime_str(&p.content_type) {
            Ok(part) => part,
            Err(_) => reqwest::multipart::Part::stream_with_length(bytes.clone(), p.len)
                .file_name(p.file_name.clone()),
        };
        // Encoded once: every retry under this key sends the same bytes, boundary included.
        let body = Body::multipart(form.part("file", part), &ctx.key("create")).await?;
        if let Some(progress) = &ctx.options.progress {
            progress(0, Some(p.len));
        }
        match self.create_asset(body, ctx, "create").await {
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
                // Another body than the refused create's: another key (FLORA answers a reused
                // key with another body `idempotency_conflict`).
                self.upload_signed(&memory, ctx, "create-signed").await
            }
            Err(e) => Err(e),
        }
    }

    /// Reserve (under the key step `create_step`), send the bytes to the storage host,
    /// complete.
    pub(super) async fn upload_signed(
        &self,
        p: &Prepared,
        ctx: &UploadCtx,
        create_step: &str,
    ) -> Result<Asset, Error> {
        let mut body = ctx.fields(Some(&p.file_name), Some(&p.content_type));
        body.insert("source".into(), json!("signed-url"));
        let reserved = self
            .create_asset(Body::Json(Value::Object(body)), ctx, create_step)
            .await?;
        let asset_id = reserved.asset_id.clone();
        check_path_id("asset id", &asset_id)?;
        let target = reserved;
        match self.send_bytes(&target, p, ctx).await {
            // An expired or refused target is renewed once with `POST /assets/{id}/retry`.
            Err(Error::UploadHost { status, .. })
                if matches!(status, 400 | 401 | 403 | 404 | 410) =>
            {
                tracing::info!(%asset_id, status, "upload target refused; renewing it");
                let renewed: Asset = self
                    .send_json(
                        Call::new(Method::POST, self.url(&["assets", &asset_id, "retry"])?)
                            .idempotency_key(ctx.key("retry")),
                    )
                    .await?;
                self.send_bytes(&renewed, p, ctx).await?;
            }
            sent => sent?,
        }
        let completed: Result<Asset, Error> = self
            .send_json(
                Call::new(Method::POST, self.url(&["assets", &asset_id, "complete"])?)
                    .idempotency_key(ctx.key("complete")),
            )
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

    /// The bytes to the storage host, through the client's one `send` (retries on
    /// connection errors and 5xx; no-progress timeout). No FLORA key or custom header goes
    /// there: it is another origin.
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
        let url = url::Url::parse(&url).map_err(|e| {
            Error::InvalidInput(format!(
                "the upload target of asset {} is not a URL ({e})",
                target.asset_id
            ))
        })?;
        if !is_https_or_loopback(&url) {
            return Err(Error::InvalidInput(format!(
                "the upload target of asset {} is not https://; refusing to send the file there",
                target.asset_id
            )));
        }
        let mut bytes = SignedBytes {
            asset_id: &target.asset_id,
            url,
            form,
            prepared: p,
            progress: ctx.options.progress.clone(),
        };
        self.exchange(&mut bytes).await
    }
}

/// The bytes of a signed upload: a `PUT` of the raw bytes, or a signed `POST` form.
struct SignedBytes<'a> {
    asset_id: &'a str,
    url: url::Url,
    form: Option<&'a UploadTarget>,
    prepared: &'a Prepared,
    progress: Option<Progress>,
}

impl Exchange for SignedBytes<'_> {
    type Output = ();

    fn origin(&self) -> Origin {
        Origin::Foreign
    }

    fn url(&self) -> &url::Url {
        &self.url
    }

    fn endpoint(&self) -> String {
        format!("the upload of asset {}", self.asset_id)
    }

    /// A storage host's error page may quote the signed request: its query values and the
    /// signed form's fields (policy, signature) stay out of the error.
    fn secrets(&self) -> Vec<String> {
        // Decoded and as sent: a host may echo either.
        let raw = self
            .url
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.split_once('=').map(|(_, v)| v.to_owned()));
        let query = self
            .url
            .query_pairs()
            .map(|(_, v)| v.into_owned())
            .chain(raw);
        let fields = self
            .form
            .iter()
            .flat_map(|t| t.form_fields.iter().map(|(_, v)| v.clone()));
        query.chain(fields).collect()
    }

    fn streams(&self) -> bool {
        true
    }

    fn request(&mut self, shaper: &reqwest::Client) -> Result<reqwest::RequestBuilder, Error> {
        let p = self.prepared;
        let body = p.local.body(p.len, self.progress.clone())?;
        Ok(match self.form {
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
                shaper
                    .request(method, self.url.clone())
                    .multipart(multipart.part(field, part))
            }
            None => shaper
                .put(self.url.clone())
                .header(CONTENT_LENGTH, p.len)
                .header(CONTENT_TYPE, p.content_type.clone())
                .body(body),
        })
    }

    async fn answer(
        &mut self,
        response: reqwest::Response,
        _watch: &Watch,
        client: &Client,
    ) -> Verdict<()> {
        let status = response.status();
        if status.is_success() {
            return Verdict::Done(());
        }
        // A few KiB of the host's answer say why; the rest is never downloaded.
        let text = match read_capped(response, UPLOAD_HOST_ERROR_BODY).await {
            Ok((bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => return Verdict::broke(e),
        };
        // Secrets out first, then cut: a key straddling the cut must not survive in part.
        let secrets = self.secrets();
        let others: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let error = Error::UploadHost {
            asset_id: self.asset_id.to_owned(),
            host: host(&self.url),
            status: status.as_u16(),
            body: client
                .redact_with(&text, &others)
                .chars()
                .take(500)
                .collect(),
        };
        if retryable_status(status) {
            Verdict::retry(error)
        } else {
            Verdict::Fail(error)
        }
    }
}

/// How much of an upload host's error answer is read.
const UPLOAD_HOST_ERROR_BODY: usize = 4 * 1024;

/// What one upload shares across its calls.
pub(super) struct UploadCtx {
    pub workspace: String,
    pub options: UploadOptions,
    pub key_base: String,
}

impl UploadCtx {
    /// The idempotency key of one mutating call, stable across its retries.
    fn key(&self, step: &str) -> String {
        format!("{}:{step}", self.key_base)
    }

    /// The fields every create sends.
    /// The fields every create sends, with the file name and content type as checked (never
    /// the caller's raw spelling).
    pub(super) fn fields(
        &self,
        file_name: Option<&str>,
        content_type: Option<&str>,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("workspace_id".into(), json!(self.workspace));
        let o = &self.options;
        for (k, v) in [
            ("folder", o.folder.as_deref()),
            ("project_id", o.project_id.as_deref()),
            ("file_name", file_name),
            ("content_type", content_type),
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
