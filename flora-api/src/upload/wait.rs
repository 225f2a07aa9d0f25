//! Waiting for an uploaded asset to become `ready`, as a run is waited for: the deadline
//! bounds the whole wait (each check, its retries and the pauses), and a check that fails
//! transiently (a 503 burst, a dropped connection) is tried again until the deadline.

use std::time::Duration;

use tokio::time::Instant;

use super::ASSET_POLL_INTERVAL;
use crate::client::Client;
use crate::error::Error;
use crate::wire::{Asset, AssetStatus};

impl Client {
    /// Checks the asset at once, then about every second, until `ready` or `failed`, or
    /// until `deadline` has passed. `status` is the one the create answered.
    pub(super) async fn wait_for_asset(
        &self,
        asset_id: &str,
        mut status: AssetStatus,
        deadline: Duration,
    ) -> Result<Asset, Error> {
        let start = Instant::now();
        // `None`: a deadline too far away to represent, i.e. none.
        let end = start.checked_add(deadline);
        let left = || end.map(|e| e.saturating_duration_since(Instant::now()));
        let timed_out = |status| Error::AssetTimeout {
            asset_id: asset_id.to_owned(),
            last_status: status,
            waited: start.elapsed(),
        };
        loop {
            let checked = match left() {
                Some(l) if l.is_zero() => return Err(timed_out(status)),
                Some(l) => match tokio::time::timeout(l, self.asset(asset_id)).await {
                    Ok(checked) => checked,
                    Err(_elapsed) => return Err(timed_out(status)),
                },
                None => self.asset(asset_id).await,
            };
            match checked {
                Ok(asset) => match asset.status {
                    AssetStatus::Ready => return Ok(asset),
                    AssetStatus::Failed => {
                        return Err(Error::AssetFailed {
                            asset_id: asset.asset_id,
                            message: asset.failure_message,
                        });
                    }
                    other => status = other,
                },
                // The asset goes on server-side: a check that failed even after `send`'s
                // retries is not the upload failing. Check again until the deadline.
                Err(e) if e.is_retryable() => {
                    tracing::warn!(%asset_id, error = %e, "asset check failed; will check again");
                }
                Err(e) => return Err(e),
            }
            match left() {
                Some(l) if l.is_zero() => return Err(timed_out(status)),
                Some(l) => tokio::time::sleep(ASSET_POLL_INTERVAL.min(l)).await,
                None => tokio::time::sleep(ASSET_POLL_INTERVAL).await,
            }
        }
    }
}
