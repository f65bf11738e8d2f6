//! The `baton` binary: controller, CLI, CRD generator and demo. Also works as a kubectl plugin
//! when installed as `kubectl-baton`.
use std::process::ExitCode;

use clap::Parser;

use baton::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::run(cli).await
}
