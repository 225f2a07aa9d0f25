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
