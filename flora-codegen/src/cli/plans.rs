//! What a regen plans, before anything is written: schema text normalised, the writes and
//! removals that turn one directory's files into another's, and the refusal to replace a
//! file the user wrote.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::error::{RegenError, RegenErrorKind};
use super::write::Plan;

/// Pretty JSON with sorted keys and a trailing newline.
pub fn schema_text(value: &Value) -> Result<String, RegenError> {
    // serde_json's default map is a BTreeMap, so keys come out sorted.
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| {
            RegenError::new(
                RegenErrorKind::Schema,
                format!("cannot serialise a schema: {e}"),
            )
        })
}

/// Plans the writes and removals that turn `old` into `new` in `dir`, with the old text.
pub(super) fn plan_dir(
    out: &mut Vec<(String, Plan, Option<String>)>,
    dir: &Path,
    shown: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    for (name, text) in new {
        if old.get(name) != Some(text) {
            out.push((
                format!("{shown}/{name}"),
                Plan::Write(dir.join(name), text.clone()),
                old.get(name).cloned(),
            ));
        }
    }
    for (name, text) in old {
        if !new.contains_key(name) {
            out.push((
                format!("{shown}/{name}"),
                Plan::Remove(dir.join(name)),
                Some(text.clone()),
            ));
        }
    }
}

/// Normalised schema text (sorted keys, pretty, trailing newline); unparseable text is
/// kept as is for the generator to report.
pub(super) fn normalise(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| schema_text(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// Refuses to write where a file of the user's stands: generated output only ever replaces
/// or deletes files that carry the `@generated` header.
pub(super) fn refuse_to_replace(
    theirs: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    shown: &str,
) -> Result<(), RegenError> {
    let clashing: Vec<String> = new
        .keys()
        .filter(|name| theirs.contains_key(*name))
        .map(|name| format!("{shown}/{name}"))
        .collect();
    if clashing.is_empty() {
        return Ok(());
    }
    Err(RegenError::new(
        RegenErrorKind::Refused,
        format!(
            "refusing to overwrite {}: not written by flora-codegen (no `@generated` header). \
         Generate into a directory of its own (e.g. `--out src/techniques`), or move the file \
         away if it really is an old generated file",
            clashing.join(", ")
        ),
    ))
}
