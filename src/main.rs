//! The `baton` binary: controller, CLI, CRD generator and demo. Also works as a kubectl plugin
//! when installed as `kubectl-baton`.
use std::process::ExitCode;

use clap::Parser;

use baton::cli::{self, Cli};

fn main() -> ExitCode {
    // Before the runtime starts its threads (see `baton::malloc`).
    baton::malloc::limit_arenas();
    let cli = Cli::parse();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(cli::run(cli)),
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
