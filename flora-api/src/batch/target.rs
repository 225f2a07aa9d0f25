//! What a batch runs, a technique or a model, as data: the target fixed in the journal, the
//! request an item sends, and what a created run tells. The requests that differ by target
//! are sent in `by_target.rs`; everything else (journal, keys, window, cost guard, watcher,
//! saving) is the same engine for both.

use super::journal::Meta;
use crate::error::Error;
use crate::technique::RunInput;
use crate::wire::{Slot, TechniqueSchema};

/// What a batch runs.
pub(crate) enum Target {
    /// `POST /techniques/{slug}/runs`.
    Technique(TechniqueSchema),
    /// `POST /generate` (feature `models`).
    #[cfg(feature = "models")]
    Model(super::model::ModelTarget),
}

impl Target {
    /// What a journal's batch runs: its technique's schema, or its model (which needs the
    /// `models` feature to be sent).
    pub(crate) fn of(path: &std::path::Path, meta: &Meta) -> Result<Target, Error> {
        let unreadable = |problem: String| Error::Journal {
            path: path.to_path_buf(),
            problem,
        };
        match &meta.model {
            None => serde_json::from_value(meta.schema.clone())
                .map(Target::Technique)
                .map_err(|e| unreadable(format!("its technique schema cannot be read: {e}"))),
            #[cfg(feature = "models")]
            Some(model) => super::model::ModelTarget::of(model)
                .map(Target::Model)
                .map_err(unreadable),
            #[cfg(not(feature = "models"))]
            Some(model) => Err(unreadable(format!(
                "it is a batch of model `{}`, and this build of flora-api has no generations: \
                 resume it with the `models` feature on (floret has it)",
                model.model_id
            ))),
        }
    }

    /// The technique's input slots (a model has params, read by `generations.rs`).
    pub(crate) fn slots(&self) -> &[Slot] {
        match self {
            Target::Technique(schema) => schema.inputs.as_deref().unwrap_or(&[]),
            #[cfg(feature = "models")]
            Target::Model(_) => &[],
        }
    }

    /// "technique" or "model", for messages.
    pub(crate) fn noun(&self) -> &'static str {
        match self {
            Target::Technique(_) => "technique",
            #[cfg(feature = "models")]
            Target::Model(_) => "model",
        }
    }
}

/// One item's request, as journaled with its key.
pub(crate) enum Payload {
    /// A technique run's inputs (local files as their uploaded URLs).
    Inputs(Vec<RunInput>),
    /// A generation's checked body.
    #[cfg(feature = "models")]
    Generation(crate::model::GenerationRequest),
}

impl Payload {
    /// The exact body journaled with the key, and hashed into it (a generation's without
    /// the key, which travels in its header).
    pub(crate) fn body(&self) -> String {
        match self {
            Payload::Inputs(inputs) => serde_json::to_string(inputs).unwrap_or_default(),
            #[cfg(feature = "models")]
            Payload::Generation(request) => request.body().to_string(),
        }
    }
}

/// A run just created: what the watcher needs to know of it.
pub(crate) struct Started {
    pub run_id: String,
    /// FLORA's estimate of its end.
    pub ready_at: Option<tokio::time::Instant>,
    /// Its `created_at` in the create answer (FLORA's clock and unit).
    pub created_at: Option<f64>,
}
