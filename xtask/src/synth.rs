//! A synthetic technique catalog for benchmarks: realistic shapes, deterministic per seed.
//!
//! Each technique has 1–6 inputs across all media types (both spellings), about a quarter of
//! them optional, 1–3 outputs, and descriptions of realistic length. Each model
//! ([`model_catalog`]) has 6–10 params of every type the generator knows, enums of 3–8
//! options and one dict of named numbers.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

const WORDS: &[&str] = &[
    "turn",
    "any",
    "photo",
    "into",
    "a",
    "cinematic",
    "still",
    "with",
    "soft",
    "light",
    "product",
    "shot",
    "studio",
    "background",
    "style",
    "reference",
    "face",
    "portrait",
    "color",
    "grade",
    "texture",
    "match",
    "brand",
    "logo",
    "frame",
    "motion",
    "video",
    "animate",
    "between",
    "two",
    "scenes",
    "keeping",
    "the",
    "subject",
    "consistent",
    "across",
    "angles",
    "and",
    "lighting",
    "for",
    "social",
    "ads",
    "in",
    "seconds",
];

/// The slot types the generator knows, in its order (so a seed gives the same catalog).
fn types() -> Vec<&'static str> {
    flora_codegen::known_slot_types().collect()
}

const INPUT_NAMES: &[&str] = &[
    "input_image",
    "reference_image",
    "style_image",
    "prompt",
    "negative_prompt",
    "video",
    "voiceover",
    "brief",
    "logo",
    "mask",
    "background",
    "product_shot",
];

struct Gen(ChaCha8Rng);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
    fn sentence(&mut self, min: usize, max: usize) -> String {
        let n = min + self.below(max - min + 1);
        let mut words: Vec<&str> = (0..n).map(|_| self.pick(WORDS)).collect();
        let first = words.first().map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        });
        let mut s = first.unwrap_or_default();
        if !words.is_empty() {
            words.remove(0);
        }
        for w in words {
            s.push(' ');
            s.push_str(w);
        }
        s.push('.');
        s
    }
}

/// `n` techniques as (slug, technique object), deterministic for `seed`.
pub fn catalog(n: usize, seed: u64) -> Vec<(String, Value)> {
    let mut g = Gen(ChaCha8Rng::seed_from_u64(seed));
    let types = types();
    (0..n)
        .map(|i| {
            let slug = format!("{}-{}-{i:05}", g.pick(WORDS), g.pick(WORDS));
            let n_inputs = 1 + g.below(6);
            let inputs: Vec<Value> = (0..n_inputs)
                .map(|j| {
                    let kind = g.pick(&types);
                    let mut slot = json!({
                        "id": format!("{}_{j}", g.pick(INPUT_NAMES)),
                        "name": g.sentence(1, 3).trim_end_matches('.').to_owned(),
                        "type": kind,
                        "description": g.sentence(6, 18),
                    });
                    if g.below(4) == 0 {
                        slot["optional"] = json!(true);
                    }
                    if kind.starts_with("image") && g.below(3) == 0 {
                        slot["specified_aspect_ratio"] = json!("16:9");
                    }
                    if kind.starts_with("video") && g.below(2) == 0 {
                        slot["specified_duration"] = json!(5);
                    }
                    slot
                })
                .collect();
            let n_outputs = 1 + g.below(3);
            let outputs: Vec<Value> = (0..n_outputs)
                .map(|j| {
                    json!({
                        "id": format!("output_{j}"),
                        "name": format!("Output {j}"),
                        "type": g.pick(&["imageUrl", "videoUrl", "text", "audioUrl"]),
                    })
                })
                .collect();
            let technique = json!({
                "technique_id": format!("tech_{slug}"),
                "name": g.sentence(2, 4).trim_end_matches('.').to_owned(),
                "description": format!("{} {}", g.sentence(8, 20), g.sentence(8, 20)),
                "run_cost": (1 + g.below(100)) as f64 / 100.0,
                "inputs": inputs,
                "outputs": outputs,
            });
            (slug, technique)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Models (`GET /models` entries), for the compile bench's models tree

/// A param's kind in the synthetic model catalog: every type the generator knows, a
/// `string` with options apart from a free one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ParamKind {
    Options,
    Text,
    Strings,
    Bool,
    Int,
    OptInt,
    Seed,
    Float,
    Dict,
}

impl ParamKind {
    /// The catalog's spelling of the type.
    fn wire(self) -> &'static str {
        match self {
            ParamKind::Options | ParamKind::Text => "string",
            ParamKind::Strings => "string[]",
            ParamKind::Bool => "bool",
            ParamKind::Int => "int",
            ParamKind::OptInt => "int?",
            ParamKind::Seed => "seed",
            ParamKind::Float => "float",
            ParamKind::Dict => "dict",
        }
    }
    /// Names a param of this kind has in the catalog (distinct across kinds).
    fn names(self) -> &'static [&'static str] {
        match self {
            ParamKind::Options => &[
                "aspect_ratio",
                "resolution",
                "quality",
                "style_preset",
                "output_format",
                "camera_movement",
                "voice",
            ],
            ParamKind::Text => &[
                "negative_prompt",
                "style",
                "system_prompt",
                "voice_description",
            ],
            ParamKind::Strings => &["image_urls", "reference_images", "stop_sequences"],
            ParamKind::Bool => &[
                "raw",
                "enhance_prompt",
                "loop",
                "safety_checker",
                "watermark",
            ],
            ParamKind::Int => &["steps", "num_images", "duration", "max_tokens", "fps"],
            ParamKind::OptInt => &["num_frames", "width", "height"],
            ParamKind::Seed => &["seed"],
            ParamKind::Float => &[
                "guidance_scale",
                "temperature",
                "strength",
                "top_p",
                "speed",
            ],
            ParamKind::Dict => &["lora", "motion", "color_balance"],
        }
    }
}

/// The kinds a model's params other than its first enum and its dict are drawn from.
const DRAWN_KINDS: &[ParamKind] = &[
    ParamKind::Options,
    ParamKind::Text,
    ParamKind::Strings,
    ParamKind::Bool,
    ParamKind::Int,
    ParamKind::OptInt,
    ParamKind::Seed,
    ParamKind::Float,
];

const ASPECT_RATIOS: &[&str] = &[
    "square_1_1",
    "landscape_16_9",
    "portrait_9_16",
    "landscape_4_3",
    "portrait_3_4",
    "landscape_21_9",
    "portrait_2_3",
    "landscape_3_2",
];

const OPTION_VALUES: &[&str] = &[
    "auto",
    "standard",
    "high",
    "ultra",
    "draft",
    "balanced",
    "vivid",
    "natural",
    "cinematic",
    "anime",
];

const DICT_PROPERTIES: &[&str] = &["scale", "strength", "weight", "start", "end"];

impl Gen {
    /// `k` distinct entries of `list`, in a random order.
    fn distinct<'a>(&mut self, list: &[&'a str], k: usize) -> Vec<&'a str> {
        let mut v = list.to_vec();
        for i in 0..k.min(v.len()) {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }

    fn title(value: &str) -> String {
        value
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn param(&mut self, kind: ParamKind, name: &str) -> Value {
        let mut p = json!({
            "name": name,
            "type": kind.wire(),
            "required": false,
        });
        // Required params are text, media URLs, an enum or a count; never a seed, a nullable
        // count, a switch or a dict.
        let may_require = matches!(
            kind,
            ParamKind::Options | ParamKind::Text | ParamKind::Strings | ParamKind::Int
        );
        if may_require && self.below(4) == 0 {
            p["required"] = json!(true);
        }
        if self.below(2) == 0 {
            p["label"] = json!(Self::title(name));
        }
        if self.below(3) == 0 {
            p["description"] = json!(self.sentence(6, 18));
        }
        match kind {
            ParamKind::Options => {
                let pool = if name == "aspect_ratio" {
                    ASPECT_RATIOS
                } else {
                    OPTION_VALUES
                };
                let k = 3 + self.below(6);
                let values = self.distinct(pool, k);
                let options: Vec<Value> = values
                    .iter()
                    .map(|v| {
                        let mut o = json!({"label": Self::title(v), "value": v});
                        if self.below(4) == 0 {
                            o["description"] = json!(self.sentence(4, 10));
                        }
                        o
                    })
                    .collect();
                p["default"] = json!(values[0]);
                p["options"] = json!(options);
            }
            ParamKind::Text | ParamKind::Strings | ParamKind::Seed => {}
            ParamKind::Bool => p["default"] = json!(self.below(2) == 0),
            ParamKind::Int => {
                let max = 10 * (1 + self.below(10));
                p["min"] = json!(1);
                p["max"] = json!(max);
                p["default"] = json!(1 + self.below(max));
            }
            ParamKind::OptInt => p["min"] = json!(1),
            ParamKind::Float => {
                p["min"] = json!(0);
                p["max"] = json!((1 + self.below(20)) as f64 / 2.0);
            }
            ParamKind::Dict => {
                let k = 2 + self.below(2);
                let props = self.distinct(DICT_PROPERTIES, k);
                let mut properties = serde_json::Map::new();
                for k in props {
                    let max = (1 + self.below(8)) as f64 / 2.0;
                    properties.insert(
                        k.to_owned(),
                        json!({"min": 0, "max": max, "default": max / 2.0}),
                    );
                }
                p["properties"] = Value::Object(properties);
            }
        }
        p
    }
}

/// `n` models as (file stem, model object) like `GET /models` entries, deterministic for
/// `seed`: 6–10 params each, every param type across the catalog, an enum of 3–8 options in
/// every model (sometimes more than one) and one dict of 2–3 named numbers.
pub fn model_catalog(n: usize, seed: u64) -> Vec<(String, Value)> {
    let mut g = Gen(ChaCha8Rng::seed_from_u64(seed));
    (0..n)
        .map(|i| {
            let (kind, prefix, capability) = [
                ("image", "t2i", "text-to-image"),
                ("video", "t2v", "text-to-video"),
                ("audio", "t2a", "text-to-audio"),
                ("text", "llm", "text-to-text"),
            ][g.below(4)];
            let id = format!("{prefix}-{}-{}-{i:05}", g.pick(WORDS), g.pick(WORDS));
            let n_params = 6 + g.below(5);
            let mut kinds = vec![ParamKind::Options, ParamKind::Dict];
            let mut used: Vec<&str> = Vec::new();
            let mut params = Vec::new();
            while params.len() < n_params {
                let kind = kinds
                    .pop()
                    .unwrap_or_else(|| DRAWN_KINDS[g.below(DRAWN_KINDS.len())]);
                let free: Vec<&str> = kind
                    .names()
                    .iter()
                    .copied()
                    .filter(|name| !used.contains(name))
                    .collect();
                if free.is_empty() {
                    continue;
                }
                let name = g.pick(&free);
                used.push(name);
                params.push(g.param(kind, name));
            }
            // The dict and the first enum anywhere in the list, as in the catalog.
            for k in (1..params.len()).rev() {
                let j = g.below(k + 1);
                params.swap(k, j);
            }
            let model = json!({
                "model_id": id,
                "name": g.sentence(2, 4).trim_end_matches('.').to_owned(),
                "type": kind,
                "provider": Gen::title(g.pick(WORDS)),
                "capabilities": [capability],
                "estimated_credits": 1 + g.below(40),
                "estimated_seconds": 5 + g.below(120),
                "params": params,
            });
            (id, model)
        })
        .collect()
}

/// The model catalog as schema files (`schemas/models/<id>.json`).
pub fn model_schema_files(n: usize, seed: u64) -> Vec<flora_codegen::SchemaFile> {
    model_catalog(n, seed)
        .into_iter()
        .map(|(id, m)| {
            let text = serde_json::to_string_pretty(&m).unwrap_or_default();
            flora_codegen::SchemaFile::new(format!("schemas/models/{id}.json"), text)
        })
        .collect()
}

/// The catalog as schema files, as `regen` would read them.
pub fn schema_files(n: usize, seed: u64) -> Vec<flora_codegen::SchemaFile> {
    catalog(n, seed)
        .into_iter()
        .map(|(slug, t)| {
            let text = crate::regen::schema_text(&t).unwrap_or_default();
            flora_codegen::SchemaFile::new(format!("schemas/{slug}.json"), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_and_varied() {
        let a = schema_files(200, 7);
        assert_eq!(a, schema_files(200, 7));
        assert_ne!(a, schema_files(200, 8));
        let out = flora_codegen::generate(&a, &flora_codegen::Config::flora_api()).unwrap();
        assert_eq!(out.technique_count(), 200);
        // The variety is read from the schemas the generator accepted.
        let catalog = catalog(200, 7);
        let inputs: Vec<&Vec<serde_json::Value>> = catalog
            .iter()
            .map(|(_, t)| t["inputs"].as_array().unwrap())
            .collect();
        let counts: Vec<usize> = inputs.iter().map(|i| i.len()).collect();
        assert!(counts.iter().all(|n| (1..=6).contains(n)));
        assert!(counts.contains(&1) && counts.contains(&6));
        let all = || inputs.iter().flat_map(|i| i.iter());
        assert!(all().any(|i| i["optional"] == true));
        for ty in types() {
            assert!(all().any(|i| i["type"] == ty), "{ty}");
        }
    }

    #[test]
    fn models_deterministic_valid_and_varied() {
        let a = model_schema_files(200, 7);
        assert_eq!(a, model_schema_files(200, 7));
        assert_ne!(a, model_schema_files(200, 8));
        let (out, warnings) =
            flora_codegen::generate_models(&a, &flora_codegen::Config::new()).unwrap();
        assert!(warnings.is_empty(), "{warnings}");
        assert_eq!(out.len(), 201, "a file per model and mod.rs");
        let catalog = model_catalog(200, 7);
        let mut counts = Vec::new();
        for (_, m) in &catalog {
            let params = m["params"].as_array().unwrap();
            counts.push(params.len());
            let dicts = params.iter().filter(|p| p["type"] == "dict").count();
            assert_eq!(dicts, 1, "{m}");
            assert!(params.iter().all(|p| {
                p["options"]
                    .as_array()
                    .is_none_or(|o| (3..=8).contains(&o.len()))
            }));
            assert!(params.iter().any(|p| p["options"].is_array()), "{m}");
        }
        assert!(counts.iter().all(|n| (6..=10).contains(n)));
        assert!(counts.contains(&6) && counts.contains(&10));
        let all = || {
            catalog
                .iter()
                .flat_map(|(_, m)| m["params"].as_array().unwrap())
        };
        for kind in [DRAWN_KINDS, &[ParamKind::Dict]].concat() {
            assert!(all().any(|p| p["type"] == kind.wire()), "{}", kind.wire());
        }
        assert!(all().any(|p| p["options"].as_array().is_some_and(|o| o.len() == 8)));
        assert!(all().any(|p| p["required"] == true));
        for kind in ["image", "video", "audio", "text"] {
            assert!(catalog.iter().any(|(_, m)| m["type"] == kind), "{kind}");
        }
    }
}
