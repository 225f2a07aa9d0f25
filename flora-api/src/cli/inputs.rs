//! A technique's inputs as flags of `run SLUG`, and their values checked before any request.
//!
//! Schema text is data: an input id becomes a flag only through [`flag_name`] (kebab case,
//! prefixed where it would shadow one of `run`'s own flags), descriptions reach `--help`
//! only through [`plain`], and two ids that would share a flag are refused by name.

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, Args, Command, FromArgMatches};

use super::args::{RunFlags, SchemaDir};
use crate::values::InputValue;
use crate::wire::{MediaType, Slot, TechniqueSchema};

/// One input of the technique and the flag that sets it.
#[derive(Debug, Clone)]
pub(crate) struct InputFlag {
    /// The input id, as sent.
    pub id: String,
    /// The flag, without `--`.
    pub flag: String,
    /// The slot, as the schema has it.
    pub slot: Slot,
    /// The slot allows several values (the flag may repeat).
    pub multiple: bool,
}

/// Kebab case of an input id, in ASCII: transliterated (`é` → `e`, `имя` → `imia`) and
/// split into words exactly as flora-codegen names the Rust field (checked by a test), so a
/// flag and a field name one input alike, and two ids that only look alike (Cyrillic and
/// Latin letters) cannot hide behind two flags that look the same.
pub(crate) fn kebab(id: &str) -> String {
    use heck::ToKebabCase;
    let words: String = deunicode::deunicode_with_tofu(id, " ")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    words.to_kebab_case()
}

/// The flag of input number `index` (from 0) with id `id`: its kebab case, prefixed with
/// `input-` where it would shadow one of `run`'s own flags.
pub(crate) fn flag_name(id: &str, index: usize) -> String {
    let name = kebab(id);
    if name.is_empty() {
        format!("input-{}", index + 1)
    } else if own_args()
        .iter()
        .any(|a| a.get_long() == Some(name.as_str()))
    {
        format!("input-{name}")
    } else {
        name
    }
}

/// Whether a slot allows several values (`allow_multiple`, either casing).
fn allows_multiple(slot: &Slot) -> bool {
    ["allow_multiple", "allowMultiple"]
        .iter()
        .any(|k| slot.extra.get(*k).and_then(serde_json::Value::as_bool) == Some(true))
}

/// The flags of a technique's inputs; two ids that would share a flag are refused, both named.
pub(crate) fn flags(schema: &TechniqueSchema) -> Result<Vec<InputFlag>, String> {
    let mut out: Vec<InputFlag> = Vec::new();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for (i, slot) in schema.inputs.iter().flatten().enumerate() {
        let flag = flag_name(&slot.id, i);
        if let Some(other) = taken.insert(flag.clone(), slot.id.clone()) {
            return Err(format!(
                "technique `{}`: inputs `{}` and `{}` would both be the flag --{flag}; this \
                 technique cannot be run from floret (the library's `start_run` can)",
                schema.slug_or_derived(),
                plain(&other),
                plain(&slot.id)
            ));
        }
        out.push(InputFlag {
            id: slot.id.clone(),
            flag,
            multiple: allows_multiple(slot),
            slot: slot.clone(),
        });
    }
    Ok(out)
}

pub(crate) use crate::values::plain;

/// What a value of this slot is, for `--help`.
fn value_name(kind: &MediaType) -> &'static str {
    match kind.media_kind() {
        Some(media) => media.value_name(),
        // Text, and a type this version does not know (sent verbatim, as text).
        None => "TEXT",
    }
}

/// `run SLUG`'s full command line: `run`'s own flags and one flag per input.
/// A command built from a schema or catalog entry (`run SLUG`, `generate MODEL`): its own
/// help, no version flag, the exit codes after the help.
pub(crate) fn dynamic_command(name: &'static str, bin_name: String, about: String) -> Command {
    Command::new(name)
        .bin_name(bin_name)
        .about(about)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .after_help(super::report::exit_codes_help())
}

/// A flag's help from the server's text: its title (else `fallback`), `: description`, then
/// `[notes; …]`, every piece made plain.
pub(crate) fn flag_help(
    title: Option<&str>,
    fallback: &str,
    description: Option<&str>,
    notes: &[String],
) -> String {
    let mut help = title
        .map(plain)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| plain(fallback));
    if let Some(d) = description.map(plain).filter(|d| !d.is_empty()) {
        help.push_str(": ");
        help.push_str(&d);
    }
    help.push_str(&format!(" [{}]", notes.join("; ")));
    help
}

pub(crate) fn run_command(schema: &TechniqueSchema, flags: &[InputFlag]) -> Command {
    let slug = schema.slug_or_derived();
    let mut about = format!("Run `{}`", plain(slug));
    if !schema.name.is_empty() {
        about.push_str(&format!(" ({})", plain(&schema.name)));
    }
    if let Some(cost) = schema.run_cost {
        about.push_str(&format!(", {cost} USD per run"));
    }
    let mut cmd = dynamic_command("run", format!("floret run {}", plain(slug)), about.clone())
        .next_help_heading("Inputs");
    if let Some(d) = schema
        .description
        .as_deref()
        .map(plain)
        .filter(|d| !d.is_empty())
    {
        cmd = cmd.long_about(format!("{about}\n\n{d}"));
    }
    for (i, f) in flags.iter().enumerate() {
        let slot = &f.slot;
        let mut notes = vec![format!(
            "id `{}`, {}",
            plain(&f.id),
            plain(slot.kind.as_str())
        )];
        if slot.kind.media_kind().is_some() {
            notes.push("a local file or an https:// URL".to_owned());
        }
        if slot.optional {
            notes.push("optional".to_owned());
        }
        if f.multiple {
            notes.push("repeatable".to_owned());
        }
        let help = flag_help(
            slot.name.as_deref(),
            &f.id,
            slot.description.as_deref(),
            &notes,
        );
        cmd = cmd.arg(
            Arg::new(format!("input:{i}"))
                .long(f.flag.clone())
                .value_name(value_name(&slot.kind))
                .help(help)
                .required(!slot.optional)
                .action(if f.multiple {
                    ArgAction::Append
                } else {
                    ArgAction::Set
                })
                .allow_hyphen_values(true)
                .value_parser(clap::builder::NonEmptyStringValueParser::new()),
        );
    }
    cmd = cmd.next_help_heading("Run");
    for arg in own_args() {
        cmd = cmd.arg(arg);
    }
    cmd
}

/// `run`'s own flags (and the global ones it takes after the slug), from their one
/// definition ([`RunFlags`]); `--help` and a hidden `--version` besides.
pub(crate) fn own_args() -> Vec<Arg> {
    // Under their own heading in `--help`, after the inputs.
    let cmd = RunFlags::augment_args(Command::new("run").next_help_heading("Run"));
    let mut args: Vec<Arg> = vec![
        Arg::new("help")
            .short('h')
            .long("help")
            .action(ArgAction::Help)
            .help_heading("Run")
            .help("Print this technique's inputs and the run's flags"),
    ];
    args.extend(cmd.get_arguments().cloned());
    // Not a flag of `run`, but a shadowed `--version` would read oddly in `--help`.
    args.push(
        Arg::new("version")
            .long("version")
            .hide(true)
            .action(ArgAction::SetTrue),
    );
    args
}

/// `run`'s own flags read from its arguments before the schema (which adds the input flags)
/// is known: where to read it, how long to take, how to print. Every `--name` that is not
/// one of `run`'s flags stands for an input flag and, as those do, takes one value (which may
/// start with `-`, even be `--`), so clap reads the words here as it will once the schema is
/// known. A mistake in them (a bad `--timeout`, `--json` with `--quiet`) is one the full
/// parse would report too, so it is reported now, before the schema is read; unless `--help`
/// is asked for, which wins over any mistake, as in the full parse.
pub(crate) fn early_flags(rest: &[std::ffi::OsString]) -> Result<RunFlags, clap::Error> {
    let own = early_command()
        .args(own_args())
        // Here `--help` is only noted: the help itself needs the schema.
        .mut_arg("help", |a| a.action(ArgAction::SetTrue));
    match with_input_stand_ins(own, rest).try_get_matches_from(rest) {
        Ok(matches) => RunFlags::from_arg_matches(&matches),
        Err(e) if asks_for_help(rest) => {
            // Only where the schema is, read leniently: the other flags take their values
            // unchecked, and nothing conflicts.
            let loose = own_args().into_iter().map(|a| {
                if a.get_id() == "schemas" {
                    return a;
                }
                let mut b = Arg::new(a.get_id().clone());
                if let Some(long) = a.get_long() {
                    b = b.long(long.to_owned());
                }
                if let Some(short) = a.get_short() {
                    b = b.short(short);
                }
                if a.get_action().takes_values() {
                    b.action(ArgAction::Append).allow_hyphen_values(true)
                } else {
                    b.action(ArgAction::Count)
                }
            });
            let lenient = early_command().args(loose);
            let matches = with_input_stand_ins(lenient, rest)
                .try_get_matches_from(rest)
                .map_err(|_| e)?;
            Ok(RunFlags {
                schema_dir: SchemaDir::from_arg_matches(&matches)?,
                ..RunFlags::default()
            })
        }
        Err(e) => Err(e),
    }
}

/// `run`'s command for the parse before the schema: its arguments only, no help or version
/// of its own.
fn early_command() -> Command {
    Command::new("run")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
}

/// `cmd` with a stand-in for every `--name` among `words` it does not know: an input flag
/// taking at most one value, which may start with `-`.
fn with_input_stand_ins(mut cmd: Command, words: &[std::ffi::OsString]) -> Command {
    let mut known: std::collections::BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for word in words.iter().map(|a| a.to_string_lossy()) {
        let Some(name) = word
            .strip_prefix("--")
            .map(|n| n.split('=').next().unwrap_or(n))
        else {
            continue;
        };
        // `--` itself, and `---x` (no flag clap can define): the parse reports them.
        if !name.is_empty() && !name.starts_with('-') && known.insert(name.to_owned()) {
            cmd = cmd.arg(
                Arg::new(format!("input:{name}"))
                    .long(name.to_owned())
                    .action(ArgAction::Append)
                    // None when it ends the line: the full parse names that mistake.
                    .num_args(0..=1)
                    .allow_hyphen_values(true),
            );
        }
    }
    cmd
}

/// `--help` or `-h` among `run`'s arguments.
fn asks_for_help(words: &[std::ffi::OsString]) -> bool {
    words.iter().any(|w| w == "--help" || w == "-h")
}

/// Problems with values that are `run`'s own flags (`--prompt --json`): inputs accept values
/// starting with `-` (`--prompt -5`), so a flag given where a value belongs is named, with
/// the spelling that means the text.
pub(crate) fn flags_taken_as_values(
    rest: &[std::ffi::OsString],
    flags: &[InputFlag],
    _matches: &clap::ArgMatches,
) -> Vec<String> {
    let own = own_args();
    let is_own = |word: &str| {
        own.iter().any(|a| {
            a.get_long().is_some_and(|l| word == format!("--{l}"))
                || a.get_short().is_some_and(|s| word == format!("-{s}"))
        })
    };
    let words: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut problems = Vec::new();
    for pair in words.windows(2) {
        let (flag, value) = (&pair[0], &pair[1]);
        if flags.iter().any(|f| *flag == format!("--{}", f.flag)) && is_own(value) {
            problems.push(format!(
                "{flag} was given `{value}`, which is one of run's flags: write {flag}={value} \
                 if you meant that text, else give {flag} its value"
            ));
        }
    }
    problems
}

/// The values given, per input, in the order of the schema.
pub(crate) fn values(matches: &clap::ArgMatches, flags: &[InputFlag]) -> Vec<(usize, Vec<String>)> {
    flags
        .iter()
        .enumerate()
        .filter_map(|(i, _)| {
            let v: Vec<String> = matches
                .get_many::<String>(&format!("input:{i}"))?
                .cloned()
                .collect();
            Some((i, v))
        })
        .collect()
}

/// Classifies and checks one value of input `f` before anything is sent; the error names
/// the flag.
pub(crate) async fn check(f: &InputFlag, value: &str) -> Result<InputValue, String> {
    crate::values::check(&f.slot, value)
        .await
        .map_err(|why| format!("--{} {}: {why}", f.flag, crate::values::shorten(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(inputs: serde_json::Value) -> TechniqueSchema {
        serde_json::from_value(serde_json::json!({
            "technique_id": "tech_t", "name": "T", "run_cost": 0.1,
            "inputs": inputs, "outputs": []
        }))
        .unwrap()
    }

    #[test]
    fn ids_become_kebab_flags_and_run_flags_are_not_shadowed() {
        assert_eq!(kebab("input_image"), "input-image");
        assert_eq!(kebab("inputImage"), "input-image");
        assert_eq!(kebab("Input Image"), "input-image");
        assert_eq!(kebab("__a__b__"), "a-b");
        assert_eq!(flag_name("help", 0), "input-help");
        assert_eq!(flag_name("json", 0), "input-json");
        assert_eq!(flag_name("no_wait", 0), "input-no-wait");
        assert_eq!(flag_name("!!!", 2), "input-3");
        assert_eq!(flag_name("prompt", 0), "prompt");
    }

    #[test]
    fn runs_own_flags_are_read_before_the_schema_as_clap_reads_them_after() {
        let parse = |words: &[&str]| {
            let words: Vec<std::ffi::OsString> = words.iter().map(Into::into).collect();
            early_flags(&words)
        };
        let early = |words: &[&str]| parse(words).unwrap();
        // `--json` here is the value of the input `--prompt`, as the full parse will take it.
        let f = early(&["--prompt", "--json", "--schemas=d", "--timeout", "5s"]);
        assert!(!f.format.json);
        assert_eq!(
            f.schema_dir.schemas.as_deref(),
            Some(std::path::Path::new("d"))
        );
        assert_eq!(f.deadline.timeout, Some(std::time::Duration::from_secs(5)));
        let f = early(&[
            "--input-image",
            "a.png",
            "--jsonl",
            "--base-url",
            "http://x",
            "-vv",
        ]);
        assert!(f.format.jsonl);
        assert_eq!(f.global.verbose, 2);
        assert_eq!(f.global.base_url.as_deref(), Some("http://x"));
        // `--help` is only noted: the schema it needs is still read from `--schemas`.
        let f = early(&["--schemas", "d", "--help"]);
        assert!(f.schema_dir.schemas.is_some());
        // A mistake in run's own flags is found now, as the full parse would find it; `run`
        // takes no positional words, before or after `--`; an input may take `--` as its value.
        assert!(parse(&["--", "--schemas", "d"]).is_err());
        let f = early(&["--prompt", "--", "--seed", "5", "--schemas", "d"]);
        assert_eq!(
            f.schema_dir.schemas.as_deref(),
            Some(std::path::Path::new("d"))
        );
        assert!(
            parse(&["---x", "--schemas", "d"]).is_err(),
            "no panic either"
        );
        // `--help` wins over a mistake: the schema it needs is still found.
        let f = early(&[
            "--schemas",
            "d",
            "--help",
            "--json",
            "--quiet",
            "--timeout",
            "0s",
        ]);
        assert_eq!(
            f.schema_dir.schemas.as_deref(),
            Some(std::path::Path::new("d"))
        );
        let err = parse(&["--schemas", "d", "--timeout", "soon"]).unwrap_err();
        assert!(err.to_string().contains("--timeout"), "{err}");
        assert!(parse(&["--json", "--quiet"]).is_err());
        // An unknown flag at the end (a mistake the full parse names) keeps the rest.
        assert!(early(&["--json", "--bogus"]).format.json);
    }

    #[test]
    fn ids_that_share_a_flag_are_refused_naming_both() {
        let s = schema(serde_json::json!([
            {"id": "input_image", "type": "imageUrl"},
            {"id": "input-image", "type": "imageUrl"}
        ]));
        let err = flags(&s).unwrap_err();
        assert!(err.contains("`input_image` and `input-image`"), "{err}");
        assert!(err.contains("--input-image"), "{err}");
    }

    #[test]
    fn the_run_command_lists_the_inputs_and_refuses_missing_or_empty_ones() {
        let s = schema(serde_json::json!([
            {"id": "input_image", "name": "Input", "description": "The \u{1b}[1mface\u{1b}[0m", "type": "imageUrl"},
            {"id": "help", "type": "text", "optional": true},
            {"id": "tags", "type": "text", "optional": true, "allow_multiple": true}
        ]));
        let f = flags(&s).unwrap();
        let mut cmd = run_command(&s, &f);
        let help = cmd.render_long_help().to_string();
        assert!(help.contains("--input-image <IMAGE>"), "{help}");
        assert!(help.contains("The face"), "{help}");
        assert!(help.contains("--input-help <TEXT>"), "{help}");
        assert!(!help.contains('\u{1b}'), "{help}");
        let err = run_command(&s, &f)
            .try_get_matches_from(["run", "--input-help", "x"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--input-image"), "{err}");
        let err = run_command(&s, &f)
            .try_get_matches_from(["run", "--input-image", ""])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let m = run_command(&s, &f)
            .try_get_matches_from([
                "run",
                "--input-image",
                "a.png",
                "--tags",
                "a",
                "--tags",
                "b",
            ])
            .unwrap();
        assert_eq!(
            values(&m, &f),
            vec![
                (0, vec!["a.png".to_owned()]),
                (2, vec!["a".to_owned(), "b".to_owned()])
            ]
        );
        let err = run_command(&s, &f)
            .try_get_matches_from(["run", "--input-imag", "a.png"])
            .unwrap_err();
        assert!(
            err.to_string().contains("--input-image"),
            "did you mean: {err}"
        );
    }
}
