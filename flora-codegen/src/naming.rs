//! Wire names → Rust identifiers.
//!
//! Every name keeps both spellings: the Rust one we emit and the wire one we send. Conversion
//! is a pure function of the wire name (never of what else is in the catalog), so adding a
//! technique never renames another; clashes are reported, never resolved by a suffix.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// A name in both spellings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Name {
    /// The identifier as written in Rust source (`r#type`, `self_`, `CctvCam`).
    pub rust: String,
    /// The name as the API spells it (`type`, `self`, `cctv-cam`).
    pub wire: String,
}

/// Strict and reserved keywords of Rust 2024 (which accept the `r#` form).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "union", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers: they get a `_` suffix.
const NON_RAW_KEYWORDS: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Transliterates `input` to ASCII (`é` → `e`, `日本` → `Ri Ben`, via `deunicode`), keeping
/// letters and digits; everything else separates words. The result is what `heck` then cases.
fn ascii_words(input: &str) -> String {
    deunicode::deunicode_with_tofu(input, " ")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect()
}

fn escape_keyword(ident: String) -> String {
    if NON_RAW_KEYWORDS.contains(&ident.as_str()) {
        format!("{ident}_")
    } else if KEYWORDS.contains(&ident.as_str()) {
        format!("r#{ident}")
    } else {
        ident
    }
}

/// A snake_case field or module name, or `None` when `wire` has no usable characters.
pub fn snake(wire: &str) -> Option<Name> {
    let mut s = ascii_words(wire).to_snake_case();
    if s.is_empty() {
        return None;
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    Some(Name {
        rust: escape_keyword(s),
        wire: wire.to_owned(),
    })
}

/// An UpperCamelCase type name, or `None` when `wire` has no usable characters.
pub fn upper_camel(wire: &str) -> Option<Name> {
    let mut s = ascii_words(wire).to_upper_camel_case();
    if s.is_empty() {
        return None;
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'T');
    }
    Some(Name {
        rust: escape_keyword(s),
        wire: wire.to_owned(),
    })
}

/// The identifier without a raw prefix, e.g. for file names (`r#type` → `type`).
pub fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(w: &str) -> String {
        snake(w).map(|n| n.rust).unwrap_or_default()
    }
    fn c(w: &str) -> String {
        upper_camel(w).map(|n| n.rust).unwrap_or_default()
    }

    #[test]
    fn cases() {
        assert_eq!(c("cctv-cam"), "CctvCam");
        assert_eq!(
            c("turn-any-product-into-4-ad-visuals"),
            "TurnAnyProductInto4AdVisuals"
        );
        assert_eq!(s("input_image"), "input_image");
        assert_eq!(s("inputImage"), "input_image");
        assert_eq!(s("Input Image"), "input_image");
        assert_eq!(s("style.strength"), "style_strength");
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(s("type"), "r#type");
        assert_eq!(s("async"), "r#async");
        assert_eq!(s("gen"), "r#gen");
        assert_eq!(s("self"), "self_");
        assert_eq!(s("crate"), "crate_");
        assert_eq!(s("super"), "super_");
        assert_eq!(c("self"), "Self_");
        assert_eq!(unraw("r#type"), "type");
    }

    #[test]
    fn digits_and_unicode_give_valid_identifiers() {
        assert_eq!(s("1st-image"), "_1st_image");
        assert_eq!(c("3d-model"), "T3dModel");
        assert_eq!(s("café"), "cafe");
        assert_eq!(s("légende"), "legende");
        assert_eq!(s("日本"), "ri_ben");
        assert_eq!(s("🙂"), "slight_smile");
        assert_eq!(s("---"), "");
        assert_eq!(s(""), "");
        for w in ["1st-image", "café", "a b.c-d", "日本", "type", "self"] {
            let id = s(w);
            assert!(syn::parse_str::<syn::Ident>(&id).is_ok(), "{w} -> {id}");
            let ty = c(w);
            assert!(syn::parse_str::<syn::Ident>(&ty).is_ok(), "{w} -> {ty}");
        }
    }
}
