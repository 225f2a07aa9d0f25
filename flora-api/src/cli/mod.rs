//! `floret`, the command line (cargo feature `cli`): `cargo install --path flora-api
//! --features cli --locked`. Each technique's inputs are flags checked against its schema
//! before any paid request; local files are uploaded, runs are waited on with progress,
//! outputs are saved atomically. Results go to stdout, progress and errors to stderr; exit
//! codes are documented in `floret --help`.
//!
//! The binary is `fn main() { flora_api::cli::main() }`; everything else here is internal.
//! Floors: `args`, `report`, `output`, `shell` below `session`, below `inputs`, `batch` and
//! `commands/` (one file per command).

mod args;
mod batch;
mod commands;
mod inputs;
#[cfg(feature = "mcp")]
mod mcp;
mod output;
mod params;
mod report;
mod session;
mod shell;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use output::{KeySource, Mode, Out};
use report::Exit;

/// Runs `floret` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    run_with(std::env::args_os().collect())
}

/// Runs `floret` with `argv` (the program name first).
pub fn run_with(argv: Vec<OsString>) -> ExitCode {
    // Before parsing: a usage error in `--json` mode is one JSON object too.
    let mode = Mode::for_usage_errors(argv.get(1..).unwrap_or_default());
    let cli = match args::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e, mode),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            Out::new(mode, None, KeySource::Env)
                .always(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(Exit::Other.code());
        }
    };
    let args: Vec<OsString> = argv.into_iter().skip(1).collect();
    let code = runtime.block_on(async move {
        let interrupt = listen_for_ctrl_c();
        let args::Cli {
            mut global,
            command,
        } = cli;
        if let args::Command::Run { rest, .. } = &command {
            // The global flags `run` takes after its slug (`floret run t --base-url U`).
            // (A mistake in them is reported by `run` itself.)
            if let Ok(given) = inputs::early_flags(rest) {
                let given = given.global;
                global.base_url = given.base_url.or(global.base_url);
                global.workspace_id = given.workspace_id.or(global.workspace_id);
                global.api_key_stdin |= given.api_key_stdin;
            }
        }
        let session = session::Session::new(global, interrupt);
        commands::dispatch(command, session, args).await
    });
    // Not a plain drop: that waits for every blocking thread, and one still reading stdin
    // (`floret mcp` after Ctrl-C) never ends. Tasks still running are dropped either way.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Ctrl-C (or SIGTERM, what an MCP client or a supervisor sends to stop a process) from the
/// start of a command: the first cancels the returned token (each phase says what it leaves
/// behind and how to resume); a second exits at once with 130.
fn listen_for_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let first = token.clone();
    tokio::spawn(async move {
        if interrupted().await {
            first.cancel();
            if interrupted().await {
                std::process::exit(i32::from(Exit::Interrupted.code()));
            }
        }
    });
    token
}

/// The next Ctrl-C, or on unix SIGTERM; false when neither can be listened for.
async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                s = term.recv() => s.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}

/// A command-line parse that did not yield a command: help and version print to stdout and
/// exit 0; usage errors print to stderr (one JSON object in `--json` mode) and exit 2.
fn clap_exit(e: clap::Error, mode: Mode) -> ExitCode {
    let out = Out::new(mode, None, KeySource::Env);
    if !e.use_stderr() {
        out.raw(&e.render().to_string());
        return ExitCode::SUCCESS;
    }
    if matches!(mode, Mode::Json | Mode::Jsonl) {
        let message = e.render().to_string();
        let message = message
            .trim()
            .trim_start_matches("error: ")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        out.failure(&report::Failure::new(Exit::Usage, "usage", message));
    } else {
        out.always(e.render().to_string().trim_end());
    }
    ExitCode::from(Exit::Usage.code())
}
