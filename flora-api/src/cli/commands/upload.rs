//! `floret upload PATH…`: files to FLORA assets, their URLs printed.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::super::output::Out;
use super::super::report::Failure;
use super::super::session::Session;
use crate::{Upload, UploadOptions};

pub(super) async fn upload(session: &Session, out: &Out, paths: &[PathBuf]) -> Result<(), Failure> {
    // Every file checked before the first is sent.
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?;
        if !meta.is_file() {
            return Err(Failure::usage(format!(
                "{} is not a regular file",
                p.display()
            )));
        }
    }
    let client = session.client(None)?;
    let mut rows = Vec::new();
    for p in paths {
        let asset = client
            .upload(Upload::path(p), UploadOptions::default())
            .await?;
        let url = asset.url.clone().unwrap_or_default();
        out.line(&url);
        let row = json!({"path": p.display().to_string(), "asset_id": asset.asset_id, "url": url});
        out.event("uploaded", row.clone());
        rows.push(row);
    }
    out.document(&Value::Array(rows));
    Ok(())
}
