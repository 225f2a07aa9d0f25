//! Local bytes before the first request: read, typed, checked, and streamed per attempt.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::{CHUNK, Progress, UploadOptions};
use crate::content;
use crate::error::Error;
use crate::kinds::MediaKind;

/// Local bytes to send: a file streamed from disk, or bytes already in memory.
#[derive(Clone)]
pub(super) enum Local {
    File(PathBuf),
    Memory(Bytes),
}

/// Everything known about local bytes before the first request.
pub(super) struct Prepared {
    pub local: Local,
    pub len: u64,
    pub content_type: String,
    pub file_name: String,
}

impl Local {
    /// A body for one attempt, in chunks of [`CHUNK`], each reported to `progress` as it goes
    /// out. Rebuilt per attempt.
    pub(super) fn body(
        &self,
        len: u64,
        progress: Option<Progress>,
    ) -> Result<reqwest::Body, Error> {
        let chunks = match self {
            Local::Memory(bytes) => {
                let bytes = bytes.clone();
                let pieces = (0..bytes.len())
                    .step_by(CHUNK)
                    .map(move |at| Ok(bytes.slice(at..(at + CHUNK).min(bytes.len()))));
                futures_util::stream::iter(pieces.collect::<Vec<std::io::Result<Bytes>>>()).boxed()
            }
            Local::File(path) => {
                let file = std::fs::File::open(path).map_err(|source| Error::Io {
                    action: "open",
                    path: path.clone(),
                    source,
                })?;
                read_ahead(file).boxed()
            }
        };
        let mut done = 0u64;
        let stream = chunks.map(move |chunk| {
            if let Ok(c) = &chunk {
                done += c.len() as u64;
                if let Some(p) = &progress {
                    p(done, Some(len));
                }
            }
            chunk
        });
        Ok(reqwest::Body::wrap_stream(stream))
    }
}

/// One blocking reader per upload, a few chunks ahead: memory stays at (queue + 1) chunks,
/// and the async side never waits on a read per chunk.
fn read_ahead(file: std::fs::File) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
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
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
}

pub(super) async fn prepare_file(
    path: &Path,
    options: &UploadOptions,
    explicit: Option<&str>,
    family: Option<MediaKind>,
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
    // A FIFO, socket or device would block the read below (forever, for a FIFO no one
    // writes to) or never end: only regular files are uploaded.
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a regular file (a FIFO, socket or device?); upload a file, or read the \
             data yourself and pass `Upload::bytes`",
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

pub(super) fn prepare(
    local: Local,
    len: u64,
    head: &[u8],
    name: &str,
    explicit: Option<&str>,
    family: Option<MediaKind>,
) -> Result<Prepared, Error> {
    if len == 0 {
        return Err(Error::InvalidInput(format!(
            "{name} is empty (0 bytes); there is nothing to upload"
        )));
    }
    let content_type = match (explicit, family) {
        (Some(ct), _) => ct.to_owned(),
        (None, Some(family)) => content::detect_typed(head, name, family)?,
        (None, None) => content::detect(head, Some(name)).ok_or_else(|| {
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
