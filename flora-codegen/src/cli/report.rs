//! What changed between the old and new generated techniques, in terms of the Rust API.
//!
//! Changes are classified by the generated surface (module, struct, field names and types),
//! read back from the files themselves ([`super::surface`]). BREAKING marks a change that can
//! stop existing user code from compiling:
//! - a technique removed, or its struct renamed;
//! - an input added (struct literals name every field), removed, or its Rust type changed
//!   (`T` ↔ `Option<T>` included);
//! - an output added, removed or retyped. Output structs stay exhaustive on purpose: users
//!   build them by hand for tests (`FakeFlora` rules take `<Struct>Outputs`), and exhaustive
//!   destructuring then flags the new field, so an added output is BREAKING too.
//!
//! Wire renames that keep the Rust name, slug and technique id changes, wire type changes
//! with the same Rust type and cost changes are reported without the mark.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::surface::{Field, Surface};

/// Whether a change adds, removes or alters a whole technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A new technique.
    Added,
    /// A technique no longer generated.
    Removed,
    /// Something inside an existing technique.
    Changed,
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Technique slug (as in the newer of the two versions).
    pub slug: String,
    /// What kind of change.
    pub scope: Scope,
    /// What changed.
    pub what: String,
    /// User code may stop compiling.
    pub breaking: bool,
}

fn fields(
    out: &mut Vec<(String, bool)>,
    what: &str,
    old: &[Field],
    new: &[Field],
    added_breaks: bool,
) {
    let old_by: BTreeMap<&str, &Field> = old.iter().map(|f| (f.rust.as_str(), f)).collect();
    let new_by: BTreeMap<&str, &Field> = new.iter().map(|f| (f.rust.as_str(), f)).collect();
    for n in new {
        let label = n.wire_id.as_deref().unwrap_or(&n.rust);
        match old_by.get(n.rust.as_str()) {
            None => out.push((format!("{what} `{label}` added ({})", n.ty), added_breaks)),
            Some(o) => {
                if o.ty != n.ty {
                    let became = match (o.ty.starts_with("Option<"), n.ty.starts_with("Option<")) {
                        (false, true) if o.ty == n.ty[7..n.ty.len() - 1] => {
                            "became optional".to_owned()
                        }
                        (true, false) if n.ty == o.ty[7..o.ty.len() - 1] => {
                            "became required".to_owned()
                        }
                        _ => format!("type changed: {} -> {}", o.ty, n.ty),
                    };
                    out.push((format!("{what} `{label}` {became}"), true));
                }
                if let (Some(ow), Some(nw)) = (&o.wire_id, &n.wire_id)
                    && ow != nw
                {
                    out.push((
                        format!(
                            "{what} wire id `{ow}` -> `{nw}` (Rust field `{}` unchanged)",
                            n.rust
                        ),
                        false,
                    ));
                }
                if let (Some(ot), Some(nt)) = (&o.wire_type, &n.wire_type)
                    && ot != nt
                    && o.ty == n.ty
                {
                    out.push((
                        format!("{what} `{label}` wire type `{ot}` -> `{nt}` (same Rust type)"),
                        false,
                    ));
                }
            }
        }
    }
    for o in old.iter().filter(|o| !new_by.contains_key(o.rust.as_str())) {
        let label = o.wire_id.as_deref().unwrap_or(&o.rust);
        out.push((format!("{what} `{label}` removed"), true));
    }
}

/// Compares two generated catalogs keyed by module.
pub fn diff(old: &BTreeMap<String, Surface>, new: &BTreeMap<String, Surface>) -> Vec<Change> {
    let mut out = Vec::new();
    for (module, n) in new {
        let slug = if n.slug.is_empty() { module } else { &n.slug };
        let Some(o) = old.get(module) else {
            out.push(Change {
                slug: slug.clone(),
                scope: Scope::Added,
                what: format!("added as `{}`", n.struct_name),
                breaking: false,
            });
            continue;
        };
        let mut lines = Vec::new();
        if o.struct_name != n.struct_name {
            lines.push((
                format!("struct `{}` -> `{}`", o.struct_name, n.struct_name),
                true,
            ));
        }
        if o.slug != n.slug && !o.slug.is_empty() {
            lines.push((
                format!("slug `{}` -> `{}` (same struct and module)", o.slug, n.slug),
                false,
            ));
        }
        if o.technique_id != n.technique_id {
            lines.push((
                format!("technique id `{}` -> `{}`", o.technique_id, n.technique_id),
                false,
            ));
        }
        fields(&mut lines, "input", &o.inputs, &n.inputs, true);
        fields(&mut lines, "output", &o.outputs, &n.outputs, true);
        if o.run_cost != n.run_cost
            && let (Some(a), Some(b)) = (o.run_cost, n.run_cost)
        {
            lines.push((format!("run cost {a} -> {b} USD"), false));
        }
        out.extend(lines.into_iter().map(|(what, breaking)| Change {
            slug: slug.clone(),
            scope: Scope::Changed,
            what,
            breaking,
        }));
    }
    for (module, o) in old.iter().filter(|(m, _)| !new.contains_key(*m)) {
        out.push(Change {
            slug: if o.slug.is_empty() {
                module.clone()
            } else {
                o.slug.clone()
            },
            scope: Scope::Removed,
            what: format!(
                "removed (struct `{}` and its module deleted)",
                o.struct_name
            ),
            breaking: true,
        });
    }
    out
}

/// The summary printed after a regen: counts, one line per change, then the warnings.
pub fn render(changes: &[Change], techniques: usize, warnings: &[String]) -> String {
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
        "{techniques} technique(s): {added} added, {removed} removed, {changed} changed, {} warning(s)",
        warnings.len()
    );
    for c in changes {
        let mark = if c.breaking { "BREAKING " } else { "" };
        let _ = writeln!(s, "  {mark}{}: {}", c.slug, c.what);
    }
    for w in warnings {
        for (i, line) in w.lines().enumerate() {
            let indent = if i == 0 { "  " } else { "    " };
            let _ = writeln!(s, "{indent}{line}");
        }
    }
    if changes.iter().any(|c| c.breaking) {
        let _ = writeln!(
            s,
            "Breaking changes: the compiler will now point at every call site to update."
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rust: &str, ty: &str, wire: &str) -> Field {
        Field {
            rust: rust.into(),
            ty: ty.into(),
            wire_id: Some(wire.into()),
            wire_type: Some("imageUrl".into()),
        }
    }

    fn s(slug: &str, tid: &str, inputs: Vec<Field>, outputs: Vec<Field>) -> Surface {
        Surface {
            module: "cctv_cam".into(),
            struct_name: "CctvCam".into(),
            slug: slug.into(),
            technique_id: tid.into(),
            run_cost: Some(0.05),
            inputs,
            outputs,
        }
    }

    fn one(old: Surface, new: Surface) -> Vec<(String, bool)> {
        let m = |s: Surface| BTreeMap::from([(s.module.clone(), s)]);
        diff(&m(old), &m(new))
            .into_iter()
            .map(|c| (c.what, c.breaking))
            .collect()
    }

    #[test]
    fn wire_renames_that_keep_the_rust_surface_are_not_breaking() {
        let old = s(
            "cctv-cam",
            "tech_1",
            vec![f("input_image", "ImageUrl", "input_image")],
            vec![],
        );
        let new = s(
            "cctv_cam",
            "tech_2",
            vec![f("input_image", "ImageUrl", "inputImage")],
            vec![],
        );
        assert_eq!(
            one(old, new),
            [
                ("slug `cctv-cam` -> `cctv_cam` (same struct and module)".into(), false),
                ("technique id `tech_1` -> `tech_2`".into(), false),
                (
                    "input wire id `input_image` -> `inputImage` (Rust field `input_image` unchanged)"
                        .into(),
                    false
                ),
            ]
        );
    }

    #[test]
    fn surface_changes_are_breaking() {
        let old = s(
            "c",
            "t",
            vec![f("a", "ImageUrl", "a"), f("b", "String", "b")],
            vec![f("o", "ImageUrl", "o")],
        );
        let new = s(
            "c",
            "t",
            vec![f("a", "Option<ImageUrl>", "a"), f("c", "String", "c")],
            vec![f("o", "ImageUrl", "o"), f("p", "String", "p")],
        );
        assert_eq!(
            one(old, new),
            [
                ("input `a` became optional".into(), true),
                ("input `c` added (String)".into(), true),
                ("input `b` removed".into(), true),
                ("output `p` added (String)".into(), true),
            ]
        );
    }
}
