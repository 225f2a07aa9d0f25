//! The static half of the command line: every command and flag except a technique's own
//! inputs, which `inputs` adds to `run SLUG` once the schema is known. Each flag is defined
//! once, in one of the `Args` structs here; `run`'s dynamic command is built from the same
//! structs ([`RunFlags`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `floret`: FLORA techniques from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "floret",
    version,
    about = "Run FLORA techniques from the command line: each technique's inputs are checked \
             flags, local files are uploaded, outputs are saved atomically.",
    after_help = super::report::exit_codes_help()
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Global {
    /// API base URL (default: FLORA_BASE_URL, else the production API).
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Workspace (ws_…) for listings and uploads (default: FLORA_WORKSPACE_ID).
    #[arg(long, global = true, value_name = "WS")]
    pub workspace_id: Option<String>,
    /// Project (prj_…) generations land in (default: FLORA_PROJECT_ID).
    #[arg(long, global = true, value_name = "PRJ")]
    pub project_id: Option<String>,
    /// Read the API key from the first line of standard input instead of FLORA_API_KEY.
    #[arg(long, global = true)]
    pub api_key_stdin: bool,
    /// Request ids and timings on stderr (-vv: more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct Format {
    /// One JSON document on stdout; errors as one JSON object on stderr.
    #[arg(long, conflicts_with_all = ["jsonl", "quiet"])]
    pub json: bool,
    /// One JSON event per line on stdout (created, progress, completed/failed, saved).
    #[arg(long, conflicts_with = "quiet")]
    pub jsonl: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--schemas DIR`: a technique's schema read offline.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SchemaDir {
    /// Read `<slug>.json` from this directory instead of asking the API.
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
}

/// `--timeout`: how long the whole command may take.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct Deadline {
    /// Give up after this long, the whole command included (e.g. 90s, 10m, 1h; default:
    /// wait 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// Every flag of `run SLUG` besides the technique's inputs (the global ones included: they
/// may follow the slug). The schema-built command is made from this, its input flags are
/// kept apart from these names, and its matches are read back into it.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RunFlags {
    /// Start the run, print its id and return.
    #[arg(long)]
    pub no_wait: bool,
    /// Get a run back without paying twice: the key printed by an earlier attempt.
    #[arg(long, value_name = "KEY", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub schema_dir: SchemaDir,
    #[command(flatten)]
    pub deadline: Deadline,
    #[command(flatten)]
    pub saving: Saving,
    #[command(flatten)]
    pub format: Format,
    #[command(flatten)]
    pub global: Global,
}

/// Where and how outputs are saved.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct Saving {
    /// Save the outputs: a directory, or a template of {slot}, {index}, {run_id} and {ext}
    /// (e.g. `out/{run_id}-{slot}.{ext}`). Files are written atomically.
    #[arg(long, value_name = "DIR|TEMPLATE")]
    pub download: Option<String>,
    /// Replace files that already exist (never done otherwise).
    #[arg(long, requires = "download")]
    pub overwrite: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Every technique the key sees: slug, name, cost, inputs in short.
    Techniques {
        #[command(flatten)]
        format: Format,
    },
    /// A technique's inputs and outputs, as the flags `run` takes.
    Show {
        /// The technique's slug (or id).
        slug: String,
        #[command(flatten)]
        schema_dir: SchemaDir,
        #[command(flatten)]
        format: Format,
    },
    /// Run a technique: `floret run SLUG --<input> VALUE ...`; `floret run SLUG --help` lists
    /// that technique's inputs.
    #[command(disable_help_flag = true)]
    Run {
        /// The technique's slug (or id).
        slug: String,
        /// The technique's inputs and run's flags, parsed once the schema is known.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<OsString>,
    },
    /// Every model of the catalog: id, type, name, estimated credits.
    Models {
        /// Only models of this type.
        #[arg(long = "type", value_name = "TYPE", value_parser = ["image", "video", "audio", "text"])]
        kind: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// A model's params, as the flags `generate` takes (choices, ranges, defaults).
    ShowModel {
        /// The model id (t2i-…).
        model: String,
        /// Read `models/<MODEL>.json` from this directory instead of asking the API.
        #[arg(long, value_name = "DIR")]
        schemas: Option<PathBuf>,
        #[command(flatten)]
        format: Format,
    },
    /// Generate with a model: `floret generate MODEL --prompt TEXT --<param> VALUE ...`; every
    /// value is checked against the catalog before anything is sent (FLORA bills an unknown
    /// value with its default). `floret generate MODEL --help` lists the model's params.
    #[command(disable_help_flag = true)]
    Generate {
        /// The model id.
        model: String,
        /// The prompt, the params and the run's flags, parsed once the model is known
        /// (`--schemas DIR` reads `DIR/models/<MODEL>.json`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<OsString>,
    },
    /// A technique's past runs, newest first.
    Runs {
        /// The technique's slug (or id).
        slug: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        format: Format,
    },
    /// One run's current state.
    Get {
        /// The run id (run_…).
        run_id: String,
        /// The technique the run belongs to.
        #[arg(long)]
        technique: String,
        #[command(flatten)]
        format: Format,
    },
    /// Wait for a run started earlier (after --no-wait, a timeout or Ctrl-C).
    Wait {
        /// The run id (run_…).
        run_id: String,
        /// The technique the run belongs to.
        #[arg(long)]
        technique: String,
        #[command(flatten)]
        deadline: Deadline,
        #[command(flatten)]
        saving: Saving,
        #[command(flatten)]
        format: Format,
    },
    /// Upload files and print their asset URLs.
    Upload {
        /// The files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        format: Format,
    },
    /// Shell completions: `floret completions bash > ~/.local/share/bash-completion/completions/floret`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Batches: a plan of thousands of inputs through one technique (or prompts and params
    /// through one model), journaled, resumable after a crash or Ctrl-C without paying twice.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// A fake FLORA on loopback (no key, no bill) serving schema files as they are; prints
    /// the two `export` lines to use it.
    Sandbox {
        /// The schema files to serve (default: ./schemas when it exists, else the techniques
        /// built into floret).
        #[arg(long, value_name = "DIR")]
        schemas: Option<PathBuf>,
        /// The loopback port (default: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Serve every technique as a typed tool for AI agents over the Model Context Protocol
    /// (stdio): inputs checked before anything is sent, local files uploaded, progress,
    /// outputs saved, never paid twice. README, "Agents (MCP)".
    #[cfg(feature = "mcp")]
    Mcp(McpArgs),
}

/// `floret mcp`'s options.
#[cfg(feature = "mcp")]
#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    /// Read the technique schemas (`<slug>.json`) from this directory instead of the API.
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
    /// Only these techniques (slugs; repeatable).
    #[arg(long, value_name = "SLUG")]
    pub only: Vec<String>,
    /// Where outputs are saved (default: a new `floret-mcp-<time>` folder in the current
    /// directory, made at the first save).
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,
    /// Where local input files may be read (repeatable; default: the client's MCP roots,
    /// else the current directory). Symlinks are resolved before the check.
    #[arg(long, value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,
    /// The most this session may spend, in USD: a call that could take it past is refused
    /// before anything is sent.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// How long one tool call waits for its run (seconds) before answering with the run id
    /// (the run goes on, is saved, and the same call again gets its result). Under the 60 s
    /// many clients give a request.
    #[arg(long, value_name = "SECS", default_value_t = 50)]
    pub call_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BatchCommand {
    /// Validate a plan (JSON lines or CSV), write a new journal, and run it: through a
    /// technique (`--technique`), or as generations of a model (`--model`).
    Run {
        /// The plan: JSON lines (`{"input_id": "value", "key": "a"}`) or CSV (a header of
        /// input ids, plus an optional `key` column). With --model, a row is a prompt and
        /// params: `{"prompt": "a cat", "steps": 20, "key": "a"}`, or CSV with a `prompt`
        /// column and one column per param.
        plan: PathBuf,
        /// The technique's slug (or id).
        #[arg(long, required_unless_present = "model", conflicts_with = "model")]
        technique: Option<String>,
        /// Generate with this model (its id, t2i-…): one generation per row, every row's
        /// params checked against the catalog before anything is sent (`--schemas DIR` reads
        /// `DIR/models/<MODEL>.json`); it lands in --project-id (or FLORA_PROJECT_ID).
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
        /// The journal file to create (SQLite; the batch's only state).
        #[arg(long)]
        journal: PathBuf,
        #[command(flatten)]
        schema_dir: SchemaDir,
        /// Print items × cost and the uploads to do; send nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        flags: BatchFlags,
    },
    /// Continue a batch from its journal (after a crash, Ctrl-C or a stop).
    Resume {
        /// The journal file.
        #[arg(long)]
        journal: PathBuf,
        #[command(flatten)]
        flags: BatchFlags,
    },
    /// Where every item stands.
    Status {
        /// The journal file.
        #[arg(long)]
        journal: PathBuf,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Write every item (inputs, run, cost, outputs, saved files) as JSON lines.
    Export {
        /// The journal file.
        #[arg(long)]
        journal: PathBuf,
        /// The file to write (results.jsonl).
        out: PathBuf,
    },
    /// Put failed items back in the plan under a new key (a new run, on purpose).
    RetryFailed {
        /// The journal file.
        #[arg(long)]
        journal: PathBuf,
        /// Also items whose run could not be identified (needs review).
        #[arg(long)]
        include_unclear: bool,
        /// Only failed runs a new run may cure: FLORA's "retry now" and "retry later" codes.
        /// Refusals (moderation, invalid parameters, a safety refusal under any code),
        /// billing, access and unknown codes stay failed.
        #[arg(long)]
        transient: bool,
    },
}

/// How a batch runs.
#[derive(Debug, Clone, Args)]
pub(crate) struct BatchFlags {
    /// Save outputs as items complete: a directory (`DIR/{key}-{slot}.{ext}`) or a template
    /// of {key} {slot} {index} {run_id} {ext}.
    #[arg(long, value_name = "DIR|TEMPLATE")]
    pub download: Option<String>,
    /// Replace files in the way of an output, and saved files changed since (without it, a
    /// file the batch did not write is never replaced).
    #[arg(long)]
    pub overwrite: bool,
    /// The most requests in flight (the adaptive window's ceiling).
    #[arg(long, default_value_t = 16)]
    pub max_concurrency: usize,
    /// Refuse a plan estimated over this (exit 2), and stop submitting before the charged
    /// total would pass it (exit 5). The first run goes alone: its charge is the price for the
    /// rest; if later runs cost more, the limit is passed by at most the runs already in
    /// flight, each by the rise. Kept in the journal for later resumes; `inf` lifts it.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Resubmit items whose run could not be identified after a lost answer (a new run).
    #[arg(long)]
    pub resubmit_unclear: bool,
    /// One JSON event per line on stdout.
    #[arg(long)]
    pub jsonl: bool,
    /// The first poll's delay (tests use short ones).
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub poll_interval: Option<std::time::Duration>,
    /// Look at each run alone instead of listing the run history (bench comparisons).
    #[arg(long, hide = true)]
    pub poll_each_run: bool,
}

/// A USD amount: a number, zero or more (`inf`: no limit).
pub(crate) fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{text:?} is not an amount in USD; write e.g. 25 or 2.50 (inf for no limit)"
        )),
    }
}

/// `90`, `90s`, `1500ms`, `10m`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 90s, 10m or 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 86400.0 {
        return Err(format!(
            "{text:?} is out of range (more than 0, at most 7 days)"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("1500ms").unwrap().as_millis(), 1500);
        for bad in ["", "s", "-1s", "0", "1y", "inf", "1e999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_are_zero_or_more_and_never_nan() {
        assert_eq!(parse_usd("2.50"), Ok(2.5));
        assert_eq!(parse_usd("0"), Ok(0.0));
        assert_eq!(parse_usd("inf"), Ok(f64::INFINITY));
        for bad in ["", "-1", "nan", "NaN", "abc", "1 USD"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
