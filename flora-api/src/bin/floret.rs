//! `floret`: FLORA techniques from the command line, each technique's inputs as checked
//! flags. `floret --help` lists the commands; the implementation is `flora_api::cli`.

fn main() -> std::process::ExitCode {
    flora_api::cli::main()
}
