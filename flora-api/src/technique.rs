//! The contract between generated code and this crate.
//!
//! Generated technique structs are data plus one `impl Technique`; everything that behaves
//! (HTTP, retries, polling, output parsing) is here, written once.

use std::borrow::Cow;

use crate::error::Error;
use crate::wire::{MediaType, Run, RunOutput};

/// A FLORA technique with typed inputs and outputs. Implemented by generated code.
///
/// An implementation gives [`INFO`](Self::INFO); the other constants are read from it and
/// should not be overridden.
pub trait Technique {
    /// What the code was generated from, in one constant (one item per technique is
    /// cheaper to compile than five; BENCHMARKS.md §2).
    const INFO: TechniqueInfo;
    /// Slug (or id) used in run paths: `POST /techniques/{SLUG}/runs`.
    const SLUG: &'static str = Self::INFO.slug;
    /// The `tech_…` id.
    const TECHNIQUE_ID: &'static str = Self::INFO.technique_id;
    /// Cost per run in USD, from the schema the code was generated from.
    const RUN_COST_USD: f64 = Self::INFO.run_cost_usd;
    /// The input slots of the schema the code was generated from, in schema order.
    /// [`Client::verify`](crate::Client::verify) compares them with the live schema.
    const INPUTS: &'static [SlotInfo] = Self::INFO.inputs;
    /// The output slots of the schema the code was generated from, in schema order.
    const OUTPUTS: &'static [SlotInfo] = Self::INFO.outputs;
    /// Typed outputs, parsed from a completed run.
    type Outputs;
    /// The inputs as sent on the wire. Omitted optional inputs are left out.
    fn inputs(&self) -> Vec<RunInput>;
    /// Takes every declared output from a completed run's `outputs`.
    ///
    /// A method here rather than a trait on the outputs type: one impl per technique
    /// instead of two is measurably cheaper to compile (BENCHMARKS.md §2).
    fn parse_outputs(outputs: &mut OutputSet) -> Result<Self::Outputs, Error>;
}

/// A technique as the generated code knows it: [`Technique::INFO`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct TechniqueInfo {
    /// Slug (or id) used in run paths.
    pub slug: &'static str,
    /// The `tech_…` id.
    pub technique_id: &'static str,
    /// Cost per run in USD, from the schema.
    pub run_cost_usd: f64,
    /// The input slots, in schema order.
    pub inputs: &'static [SlotInfo],
    /// The output slots, in schema order.
    pub outputs: &'static [SlotInfo],
}

impl TechniqueInfo {
    /// A technique description; used by generated code.
    ///
    /// ```
    /// use flora_api::{SlotInfo, TechniqueInfo};
    /// const INFO: TechniqueInfo = TechniqueInfo::new(
    ///     "cctv-cam",
    ///     "tech_cctv-cam",
    ///     0.05,
    ///     &[SlotInfo::new("input_image", "imageUrl", false)],
    ///     &[SlotInfo::new("output_image", "imageUrl", false)],
    /// );
    /// assert_eq!(INFO.inputs[0].id, "input_image");
    /// ```
    pub const fn new(
        slug: &'static str,
        technique_id: &'static str,
        run_cost_usd: f64,
        inputs: &'static [SlotInfo],
        outputs: &'static [SlotInfo],
    ) -> Self {
        TechniqueInfo {
            slug,
            technique_id,
            run_cost_usd,
            inputs,
            outputs,
        }
    }
}

/// One slot as the generated code knows it: enough to notice when the live schema drifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotInfo {
    /// The slot id, exactly as in the schema.
    pub id: &'static str,
    /// The wire type, exactly as in the schema (`imageUrl`, `text`, ...).
    pub kind: &'static str,
    /// The input may be omitted (always `false` for outputs).
    pub optional: bool,
}

impl SlotInfo {
    /// A slot description; used by generated code.
    pub const fn new(id: &'static str, kind: &'static str, optional: bool) -> Self {
        SlotInfo { id, kind, optional }
    }
}

/// One `{id, type, value}` input of a run request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunInput {
    /// The technique input id, exactly as in the schema.
    pub id: Cow<'static, str>,
    /// The wire type string, exactly as in the schema (`imageUrl`, `text`, ...).
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// The value; always a string on the wire.
    pub value: String,
}

impl RunInput {
    /// An input for dynamic (untyped) use.
    pub fn new(
        id: impl Into<Cow<'static, str>>,
        kind: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        RunInput {
            id: id.into(),
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Appends `value` as input `id` unless it is an omitted optional input.
    /// Used by generated code.
    pub fn push<V: InputValue + ?Sized>(
        inputs: &mut Vec<RunInput>,
        id: &'static str,
        kind: &'static str,
        value: &V,
    ) {
        if let Some(value) = value.to_wire() {
            inputs.push(RunInput {
                id: Cow::Borrowed(id),
                kind: Cow::Borrowed(kind),
                value,
            });
        }
    }
}

/// A value a technique input accepts. `None` means "omit this input".
pub trait InputValue {
    /// The wire string, or `None` to leave the input out of the request.
    fn to_wire(&self) -> Option<String>;
}

impl InputValue for String {
    fn to_wire(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl InputValue for str {
    fn to_wire(&self) -> Option<String> {
        Some(self.to_owned())
    }
}

/// An optional input is omitted when `None`, and also when empty: the API rejects `""`
/// for optional text inputs.
impl<T: InputValue> InputValue for Option<T> {
    fn to_wire(&self) -> Option<String> {
        self.as_ref()
            .and_then(InputValue::to_wire)
            .filter(|s| !s.is_empty())
    }
}

/// An output of a kind this crate has no type for; the value is kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutput {
    /// The wire type string.
    pub kind: MediaType,
    /// The `url` field as sent (a URL or text).
    pub value: String,
}

/// A type a run output can be parsed into.
pub trait OutputValue: Sized {
    /// Converts the output, or says why it cannot.
    fn from_output(output: RunOutput) -> Result<Self, String>;
}

impl OutputValue for String {
    fn from_output(output: RunOutput) -> Result<Self, String> {
        Ok(output.url)
    }
}

impl OutputValue for RawOutput {
    fn from_output(output: RunOutput) -> Result<Self, String> {
        Ok(RawOutput {
            kind: output.kind,
            value: output.url,
        })
    }
}

macro_rules! media_value {
    ($(($kind:ident, $t:ident, $camel:literal, $snake:literal, $name:literal, $up:ident, $upw:ident, $example:literal) $data:tt)*) => {$(
        impl InputValue for crate::media::$t {
            fn to_wire(&self) -> Option<String> {
                Some(self.as_str().to_owned())
            }
        }
        impl OutputValue for crate::media::$t {
            fn from_output(output: RunOutput) -> Result<Self, String> {
                <crate::media::$t>::try_from(output.url).map_err(|e| e.to_string())
            }
        }
    )*};
}
crate::kinds::for_each_media_kind!(media_value);

/// The outputs of a completed run, taken one by one by id. Generated code calls
/// [`OutputSet::take`] once per declared output; what is left over is kept as extras.
#[derive(Debug)]
pub struct OutputSet {
    run_id: String,
    outputs: Vec<RunOutput>,
}

impl OutputSet {
    pub(crate) fn new(run_id: String, outputs: Vec<RunOutput>) -> Self {
        OutputSet { run_id, outputs }
    }

    /// Removes output `id` and parses it as `T`; a missing output is an error naming the id.
    pub fn take<T: OutputValue>(&mut self, id: &str) -> Result<T, Error> {
        let Some(pos) = self.outputs.iter().position(|o| o.output_id == id) else {
            let present: Vec<&str> = self.outputs.iter().map(|o| o.output_id.as_str()).collect();
            return Err(Error::Outputs {
                run_id: self.run_id.clone(),
                problem: format!(
                    "output `{id}` is missing (outputs present: [{}])",
                    present.join(", ")
                ),
            });
        };
        let output = self.outputs.remove(pos);
        T::from_output(output).map_err(|why| Error::Outputs {
            run_id: self.run_id.clone(),
            problem: format!("output `{id}` could not be read: {why}"),
        })
    }

    /// Outputs not taken yet.
    pub fn remaining(&self) -> &[RunOutput] {
        &self.outputs
    }
}

/// A completed run with typed outputs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TechniqueRun<O> {
    /// `run_…` id.
    pub run_id: String,
    /// Typed outputs.
    pub outputs: O,
    /// What the run cost in USD, as reported.
    pub charged_cost: Option<f64>,
    /// Outputs the server sent beyond the declared ones (kept, not an error).
    pub extra_outputs: Vec<RunOutput>,
    /// The final run object, with its `outputs` moved into `outputs`/`extra_outputs`.
    pub run: Run,
    /// Every output as sent, in order (for [`save_outputs`](Self::save_outputs)).
    all_outputs: Vec<RunOutput>,
}

impl<O> TechniqueRun<O> {
    /// Parses the typed outputs of a completed run of technique `T`, e.g. one fetched with
    /// [`Client::get_run`](crate::Client::get_run):
    /// `TechniqueRun::from_run::<CctvCam>(run)?`. Outputs the technique does not declare are
    /// kept in [`extra_outputs`](Self::extra_outputs).
    pub fn from_run<T: Technique<Outputs = O>>(mut run: Run) -> Result<Self, Error> {
        let all_outputs = std::mem::take(&mut run.outputs);
        let mut set = OutputSet::new(run.run_id.clone(), all_outputs.clone());
        let outputs = T::parse_outputs(&mut set)?;
        Ok(TechniqueRun {
            run_id: run.run_id.clone(),
            outputs,
            charged_cost: run.charged_cost,
            extra_outputs: set.outputs,
            run,
            all_outputs,
        })
    }
}

impl<O> TechniqueRun<O> {
    /// Every output as the server sent it, typed and extra, in order.
    pub fn all_outputs(&self) -> &[RunOutput] {
        &self.all_outputs
    }
}

/// Marker for run handles started without a generated type.
#[derive(Debug, Clone, Copy)]
pub enum Untyped {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ImageUrl;

    #[test]
    fn optional_inputs_are_omitted_when_none_or_empty() {
        let mut v = Vec::new();
        RunInput::push(&mut v, "a", "text", &Some(String::new()));
        RunInput::push(&mut v, "b", "text", &None::<String>);
        RunInput::push(&mut v, "c", "imageUrl", &None::<ImageUrl>);
        assert!(v.is_empty());
        RunInput::push(&mut v, "d", "text", &String::new());
        RunInput::push(&mut v, "e", "text", &Some("hi".to_owned()));
        let img = ImageUrl::parse("https://e.com/a.png").unwrap();
        RunInput::push(&mut v, "f", "image_url", &img);
        let ids: Vec<_> = v.iter().map(|i| (&*i.id, &*i.kind, &*i.value)).collect();
        assert_eq!(
            ids,
            [
                ("d", "text", ""),
                ("e", "text", "hi"),
                ("f", "image_url", "https://e.com/a.png")
            ]
        );
    }

    fn out(id: &str, kind: &str, url: &str) -> RunOutput {
        serde_json::from_value(serde_json::json!({"output_id": id, "type": kind, "url": url}))
            .unwrap()
    }

    #[test]
    fn output_set_takes_parses_and_reports() {
        let mut set = OutputSet::new(
            "run_1".into(),
            vec![
                out("img", "imageUrl", "https://e.com/o.png"),
                out("caption", "text", "a cat"),
                out("bad", "imageUrl", "not a url"),
            ],
        );
        let img: ImageUrl = set.take("img").unwrap();
        assert_eq!(img.as_str(), "https://e.com/o.png");
        let caption: String = set.take("caption").unwrap();
        assert_eq!(caption, "a cat");
        let err = set.take::<ImageUrl>("nope").unwrap_err().to_string();
        assert!(err.contains("`nope` is missing"), "{err}");
        assert!(err.contains("[bad]"), "{err}");
        let err = set.take::<ImageUrl>("bad").unwrap_err().to_string();
        assert!(err.contains("`bad` could not be read"), "{err}");
        assert!(err.contains("cargo xtask regen"), "{err}");
    }
}
