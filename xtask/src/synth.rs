//! A synthetic technique catalog for benchmarks: realistic shapes, deterministic per seed.
//!
//! Each technique has 1–6 inputs across all media types (both spellings), about a quarter of
//! them optional, 1–3 outputs, and descriptions of realistic length.

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
}
