//! Text from a server, a schema or a plan, made safe for a terminal: the one table of
//! characters that must not reach one (escape sequences, control characters, bidirectional
//! overrides), and the shapes text takes on its way out (one plain line, several lines, JSON).
//!
//! A run id, an error message or an output a server sends can carry `ESC[2J` (clear the
//! screen), an OSC 8 hyperlink that shows one URL and opens another, or a right-to-left
//! override that makes `gpj.exe` read `exe.jpg`. None of them is ever printed as sent.

/// Bidirectional formatting characters: they reorder what a terminal shows.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A character that must not reach a terminal as it is: a control character (C0, DEL, C1;
/// C1's U+009B is an escape introducer on some terminals) or a bidirectional override.
/// Newline and tab are the caller's to decide.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi(c)
}

/// Removes escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ST`, and any other
/// `ESC x`), calling `keep` for every other character.
fn strip_escapes(text: &str, mut keep: impl FnMut(char)) {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            keep(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC (hyperlinks, titles): until BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
}

/// `text` as plain, single-line terminal text of at most `max` characters: escapes, control
/// characters and bidi overrides removed, whitespace collapsed, `…` where it was cut.
pub(crate) fn plain_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    strip_escapes(text, |c| {
        if c.is_whitespace() || is_unsafe(c) {
            if !out.is_empty() && !out.ends_with(' ') && (c.is_whitespace() || c == '\u{85}') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    });
    let trimmed = out.trim();
    if trimmed.chars().count() > max {
        let mut short: String = trimmed.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    } else {
        trimmed.to_owned()
    }
}

#[cfg(feature = "cli")]
/// `text` as terminal lines: escapes, control characters (but newline and tab) and bidi
/// overrides removed; nothing else changed.
pub(crate) fn terminal_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    strip_escapes(text, |c| {
        if c == '\n' || c == '\t' || !is_unsafe(c) {
            out.push(c);
        }
    });
    out
}

#[cfg(feature = "cli")]
/// Serialised JSON with every unsafe character that serde leaves as it is (C1 controls,
/// DEL, bidi overrides) written as a `\uXXXX` escape: the same JSON value, harmless on a
/// terminal.
pub(crate) fn json_text(json: &str) -> String {
    if !json.chars().any(is_unsafe) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        // Outside strings JSON has only ASCII punctuation and whitespace, so an unsafe
        // character is always inside a string, where an escape means the same character.
        if is_unsafe(c) && c != '\n' && c != '\r' && c != '\t' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_text_loses_escapes_controls_and_bidi() {
        assert_eq!(plain_text("a\u{1b}[31mred\u{1b}[0m b", 400), "ared b");
        assert_eq!(
            plain_text("x\u{1b}]8;;https://evil\u{7}link\u{1b}]8;;\u{7}y", 400),
            "xlinky"
        );
        assert_eq!(plain_text("line\none\r\n\ttwo\u{0}", 400), "line one two");
        assert_eq!(plain_text("a\u{202E}b\u{9b}c", 400), "abc");
        let long = plain_text(&"x".repeat(500), 80);
        assert_eq!(long.chars().count(), 80);
        assert!(long.ends_with('…'));
    }

    #[cfg(feature = "cli")]
    #[test]
    fn terminal_lines_keep_newlines_and_tabs_only() {
        assert_eq!(
            terminal_text("run_1\u{1b}[2J\n\tdone\u{202E}gpj.exe\r\u{7}"),
            "run_1\n\tdonegpj.exe"
        );
    }

    #[cfg(feature = "cli")]
    #[test]
    fn json_stays_the_same_value_and_harmless() {
        let value = serde_json::json!({"m": "a\u{1b}[2Jb\u{202E}c\u{9b}d"});
        let text = json_text(&serde_json::to_string(&value).unwrap());
        assert!(!text.chars().any(is_unsafe), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
