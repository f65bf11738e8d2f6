//! `baton completion bash|zsh|fish|elvish|powershell`: a completion script for the shell.
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script of `shell` for the `baton` command.
pub fn script(shell: Shell) -> String {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "baton", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn run(args: CompletionArgs) {
    super::emit(&script(args.shell));
}
