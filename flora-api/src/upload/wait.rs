//! Waiting for an uploaded asset to become `ready`, through the one waiter (`waiter.rs`), as
//! a run is waited for.

use std::time::Duration;

use super::ASSET_POLL_INTERVAL;
use crate::client::Client;
use crate::error::Error;
use crate::waiter::{Gave, Waiter};
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
        let checks = std::iter::once(Duration::ZERO).chain(std::iter::repeat(ASSET_POLL_INTERVAL));
        let mut waiter = Waiter::new(checks, deadline, "asset check");
        loop {
            let checked = match waiter.pause().await {
                Ok(()) => waiter.check(self.asset(asset_id)).await,
                Err(gave) => Err(gave),
            };
            match checked {
                Ok(Some(asset)) => match asset.status {
                    AssetStatus::Ready => return Ok(asset),
                    AssetStatus::Failed => {
                        return Err(Error::AssetFailed {
                            asset_id: asset.asset_id,
                            message: asset.failure_message,
                        });
                    }
                    other => status = other,
                },
                Ok(None) => {}
                Err(Gave::TimedOut { waited }) => {
                    return Err(Error::AssetTimeout {
                        asset_id: asset_id.to_owned(),
                        last_status: status,
                        waited,
                    });
                }
                Err(Gave::Failed(e)) => return Err(e),
            }
        }
    }
}
