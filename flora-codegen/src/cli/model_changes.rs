//! What changed between the old and new model catalog entries (`schemas/models/*.json`), for
//! regen's report.
//!
//! BREAKING marks a change that can stop user code from compiling, or make a value that
//! was accepted be refused before sending:
//! - a model removed;
//! - a param removed (its field goes), added as required (struct literals name every
//!   field), its type changed, or made required or optional (`T` ↔ `Option<T>`);
//! - an allowed value removed (its constant goes);
//! - a range narrowed (a number that passed the check is now refused).
//!
//! Added models, optional params and values, and widened ranges are reported unmarked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::report::{Change, Scope};

/// A model entry as the report compares it: params by name.
struct Entry {
    params: BTreeMap<String, Value>,
}

fn entries(files: &BTreeMap<String, String>) -> BTreeMap<String, Entry> {
    files
        .iter()
        .filter_map(|(name, text)| {
            let v: Value = serde_json::from_str(text).ok()?;
            let id = v
                .get("model_id")
                .and_then(Value::as_str)
                .map_or_else(|| name.trim_end_matches(".json").to_owned(), str::to_owned);
            let params = v
                .get("params")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| Some((p.get("name")?.as_str()?.to_owned(), p.clone())))
                        .collect()
                })
                .unwrap_or_default();
            Some((id, Entry { params }))
        })
        .collect()
}

fn kind(p: &Value) -> &str {
    p.get("type").and_then(Value::as_str).unwrap_or("?")
}

fn required(p: &Value) -> bool {
    p.get("required").and_then(Value::as_bool).unwrap_or(false)
}

fn options(p: &Value) -> Vec<String> {
    p.get("options")
        .and_then(Value::as_array)
        .map(|os| {
            os.iter()
                .filter_map(|o| o.get("value").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn bound(p: &Value, key: &str) -> Option<f64> {
    p.get(key).and_then(Value::as_f64)
}

/// The changes of one param that exists in both versions.
fn param_changes(model: &str, name: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    let mut push = |what: String, breaking: bool| {
        out.push(Change {
            slug: model.to_owned(),
            scope: Scope::Changed,
            what,
            breaking,
        });
    };
    if kind(old) != kind(new) {
        push(
            format!("param `{name}` changed type: {} → {}", kind(old), kind(new)),
            true,
        );
    }
    match (required(old), required(new)) {
        (false, true) => push(format!("param `{name}` is now required"), true),
        (true, false) => push(
            format!("param `{name}` is now optional (the field becomes an Option)"),
            true,
        ),
        _ => {}
    }
    let (was, now) = (options(old), options(new));
    let removed: Vec<&String> = was.iter().filter(|v| !now.contains(v)).collect();
    let added: Vec<&String> = now.iter().filter(|v| !was.contains(v)).collect();
    if !removed.is_empty() {
        push(
            format!("param `{name}` no longer allows {}", list(&removed)),
            true,
        );
    }
    if !added.is_empty() {
        push(
            format!("param `{name}` now also allows {}", list(&added)),
            false,
        );
    }
    let (old_min, new_min) = (bound(old, "min"), bound(new, "min"));
    let (old_max, new_max) = (bound(old, "max"), bound(new, "max"));
    if (old_min, old_max) != (new_min, new_max) {
        let narrowed = matches!((old_min, new_min), (None, Some(_)))
            || matches!((old_min, new_min), (Some(a), Some(b)) if b > a)
            || matches!((old_max, new_max), (None, Some(_)))
            || matches!((old_max, new_max), (Some(a), Some(b)) if b < a);
        let range = |min: Option<f64>, max: Option<f64>| {
            flora_range(min, max).unwrap_or_else(|| "any".to_owned())
        };
        push(
            format!(
                "param `{name}` range {} → {}",
                range(old_min, old_max),
                range(new_min, new_max)
            ),
            narrowed,
        );
    }
}

fn flora_range(min: Option<f64>, max: Option<f64>) -> Option<String> {
    match (min, max) {
        (Some(a), Some(b)) => Some(format!("{a}..={b}")),
        (Some(a), None) => Some(format!("≥ {a}")),
        (None, Some(b)) => Some(format!("≤ {b}")),
        (None, None) => None,
    }
}

fn list(values: &[&String]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The changes from `old` to `new` catalog files (file name → text), models in id order.
pub fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Change> {
    let (old, new) = (entries(old), entries(new));
    let mut out = Vec::new();
    let mut ids: Vec<&String> = old.keys().chain(new.keys()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        match (old.get(id), new.get(id)) {
            (Some(_), None) => out.push(Change {
                slug: id.clone(),
                scope: Scope::Removed,
                what: "model removed".to_owned(),
                breaking: true,
            }),
            (None, Some(_)) => out.push(Change {
                slug: id.clone(),
                scope: Scope::Added,
                what: "model added".to_owned(),
                breaking: false,
            }),
            (Some(a), Some(b)) => {
                for (name, p) in &a.params {
                    match b.params.get(name) {
                        None => out.push(Change {
                            slug: id.clone(),
                            scope: Scope::Changed,
                            what: format!("param `{name}` removed"),
                            breaking: true,
                        }),
                        Some(q) => param_changes(id, name, p, q, &mut out),
                    }
                }
                for (name, q) in &b.params {
                    if !a.params.contains_key(name) {
                        let req = required(q);
                        out.push(Change {
                            slug: id.clone(),
                            scope: Scope::Changed,
                            what: format!(
                                "param `{name}` added{}",
                                if req { " (required)" } else { "" }
                            ),
                            breaking: req,
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// The models part of the report: counts, then one line per change.
pub fn render(changes: &[Change], models: usize) -> String {
    let mut s = String::new();
    let count = |scope: Scope| {
        let mut ids: Vec<&str> = changes
            .iter()
            .filter(|c| c.scope == scope)
            .map(|c| c.slug.as_str())
            .collect();
        ids.dedup();
        ids.len()
    };
    let _ = writeln!(
        s,
        "{models} model(s): {} added, {} removed, {} changed",
        count(Scope::Added),
        count(Scope::Removed),
        count(Scope::Changed)
    );
    for c in changes {
        let mark = if c.breaking { "BREAKING " } else { "" };
        let _ = writeln!(s, "  {mark}{}: {}", c.slug, c.what);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(models: &[Value]) -> BTreeMap<String, String> {
        models
            .iter()
            .map(|m| {
                (
                    format!("{}.json", m["model_id"].as_str().unwrap_or("x")),
                    m.to_string(),
                )
            })
            .collect()
    }

    fn model(params: Value) -> Value {
        json!({"model_id": "t2i-a", "name": "A", "type": "image", "params": params})
    }

    fn lines(old: &[Value], new: &[Value]) -> Vec<(String, bool)> {
        diff(&files(old), &files(new))
            .into_iter()
            .map(|c| (c.what, c.breaking))
            .collect()
    }

    #[test]
    fn removals_narrowings_and_new_required_params_are_breaking() {
        let old = model(json!([
            {"name": "aspect_ratio", "type": "string", "options": [{"label": "S", "value": "square_1_1"}, {"label": "L", "value": "landscape_16_9"}]},
            {"name": "steps", "type": "int", "min": 1, "max": 50},
            {"name": "seed", "type": "seed"},
            {"name": "guidance", "type": "float", "required": true}
        ]));
        let new = model(json!([
            {"name": "aspect_ratio", "type": "string", "options": [{"label": "S", "value": "square_1_1"}, {"label": "P", "value": "portrait_9_16"}]},
            {"name": "steps", "type": "int", "min": 1, "max": 30},
            {"name": "guidance", "type": "float", "required": false},
            {"name": "style", "type": "string", "required": true}
        ]));
        let got = lines(&[old], &[new]);
        let breaking = |needle: &str| {
            got.iter()
                .find(|(w, _)| w.contains(needle))
                .map(|(_, b)| *b)
                .unwrap_or_else(|| panic!("no line with {needle:?} in {got:?}"))
        };
        assert!(breaking("no longer allows `landscape_16_9`"));
        assert!(!breaking("now also allows `portrait_9_16`"));
        assert!(breaking("`steps` range 1..=50 → 1..=30"));
        assert!(breaking("`seed` removed"));
        assert!(breaking("`guidance` is now optional"));
        assert!(breaking("`style` added (required)"));
    }

    #[test]
    fn additions_and_widenings_are_not_breaking_and_a_removed_model_is() {
        let a = model(json!([{"name": "steps", "type": "int", "min": 1, "max": 50}]));
        let b = model(json!([
            {"name": "steps", "type": "int", "min": 1, "max": 80},
            {"name": "seed", "type": "seed"}
        ]));
        let other = json!({"model_id": "t2v-b", "name": "B", "type": "video", "params": []});
        let got = lines(&[a.clone(), other.clone()], &[b]);
        assert!(got.contains(&("param `steps` range 1..=50 → 1..=80".to_owned(), false)));
        assert!(got.contains(&("param `seed` added".to_owned(), false)));
        assert!(got.contains(&("model removed".to_owned(), true)));
        assert_eq!(
            lines(std::slice::from_ref(&a), &[a.clone(), other]),
            [("model added".to_owned(), false)]
        );
        assert!(lines(std::slice::from_ref(&a), std::slice::from_ref(&a)).is_empty());
    }
}
