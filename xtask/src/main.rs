//! `cargo xtask <command>`; see `cargo xtask --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::regen::{self, Options};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "flora-codegen project tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch technique schemas (with FLORA_API_KEY) into schemas/ and regenerate
    /// flora-api/src/techniques/. Without a key, regenerate from the committed schemas.
    Regen {
        /// Do not fetch; regenerate from the committed schemas/.
        #[arg(long)]
        offline: bool,
        /// Write nothing; fail with a diff if anything would change.
        #[arg(long)]
        check: bool,
        /// API base URL (default: FLORA_BASE_URL, else https://app.flora.ai/api/v1).
        #[arg(long)]
        base_url: Option<String>,
        /// List the techniques of this workspace (ws_…).
        #[arg(long)]
        workspace_id: Option<String>,
        /// Only fetch and update these slugs (others stay as committed). A slug the server
        /// does not list is an error.
        #[arg(long, num_args = 1..)]
        only: Vec<String>,
        /// Fail on warnings (e.g. a slot type this flora-codegen does not know), for CI.
        #[arg(long)]
        deny_warnings: bool,
        /// Keep local schemas of techniques the server no longer lists.
        #[arg(long)]
        keep_local: bool,
        /// Allow a fetch to delete every local technique, or more than half of them.
        #[arg(long)]
        allow_mass_removal: bool,
        /// Schemas retrieved at once.
        #[arg(long, default_value_t = xtask::fetch::DEFAULT_CONCURRENCY)]
        concurrency: usize,
    },
    /// Measure codegen throughput, compile cost, client overhead, scale and poll economy
    /// (see BENCHMARKS.md). Use `cargo xtask-release bench` for the documented figures.
    Bench {
        /// Smallest size of each bench only (a smoke test).
        #[arg(long)]
        quick: bool,
        /// Only these benches: codegen, compile, client, scale, poll, fetch, files.
        #[arg(long, num_args = 1..)]
        only: Vec<String>,
    },
    /// Build the codegen fixtures (hostile docs included) into a scratch flora-api and
    /// check `cargo doc -D warnings` and the doctests.
    DocFixtures,
    /// Bench 4 alone, in its own process (spawned by `bench`).
    #[command(hide = true)]
    BenchScale {
        /// The bench server's URL.
        #[arg(long)]
        base_url: String,
        /// 200 runs instead of 10,000.
        #[arg(long)]
        quick: bool,
        /// Override the client's max_in_flight.
        #[arg(long)]
        max_in_flight: Option<usize>,
    },
    /// Bench 7's client side, in its own process (spawned by `bench`).
    #[command(hide = true)]
    BenchFilesClient {
        /// The bench file host's URL.
        #[arg(long)]
        base_url: String,
        /// The file to upload.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Where to download it back.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// The loopback mock server used by `bench` (prints its URL, serves until killed).
    #[command(hide = true)]
    BenchServer,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Regen {
            offline,
            check,
            base_url,
            workspace_id,
            only,
            deny_warnings,
            keep_local,
            allow_mass_removal,
            concurrency,
        } => {
            let opts = Options {
                offline,
                check,
                api_key: std::env::var(flora_api::ENV_API_KEY).ok(),
                base_url,
                workspace_id,
                only,
                progress: std::io::stderr().is_terminal(),
                deny_warnings,
                keep_local,
                allow_mass_removal,
                concurrency,
            };
            run_regen(opts).await
        }
        Command::Bench { quick, only } => {
            match xtask::bench::run(&xtask::bench::BenchOptions { quick, only }).await {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::DocFixtures => match xtask::doc_fixtures::run() {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("doc-fixtures failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::BenchScale {
            base_url,
            quick,
            max_in_flight,
        } => match xtask::bench::scale(quick, &base_url, max_in_flight).await {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("scale bench failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::BenchFilesClient {
            base_url,
            file,
            out,
        } => match xtask::bench_files::client_side(&base_url, &file, &out).await {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("files bench client failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::BenchServer => match xtask::bench::serve().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench server failed: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run_regen(opts: Options) -> ExitCode {
    let root = xtask::workspace_root();
    let outcome = match regen::regen(&root, &opts).await {
        Ok(o) => o,
        Err(e) => {
            // The message ends with what happened to the tree (nothing, or which files changed).
            eprintln!("{e}");
            eprintln!("regen failed");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", outcome.source);
    print!("{}", outcome.report);
    if !outcome.absent_upstream.is_empty() && (opts.check || opts.keep_local) {
        let verb = if opts.keep_local {
            "kept (--keep-local)"
        } else if opts.check {
            "would be deleted (--keep-local keeps them)"
        } else {
            "deleted (--keep-local keeps them)"
        };
        println!(
            "Not listed upstream, {verb}: {}",
            outcome.absent_upstream.join(", ")
        );
    }
    if opts.check {
        if outcome.up_to_date() {
            println!("Up to date.");
            return ExitCode::SUCCESS;
        }
        print!("{}", outcome.diff);
        eprintln!(
            "{} file(s) are stale; run `cargo xtask regen{}` to update them",
            outcome.changed_files.len(),
            if opts.offline { " --offline" } else { "" }
        );
        return ExitCode::FAILURE;
    }
    if outcome.up_to_date() {
        println!("Nothing changed.");
    } else {
        for f in &outcome.changed_files {
            let verb = if outcome.removed_files.contains(f) {
                "removed"
            } else {
                "wrote"
            };
            println!("  {verb} {f}");
        }
    }
    ExitCode::SUCCESS
}
