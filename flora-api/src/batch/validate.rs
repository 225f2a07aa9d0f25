//! A plan checked before anything is sent: every row against the schema (all problems at
//! once, by line), the estimate against `max_cost`, and every item's output names decided
//! now, distinct by construction (two keys that clean to one file name never share a file).

use std::collections::{BTreeMap, HashSet};

use super::plan::PlanItem;
use crate::content::safe_file_stem;
use crate::error::Error;
use crate::values;
use crate::wire::TechniqueSchema;

/// Every problem of every row, named by line, before anything is sent.
pub(crate) async fn validate(schema: &TechniqueSchema, items: &[PlanItem]) -> Result<(), Error> {
    let slots = schema.inputs.clone().unwrap_or_default();
    let ids: Vec<&str> = slots.iter().map(|s| s.id.as_str()).collect();
    let mut problems = Vec::new();
    if items.is_empty() {
        problems.push("the plan has no items".to_owned());
    }
    problems.extend(duplicate_keys(items));
    for item in items {
        let at = if item.line > 0 {
            format!("line {}", item.line)
        } else {
            format!("item {:?}", item.key)
        };
        for id in item.values.keys() {
            if !ids.contains(&id.as_str()) {
                problems.push(format!(
                    "{at}: unknown input `{}` (the technique's inputs: {})",
                    values::shorten(id),
                    ids.join(", ")
                ));
            }
        }
        for slot in &slots {
            match item.values.get(&slot.id) {
                None if !slot.optional => {
                    problems.push(format!("{at}: required input `{}` is missing", slot.id));
                }
                None => {}
                Some(vals) => {
                    for v in vals {
                        if let Err(why) = values::check(slot, v).await {
                            problems.push(format!(
                                "{at}: input `{}` = {}: {why}",
                                slot.id,
                                values::shorten(v)
                            ));
                        }
                    }
                }
            }
        }
    }
    refuse(problems, "")
}

/// Keys used by two items.
pub(crate) fn duplicate_keys(items: &[PlanItem]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys = BTreeMap::new();
    for item in items {
        if let Some(first) = keys.insert(item.key.as_str(), item) {
            let lines = if item.line > 0 {
                format!(" (lines {} and {})", first.line, item.line)
            } else {
                String::new()
            };
            problems.push(format!(
                "key {:?} is used by two items{lines}; keys must be unique",
                item.key
            ));
        }
    }
    problems
}

/// The plan's problems as one error (the first 20), or `Ok` when it has none. `against`:
/// what the rows were checked against, said after the count.
pub(crate) fn refuse(mut problems: Vec<String>, against: &str) -> Result<(), Error> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    problems.truncate(20);
    let against = if against.is_empty() {
        String::new()
    } else {
        format!(" ({against})")
    };
    Err(Error::InvalidInput(format!(
        "the plan has {n} problem(s){against}; nothing was sent:\n  {}",
        problems.join("\n  ")
    )))
}

/// The plan's estimate: items × the listed price of one run (`per_run`, USD).
pub(crate) fn estimate(per_run: Option<f64>, items: usize) -> Option<f64> {
    per_run.map(|c| c * items as f64)
}

/// Refuses a plan whose estimate is over `max_cost`, as a dry run and a real run both do.
pub(crate) fn check_cost(
    per_run: Option<f64>,
    items: usize,
    max_cost: Option<f64>,
) -> Result<(), Error> {
    if let (Some(max), Some(cost)) = (max_cost, estimate(per_run, items))
        && cost > max
    {
        return Err(Error::InvalidInput(format!(
            "the plan would cost {} USD ({items} items × {} USD), over --max-cost {max}; \
             nothing was sent",
            usd(cost),
            usd(per_run.unwrap_or(0.0))
        )));
    }
    Ok(())
}

/// An amount in USD as people read it: cents, and the fractions of a cent a generation's
/// price has (0.004 stays 0.004, never 0.00).
pub(crate) fn usd(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0');
    match s.split_once('.') {
        Some((_, frac)) if frac.len() >= 2 => s.to_owned(),
        Some((whole, frac)) => format!("{whole}.{frac:0<2}"),
        None => format!("{s}.00"),
    }
}

/// The name each item's outputs are saved under (`{key}` of the template): its key as a file
/// name, with `-{position}` added where two keys would clean to one name (ignoring case:
/// `a/b` and `a_b`, `東京` and `大阪` on some systems). Decided once, when the journal is made.
pub(crate) fn output_names(items: &[PlanItem]) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut names = Vec::with_capacity(items.len());
    for (pos, item) in items.iter().enumerate() {
        let stem = safe_file_stem(&item.key);
        let mut name = stem.clone();
        let mut n = pos + 1;
        while !taken.insert(name.to_lowercase()) {
            name = format!("{stem}-{n}");
            n += items.len();
        }
        names.push(name);
    }
    names
}

/// A `--download` that would give every item the same files: a template naming neither
/// `{key}` nor `{run_id}` (a directory always names `{key}`).
pub(crate) fn check_download(spec: &str, items: usize) -> Result<(), Error> {
    let template = super::outputs::template(spec);
    if items > 1 && !template.contains("{key}") && !template.contains("{run_id}") {
        return Err(Error::InvalidInput(format!(
            "--download {spec}: every item would save to the same files; add {{key}} (or \
             {{run_id}}) to the template; nothing was sent"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(keys: &[&str]) -> Vec<PlanItem> {
        keys.iter()
            .map(|k| PlanItem::new(*k, BTreeMap::new()))
            .collect()
    }

    #[test]
    fn keys_that_clean_to_one_name_get_distinct_output_names() {
        let names = output_names(&items(&["a/b", "a_b", "A_B", "c"]));
        let unique: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(unique.len(), 4, "{names:?}");
        assert_eq!(names[0], safe_file_stem("a/b"));
        assert_eq!(names[3], "c");
    }

    #[test]
    fn amounts_keep_the_fractions_of_a_cent_a_generation_costs() {
        assert_eq!(usd(0.2), "0.20");
        assert_eq!(usd(0.004), "0.004");
        assert_eq!(usd(0.012), "0.012");
        assert_eq!(usd(2.0), "2.00");
        assert_eq!(usd(0.0), "0.00");
    }

    #[test]
    fn a_template_without_key_or_run_id_is_refused_for_several_items() {
        assert!(check_download("out/{slot}.{ext}", 2).is_err());
        assert!(check_download("out/{slot}.{ext}", 1).is_ok());
        assert!(check_download("out/{run_id}-{slot}.{ext}", 2).is_ok());
        assert!(check_download("out/", 2).is_ok());
    }
}
