//! Secrets out of text: the one redactor for everything a server or a host may echo back.
//!
//! A hostile or buggy server can put the `Authorization` header it received into an error
//! body, a proxy can echo a whole request, a storage host can quote a signed query. The
//! client knows its key (and a signed exchange its signature), so every text it keeps from
//! the network goes through [`redact`] first: the key, any `Bearer` token and any
//! `Authorization` value become `[redacted]`. floret and flora-codegen's CLI put the same
//! function behind every byte they print, as a last line of defence.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Shorter "secrets" are not searched for: replacing every `k` of a text would hide
/// everything and protect nothing (no real key is that short).
const MIN_SECRET_LEN: usize = 4;

/// `text` without the API key (`key`, also with surrounding whitespace trimmed, as it was
/// sent), without any other secret in `others` (a signed URL's query values, say), and
/// without any `Bearer …` token or `Authorization: …` value, whoever's they are.
///
/// ```
/// let echoed = "401: got header Authorization: Bearer sk_live_abc123, token sk_live_abc123";
/// let safe = flora_api::redact(echoed, Some("sk_live_abc123\n"), &[]);
/// assert_eq!(safe, "401: got header Authorization: Bearer [redacted], token [redacted]");
/// ```
pub fn redact<'a>(text: &'a str, key: Option<&str>, others: &[&str]) -> Cow<'a, str> {
    let mut out = match key {
        Some(k) => redact_key(text, k),
        None => Cow::Borrowed(text),
    };
    for secret in others {
        if secret.len() >= MIN_SECRET_LEN && out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    match redact_tokens(&out) {
        Some(cleaned) => Cow::Owned(cleaned),
        None => out,
    }
}

/// `text` without the key (as given, and trimmed as sent) and nothing else: for data that is
/// the answer's own, where a phrase like `Bearer bonds` is content, not a token.
/// [`redact_key`] for a string of a server's answer that will be read as data: besides the
/// key as written, a URL whose parsed form holds the key (any case: hosts are lower-cased;
/// percent-escapes and full-width letters in a host are decoded; tabs and newlines dropped)
/// is replaced whole, so it can reach no URL value, `Debug` or request.
pub(crate) fn redact_answer_string<'a>(text: &'a str, key: &str) -> Cow<'a, str> {
    let out = redact_key(text, key);
    // Most strings are not URLs: the key is lower-cased only for one that parses.
    let holds_key = |u: url::Url| {
        let secret = key.trim().to_ascii_lowercase();
        secret.len() >= MIN_SECRET_LEN && u.as_str().to_ascii_lowercase().contains(&secret)
    };
    if out.contains(':') && url::Url::parse(&out).is_ok_and(holds_key) {
        return Cow::Owned(REDACTED.to_owned());
    }
    out
}

/// Whether a server's answer text could hold the key in any form [`redact_answer_string`]
/// looks for: it does not when it has no escape (`\`), no percent-escape and no non-ASCII
/// character, and the key (trimmed, any case) is not in it. Such text decodes string for
/// string as it reads, and no URL in it parses into one holding the key.
pub(crate) fn may_hold_key(text: &str, key: &str) -> bool {
    let secret = key.trim().to_ascii_lowercase();
    text.contains('\\')
        || text.contains('%')
        || !text.is_ascii()
        || text.to_ascii_lowercase().contains(&secret)
}

pub(crate) fn redact_key<'a>(text: &'a str, key: &str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in [key, key.trim()] {
        if secret.len() >= MIN_SECRET_LEN && out.contains(secret) {
            out = Cow::Owned(out.replace(secret, REDACTED));
        }
    }
    out
}

/// The text with the value after every `Bearer ` (any case) and `Authorization:` replaced;
/// `None` when there is none (the common case allocates nothing).
fn redact_tokens(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("bearer") && !lower.contains("authorization") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut changed = false;
    let mut at = 0;
    while at < text.len() {
        let Some(value) = token_start(&lower, at) else {
            at += lower[at..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let end = value + token_len(&text[value..]);
        if end > value && &text[value..end] != REDACTED {
            out.push_str(&text[rest..value]);
            out.push_str(REDACTED);
            rest = end;
            changed = true;
        }
        at = end.max(at + 1);
        while !text.is_char_boundary(at) {
            at += 1;
        }
    }
    out.push_str(&text[rest..]);
    changed.then_some(out)
}

/// Where a secret value starts when `lower[at..]` begins with `bearer ` or `authorization`
/// (then `:` or `=` or `"…":` and the optional scheme word).
fn token_start(lower: &str, at: usize) -> Option<usize> {
    let s = &lower[at..];
    if let Some(after) = s.strip_prefix("bearer") {
        let spaces = after.len() - after.trim_start_matches([' ', '\t']).len();
        return (spaces > 0).then_some(at + "bearer".len() + spaces);
    }
    let after = s.strip_prefix("authorization")?;
    // `Authorization: x`, `authorization=x`, `"authorization": "x"`.
    let sep = after.trim_start_matches(['"', '\'', ' ']);
    let sep = sep.strip_prefix([':', '='])?;
    let value = sep.trim_start_matches([' ', '\t', '"', '\'']);
    let start = lower.len() - value.len();
    // `Authorization: Basic x`: the scheme word is kept, the credentials after it are secret.
    let word = value.len()
        - value
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .len();
    if word > 0 && value[word..].starts_with(' ') {
        let spaces = value[word..].len() - value[word..].trim_start_matches(' ').len();
        return Some(start + word + spaces);
    }
    Some(start)
}

/// The length of a token: up to whitespace, a quote, a comma, `<`, `&` or `;` (the ends of a
/// value in JSON, headers, XML and query strings).
fn token_len(s: &str) -> usize {
    s.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '<' | '&' | ';' | '\\'))
        .unwrap_or(s.len())
}

/// Applies `clean` to every string of a JSON value, object keys included; whether any
/// changed. Decoded strings, so a key the server escaped (`\u0073k_…`) is found too.
pub(crate) fn redact_json(
    value: &mut serde_json::Value,
    clean: &dyn Fn(&str) -> Cow<'_, str>,
) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => match clean(s) {
            Cow::Owned(c) => {
                *s = c;
                true
            }
            Cow::Borrowed(_) => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| redact_json(v, clean) | changed),
        Value::Object(map) => {
            let mut changed = false;
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if let Some(v) = map.get_mut(&k) {
                    changed |= redact_json(v, clean);
                }
                if let Cow::Owned(clean_key) = clean(&k)
                    && let Some(v) = map.remove(&k)
                {
                    map.insert(clean_key, v);
                    changed = true;
                }
            }
            changed
        }
        _ => false,
    }
}

/// An error body without secrets: a JSON body has its decoded strings cleaned and is written
/// again (escaped forms of the key cannot survive); any other text is cleaned as text.
pub(crate) fn redact_body(text: &str, clean: &dyn Fn(&str) -> Cow<'_, str>) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut v) => {
            if redact_json(&mut v, clean) || text.contains("\\u") {
                serde_json::to_string(&v).unwrap_or_default()
            } else {
                clean(text).into_owned()
            }
        }
        Err(_) => clean(text).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_replaced_however_it_was_given() {
        let key = "sk_live_SECRET_123";
        for given in [key, "sk_live_SECRET_123\r\n", "  sk_live_SECRET_123 "] {
            let out = redact("echo sk_live_SECRET_123 echo", Some(given), &[]);
            assert_eq!(out, "echo [redacted] echo", "{given:?}");
        }
    }

    #[test]
    fn bearer_tokens_and_authorization_values_are_replaced_whoever_they_belong_to() {
        let cases = [
            (
                r#"{"headers":{"authorization":"Bearer other_token_9"}}"#,
                r#"{"headers":{"authorization":"Bearer [redacted]"}}"#,
            ),
            (
                "Authorization: Basic dXNlcjpwYXNz\r\nHost: x",
                "Authorization: Basic [redacted]\r\nHost: x",
            ),
            ("BEARER abc, next", "BEARER [redacted], next"),
            (
                "<Auth>authorization=tok123&x=1</Auth>",
                "<Auth>authorization=[redacted]&x=1</Auth>",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text, None, &[]), want, "{text}");
        }
    }

    #[test]
    fn plain_text_is_borrowed_and_short_or_empty_secrets_are_ignored() {
        assert!(matches!(
            redact("nothing here", Some("sk_x_123456"), &[]),
            Cow::Borrowed(_)
        ));
        assert_eq!(redact("a k b", Some("k"), &[""]), "a k b");
        // The word alone, or at the very end, is not a token.
        assert_eq!(redact("bearer", None, &[]), "bearer");
        assert_eq!(redact("a bearer ", None, &[]), "a bearer ");
        assert_eq!(redact("Authorization", None, &[]), "Authorization");
    }

    #[test]
    fn escaped_keys_in_json_are_found_in_the_decoded_strings() {
        let key = "sk_live_SECRET_1";
        let body = r#"{"error":{"code":"\u0073k_live_SECRET_1","message":"x"}}"#;
        let out = redact_body(body, &|t| redact(t, Some(key), &[]));
        assert!(!out.contains("SECRET") && !out.contains("\\u0073"), "{out}");
        let mut v = serde_json::json!({"sk_live_SECRET_1": ["a sk_live_SECRET_1"]});
        let f: &dyn Fn(&str) -> Cow<'_, str> = &|t| redact(t, Some(key), &[]);
        assert!(redact_json(&mut v, f));
        assert_eq!(v, serde_json::json!({"[redacted]": ["a [redacted]"]}));
    }

    #[test]
    fn other_secrets_are_replaced_too_and_multibyte_text_survives() {
        let out = redact("sig=ABCDEF123 · é Bearer ü1 ✓", None, &["ABCDEF123"]);
        assert_eq!(out, "sig=[redacted] · é Bearer [redacted] ✓");
    }
}
