//! The catalog entry a generated model's `INFO` holds: what the check reads of each param,
//! written as JSON that one raw string literal always holds.

use super::RawParam;

/// A param of the entry `INFO` keeps: what the check reads (labels kept for a fake's
/// listing; descriptions and defaults are in the docs); a dict's numbers, those with a
/// Rust name.
pub(super) fn param(
    p: &RawParam,
    numbers: Option<&[(String, proc_macro2::Ident)]>,
) -> serde_json::Value {
    let mut q = serde_json::Map::new();
    q.insert("name".into(), p.name.clone().into());
    q.insert("type".into(), p.kind.clone().into());
    q.insert("required".into(), p.required.into());
    for (key, bound) in [("min", p.min), ("max", p.max)] {
        if let Some(x) = bound {
            q.insert(key.into(), x.into());
        }
    }
    if !p.options.is_empty() {
        let options = p
            .options
            .iter()
            .map(|o| serde_json::json!({"value": o.value, "label": o.label}))
            .collect();
        q.insert("options".into(), serde_json::Value::Array(options));
    }
    if let Some(numbers) = numbers {
        let properties = p
            .properties
            .iter()
            .filter(|(k, _)| numbers.iter().any(|(n, _)| n == *k))
            .map(|(k, n)| (k.clone(), serde_json::json!({"min": n.min, "max": n.max})))
            .collect();
        q.insert("properties".into(), serde_json::Value::Object(properties));
    }
    serde_json::Value::Object(q)
}

/// JSON text whose only `"` are its strings' delimiters and that is all ASCII: a quote
/// inside a string is written `\u0022` and every non-ASCII character `\uXXXX`. So `r#"…"#`
/// always holds it (a delimiter is never followed by `#`), and no catalog text can put a
/// character rustc refuses in a literal (a bidi control) into the generated code.
struct AsciiJson;

impl serde_json::ser::Formatter for AsciiJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        match escape {
            CharEscape::Quote => writer.write_all(b"\\u0022"),
            other => serde_json::ser::CompactFormatter.write_char_escape(writer, other),
        }
    }
}

/// The entry as a raw string literal `r#"…"#` (see [`AsciiJson`]).
pub(super) fn literal(entry: &serde_json::Value) -> Result<proc_macro2::Literal, String> {
    use serde::Serialize;
    let mut text = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut text, AsciiJson);
    entry
        .serialize(&mut ser)
        .map_err(|e| format!("the catalog entry does not serialize: {e}"))?;
    let text = String::from_utf8(text).map_err(|e| e.to_string())?;
    format!("r#\"{text}\"#")
        .parse()
        .map_err(|e| format!("the catalog entry gives no string literal: {e}"))
}
