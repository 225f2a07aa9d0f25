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

/// Every difference between a generated model's params and its live catalog entry: the
/// code's params in order, then live params the code does not know. What the generator left
/// out on purpose is not a difference: a live param of a type this version cannot check, and
/// the params and dict numbers the generated entry lists under `left_out` (no Rust name, or
/// one another param or number has).
#[cfg(feature = "models")]
pub(crate) fn compare_params(
    generated: &crate::ModelSchema,
    live: &crate::ModelSchema,
) -> Vec<Drift> {
    use crate::ParamKind;
    let left_out: Vec<&str> = generated
        .extra
        .get("left_out")
        .and_then(serde_json::Value::as_array)
        .map(|names| names.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut changed = |name: &str, change: String| {
        out.push(Drift::ParamChanged {
            name: name.to_owned(),
            change,
        });
    };
    let mut removed = Vec::new();
    for g in generated.rules() {
        let Some(l) = live.params.iter().find(|l| l.name == g.name) else {
            removed.push(g.name);
            continue;
        };
        match ParamKind::from_wire(&l.kind) {
            Some(k) if k == g.kind => {}
            _ => changed(
                g.name,
                format!("type changed: {} -> {}", g.kind.as_wire(), l.kind),
            ),
        }
        if g.required != l.required {
            let became = if l.required { "required" } else { "optional" };
            changed(g.name, format!("became {became}"));
        }
        let live_values: Vec<&str> = l.options.iter().map(|o| o.value.as_str()).collect();
        let gone: Vec<String> = g
            .options
            .iter()
            .filter(|v| !live_values.contains(v))
            .map(|v| format!("`{v}`"))
            .collect();
        if !gone.is_empty() {
            changed(g.name, format!("no longer allows {}", gone.join(", ")));
        }
        let new: Vec<String> = live_values
            .iter()
            .filter(|v| !g.options.contains(v))
            .map(|v| format!("`{v}`"))
            .collect();
        if !new.is_empty() && !g.options.is_empty() {
            changed(g.name, format!("now also allows {}", new.join(", ")));
        }
        if (g.min, g.max) != (l.min, l.max) {
            let text = |min, max| crate::model::range_text(min, max).unwrap_or("any".into());
            changed(
                g.name,
                format!(
                    "range changed: {} -> {}",
                    text(g.min, g.max),
                    text(l.min, l.max)
                ),
            );
        }
        let live_props: Vec<(&str, f64, f64)> = l
            .properties
            .iter()
            .filter(|(k, _)| !left_out.contains(&format!("{}.{k}", l.name).as_str()))
            .map(|(k, r)| (k.as_str(), r.min, r.max))
            .collect();
        if !g.properties.is_empty() && g.properties != live_props {
            let show = |ps: &[(&str, f64, f64)]| {
                ps.iter()
                    .map(|(k, a, b)| format!("{k} {a}..={b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            changed(
                g.name,
                format!(
                    "numbers changed: {} -> {}",
                    show(&g.properties),
                    show(&live_props)
                ),
            );
        }
    }
    for name in removed {
        out.push(Drift::ParamRemoved {
            name: name.to_owned(),
        });
    }
    for l in &live.params {
        let checkable = ParamKind::from_wire(&l.kind)
            .is_some_and(|k| k != ParamKind::Dict || !l.properties.is_empty());
        let known = generated.params.iter().any(|g| g.name == l.name)
            || left_out.contains(&l.name.as_str());
        if checkable && !known {
            out.push(Drift::ParamAdded {
                name: l.name.clone(),
                kind: l.kind.clone(),
                required: l.required,
            });
        }
    }
    out
}

/// # Drift checks of models (feature `models`)
#[cfg(feature = "models")]
impl Client {
    /// Checks that the live catalog entry of model `M` still matches the generated code:
    /// `Ok(())`, or [`Error::ModelDrift`] listing every difference (a param gone, retyped,
    /// made required, an allowed value removed, a range changed, a param added). A free
    /// read (`GET /models`); run `cargo xtask regen` to update.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), flora_api::Error> {
    /// let client = flora_api::Client::from_env()?;
    /// client.verify_model::<flora_api::models::T2iFlux2Pro>().await?;
    /// # Ok(()) }
    /// ```
    pub async fn verify_model<M: crate::Model>(&self) -> Result<(), Error> {
        let generated = M::INFO.schema()?;
        let live = self.model(M::INFO.model_id).await?;
        let differences = compare_params(&generated, &live);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(Error::ModelDrift {
                model: M::INFO.model_id.to_owned(),
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

    #[cfg(feature = "models")]
    #[test]
    fn what_the_generator_left_out_is_not_model_drift() {
        let generated: crate::ModelSchema = serde_json::from_value(serde_json::json!({
            "model_id": "t2i-x", "name": "X", "type": "image", "left_out": ["prompt", "lora.%%"],
            "params": [{"name": "lora", "type": "dict", "properties": {"scale": {"min": 0, "max": 2}}}]
        }))
        .unwrap();
        let live: crate::ModelSchema = serde_json::from_value(serde_json::json!({
            "model_id": "t2i-x", "name": "X", "type": "image",
            "params": [
                {"name": "prompt", "type": "string"},
                {"name": "lora", "type": "dict", "properties": {
                    "scale": {"min": 0, "max": 2}, "%%": {"min": 0, "max": 1}}}
            ]
        }))
        .unwrap();
        assert_eq!(compare_params(&generated, &live), []);
    }

    #[cfg(feature = "models")]
    #[test]
    fn every_kind_of_model_drift_is_found_and_unknown_live_types_are_not_drift() {
        let entry = |params: serde_json::Value| -> crate::ModelSchema {
            let entry = serde_json::json!({
                "model_id": "t2i-x", "name": "X", "type": "image", "params": params
            });
            serde_json::from_value(entry).unwrap()
        };
        let generated = entry(serde_json::json!([
            {"name": "aspect_ratio", "type": "string", "options": [
                {"label": "S", "value": "square_1_1"}, {"label": "L", "value": "landscape_21_9"}]},
            {"name": "steps", "type": "int", "min": 1, "max": 50},
            {"name": "gone", "type": "bool"},
            {"name": "seed", "type": "seed"},
            {"name": "lora", "type": "dict", "properties": {"scale": {"min": 0, "max": 2}}}
        ]));
        let live = entry(serde_json::json!([
            {"name": "aspect_ratio", "type": "string", "options": [
                {"label": "S", "value": "square_1_1"}, {"label": "P", "value": "portrait_9_16"}]},
            {"name": "steps", "type": "int", "min": 1, "max": 30},
            {"name": "seed", "type": "float", "required": true},
            {"name": "lora", "type": "dict", "properties": {"scale": {"min": 0, "max": 1}}},
            {"name": "style", "type": "string", "required": true},
            {"name": "mystery", "type": "tensor"}
        ]));
        let shown: Vec<String> = compare_params(&generated, &live)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "param `aspect_ratio` no longer allows `landscape_21_9`",
                "param `aspect_ratio` now also allows `portrait_9_16`",
                "param `steps` range changed: from 1 to 50 -> from 1 to 30",
                "param `seed` type changed: seed -> float",
                "param `seed` became required",
                "param `lora` numbers changed: scale 0..=2 -> scale 0..=1",
                "param `gone` removed",
                "param `style` added (string, required)",
            ]
        );
    }
}
