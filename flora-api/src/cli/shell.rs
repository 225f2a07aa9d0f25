//! Commands floret prints for a person to paste (resume, save again, retry without paying
//! twice): every word shell-quoted, so a run id or a path a server or a plan chose can never
//! run anything when pasted.

use std::ffi::OsString;

/// `text` as one shell word: as it is when plain, else in single quotes.
pub(crate) fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-:=@%+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `floret` and `words`, each quoted: a command a person can paste.
pub(crate) fn command<S: AsRef<str>>(words: &[S]) -> String {
    let mut line = String::from("floret");
    for w in words {
        line.push(' ');
        line.push_str(&quote(w.as_ref()));
    }
    line
}

/// The arguments of this invocation with `--flag VALUE` set to `value` (any `--flag X` or
/// `--flag=X` given is replaced), as words for [`command`].
pub(crate) fn with_flag(args: &[OsString], flag: &str, value: &str) -> Vec<String> {
    let long = format!("--{flag}");
    let mut words = Vec::with_capacity(args.len() + 2);
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        if a == long {
            it.next();
        } else if !a.starts_with(&format!("{long}=")) {
            words.push(a);
        }
    }
    words.push(long);
    words.push(value.to_owned());
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(quote("runs/j.db"), "runs/j.db");
        assert_eq!(quote("my runs/j.db"), "'my runs/j.db'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(
            command(&["wait", "run_1; touch /tmp/x #"]),
            "floret wait 'run_1; touch /tmp/x #'"
        );
    }

    #[test]
    fn a_flag_is_set_once_whatever_was_given() {
        let args: Vec<OsString> = ["run", "t", "--idempotency-key", "old", "--prompt", "a b"]
            .iter()
            .map(OsString::from)
            .collect();
        let words = with_flag(&args, "idempotency-key", "new");
        assert_eq!(
            command(&words),
            "floret run t --prompt 'a b' --idempotency-key new"
        );
        let args: Vec<OsString> = ["run", "--idempotency-key=old"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            with_flag(&args, "idempotency-key", "k"),
            ["run", "--idempotency-key", "k"]
        );
    }
}
