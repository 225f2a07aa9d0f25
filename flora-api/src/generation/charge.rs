//! What a generation cost: the charge on the ended run, read again for a while when it is
//! missing (FLORA has reported a terminal run's charge late), never the create quote.

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::poll::RunState;
use crate::wire::Run;

/// What a generation cost, as far as FLORA has said.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Charge {
    /// The charge on the ended run, in USD.
    Settled(f64),
    /// The ended run never showed its charge while it was read again: what it cost is not
    /// known, only that it is at least 0 USD. `quote` is the create answer's `charged_cost`
    /// (FLORA's own team measured a quote of 0.253 USD settle at 0.873 USD: not the charge).
    Unsettled {
        /// The create answer's `charged_cost`.
        quote: Option<f64>,
        /// How long the charge was read again.
        waited: Duration,
    },
}

impl Charge {
    /// The settled charge in USD, if FLORA gave it.
    pub fn settled(&self) -> Option<f64> {
        match self {
            Charge::Settled(c) => Some(*c),
            Charge::Unsettled { .. } => None,
        }
    }

    /// A lower bound in USD: the charge, or 0 when it never settled.
    pub fn floor(&self) -> f64 {
        self.settled().unwrap_or(0.0)
    }
}

impl fmt::Display for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Charge::Settled(c) => write!(f, "{c} USD"),
            Charge::Unsettled { quote, waited } => {
                write!(
                    f,
                    "≥ 0 USD (FLORA had not settled the charge after {} s",
                    waited.as_secs()
                )?;
                if let Some(q) = quote {
                    write!(
                        f,
                        "; its create-time quote was {q} USD, which is not the charge"
                    )?;
                }
                write!(f, ")")
            }
        }
    }
}

/// Waits for the run to end, then reads the charge of a completed run again with growing
/// pauses, for at most `settle_for`, while it is missing.
pub(super) async fn wait_settled(
    state: &mut RunState,
    quote: Option<f64>,
    settle_for: Duration,
    on_update: Box<dyn FnMut(&Run) + Send + '_>,
) -> Result<(Run, Charge), Error> {
    let mut run = state.wait_run(on_update).await?;
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_secs(2);
    loop {
        if let Some(c) = run.charged_cost {
            return Ok((run, Charge::Settled(c)));
        }
        let waited = started.elapsed();
        if waited >= settle_for {
            tracing::warn!(run_id = %run.run_id, "the generation's charge had not settled; reporting a floor");
            return Ok((run, Charge::Unsettled { quote, waited }));
        }
        tokio::time::sleep(pause.min(settle_for.saturating_sub(waited))).await;
        pause = pause.saturating_mul(2);
        match state.poll().await {
            // A completed run stays completed; its outputs are those of the first answer if
            // a later read drops them.
            Ok(again) if again.charged_cost.is_some() => {
                run.charged_cost = again.charged_cost;
            }
            Ok(_) => {}
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, "reading the charge again failed; trying on");
            }
            Err(e) => return Err(e),
        }
    }
}
