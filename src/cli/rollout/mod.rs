//! `baton rollout …`: list, status, history, lint (offline); the runtime actions (annotations);
//! pause/resume, pins, undo and set image (spec changes, each recording its command line as the
//! change cause).
use std::process::ExitCode;

use kube::api::Api;

use super::output::{Output, PrintFlags};
use super::{emit, CliError, Session};
use crate::actions::{self, runtime, spec, Actor};
use crate::api::rollout::Rollout;

mod history;
pub mod lint;
mod list;
mod status;
pub mod tree;
pub mod view;

pub use list::COLUMNS;
pub use view::{render, verdict, Verdict};

/// [`render`] now, as the CLI shows it (what `baton demo` is handed).
pub fn render_now(r: &Rollout) -> String {
    render(r, jiff::Timestamp::now(), false)
}

/// Field manager of every write the CLI makes (the CHANGED-BY of `history`).
pub const FIELD_MANAGER: &str = actions::CLI_MANAGER;

#[derive(clap::Subcommand)]
pub enum RolloutCommand {
    /// List Rollouts (this namespace, or every one with -A).
    List {
        /// Only these Rollouts.
        #[arg(add = super::completion::rollouts())]
        names: Vec<String>,
        /// List the Rollouts of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Label selector (e.g. app=web).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        print: PrintFlags,
        /// After the list, a row (or document, or name) per change, until interrupted.
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Without a name, the list; with names, each Rollout as a tree of its revisions, instances
    /// and pods.
    Get {
        /// The Rollouts to show.
        #[arg(add = super::completion::rollouts())]
        names: Vec<String>,
        /// List the Rollouts of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Label selector (e.g. app=web).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        print: PrintFlags,
        /// With one name: follow the tree, redrawn on each change, until interrupted.
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Show progress and instances; with --watch (-w, the default) follow until Healthy, failed or
    /// timeout. Exit codes: 0 Healthy, 1 failed or rolled back, 2 timeout, 3 still in progress
    /// (--watch=false), 4 not found, 5 API server error or unreachable, 64 usage error.
    Status {
        #[arg(add = super::completion::rollouts())]
        name: String,
        /// Follow the rollout until it is done (the default); --watch=false shows it once.
        #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
        watch: bool,
        /// Give up after this long (e.g. 90s, 5m).
        #[arg(long)]
        timeout: Option<String>,
        /// json|yaml: the Rollout once (no watch), exit code as above; wide: more columns.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// End the current pause between batches now; refused (exit 1) when there is none.
    Promote {
        #[arg(add = super::completion::rollouts())]
        name: String,
        /// Skip every remaining batch and pause: the rest of the instances move now, still
        /// health-gated.
        #[arg(long)]
        full: bool,
    },
    /// Stop all progress (sets spec.paused).
    Pause {
        #[arg(add = super::completion::rollouts())]
        name: String,
    },
    /// Resume progress (clears spec.paused).
    Resume {
        #[arg(add = super::completion::rollouts())]
        name: String,
    },
    /// Abort the rollout in progress: instances return to the last healthy revision at once.
    /// Refused (exit 1) when nothing is in progress.
    Abort {
        #[arg(add = super::completion::rollouts())]
        name: String,
    },
    /// Roll out a failed revision again; refused (exit 1) when nothing failed.
    Retry {
        #[arg(add = super::completion::rollouts())]
        name: String,
    },
    /// Restart every instance (a new revision, rolled out in batches).
    Restart {
        #[arg(add = super::completion::rollouts())]
        name: String,
    },
    /// Roll the whole service back: copy a revision's template and version into spec. The
    /// instances move straight there, without the strategy's batches and pauses.
    Undo {
        #[arg(add = super::completion::rollouts())]
        name: String,
        /// Revision number (see `history`); default: the last earlier one that rolled out
        /// successfully.
        #[arg(long, add = super::completion::revisions())]
        to_revision: Option<i64>,
        /// Move through the strategy's batches and pauses, like any new revision.
        #[arg(long)]
        batches: bool,
        /// Return to the revision even if its last rollout failed.
        #[arg(long)]
        force: bool,
    },
    /// Keep instances on a version from the history (single-instance or batch rollback).
    Pin {
        #[arg(add = super::completion::rollouts())]
        name: String,
        /// Instances, comma-separated (e.g. web-0,web-2).
        #[arg(long, value_delimiter = ',', required = true, add = super::completion::instances())]
        instances: Vec<String>,
        #[arg(long)]
        version: String,
    },
    /// Remove pins (of the given instances, or all).
    Unpin {
        #[arg(add = super::completion::rollouts())]
        name: String,
        #[arg(long, value_delimiter = ',', add = super::completion::pinned_instances())]
        instances: Vec<String>,
    },
    /// Revisions (when, why, by whom) and the deploy and rollback records; --revision N shows
    /// one revision's template.
    History {
        #[arg(add = super::completion::rollouts())]
        name: String,
        /// Show this revision's version, origin and pod template.
        #[arg(long, add = super::completion::revisions())]
        revision: Option<i64>,
        #[command(flatten)]
        print: PrintFlags,
    },
    /// Check Rollout and ListenerSet manifests offline, as the API server and the controller
    /// would (no cluster, no kubeconfig).
    ///
    /// Each Rollout and ListenerSet of the files is sent as a server-side dry-run create to an API
    /// server embedded in baton, with baton's CRDs: the schema, its CEL rules (a selector that does
    /// not match the template's labels, …) and the metadata rules refuse what kube-apiserver would
    /// refuse, in its words. What it accepts, with its defaults, then goes through the
    /// controller's own validation (what would make it report InvalidSpec), and the pod and hook or
    /// check Jobs the controller would make from it are dry-run created too.
    ///
    /// Not checked, because they need the cluster: that pinned versions are in the revision
    /// history, the Deployment of spec.workloadRef (that it exists and its labels are selected),
    /// and the Secrets that listenersFrom, checks and notifications read. Objects of other kinds
    /// are skipped. Namespace: the object's, else -n, else default.
    ///
    /// Prints one line per finding, `FILE: KIND/NAME: FIELD: MESSAGE`, and nothing when all is
    /// well. Exit codes: 0 nothing found, 1 findings, 4 a file does not exist, 64 no -f or a
    /// document that is not YAML or JSON.
    Lint(lint::LintArgs),
    /// Change the spec: `set image NAME CONTAINER=IMAGE … [--version V]`.
    #[command(subcommand)]
    Set(SetCommand),
}

#[derive(clap::Subcommand)]
pub enum SetCommand {
    /// Deploy new images: set containers' images and the version (default: the images' tag).
    Image {
        #[arg(add = super::completion::rollouts())]
        name: String,
        /// CONTAINER=IMAGE, one or more.
        #[arg(required = true, value_name = "CONTAINER=IMAGE")]
        images: Vec<String>,
        /// The version to roll out (stamped on pods as app.kubernetes.io/version).
        #[arg(long)]
        version: Option<String>,
    },
}

/// Run `cmd` with `client` in namespace `ns`, printing any error (the library entry point).
pub async fn run(client: kube::Client, ns: &str, cmd: RolloutCommand) -> ExitCode {
    let s = Session {
        client,
        namespace: ns.to_string(),
        server: "the API server".into(),
        read_timeout: None,
    };
    match execute(&s, cmd).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.code)
        }
    }
}

/// Run `cmd` in session `s`.
pub async fn execute(s: &Session, cmd: RolloutCommand) -> Result<ExitCode, CliError> {
    let api: Api<Rollout> = Api::namespaced(s.client.clone(), &s.namespace);
    match cmd {
        RolloutCommand::List {
            names,
            all_namespaces,
            selector,
            print,
            watch,
        } => list::list(s, &names, all_namespaces, selector.as_deref(), &print, watch).await,
        // Named Rollouts, shown as a table only when asked for a format: the tree.
        RolloutCommand::Get {
            names,
            all_namespaces: false,
            selector: None,
            print,
            watch,
        } if !names.is_empty() && print.printer()?.is_table() => tree::live::get(s, &api, &names, watch).await,
        RolloutCommand::Get {
            names,
            all_namespaces,
            selector,
            print,
            watch,
        } => list::list(s, &names, all_namespaces, selector.as_deref(), &print, watch).await,
        RolloutCommand::Status {
            name,
            watch,
            timeout,
            output,
        } => {
            let timeout = timeout
                .as_deref()
                .map(crate::api::rollout::parse_duration)
                .transpose()
                .map_err(|e| CliError::usage(format!("--timeout: {e}")))?;
            status::status(s, &api, &name, watch, timeout, output).await
        }
        RolloutCommand::History { name, revision, print } => history::history(s, &api, &name, revision, &print).await,
        RolloutCommand::Lint(args) => lint::run(Some(&s.namespace), args).await,
        action => act(s, &api, action).await,
    }
}

/// The actions (shared with the dashboard, [`crate::actions`]): what they did is printed.
async fn act(s: &Session, api: &Api<Rollout>, cmd: RolloutCommand) -> Result<ExitCode, CliError> {
    let cause = change_cause();
    let who = Actor {
        manager: FIELD_MANAGER,
        cause: &cause,
    };
    let done = match cmd {
        RolloutCommand::Promote { name, full } => runtime::promote(s, api, &name, full, who).await,
        RolloutCommand::Abort { name } => runtime::request(s, api, &name, view::Request::Abort, who).await,
        RolloutCommand::Retry { name } => runtime::request(s, api, &name, view::Request::Retry, who).await,
        RolloutCommand::Restart { name } => runtime::restart(s, api, &name, who).await,
        RolloutCommand::Pause { name } => spec::set_paused(s, api, &name, true, who).await,
        RolloutCommand::Resume { name } => spec::set_paused(s, api, &name, false, who).await,
        RolloutCommand::Undo {
            name,
            to_revision,
            batches,
            force,
        } => spec::undo(s, api, &name, to_revision, batches, force, who).await,
        RolloutCommand::Pin {
            name,
            instances,
            version,
        } => spec::pin(s, api, &name, &instances, Some(&version), who).await,
        RolloutCommand::Unpin { name, instances } => spec::pin(s, api, &name, &instances, None, who).await,
        RolloutCommand::Set(SetCommand::Image { name, images, version }) => {
            spec::set_image(s, api, &name, &images, version.as_deref(), who).await
        }
        RolloutCommand::List { .. }
        | RolloutCommand::Get { .. }
        | RolloutCommand::Status { .. }
        | RolloutCommand::History { .. }
        | RolloutCommand::Lint(_) => {
            return Err(CliError::msg("not an action"));
        }
    };
    emit(&format!("{}\n", done?));
    Ok(ExitCode::SUCCESS)
}

/// What `kubernetes.io/change-cause` records for this command: its command line as typed
/// (`kubectl baton …` when run as the plugin), without the connection flags.
pub fn change_cause() -> String {
    change_cause_of(std::env::args())
}

/// [`change_cause`] of an argument list (first: the program).
pub fn change_cause_of(args: impl IntoIterator<Item = String>) -> String {
    const WITH_VALUE: &[&str] = &[
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--as",
        "--as-group",
        "--request-timeout",
        "-n",
        "--namespace",
    ];
    let mut args = args.into_iter();
    let program = args.next().unwrap_or_default();
    let program = match std::path::Path::new(&program).file_name().and_then(|f| f.to_str()) {
        Some("kubectl-baton") => "kubectl baton".to_string(),
        Some(p) => p.to_string(),
        None => "baton".to_string(),
    };
    let mut words = vec![program];
    let mut skip_next = false;
    for a in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if WITH_VALUE.contains(&a.as_str()) {
            skip_next = true;
            continue;
        }
        let flag = a.split('=').next().unwrap_or("");
        if a.starts_with("--") && a.contains('=') && WITH_VALUE.contains(&flag) {
            continue;
        }
        if a.starts_with("-n") && a.len() > 2 && !a.starts_with("--") {
            continue;
        }
        words.push(quote(&a));
    }
    words.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(args: &[&str]) -> String {
        change_cause_of(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_change_cause_is_the_command_line_without_connection_flags() {
        assert_eq!(
            cause(&[
                "/usr/local/bin/baton",
                "--kubeconfig",
                "/tmp/k",
                "rollout",
                "set",
                "image",
                "svc",
                "app=svc:v2",
                "-n",
                "prod"
            ]),
            "baton rollout set image svc app=svc:v2"
        );
        assert_eq!(
            cause(&[
                "/home/u/bin/kubectl-baton",
                "rollout",
                "undo",
                "svc",
                "--context=prod",
                "--to-revision",
                "3"
            ]),
            "kubectl baton rollout undo svc --to-revision 3"
        );
        assert_eq!(
            cause(&["baton", "rollout", "pause", "it's"]),
            r"baton rollout pause 'it'\''s'"
        );
    }
}
