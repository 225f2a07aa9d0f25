//! `floret completions SHELL`: completion scripts, generated from the one command
//! definition (a closed pipe ends the output, never in a panic).

use super::super::args::Cli;
use super::super::output::Out;

pub(super) fn completions(out: &Out, shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "floret", &mut script);
    out.raw(&String::from_utf8_lossy(&script));
}
