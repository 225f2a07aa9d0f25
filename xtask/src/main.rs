//! `cargo xtask <command>`; see `cargo xtask --help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The fetch flags are flora-codegen's binary's own (clap types stay out of its library).
#[path = "../../flora-codegen/src/bin/flora-codegen/fetch_args.rs"]
mod fetch_args;

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
        #[command(flatten)]
        fetch: fetch_args::FetchArgs,
    },
    /// Measure codegen throughput, compile cost, client overhead, scale and poll economy
    /// (see BENCHMARKS.md). Use `cargo xtask-release bench` for the documented figures.
    Bench {
        /// Smallest size of each bench only (a smoke test).
        #[arg(long)]
        quick: bool,
        /// Only these benches: codegen, compile, client, scale, poll, fetch, buildrs, files,
        /// userbuild, floret, ratelimit.
        #[arg(long, num_args = 1..)]
        only: Vec<String>,
        /// Compile bench: also build the generated code of this git revision; user-build
        /// bench: a user crate on its flora-api. In turns with this checkout's
        /// (before/after in one run), e.g. `--baseline 2da3362`.
        #[arg(long, value_name = "REV")]
        baseline: Option<String>,
        /// Compile bench: also build the generated code cut down to its two structs and
        /// their derives (the cost of the user-facing contract alone).
        #[arg(long)]
        floor: bool,
    },
    /// Build the codegen fixtures (hostile docs included) into a scratch flora-api and
    /// check `cargo doc -D warnings` and the doctests.
    DocFixtures,
    /// Every import cycle between modules at any depth (siblings that use each other),
    /// naming the files that tie it; exits 1 when there is one. CI runs it.
    Layers {
        /// The crates to check (default: flora-api, flora-codegen, xtask).
        crates: Vec<String>,
    },
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
    /// Serve a fake FLORA on loopback (no key, no cost): every technique of schemas/ answers
    /// runs with placeholder outputs. Prints the environment variables to export.
    Sandbox {
        /// The loopback port (default: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
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
    /// Leave a scratch copy of the workspace with N synthetic techniques (and N synthetic
    /// models, in its crate `bench-models`) in `target/scratch/tree/ws` (bench 2's input), for
    /// profiling by hand (`cargo llvm-lines`, `-Z time-passes`, `cargo build --timings`).
    BenchTree {
        /// How many techniques (and models) to generate.
        n: usize,
    },
    /// Bench 2's compile cost per technique and per model counted in instructions (each
    /// touch-rebuild's rustc under valgrind's cachegrind, N = 0 and N): exact where wall
    /// time on a shared VM varies by ±15 %. Needs `valgrind`.
    BenchInstructions {
        /// How many techniques (and models) at the far end of the slope.
        #[arg(default_value_t = 1000)]
        n: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Regen { offline, fetch } => {
            let opts = fetch.options(offline);
            let wants_fetch = !offline && !opts.fetch.api_key.trim().is_empty();
            if wants_fetch && !cfg!(feature = "fetch") {
                return rerun_with("fetch");
            }
            let rerun = if offline {
                "cargo xtask regen --offline"
            } else {
                "cargo xtask regen"
            };
            let mut layout = flora_codegen::cli::Layout::workspace(&xtask::workspace_root());
            layout.codegen = fetch.config(layout.codegen);
            flora_codegen::cli::run_and_print(&layout, &opts, rerun).await
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
        Command::Layers { crates } => match xtask::layers::run(&xtask::workspace_root(), &crates) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("layers: {e}");
                ExitCode::FAILURE
            }
        },
        other => extras(other).await,
    }
}

/// Without the `extras` feature: runs this same command again with it, so `cargo xtask
/// regen` on a fresh clone never builds the bench's servers and the fake.
#[cfg(not(feature = "extras"))]
async fn extras(_: Command) -> ExitCode {
    rerun_with("extras")
}

/// Runs this same command again through cargo, with xtask's `feature` on: what only some
/// commands need is built only when one of them runs.
fn rerun_with(feature: &str) -> ExitCode {
    eprintln!(
        "xtask: rerunning with its `{feature}` feature (the first time, cargo builds what it \
         needs first)"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "xtask",
        "--features",
        feature,
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    cmd.arg("--").args(std::env::args_os().skip(1));
    match cmd.status() {
        Ok(status) => match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        },
        Err(e) => {
            eprintln!("cannot rerun xtask with its `{feature}` feature: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The commands that need the `extras` feature.
#[cfg(feature = "extras")]
async fn extras(command: Command) -> ExitCode {
    match command {
        Command::Bench {
            quick,
            only,
            baseline,
            floor,
        } => {
            match xtask::bench::run(&xtask::bench::BenchOptions {
                quick,
                only,
                baseline,
                floor,
            })
            .await
            {
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
        Command::BenchInstructions { n } => match xtask::bench::instructions(n) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench-instructions failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::BenchTree { n } => match xtask::bench::tree(n) {
            Ok(ws) => {
                println!("{}", ws.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench-tree failed: {e}");
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
        Command::Sandbox { port } => match xtask::sandbox::run(port).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sandbox failed: {e}");
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
        Command::Regen { .. } | Command::DocFixtures | Command::Layers { .. } => ExitCode::FAILURE,
    }
}
