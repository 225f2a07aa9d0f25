//! Catalog entries the generation tests share.

use flora_api::ModelSchema;
use serde_json::json;

/// FLUX.2 as the catalog lists it: 4 credits (0.004 USD) a generation, an `options` param,
/// a ranged `int`, and a param of a type floret does not know (`matrix`, left out).
pub fn flux() -> ModelSchema {
    serde_json::from_value(json!({
        "model_id": "t2i-flux-2-pro", "name": "FLUX.2 [pro]", "type": "image",
        "provider": "Black Forest Labs", "capabilities": [], "estimated_credits": 4,
        "estimated_seconds": 25,
        "params": [
            {"name": "aspect_ratio", "type": "string", "required": false, "default": "square_1_1",
             "options": [{"label": "Square", "value": "square_1_1"},
                         {"label": "Landscape 16:9", "value": "landscape_16_9"}]},
            {"name": "steps", "type": "int", "required": false, "min": 1, "max": 50},
            {"name": "hologram", "type": "matrix", "required": false}
        ]
    }))
    .unwrap()
}

/// FLUX.2 as flora-codegen writes a model (`flora-codegen/tests/snapshots`), its entry that
/// of [`flux`] with a `seed` where the catalog has a param of an unknown type.
#[derive(Clone, Default)]
pub struct Flux {
    pub prompt: String,
    pub aspect_ratio: Option<String>,
    pub steps: Option<i64>,
    pub seed: Option<u64>,
}

impl std::fmt::Debug for Flux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        flora_api::debug_model(self, f)
    }
}

impl flora_api::Model for Flux {
    const INFO: flora_api::ModelInfo = flora_api::ModelInfo {
        model_id: "t2i-flux-2-pro",
        kind: "image",
        json: r#"{"model_id": "t2i-flux-2-pro", "name": "FLUX.2 [pro]", "type": "image",
            "params": [
                {"name": "aspect_ratio", "type": "string", "required": false,
                 "options": [{"value": "square_1_1", "label": "Square"},
                             {"value": "landscape_16_9", "label": "Landscape 16:9"}]},
                {"name": "steps", "type": "int", "required": false, "min": 1, "max": 50},
                {"name": "seed", "type": "seed", "required": false}
            ]}"#,
    };
    type Output = flora_api::ImageUrl;
    fn fields(&self) -> flora_api::Fields<'_> {
        flora_api::Fields::new(&self.prompt, &[&self.aspect_ratio, &self.steps, &self.seed])
    }
}
