//! The contract generated techniques implement for the fake (cargo feature `test-util`):
//! typed inputs back from the wire, typed outputs to the wire. It sits with the `Technique`
//! contract, below `testing`, so generated code never names `testing` and the fake stays on
//! top, imported by nothing. Users find these in the `testing` module, which re-exports them.

use serde_json::{Value, json};

use crate::technique::{InputValue, RawOutput, RunInput, Technique};
use crate::wire::MediaType;

/// Implemented by generated techniques (under the crate feature `test-util`): the typed
/// inputs back from the wire, for `RuleBuilder::when` and `FakeFlora::runs`, and the typed
/// outputs to the wire, for `RuleBuilder::returns`.
///
/// Both directions are on the technique (one impl per technique, not one more for its
/// outputs type) because every generated impl costs compile time (BENCHMARKS.md §2).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `FakeFlora` support compiled in",
    label = "`FakeFlora` needs this technique's test impls",
    note = "techniques generated in your crate (build.rs or `flora-codegen generate`) get them \
            with `Build::test_util_feature(\"test-util\")` / `--test-util-feature test-util`, \
            under your crate's own feature: declare `test-util = [\"flora-api/test-util\"]` in \
            [features] and run `cargo test --features test-util`",
    note = "to enable it for every `cargo test`, add your crate to its own dev-dependencies \
            with the feature: `[dev-dependencies] my-crate = {{ path = \".\", features = \
            [\"test-util\"] }}`"
)]
pub trait FakeTechnique: Technique + Sized {
    /// Rebuilds the typed inputs from a run request's inputs.
    fn from_wire(inputs: &WireInputs<'_>) -> Result<Self, String>;
    /// Writes every output of `value`.
    fn outputs_to_wire(value: &Self::Outputs, outputs: &mut WireOutputs);
}

/// A run request's inputs, read back by id.
#[derive(Debug, Clone, Copy)]
pub struct WireInputs<'a> {
    inputs: &'a [RunInput],
}

impl<'a> WireInputs<'a> {
    /// Wraps the inputs of one run request.
    pub fn new(inputs: &'a [RunInput]) -> Self {
        WireInputs { inputs }
    }

    /// Input `id` as `V` (`Option<_>` for optional inputs: absent is `None`).
    pub fn get<V: FromWireInput>(&self, id: &str) -> Result<V, String> {
        V::from_wire(
            self.inputs
                .iter()
                .find(|i| i.id == id)
                .map(|i| i.value.as_str()),
        )
        .map_err(|e| format!("input `{id}`: {e}"))
    }
}

/// A typed input value read back from its wire string.
pub trait FromWireInput: Sized {
    /// `None` when the input was not sent.
    fn from_wire(value: Option<&str>) -> Result<Self, String>;
}

impl FromWireInput for String {
    fn from_wire(value: Option<&str>) -> Result<Self, String> {
        value.map(str::to_owned).ok_or_else(|| "missing".to_owned())
    }
}

impl<T: FromWireInput> FromWireInput for Option<T> {
    fn from_wire(value: Option<&str>) -> Result<Self, String> {
        match value {
            None => Ok(None),
            Some(v) => T::from_wire(Some(v)).map(Some),
        }
    }
}

macro_rules! media_from_wire {
    ($(($kind:ident, $t:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {$(
        impl FromWireInput for crate::media::$t {
            fn from_wire(value: Option<&str>) -> Result<Self, String> {
                <crate::media::$t>::parse(value.ok_or_else(|| "missing".to_owned())?).map_err(|e| e.to_string())
            }
        }
    )*};
}
crate::kinds::for_each_media_kind!(media_from_wire);

/// The outputs of a run, as the wire's `{output_id, type, url}` objects.
#[derive(Debug, Clone, Default)]
pub struct WireOutputs {
    values: Vec<Value>,
}

impl WireOutputs {
    /// Adds output `id` of wire type `kind`.
    pub fn put<V: IntoWireOutput + ?Sized>(&mut self, id: &str, kind: &str, value: &V) {
        if let Some(url) = value.to_wire_output() {
            self.values
                .push(json!({"output_id": id, "type": value.wire_kind(kind), "url": url}));
        }
    }

    pub(crate) fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// A typed output value written to the wire.
pub trait IntoWireOutput {
    /// The wire string (`url`), or `None` to leave the output out.
    fn to_wire_output(&self) -> Option<String>;
    /// The wire type to send (the schema's, unless the value knows better).
    fn wire_kind(&self, schema_kind: &str) -> String {
        schema_kind.to_owned()
    }
}

impl<T: InputValue + ?Sized> IntoWireOutput for T {
    fn to_wire_output(&self) -> Option<String> {
        self.to_wire()
    }
}

impl IntoWireOutput for RawOutput {
    fn to_wire_output(&self) -> Option<String> {
        Some(self.value.clone())
    }
    fn wire_kind(&self, schema_kind: &str) -> String {
        match &self.kind {
            MediaType::Unknown(s) if s.is_empty() => schema_kind.to_owned(),
            other => other.as_str().to_owned(),
        }
    }
}
