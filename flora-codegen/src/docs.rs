//! Schema text → doc comment lines that are inert.
//!
//! A description is written by whoever made the technique. In a doc comment it could open
//! a code block (a doctest that runs!), an HTML tag, a broken intra-doc link or a bare URL
//! that fails `cargo doc -D warnings`. So every markdown-active character is escaped,
//! indentation (which would make an indented code block) is dropped, URLs become inline code,
//! and control characters are removed, as are bidirectional-override characters (rustc
//! denies them in comments: `text_direction_codepoint_in_comment`). The text still reads the
//! same on the rendered page.

/// The characters rustc's `text_direction_codepoint_in_comment` and `…_in_literal` lints
/// deny (U+202A–U+202E, U+2066–U+2069), plus the invisible marks U+200E/U+200F and U+061C.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that never reach a comment.
fn dropped(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// Escapes one line of text.
fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    for (i, word) in line.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.contains("://") || word.starts_with("www.") {
            // Inline code: no link, no `bare_urls` lint. Backticks would end it early.
            out.push('`');
            out.extend(word.chars().filter(|c| *c != '`' && !dropped(*c)));
            out.push('`');
            continue;
        }
        if i == 0 {
            // Line-start markers: lists (`-`, `+`, `1.`), setext rules (`=`).
            if word.starts_with(['-', '+', '=']) {
                out.push('\\');
            } else if let Some(rest) = word
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .get(..1)
                && word.starts_with(|c: char| c.is_ascii_digit())
                && (rest == "." || rest == ")")
            {
                let digits =
                    word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                out.push_str(&word[..digits]);
                out.push('\\');
                push_escaped(&mut out, &word[digits..]);
                continue;
            }
        }
        push_escaped(&mut out, word);
    }
    out
}

fn push_escaped(out: &mut String, word: &str) {
    for c in word.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if dropped(c) => {}
            c => out.push(c),
        }
    }
}

/// Splits schema text into escaped doc lines; paragraphs are kept, blank runs collapsed.
pub fn text_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for raw in text.lines() {
        let line = escape_line(raw);
        if line.is_empty() {
            if lines.last().is_some_and(|l: &String| !l.is_empty()) {
                lines.push(String::new());
            }
        } else {
            lines.push(line);
        }
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Escapes a short value for use inside inline code (`` `…` ``).
pub fn code(text: &str) -> String {
    // Ids are shown exactly: an invisible override becomes its visible `\u{…}` escape.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else if c != '`' && !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// One doc line, prefixed with the space rustdoc expects after `///`.
pub fn line(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_inert() {
        let t = text_lines(
            "Hi ```rust\nfn main() { panic!() }\n```\n    indented code\n#[derive(Evil)] */ <script>alert(1)</script> [link](x) [intra] C:\\path https://x.y/z",
        );
        let joined = t.join("\n");
        assert!(!joined.contains("```"), "{joined}");
        assert!(!joined.contains("<script>"), "{joined}");
        assert!(!joined.contains("    "), "{joined}");
        assert!(joined.contains("\\#\\[derive"), "{joined}");
        assert!(joined.contains("\\[link\\]"), "{joined}");
        assert!(joined.contains("C:\\\\path"), "{joined}");
        assert!(joined.contains("`https://x.y/z`"), "{joined}");
    }

    #[test]
    fn bidi_overrides_are_removed_everywhere() {
        let evil = "safe \u{202E}txt.exe\u{202C} \u{2066}x\u{2069} https://a.b/\u{202E}c";
        for line in text_lines(evil).iter().chain([&code(evil)]) {
            assert!(!line.chars().any(is_bidi_control), "{line:?}");
        }
        assert_eq!(code("a\u{202A}b"), "a\\u{202a}b");
    }

    #[test]
    fn paragraphs_survive_and_blank_runs_collapse() {
        assert_eq!(text_lines("a\n\n\n\nb\n\n"), ["a", "", "b"]);
        assert!(text_lines("").is_empty());
    }
}
