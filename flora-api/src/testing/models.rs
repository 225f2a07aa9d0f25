//! The fake's models and generations (feature `models`): typed rules per model, and what
//! was sent. The answers themselves are `core/generations.rs`'s.

use std::fmt;
use std::sync::Arc;

use super::{Core, FakeFlora, core};

/// A generation the fake was asked for, as sent ([`FakeFlora::generations`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SentGeneration {
    /// `model`.
    pub model_id: String,
    /// `prompt`.
    pub prompt: String,
    /// `params`, as sent (FLORA does not check them; the fake keeps them for tests).
    pub params: serde_json::Value,
}

/// # Models and generations (feature `models`)
impl FakeFlora {
    /// Starts a rule for model `M` and lists it in `GET /models`.
    ///
    /// Generations behave as FLORA's were measured to: params are not checked (the typed
    /// structs check them before any request); a repeated `Idempotency-Key` answers 409
    /// with no run; failed runs report progress 100; the create answer's `charged_cost` is
    /// a quote (the estimate), and a completed run is charged twice it unless
    /// [`charges`](ModelRuleBuilder::charges) says otherwise.
    pub fn model<M: crate::Model>(&self) -> ModelRuleBuilder {
        // The entry the code was generated from; the fake's own estimate, which its quotes
        // and charges are made of (see above). An entry that does not parse (hand-edited
        // generated code) is listed with its id and type only: generating then fails with
        // the error that says to regenerate.
        let mut schema = M::INFO.schema().unwrap_or_else(|_| crate::ModelSchema {
            model_id: M::INFO.model_id.to_owned(),
            name: M::INFO.model_id.to_owned(),
            kind: M::INFO.kind.to_owned(),
            provider: None,
            capabilities: Vec::new(),
            estimated_credits: None,
            estimated_seconds: None,
            params: Vec::new(),
            beta: None,
            extra: crate::wire::Extra::default(),
        });
        schema
            .provider
            .get_or_insert_with(|| "FakeFlora".to_owned());
        schema.estimated_credits = Some(10.0);
        schema.estimated_seconds = Some(10.0);
        self.model_schema(&schema)
    }

    /// Registers a model from its catalog entry (a file of `schemas/models/`, an entry of
    /// `GET /models`) and starts a rule for it.
    pub fn model_schema(&self, schema: &crate::ModelSchema) -> ModelRuleBuilder {
        self.core
            .register_model(serde_json::to_value(schema).unwrap_or(serde_json::Value::Null));
        ModelRuleBuilder::new(self.core.clone(), &schema.model_id)
    }

    /// The generations started, in order.
    pub fn generations(&self) -> Vec<SentGeneration> {
        self.core
            .generation_journal()
            .into_iter()
            .map(|(model_id, prompt, params)| SentGeneration {
                model_id,
                prompt,
                params,
            })
            .collect()
    }
}

/// A rule for a model's generations ([`FakeFlora::model`]); the latest rule with uses left
/// decides each generation.
#[must_use = "a rule is added by `completes` or `fails`"]
pub struct ModelRuleBuilder {
    core: Arc<Core>,
    model_id: String,
    rule: core::Rule,
}

impl fmt::Debug for ModelRuleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelRuleBuilder")
            .field("model_id", &self.model_id)
            .field("pending_polls", &self.rule.pending_polls)
            .finish_non_exhaustive()
    }
}

impl ModelRuleBuilder {
    fn new(core: Arc<Core>, model_id: &str) -> Self {
        ModelRuleBuilder {
            core,
            model_id: model_id.to_owned(),
            rule: core::Rule::completes(0),
        }
    }

    /// Polls answered `pending`/`running` before the final state.
    pub fn pending_polls(mut self, n: u32) -> Self {
        self.rule.pending_polls = n;
        self
    }

    /// The settled charge of a completed generation, in USD.
    pub fn charges(mut self, usd: f64) -> Self {
        self.rule.charges = Some(usd);
        self
    }

    /// The create answer's `charged_cost` (a quote), in USD.
    pub fn quotes(mut self, usd: f64) -> Self {
        self.rule.quote = Some(usd);
        self
    }

    /// The first `reads` reads of the ended run leave its charge out, as FLORA has.
    pub fn charge_settles_after(mut self, reads: u32) -> Self {
        self.rule.unsettled_reads = reads;
        self
    }

    /// The create answer's `estimated_seconds`.
    pub fn estimated_seconds(mut self, secs: f64) -> Self {
        self.rule.estimated_seconds = Some(secs);
        self
    }

    /// The rule decides only the next `n` generations, then an earlier rule does.
    pub fn times(mut self, n: u32) -> Self {
        self.rule.uses_left = Some(n);
        self
    }

    /// Generations complete with a placeholder output of the model's type.
    pub fn completes(self) {
        self.core.add_model_rule(&self.model_id, self.rule);
    }

    /// Generations fail with this `error_code` and `error_message` (progress 100, refunded).
    pub fn fails(mut self, error_code: impl Into<String>, message: impl Into<String>) {
        self.rule.ending = core::Ending::Fails {
            code: error_code.into(),
            message: message.into(),
        };
        self.core.add_model_rule(&self.model_id, self.rule);
    }
}
