//! Waiting for an uploaded asset to become `ready`.

use std::time::Duration;

use tokio::time::Instant;

use super::ASSET_POLL_INTERVAL;
use crate::client::Client;
use crate::error::Error;
use crate::wire::{Asset, AssetStatus};

impl Client {
    /// Checks the asset at once, then about every second, until `ready` or `failed`.
    pub(super) async fn wait_for_asset(
        &self,
        asset_id: &str,
        deadline: Duration,
    ) -> Result<Asset, Error> {
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
