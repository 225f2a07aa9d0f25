//! A model's params as `floret generate` flags, built from its catalog entry (the generation
//! twin of `inputs`): `--prompt`, then one flag per param the runtime can check, choices
//! listed with their labels, ranges in the help. Values are read into the `params` object
//! and go through the one `check_params` before anything is sent.

use clap::builder::PossibleValue;
use clap::{Arg, ArgAction, Command};
use serde_json::{Map, Value};

use super::inputs::{dynamic_command, flag_help, kebab, own_args, plain};
use crate::catalog::ModelSchema;
use crate::generation::text::param_from_text;
use crate::model::ParamKind;

/// One param's flag.
pub(crate) struct ParamFlag {
    /// `--<flag>`.
    pub flag: String,
    /// Its index in the model's params.
    pub index: usize,
    /// Its kind (params of an unknown type get no flag).
    pub kind: ParamKind,
}

/// The flags of a model's params: kebab-case names, params of unknown types left out, a
/// name that clashes with `--prompt` or with one of floret's own flags refused.
pub(crate) fn flags(model: &ModelSchema) -> Result<Vec<ParamFlag>, String> {
    let own: Vec<String> = own_args()
        .iter()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let mut out: Vec<ParamFlag> = Vec::new();
    for (index, p) in model.params.iter().enumerate() {
        let Some(rule) = p.rule() else { continue };
        let flag = kebab(&p.name);
        if flag == "prompt" || own.contains(&flag) || out.iter().any(|f| f.flag == flag) {
            return Err(format!(
                "model `{}`: param `{}` would be the flag --{flag}, which is taken; pass it \
                 with the library (`start_generation_untyped`) instead",
                plain(&model.model_id),
                plain(&p.name)
            ));
        }
        out.push(ParamFlag {
            flag,
            index,
            kind: rule.kind,
        });
    }
    Ok(out)
}

/// `floret generate MODEL`'s command: the prompt, the params, then `run`'s own flags.
pub(crate) fn command(model: &ModelSchema, flags: &[ParamFlag]) -> Command {
    let mut about = format!("Generate with `{}`", plain(&model.model_id));
    if !model.name.is_empty() {
        about.push_str(&format!(" ({})", plain(&model.name)));
    }
    if let Some(c) = model.estimated_credits {
        about.push_str(&format!(", about {c} credits"));
    }
    let bin_name = format!("floret generate {}", plain(&model.model_id));
    let mut cmd = dynamic_command("generate", bin_name, about)
        .next_help_heading("Params")
        .arg(
            Arg::new("prompt")
                .long("prompt")
                .value_name("TEXT")
                .help("The prompt (not empty)")
                .required(true)
                .allow_hyphen_values(true)
                .value_parser(clap::builder::NonEmptyStringValueParser::new()),
        );
    for f in flags {
        let p = &model.params[f.index];
        let mut notes = vec![format!("`{}`, {}", plain(&p.name), plain(&p.kind))];
        notes.extend(crate::model::range_text(p.min, p.max));
        if let Some(d) = &p.default {
            notes.push(format!("default {}", plain(&d.to_string())));
        }
        if p.required {
            notes.push("required".to_owned());
        }
        let (value_name, action) = match f.kind {
            ParamKind::String => ("TEXT", ArgAction::Set),
            ParamKind::Strings => {
                notes.push("repeatable".to_owned());
                ("TEXT", ArgAction::Append)
            }
            ParamKind::Bool => ("true|false", ArgAction::Set),
            ParamKind::Int | ParamKind::Seed => ("N", ArgAction::Set),
            ParamKind::Float => ("X", ArgAction::Set),
            ParamKind::Dict => {
                let names: Vec<String> = p
                    .properties
                    .iter()
                    .map(|(k, r)| format!("{} {}..{}", plain(k), r.min, r.max))
                    .collect();
                notes.push(format!("NAME=X, repeatable: {}", names.join(", ")));
                ("NAME=X", ArgAction::Append)
            }
        };
        let help = flag_help(
            p.label.as_deref(),
            &p.name,
            p.description.as_deref(),
            &notes,
        );
        let mut arg = Arg::new(format!("param:{}", f.index))
            .long(f.flag.clone())
            .value_name(value_name)
            .help(help)
            .required(p.required)
            .action(action)
            .allow_hyphen_values(true);
        if f.kind == ParamKind::String && !p.options.is_empty() {
            // clap lists the choices in --help and refuses any other value (exit 2),
            // naming the allowed ones.
            let values: Vec<PossibleValue> = p
                .options
                .iter()
                .map(|o| {
                    let v = PossibleValue::new(o.value.clone());
                    match plain(&o.label) {
                        l if l.is_empty() => v,
                        l => v.help(l),
                    }
                })
                .collect();
            arg = arg.value_parser(clap::builder::PossibleValuesParser::new(values));
        } else {
            arg = arg.value_parser(clap::builder::NonEmptyStringValueParser::new());
        }
        cmd = cmd.arg(arg);
    }
    cmd = cmd.next_help_heading("Run");
    for arg in own_args() {
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The `params` object from the flags given, each value read as its param's type (the
/// reading a batch plan's cells get too); the error names the flag, the value and what it
/// must be.
pub(crate) fn values(
    model: &ModelSchema,
    flags: &[ParamFlag],
    matches: &clap::ArgMatches,
) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    for f in flags {
        let p = &model.params[f.index];
        let Some(given) = matches.get_many::<String>(&format!("param:{}", f.index)) else {
            continue;
        };
        let given: Vec<&str> = given.map(String::as_str).collect();
        let value = param_from_text(f.kind, &given)
            .map_err(|bad| format!("--{} {:?}: must be {}", f.flag, bad.text, bad.wanted))?;
        params.insert(p.name.clone(), value);
    }
    Ok(params)
}
