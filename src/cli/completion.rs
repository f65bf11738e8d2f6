//! Shell completion, names included: `baton completion bash|zsh|fish|elvish|powershell` prints a
//! script that has the shell ask `baton` itself what completes (clap_complete's dynamic engine,
//! through [`VAR`]), and `baton __complete WORDS…` answers in cobra's protocol, which is how
//! kubectl (1.26+) completes a plugin's arguments: it runs `kubectl_complete-baton` from the
//! PATH, this binary under that name. Both paths run the same engine on the same [`command`], so
//! they offer the same candidates; the names come from the cluster the words point at
//! ([`names`]).
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Shells, Zsh};
use clap_complete::CompleteEnv;

pub mod names;

/// The environment variable through which the shell scripts ask `baton` to complete: its value
/// is the shell. A name of baton's own, so that a `COMPLETE` left in someone's environment for
/// another program never turns a real command into a completion.
pub const VAR: &str = "BATON_COMPLETE";
/// The file name under which kubectl runs the binary to complete `kubectl baton …`.
pub const KUBECTL_COMPLETER: &str = "kubectl_complete-baton";
/// cobra's request for completions, as `baton __complete WORDS…`; the NoDesc form drops the
/// descriptions.
const COBRA_REQUEST: &str = "__complete";
const COBRA_REQUEST_NO_DESC: &str = "__completeNoDesc";
/// cobra's ShellCompDirective bits: no space after the candidate, no file names when there is
/// none.
const NO_SPACE: u32 = 2;
const NO_FILE_COMP: u32 = 4;

/// How to install, as `baton completion --help` says it.
const INSTALL: &str = "Install (the script calls baton back on each TAB, so Rollout and ListenerSet names complete,
read from the cluster the command line points at: --kubeconfig, --context, -n …):
  bash   source <(baton completion bash)              # in ~/.bashrc
  zsh    source <(baton completion zsh)               # in ~/.zshrc, after compinit
  fish   baton completion fish | source               # in ~/.config/fish/config.fish
As a kubectl plugin (kubectl 1.26+ completes `kubectl baton <TAB>` by running
kubectl_complete-baton from the PATH):
  ln -s \"$(command -v baton)\" ~/bin/kubectl_complete-baton   # any directory on the PATH";

#[derive(clap::Args, Debug)]
#[command(after_help = INSTALL)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells clap_complete's dynamic engine has a script for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Elvish,
    Fish,
    Powershell,
    Zsh,
}

/// clap_complete's shells, each remembering the words it is asked to complete (see
/// [`Recording`]).
const SHELLS: Shells<'static> = Shells(&[
    &Recording(&Bash),
    &Recording(&Elvish),
    &Recording(&Fish),
    &Recording(&Powershell),
    &Recording(&Zsh),
]);

impl CompletionShell {
    fn env(self) -> &'static dyn EnvCompleter {
        match self {
            CompletionShell::Bash => &Bash,
            CompletionShell::Elvish => &Elvish,
            CompletionShell::Fish => &Fish,
            CompletionShell::Powershell => &Powershell,
            CompletionShell::Zsh => &Zsh,
        }
    }
}

/// The registration script of `shell` for the `baton` command: it runs this program (as it was
/// invoked: `baton` found on the PATH, or this path) with [`VAR`] set on each TAB.
pub fn script(shell: CompletionShell) -> String {
    let completer = completer_path(std::env::args_os().next(), std::env::current_dir().ok().as_deref());
    let mut out = Vec::new();
    if let Err(e) = shell
        .env()
        .write_registration(VAR, "baton", "baton", &completer, &mut out)
    {
        return format!("# error: {e}\n");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The program the script calls back: `argv[0]` as typed when it is a bare name (the PATH finds
/// it again, a newer one after an upgrade), else made absolute, so a script sourced from one
/// directory works in any other (what `CompleteEnv` does).
fn completer_path(argv0: Option<OsString>, cwd: Option<&Path>) -> String {
    let program = PathBuf::from(argv0.unwrap_or_else(|| "baton".into()));
    let program = match cwd {
        Some(dir) if program.components().count() > 1 => dir.join(program),
        _ => program,
    };
    program.to_string_lossy().into_owned()
}

pub fn run(args: CompletionArgs) {
    super::emit(&script(args.shell));
}

/// What completes a Rollout name: the Rollouts of the line's namespace (see [`names`]).
pub fn rollouts() -> ArgValueCompleter {
    ArgValueCompleter::new(names::rollouts)
}

/// What completes a ListenerSet name.
pub fn listener_sets() -> ArgValueCompleter {
    ArgValueCompleter::new(names::listener_sets)
}

/// What completes a revision number of the Rollout the line names.
pub fn revisions() -> ArgValueCompleter {
    ArgValueCompleter::new(names::revisions)
}

/// What completes an instance of the Rollout the line names.
pub fn instances() -> ArgValueCompleter {
    ArgValueCompleter::new(names::instances)
}

/// What completes a pinned instance of the Rollout the line names.
pub fn pinned_instances() -> ArgValueCompleter {
    ArgValueCompleter::new(names::pinned_instances)
}

/// The command line every completion is computed from: the CLI with the name completers, `-n`
/// completing namespaces and `--context` the kubeconfig's contexts.
pub fn command() -> clap::Command {
    super::Cli::command()
        .mut_arg("namespace", |a| a.add(ArgValueCompleter::new(names::namespaces)))
        .mut_arg("context", |a| a.add(ArgValueCompleter::new(names::contexts)))
}

/// Whether flags are offered for `word`, the word being completed: only once it starts with
/// `-`, as kubectl (cobra) does, so a TAB after `rollout status ` offers the names and nothing
/// else — nothing at all when the cluster does not answer. (clap_complete offers every flag
/// for an empty word.)
fn offers_flags(word: Option<&OsString>) -> bool {
    word.is_some_and(|w| w.to_string_lossy().starts_with('-'))
}

/// What a shell's completion printed (`out`, candidates separated by `sep`, each starting with
/// its value), less the flags.
fn without_flags(out: &[u8], sep: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(out);
    let kept: Vec<&str> = text.split(sep).filter(|c| !c.starts_with('-')).collect();
    kept.join(sep).into_bytes()
}

/// The command line being completed, as the shell or kubectl handed it over: the completers
/// read the flags and the Rollout name from it ([`names`]).
#[derive(Debug, Clone, Default)]
pub struct Words {
    /// All the words, the program first.
    pub words: Vec<OsString>,
    /// Which of them is the one being completed (it may be one past the last: a new word).
    pub current: usize,
}

static WORDS: OnceLock<Words> = OnceLock::new();

/// The words of the command line this process is completing (none outside completion).
pub fn words() -> Option<&'static Words> {
    WORDS.get()
}

/// A clap_complete shell that first records the words it completes, then completes them as
/// that shell does: the engine hands a value completer only the partial word, and names depend
/// on the rest of the line (`-n`, `--context`, the Rollout of `--to-revision`).
struct Recording(&'static dyn EnvCompleter);

impl EnvCompleter for Recording {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn is(&self, name: &str) -> bool {
        self.0.is(name)
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> Result<(), std::io::Error> {
        self.0.write_registration(var, name, bin, completer, buf)
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> Result<(), std::io::Error> {
        // bash, zsh and elvish pass the cursor's word index (their scripts set it); fish and
        // powershell pass the words up to the cursor.
        let index = std::env::var("_CLAP_COMPLETE_INDEX").ok().and_then(|i| i.parse().ok());
        let ifs = std::env::var("_CLAP_IFS").unwrap_or_else(|_| "\n".into());
        match self.0.name() {
            "bash" => {
                let (words, current) = rejoin_bash_words(args, index.unwrap_or_default());
                let found = complete_words(cmd, words, current, current_dir)?;
                let values: Vec<String> = found
                    .iter()
                    .map(|c| c.get_value().to_string_lossy().into_owned())
                    .collect();
                buf.write_all(values.join(&ifs).as_bytes())
            }
            name => {
                let (current, sep) = match (name, index) {
                    ("zsh" | "elvish", Some(i)) => (i, ifs),
                    _ => (args.len().saturating_sub(1), "\n".to_string()),
                };
                let flags = offers_flags(args.get(current));
                let _ = WORDS.set(Words {
                    words: args.clone(),
                    current,
                });
                let mut out = Vec::new();
                self.0.write_complete(cmd, args, current_dir, &mut out)?;
                if !flags {
                    out = without_flags(&out, &sep);
                }
                buf.write_all(&out)
            }
        }
    }
}

/// bash splits `--namespace=other` at `=` (it is in COMP_WORDBREAKS) into `--namespace`, `=`,
/// `other`, which the engine would read as `--namespace` with the value `=`; read it as
/// `--namespace other`. The cursor's word is never such a `=`: for `--namespace=<TAB>` the
/// script puts there the text after it, empty.
fn rejoin_bash_words(words: Vec<OsString>, current: usize) -> (Vec<OsString>, usize) {
    let mut out: Vec<OsString> = Vec::with_capacity(words.len());
    let mut at = current;
    for (i, w) in words.into_iter().enumerate() {
        let after_flag = out.last().is_some_and(|p| p.to_string_lossy().starts_with('-'));
        if i != current && w == "=" && after_flag {
            if i < current {
                at -= 1;
            }
            continue;
        }
        out.push(w);
    }
    (out, at)
}

/// The candidates for `words[current]` (the program first): recorded for the completers, run
/// through the engine, flags only where a flag is being typed.
fn complete_words(
    cmd: &mut clap::Command,
    words: Vec<OsString>,
    current: usize,
    cwd: Option<&Path>,
) -> Result<Vec<CompletionCandidate>, std::io::Error> {
    let flags = offers_flags(words.get(current));
    let _ = WORDS.set(Words {
        words: words.clone(),
        current,
    });
    let mut found = clap_complete::engine::complete(cmd, words, current, cwd)?;
    if !flags {
        found.retain(|c| !c.get_value().to_string_lossy().starts_with('-'));
    }
    Ok(found)
}

/// When this process was started to complete a command line — by a shell script (through
/// [`VAR`]), as `baton __complete WORDS…`, or by kubectl as [`KUBECTL_COMPLETER`] — complete
/// it and give the exit code; None for every other run. Nothing is printed to stderr: it is the
/// user's terminal, mid-line.
pub fn intercept() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    let argv0 = args.next();
    let invoked_as = argv0
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if invoked_as == KUBECTL_COMPLETER {
        silence_stderr();
        return Some(cobra(args.collect(), true));
    }
    let rest: Vec<OsString> = args.collect();
    match rest.first().and_then(|a| a.to_str()) {
        Some(COBRA_REQUEST) => {
            silence_stderr();
            return Some(cobra(rest[1..].to_vec(), true));
        }
        Some(COBRA_REQUEST_NO_DESC) => {
            silence_stderr();
            return Some(cobra(rest[1..].to_vec(), false));
        }
        _ => {}
    }
    let shell = std::env::var(VAR).ok()?;
    // Not a shell's request (empty, 0 or a stray value): a normal run.
    SHELLS.completer(&shell)?;
    silence_stderr();
    let cwd = std::env::current_dir().ok();
    let done = CompleteEnv::with_factory(command)
        .var(VAR)
        .bin("baton")
        .shells(SHELLS)
        .try_complete(std::env::args_os(), cwd.as_deref());
    Some(match done {
        Ok(_) => ExitCode::SUCCESS,
        // The script then offers nothing (bash unsets COMPREPLY on a failure).
        Err(_) => ExitCode::FAILURE,
    })
}

/// Answer cobra's `__complete` request for `args`, the words after `baton` (the last being the
/// one to complete, possibly empty): one candidate a line, with its description after a tab
/// when `descriptions`, then the directive `:N`.
fn cobra(args: Vec<OsString>, descriptions: bool) -> ExitCode {
    let mut words = vec![OsString::from("baton")];
    words.extend(args);
    if words.len() == 1 {
        words.push(OsString::new());
    }
    let current = words.len() - 1;
    let cwd = std::env::current_dir().ok();
    let found = complete_words(&mut command(), words, current, cwd.as_deref()).unwrap_or_default();
    let out = cobra_lines(&found, descriptions);
    let mut stdout = std::io::stdout().lock();
    // kubectl reads what there is; a closed pipe has nobody to tell.
    let _ = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush());
    ExitCode::SUCCESS
}

/// `found` in cobra's words: `value[\tdescription]` lines, then `:directive`. No file names
/// (the engine completes paths itself where a flag takes one), and no space after a value that
/// continues (`dir/`, `--flag=`).
pub fn cobra_lines(found: &[CompletionCandidate], descriptions: bool) -> String {
    let mut out = String::new();
    let mut directive = NO_FILE_COMP;
    for c in found {
        let value = c.get_value().to_string_lossy();
        let value = value.lines().next().unwrap_or_default().trim();
        if value.is_empty() {
            continue;
        }
        if value.ends_with(['/', '=', ':']) {
            directive |= NO_SPACE;
        }
        out.push_str(value);
        let help = c.get_help().map(|h| first_sentence(&h.to_string())).unwrap_or_default();
        if descriptions && !help.is_empty() {
            out.push('\t');
            out.push_str(&help);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

/// The first sentence of `help`, as a cobra command's Short: a menu line, not the whole help.
/// A sentence ends at a period before a capital (`e.g. 90s` goes on).
fn first_sentence(help: &str) -> String {
    let line = help.lines().next().unwrap_or_default();
    let mut end = line.len();
    for (i, _) in line.match_indices(". ") {
        if line[i + 2..].starts_with(|c: char| c.is_uppercase()) {
            end = i;
            break;
        }
    }
    line[..end].trim().to_string()
}

/// Point stderr at /dev/null: a completion prints nothing but its answer, whatever a library
/// or a kubeconfig's credential plugin would say.
fn silence_stderr() {
    #[cfg(unix)]
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: both descriptors are open for the duration of the call; dup2 only makes
        // descriptor 2 a copy of /dev/null's, and `null` closing afterwards leaves that copy.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_calls_back_the_program_as_it_was_found() {
        let cwd = Path::new("/home/u");
        assert_eq!(completer_path(Some("baton".into()), Some(cwd)), "baton");
        assert_eq!(
            completer_path(Some("target/debug/baton".into()), Some(cwd)),
            "/home/u/target/debug/baton"
        );
        assert_eq!(
            completer_path(Some("/usr/bin/baton".into()), Some(cwd)),
            "/usr/bin/baton"
        );
    }

    #[test]
    fn flags_are_dropped_from_what_the_shell_reads() {
        assert_eq!(without_flags(b"api\x0b--watch\x0bweb\x0b-n", "\x0b"), b"api\x0bweb");
        assert_eq!(without_flags(b"api\tA\n--watch\tW\n", "\n"), b"api\tA\n");
        assert_eq!(without_flags(b"--watch", "\x0b"), b"");
        assert!(offers_flags(Some(&"--w".into())));
        assert!(!offers_flags(Some(&"".into())));
        assert!(!offers_flags(None));
    }

    #[test]
    fn bash_words_split_at_an_equals_sign_are_rejoined() {
        let words = |ws: &[&str]| ws.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            rejoin_bash_words(words(&["baton", "--namespace", "=", "oth"]), 3),
            (words(&["baton", "--namespace", "oth"]), 2)
        );
        assert_eq!(
            rejoin_bash_words(words(&["baton", "rollout", "-n", "=", "b", "status", ""]), 6),
            (words(&["baton", "rollout", "-n", "b", "status", ""]), 5)
        );
        // `--namespace=<TAB>`: the script already put the empty word in place of `=`.
        assert_eq!(
            rejoin_bash_words(words(&["baton", "--namespace", ""]), 2),
            (words(&["baton", "--namespace", ""]), 2)
        );
    }

    #[test]
    fn cobra_lines_end_with_the_directive() {
        let found = vec![
            CompletionCandidate::new("web").help(Some("v1".into())),
            CompletionCandidate::new("status").help(Some("Show progress. Exit codes: 0 ok".into())),
            CompletionCandidate::new("api"),
        ];
        assert_eq!(cobra_lines(&found, true), "web\tv1\nstatus\tShow progress\napi\n:4\n");
        assert_eq!(cobra_lines(&found, false), "web\nstatus\napi\n:4\n");
        assert_eq!(cobra_lines(&[], true), ":4\n");
        assert_eq!(
            first_sentence("Give up after this long (e.g. 90s, 5m)."),
            "Give up after this long (e.g. 90s, 5m)."
        );
        assert_eq!(
            cobra_lines(&[CompletionCandidate::new("--to-revision=")], true),
            "--to-revision=\n:6\n"
        );
    }
}
