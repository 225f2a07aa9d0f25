//! Run-time drift check: does the live schema still match the generated code?
//!
//! Generated code carries its slots in [`Technique::INFO`]. [`Client::verify`] retrieves the
//! live schema and lists every difference, so a stale catalog is found before a paid run fails
//! with `input_validation_error`.

use crate::client::Client;
use crate::drift::Drift;
use crate::error::Error;
use crate::technique::{SlotInfo, Technique};
use crate::wire::{MediaType, Slot};

/// The same media type, whichever spelling (`imageUrl` / `image_url`).
fn same_type(generated: &str, live: &MediaType) -> bool {
    MediaType::from(generated) == *live
}

fn compare_side(side: &'static str, generated: &[SlotInfo], live: &[Slot], out: &mut Vec<Drift>) {
    let is_input = side == "input";
    for g in generated {
        match live.iter().find(|l| l.id == g.id) {
            None if is_input => out.push(Drift::InputRemoved { id: g.id.into() }),
            None => out.push(Drift::OutputRemoved { id: g.id.into() }),
            Some(l) => {
                if !same_type(g.kind, &l.kind) {
                    out.push(Drift::TypeChanged {
                        side,
                        id: g.id.into(),
                        generated: g.kind.into(),
                        live: l.kind.to_string(),
                    });
                }
                if is_input && g.optional != l.optional {
                    out.push(Drift::OptionalityChanged {
                        id: g.id.into(),
                        now_optional: l.optional,
                    });
                }
            }
        }
    }
    for l in live
        .iter()
        .filter(|l| !generated.iter().any(|g| g.id == l.id))
    {
        out.push(if is_input {
            Drift::InputAdded {
                id: l.id.clone(),
                kind: l.kind.to_string(),
                optional: l.optional,
            }
        } else {
            Drift::OutputAdded {
                id: l.id.clone(),
                kind: l.kind.to_string(),
            }
        });
    }
}

/// Every difference between generated slots and live ones, inputs first.
pub(crate) fn compare(
    inputs: &[SlotInfo],
    outputs: &[SlotInfo],
    live_inputs: &[Slot],
    live_outputs: &[Slot],
) -> Vec<Drift> {
    let mut out = Vec::new();
    compare_side("input", inputs, live_inputs, &mut out);
    compare_side("output", outputs, live_outputs, &mut out);
    out
}

/// # Drift checks
///
/// Compare generated code with the live schema before spending money on a run.
impl Client {
    /// Checks that the live schema of `T` still matches the generated code: `Ok(())`, or
    /// [`Error::SchemaDrift`] listing every difference (run `cargo xtask regen` to update).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), flora_api::Error> {
    /// # #[cfg(feature = "techniques")] {
    /// let client = flora_api::Client::from_env()?;
    /// client.verify::<flora_api::techniques::CctvCam>().await?;
    /// # }
    /// # Ok(()) }
    /// ```
    pub async fn verify<T: Technique>(&self) -> Result<(), Error> {
        let live = self.technique(T::SLUG).await?;
        let differences = compare(
            T::INPUTS,
            T::OUTPUTS,
            live.inputs.as_deref().unwrap_or_default(),
            live.outputs.as_deref().unwrap_or_default(),
        );
        if differences.is_empty() {
            Ok(())
        } else {
            Err(Error::SchemaDrift {
                technique: T::SLUG.to_owned(),
                differences,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, kind: &str, optional: bool) -> Slot {
        serde_json::from_value(serde_json::json!({"id": id, "type": kind, "optional": optional}))
            .unwrap()
    }

    #[test]
    fn every_kind_of_drift_is_found() {
        let inputs = [
            SlotInfo::new("keep", "imageUrl", false),
            SlotInfo::new("gone", "text", false),
            SlotInfo::new("retyped", "imageUrl", false),
            SlotInfo::new("loosened", "text", false),
        ];
        let outputs = [
            SlotInfo::new("o_keep", "videoUrl", false),
            SlotInfo::new("o_gone", "text", false),
        ];
        let live_in = [
            slot("keep", "image_url", false),
            slot("retyped", "videoUrl", false),
            slot("loosened", "text", true),
            slot("new", "audioUrl", true),
        ];
        let live_out = [
            slot("o_keep", "videoUrl", false),
            slot("o_new", "text", false),
        ];
        let d = compare(&inputs, &outputs, &live_in, &live_out);
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "input `gone` removed",
                "input `retyped` type changed: imageUrl -> videoUrl",
                "input `loosened` became optional",
                "input `new` added (audioUrl, optional)",
                "output `o_gone` removed",
                "output `o_new` added (text)",
            ]
        );
        assert!(compare(&inputs[..1], &[], &live_in[..1], &[]).is_empty());
    }
}
