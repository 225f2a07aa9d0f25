//! What changed between the old and new schemas, in terms of the generated Rust API.
//!
//! BREAKING marks a change that stops existing user code from compiling: adding or removing
//! an input (struct literals name every field), changing a field's Rust type (including
//! `T` ↔ `Option<T>`), removing an output or a technique.

use std::collections::BTreeMap;
use std::fmt::Write;

use flora_codegen::ir::{SlotSpec, TechniqueSpec};

/// Whether a change adds, removes or alters a whole technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A new technique.
    Added,
    /// A technique gone upstream.
    Removed,
    /// Something inside an existing technique.
    Changed,
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Technique slug.
    pub slug: String,
    /// What kind of change.
    pub scope: Scope,
    /// What changed.
    pub what: String,
    /// User code stops compiling.
    pub breaking: bool,
}

fn rust_type(s: &SlotSpec) -> String {
    let t = s.kind.type_name();
    if s.optional {
        format!("Option<{t}>")
    } else {
        t.to_owned()
    }
}

fn slots(
    out: &mut Vec<Change>,
    slug: &str,
    what: &str,
    old: &[SlotSpec],
    new: &[SlotSpec],
    added_breaks: bool,
) {
    let old: BTreeMap<&str, &SlotSpec> = old.iter().map(|s| (s.name.wire.as_str(), s)).collect();
    let new: BTreeMap<&str, &SlotSpec> = new.iter().map(|s| (s.name.wire.as_str(), s)).collect();
    let mut push = |what: String, breaking: bool| {
        out.push(Change {
            slug: slug.to_owned(),
            scope: Scope::Changed,
            what,
            breaking,
        })
    };
    for (id, n) in &new {
        match old.get(id) {
            None => push(
                format!("{what} `{id}` added ({})", rust_type(n)),
                added_breaks,
            ),
            Some(o) => {
                if o.optional != n.optional {
                    let became = if n.optional { "optional" } else { "required" };
                    push(format!("{what} `{id}` became {became}"), true);
                } else if o.kind != n.kind {
                    push(
                        format!(
                            "{what} `{id}` type changed: {} -> {}",
                            rust_type(o),
                            rust_type(n)
                        ),
                        true,
                    );
                } else if o.wire_type != n.wire_type {
                    push(
                        format!(
                            "{what} `{id}` wire type `{}` -> `{}`",
                            o.wire_type, n.wire_type
                        ),
                        false,
                    );
                }
            }
        }
    }
    for id in old.keys().filter(|id| !new.contains_key(*id)) {
        push(format!("{what} `{id}` removed"), true);
    }
}

/// Compares two catalogs keyed by slug.
pub fn diff(
    old: &BTreeMap<String, TechniqueSpec>,
    new: &BTreeMap<String, TechniqueSpec>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (slug, n) in new {
        let Some(o) = old.get(slug) else {
            out.push(Change {
                slug: slug.clone(),
                scope: Scope::Added,
                what: format!("added as `{}`", n.struct_name.rust),
                breaking: false,
            });
            continue;
        };
        slots(&mut out, slug, "input", &o.inputs, &n.inputs, true);
        slots(&mut out, slug, "output", &o.outputs, &n.outputs, false);
        if o.run_cost != n.run_cost {
            out.push(Change {
                slug: slug.clone(),
                scope: Scope::Changed,
                what: format!("run cost {} -> {} USD", o.run_cost, n.run_cost),
                breaking: false,
            });
        }
    }
    for slug in old.keys().filter(|s| !new.contains_key(*s)) {
        out.push(Change {
            slug: slug.clone(),
            scope: Scope::Removed,
            what: "removed upstream (schema and module deleted)".to_owned(),
            breaking: true,
        });
    }
    out
}

/// The summary printed after a regen.
pub fn render(changes: &[Change], techniques: usize) -> String {
    let mut s = String::new();
    // Techniques touched per scope; changes of one technique are adjacent, so dedup counts.
    let count = |scope: Scope| {
        let mut slugs: Vec<&str> = changes
            .iter()
            .filter(|c| c.scope == scope)
            .map(|c| c.slug.as_str())
            .collect();
        slugs.dedup();
        slugs.len()
    };
    let (added, removed, changed) = (
        count(Scope::Added),
        count(Scope::Removed),
        count(Scope::Changed),
    );
    let _ = writeln!(
        s,
        "{techniques} technique(s): {added} added, {removed} removed, {changed} changed"
    );
    for c in changes {
        let mark = if c.breaking { "BREAKING " } else { "" };
        let _ = writeln!(s, "  {mark}{}: {}", c.slug, c.what);
    }
    if changes.iter().any(|c| c.breaking) {
        let _ = writeln!(
            s,
            "Breaking changes: the compiler will now point at every call site to update."
        );
    }
    s
}
