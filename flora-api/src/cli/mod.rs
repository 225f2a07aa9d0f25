//! `floret`, the command line (cargo feature `cli`): `cargo install --path flora-api
//! --features cli`. Each technique's inputs are flags checked against its schema before any
//! paid request; local files are uploaded, runs are waited on with progress, outputs are
//! saved atomically. Results go to stdout, progress and errors to stderr; exit codes are
//! documented in `floret --help`.
//!
//! The binary is `fn main() { flora_api::cli::main() }`; everything else here is internal.

mod args;
mod batch;
mod commands;
mod inputs;
mod report;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use report::{Exit, Failure, Out};

/// Runs `floret` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    run_with(std::env::args_os().collect())
}

/// Runs `floret` with `argv` (the program name first).
pub fn run_with(argv: Vec<OsString>) -> ExitCode {
    let cli = match args::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Other.code());
        }
    };
    runtime.block_on(commands::dispatch(cli))
}

/// A command-line parse that did not yield a command: help and version print to stdout and
/// exit 0; usage errors print to stderr and exit 2.
fn clap_exit(e: clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(if e.use_stderr() {
        Exit::Usage.code()
    } else {
        0
    })
}

/// The exit code for a result, after printing a failure.
fn finish(out: &Out, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            out.failure(&f);
            ExitCode::from(f.exit.code())
        }
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(super::quote("runs/j.db"), "runs/j.db");
        assert_eq!(super::quote("my runs/j.db"), "'my runs/j.db'");
        assert_eq!(super::quote("it's"), r"'it'\''s'");
        assert_eq!(super::quote(""), "''");
    }
}
