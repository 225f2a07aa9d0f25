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

/// Windows device names, refused as file stems with or without an extension (`con`,
/// `nul.txt`, `COM1`): opening such a file opens the device.
const RESERVED_STEMS: &[&str] = &[
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
    "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    "com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³",
];

/// Longest slug accepted: `<slug>.json` and its temporary siblings must fit the 255-byte
/// file name limit of common filesystems.
pub const MAX_SLUG_LEN: usize = 200;

/// Checks that a slug is usable as a file name on every OS users build on, not only the
/// current one: no path separators or drive prefixes, no characters Windows refuses, no
/// device names, no leading dot or trailing dot/space, no control or bidirectional-override
/// characters (which would also reach comments and fail rustc's
/// `text_direction_codepoint_in_comment` lint).
pub fn check_slug(slug: &str) -> Result<(), String> {
    let problem = if slug.is_empty() {
        Some("it is empty".to_owned())
    } else if slug.len() > MAX_SLUG_LEN {
        Some(format!("it is longer than {MAX_SLUG_LEN} bytes"))
    } else if let Some(c) = slug
        .chars()
        .find(|c| c.is_control() || crate::docs::is_bidi_control(*c))
    {
        Some(format!(
            "it contains the invisible character U+{:04X}",
            u32::from(c)
        ))
    } else if let Some(c) = slug
        .chars()
        .find(|c| matches!(c, '/' | '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*'))
    {
        Some(format!(
            "it contains `{c}`, which is a path separator, drive prefix or a character \
             Windows refuses in file names"
        ))
    } else if slug.starts_with('.') {
        Some("it starts with a dot (a hidden file, or a path like `..`)".to_owned())
    } else if slug.ends_with(['.', ' ']) {
        Some("it ends with a dot or space, which Windows strips from file names".to_owned())
    } else {
        let stem = slug
            .split('.')
            .next()
            .unwrap_or(slug)
            .trim_end()
            .to_lowercase();
        RESERVED_STEMS
            .contains(&stem.as_str())
            .then(|| format!("`{stem}` is a reserved device name on Windows"))
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!(
            "technique slug {slug:?} cannot be used as a file name: {p}"
        )),
    }
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
    fn slugs_must_be_portable_file_names() {
        for ok in [
            "cctv-cam",
            "café.crème v2",
            "3d-model",
            "a.b",
            "console",
            "com10",
            "nullify",
        ] {
            assert_eq!(check_slug(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("C:evil", "drive prefix"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("..", "starts with a dot"),
            (".hidden", "starts with a dot"),
            ("trailing.", "ends with a dot"),
            ("trailing ", "ends with a dot or space"),
            ("con", "reserved device name"),
            ("NUL", "reserved device name"),
            ("aux.json", "reserved device name"),
            ("com1", "reserved device name"),
            ("Lpt9.tar.gz", "reserved device name"),
            ("a?b", "Windows refuses"),
            ("a\u{202e}b", "U+202E"),
            ("a\u{2066}b", "U+2066"),
            ("a\nb", "U+000A"),
        ] {
            let err = check_slug(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(check_slug(&"a".repeat(MAX_SLUG_LEN + 1)).is_err());
        assert!(check_slug(&"a".repeat(MAX_SLUG_LEN)).is_ok());
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
