//! An item's values made inputs: checked, local files uploaded once per batch by content
//! (journaled; items naming the same file wait for the one upload).

use std::path::Path;

use super::journal::ItemRow;
use super::keys;
use super::options::Event;
use super::runner::Batch;
use crate::error::Error;
use crate::technique::RunInput;
use crate::values::{self, InputValue};

impl Batch {
    /// The run's inputs, local files uploaded: each distinct file once per batch (by content
    /// and kind, journaled; items that name the same file wait for the one upload). `None`
    /// when the item ended otherwise: a value refused or an upload refused (failed), an
    /// upload that kept failing (back to planned: a resume tries again), or the batch stopped.
    pub(crate) async fn resolve(&self, row: &ItemRow) -> Result<Option<Vec<RunInput>>, Error> {
        let mut out = Vec::new();
        for slot in self.target.slots() {
            for v in row.values.get(&slot.id).into_iter().flatten() {
                let wire = slot.kind.as_str().to_owned();
                let value = match values::check(slot, v).await {
                    Ok(InputValue::Text(t) | InputValue::Url(t)) => t,
                    Ok(InputValue::File(path, kind)) => {
                        if self.stopped() {
                            return Ok(None);
                        }
                        match self.uploaded(row, &path, kind).await? {
                            Ok(url) => url,
                            Err((permanent, why)) => {
                                let why = format!("uploading {}: {why}", path.display());
                                if permanent {
                                    self.refuse(row, why)?;
                                } else {
                                    self.journal().unuploaded(row.pos)?;
                                    self.emit(Event::Deferred {
                                        key: row.key.clone(),
                                        why,
                                    });
                                }
                                return Ok(None);
                            }
                        }
                    }
                    Err(why) => {
                        self.refuse(row, why)?;
                        return Ok(None);
                    }
                };
                out.push(RunInput::new(slot.id.clone(), wire, value));
            }
        }
        Ok(Some(out))
    }

    /// The asset URL of a local file for this kind: from the journal, or uploaded now, once,
    /// whichever item asks first (the others wait for that upload).
    async fn uploaded(
        &self,
        row: &ItemRow,
        path: &Path,
        kind: crate::MediaKind,
    ) -> Result<Result<String, (bool, String)>, Error> {
        let hash = values::file_digest(path).await?;
        let wire = kind.wire().to_owned();
        if let Some(url) = self.journal().upload_url(&hash, &wire)? {
            return Ok(Ok(url));
        }
        let result = self
            .uploads
            .url(&hash, kind, || async {
                self.journal().uploading(row.pos).ok();
                let key = keys::upload_key(&self.meta.batch_id, &hash, &wire);
                let sent = self
                    .windowed(|| {
                        self.client.upload_for_slot(
                            crate::Upload::path(path),
                            kind,
                            crate::UploadOptions::default().idempotency_key(key.clone()),
                        )
                    })
                    .await;
                match sent {
                    Ok(url) => match self.journal().put_upload(&hash, &wire, &url) {
                        Ok(()) => {
                            self.emit(Event::Uploaded {
                                key: row.key.clone(),
                                path: path.to_path_buf(),
                            });
                            Ok(url)
                        }
                        Err(e) => Err((false, e.to_string())),
                    },
                    // A refusal will not change by sending the same bytes again.
                    Err(e) => Err((e.status().is_some() && !e.is_retryable(), e.to_string())),
                }
            })
            .await;
        Ok(result)
    }
}
