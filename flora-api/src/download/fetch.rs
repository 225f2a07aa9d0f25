//! One download as an [`Exchange`]: a temporary file kept across attempts, resumed with
//! `Range` only from the same version of the resource, never saving encoded bytes.

use std::path::PathBuf;

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE,
    LAST_MODIFIED, RANGE,
};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::client::{Exchange, Failure, Verdict, Watch, failure_error};
use crate::connector::Origin;
use crate::content;
use crate::error::retryable_status;
use crate::error::{Error, root_causes};
use crate::upload::Progress;

/// One download to a temporary file; across attempts it keeps what was written, so a broken
/// transfer resumes with `Range` where the host allows.
pub(super) struct Fetch {
    pub(super) url: url::Url,
    /// The URL without its query, for messages.
    pub(super) shown: String,
    pub(super) file: tokio::fs::File,
    pub(super) tmp_path: PathBuf,
    pub(super) written: u64,
    pub(super) total: Option<u64>,
    pub(super) resumable: bool,
    /// The first answer's strong `ETag`, else its `Last-Modified`: a resumed range must come
    /// from the same version of the resource (`If-Range`, and checked on the 206).
    pub(super) validator: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) progress: Option<Progress>,
    /// The most bytes taken when the host announces no length, or announces more.
    pub(super) max_bytes: u64,
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
                // The 206 must name the version the first answer named.
                let same_version = match (&self.validator, validator(response.headers())) {
                    (Some(first), Some(now)) => *first == now,
                    (Some(_), None) => true,
                    (None, _) => false,
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
                if let Some(total) = self.total
                    && total > self.max_bytes
                {
                    return Verdict::Fail(self.problem(format!(
                        "the host announces {total} bytes, more than the {} allowed \
                         (DownloadOptions::max_bytes)",
                        self.max_bytes
                    )));
                }
                self.validator = validator(headers);
                // Without a validator a resumed range could come from another version of
                // the file and splice two into one: such a download always starts over.
                self.resumable = self.validator.is_some()
                    && headers
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
            // Never more than announced, nor (announced or not) more than allowed: a body
            // that keeps coming must not fill the disk.
            let after = self.written + chunk.len() as u64;
            if let Some(total) = self.total
                && after > total
            {
                return Verdict::Fail(self.problem(format!(
                    "the host sent more than the {total} bytes it announced"
                )));
            }
            if after > self.max_bytes {
                return Verdict::Fail(self.problem(format!(
                    "the host sent more than {} bytes without announcing a length; raise \
                     DownloadOptions::max_bytes if the file is really that large",
                    self.max_bytes
                )));
            }
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

    /// `GET /path`: errors name the host beside it once (`… on cdn.example:443`).
    fn endpoint(&self) -> String {
        format!("GET {}", self.url.path())
    }

    fn streams(&self) -> bool {
        true
    }

    fn request(&mut self, shaper: &reqwest::Client) -> Result<reqwest::RequestBuilder, Error> {
        // The bytes on disk must be the media: no transfer encoding (`gzip`, …) is accepted.
        let request = shaper
            .get(self.url.clone())
            .header(ACCEPT_ENCODING, "identity");
        Ok(match &self.validator {
            // A changed resource answers 200 with all of it, not a range of the new version.
            // Without a validator nothing is resumed (`resumable` is never set).
            Some(v) if self.written > 0 && self.resumable => request
                .header(RANGE, format!("bytes={}-", self.written))
                .header(IF_RANGE, v.as_str()),
            _ => request,
        })
    }

    async fn answer(
        &mut self,
        response: reqwest::Response,
        watch: &Watch,
        _client: &crate::client::Client,
    ) -> Verdict<()> {
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
