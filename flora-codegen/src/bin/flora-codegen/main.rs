//! `flora-codegen`: typed FLORA techniques in your own crate.
//!
//! ```text
//! cargo install flora-codegen --features cli
//! FLORA_API_KEY=sk_… flora-codegen fetch --schemas flora-schemas --workspace-id ws_…
//! flora-codegen generate --schemas flora-schemas --out src/techniques
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flora_codegen::Config;
use flora_codegen::cli::{Layout, run_and_print};

mod fetch_args;
use fetch_args::FetchArgs;

#[derive(Parser)]
#[command(
    name = "flora-codegen",
    version,
    about = "Typed Rust for FLORA techniques"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch every technique schema the key (FLORA_API_KEY) sees into a directory, with the
    /// same all-or-nothing write and change report as `cargo xtask regen`.
    Fetch {
        /// The schema directory (one `<slug>.json` per technique).
        #[arg(long)]
        schemas: PathBuf,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// Generate `mod.rs` plus one file per technique from a schema directory (no network).
    /// Include it with `#[rustfmt::skip] mod techniques;`.
    Generate {
        /// The schema directory.
        #[arg(long)]
        schemas: PathBuf,
        /// The output directory (e.g. `src/techniques`).
        #[arg(long)]
        out: PathBuf,
        /// Write nothing; fail with a diff when the output is stale.
        #[arg(long)]
        check: bool,
        /// Fail on warnings (unknown slot types, ...).
        #[arg(long)]
        deny_warnings: bool,
        /// The module's path as users name it (`my_crate::techniques`), to make the struct
        /// docs' examples compiled doctests; without it they are shown, not compiled.
        #[arg(long)]
        module_path: Option<String>,
        /// Emit the `flora_api::testing` impls (for `FakeFlora`) under
        /// `#[cfg(feature = "NAME")]`; declare `NAME = ["flora-api/test-util"]` in your crate.
        #[arg(long, value_name = "NAME")]
        test_util_feature: Option<String>,
        /// The path generated code names the runtime by (default `::flora_api`): `::flora`
        /// when Cargo.toml renames the dependency, `::my_facade::flora` for a re-export.
        #[arg(long, value_name = "PATH")]
        runtime_path: Option<String>,
    },
}

fn shown(p: &std::path::Path) -> String {
    p.display().to_string().trim_end_matches('/').to_owned()
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Fetch { schemas, fetch } => {
            if !std::env::var("FLORA_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
                eprintln!(
                    "flora-codegen fetch needs FLORA_API_KEY (an API key of the workspace whose \
                     techniques you want; add --workspace-id ws_… for private techniques)"
                );
                return ExitCode::FAILURE;
            }
            let layout = Layout {
                command: "flora-codegen fetch".to_owned(),
                fetches: true,
                schemas_shown: shown(&schemas),
                schemas,
                generated: None,
                generated_shown: String::new(),
                codegen: fetch.config(Config::new()),
                normalise_schemas: true,
                models: None,
            };
            let rerun = format!("flora-codegen fetch --schemas {}", layout.schemas_shown);
            run_and_print(&layout, &fetch.options(false), &rerun).await
        }
        Command::Generate {
            schemas,
            out,
            check,
            deny_warnings,
            module_path,
            test_util_feature,
            runtime_path,
        } => {
            let mut config = Config::new().deny_warnings(deny_warnings);
            if let Some(path) = module_path {
                config = config.module_path(path);
            }
            if let Some(feature) = test_util_feature {
                config = config.test_util_feature(feature);
            }
            if let Some(path) = runtime_path {
                config = config.runtime_path(path);
            }
            let layout = Layout {
                command: "flora-codegen generate".to_owned(),
                fetches: false,
                schemas_shown: shown(&schemas),
                schemas,
                generated_shown: shown(&out),
                generated: Some(out),
                codegen: config,
                normalise_schemas: false,
                models: None,
            };
            let opts = flora_codegen::cli::Options {
                offline: true,
                check,
                ..Default::default()
            };
            let rerun = format!(
                "flora-codegen generate --schemas {} --out {}",
                layout.schemas_shown, layout.generated_shown
            );
            run_and_print(&layout, &opts, &rerun).await
        }
    }
}
