//! The `baton` binary: controller, CLI, CRD generator and demo. Also works as a kubectl plugin
//! when installed as `kubectl-baton`, and completes `kubectl baton …` when installed as
//! `kubectl_complete-baton`.
use std::process::ExitCode;

use clap::Parser;

use baton::cli::{self, Cli};
use baton::session::exit;

fn main() -> ExitCode {
    // Before the runtime starts its threads (see `baton::malloc`).
    baton::malloc::limit_arenas();
    // A TAB's request (a shell's, or kubectl's as `kubectl_complete-baton`): answered before
    // anything else runs or prints.
    if let Some(code) = cli::completion::intercept() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` come back as errors that print to stdout: they worked.
            let code = if e.use_stderr() { exit::USAGE } else { exit::SUCCESS };
            if let Err(io) = e.print() {
                eprintln!("{io}");
            }
            return ExitCode::from(code);
        }
    };
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(cli::run(cli)),
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
