//! What a TAB offers from the cluster: Rollout and ListenerSet names, a Rollout's revision
//! numbers and instances, namespaces, and the kubeconfig's contexts. The cluster is the one the
//! command line being completed points at ([`Line`]: its `--kubeconfig`, `--context`, `-n` …,
//! else `$KUBECONFIG` or `~/.kube/config`). A TAB must never hang nor print: every query has
//! [`BUDGET`] in all, and any error (no kubeconfig, unreachable server, forbidden) offers
//! nothing.
use std::ffi::{OsStr, OsString};
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use clap_complete::engine::CompletionCandidate;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams};
use kube::config::Kubeconfig;
use kube::ResourceExt;
use serde::de::DeserializeOwned;

use crate::actions::revision_log;
use crate::api::listenerset::ListenerSet;
use crate::api::rollout::Rollout;
use crate::session::{self, KubeArgs, Session};

/// How long a TAB may wait for the API server, the kubeconfig and its credentials included.
const BUDGET: Duration = Duration::from_millis(2500);
/// The client's own limit to connect and for each read (`--request-timeout`'s syntax), within
/// [`BUDGET`].
const REQUEST_TIMEOUT: &str = "2s";

/// A candidate value and its description.
type Found = Vec<(String, Option<String>)>;

/// What the command line being completed says, the word being completed left out.
#[derive(Debug, Clone, Default)]
pub struct Line {
    /// kubectl's flags among the words.
    pub kube: KubeArgs,
    /// `-A`/`--all-namespaces`, on a command that has it.
    pub all_namespaces: bool,
    /// The positional values of the innermost subcommand (`rollout undo web` → `[web]`).
    pub positionals: Vec<String>,
}

/// Read `words` (the program first) as `cmd` (built) parses them: subcommands, the options
/// that take a value (`--flag V`, `--flag=V`, `-nV`, `-n=V`, `-An V`) and positionals; the word
/// at `current` is skipped. Unknown flags are passed over.
pub fn read_line(cmd: &clap::Command, words: &[OsString], current: usize) -> Line {
    let mut line = Line::default();
    let mut cmd = cmd;
    let mut escaped = false;
    let mut i = 1;
    // The value of the option at word `i`: inline, else the next word (consumed; none when
    // that is the word being completed).
    let next_word = |i: &mut usize| -> Option<String> {
        *i += 1;
        let value = words.get(*i).and_then(|w| w.to_str()).map(String::from);
        value.filter(|_| *i != current)
    };
    while i < words.len() {
        let word = words[i].to_str().filter(|_| i != current);
        match word {
            None => {}
            Some(w) if escaped => line.positionals.push(w.to_string()),
            Some("--") => escaped = true,
            Some(w) if w.starts_with("--") => {
                let (flag, inline) = match w[2..].split_once('=') {
                    Some((f, v)) => (f, Some(v.to_string())),
                    None => (&w[2..], None),
                };
                let arg = cmd.get_arguments().find(|a| {
                    a.get_long_and_visible_aliases()
                        .is_some_and(|longs| longs.contains(&flag))
                });
                if let Some(arg) = arg {
                    let value = match inline {
                        Some(v) => Some(v),
                        None if takes_separate_value(arg) => next_word(&mut i),
                        None => None,
                    };
                    note(&mut line, arg, value);
                }
            }
            Some(w) if w.starts_with('-') && w.len() > 1 => {
                let shorts = &w[1..];
                for (at, c) in shorts.char_indices() {
                    let Some(arg) = cmd.get_arguments().find(|a| a.get_short() == Some(c)) else {
                        break;
                    };
                    if !takes_value(arg) {
                        note(&mut line, arg, None);
                        continue;
                    }
                    let rest = &shorts[at + c.len_utf8()..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    let value = if !rest.is_empty() {
                        Some(rest.to_string())
                    } else if takes_separate_value(arg) {
                        next_word(&mut i)
                    } else {
                        None
                    };
                    note(&mut line, arg, value);
                    break;
                }
            }
            Some(w) => match cmd.find_subcommand(w) {
                Some(sub) => {
                    cmd = sub;
                    line.positionals.clear();
                }
                None => line.positionals.push(w.to_string()),
            },
        }
        i += 1;
    }
    line
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

/// An option whose value may be optional (`--watch[=BOOL]`) takes it only inline, as clap does
/// for the word after it only when it is not a positional; reading it as the value would lose a
/// name.
fn takes_separate_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.min_values() > 0)
}

/// Record what the line says through `arg` (by its id: the field of [`KubeArgs`] or the
/// command's `all_namespaces`).
fn note(line: &mut Line, arg: &clap::Arg, value: Option<String>) {
    let kube = &mut line.kube;
    match (arg.get_id().as_str(), value) {
        ("all_namespaces", _) => line.all_namespaces = true,
        ("kubeconfig", Some(v)) => kube.kubeconfig = Some(v.into()),
        ("context", Some(v)) => kube.context = Some(v),
        ("cluster", Some(v)) => kube.cluster = Some(v),
        ("user", Some(v)) => kube.user = Some(v),
        ("namespace", Some(v)) => kube.namespace = Some(v),
        ("as_user", Some(v)) => kube.as_user = Some(v),
        ("as_group", Some(v)) => kube.as_group.push(v),
        _ => {}
    }
}

/// The line this process is completing.
fn line() -> Line {
    match super::words() {
        Some(w) => {
            let mut cmd = super::command();
            cmd.build();
            read_line(&cmd, &w.words, w.current)
        }
        None => Line::default(),
    }
}

/// The values of `found` that start with `current`, in `found`'s order.
fn candidates(current: &OsStr, found: Found) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    found
        .into_iter()
        .filter(|(value, _)| value.starts_with(prefix.as_ref()))
        .map(|(value, help)| CompletionCandidate::new(value).help(help.map(Into::into)))
        .collect()
}

/// Run `query` against the cluster `line` points at, within [`BUDGET`]; nothing on any error.
fn fetch<F, Fut>(line: &Line, query: F) -> Found
where
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = Result<Found, kube::Error>>,
{
    let mut args = line.kube.clone();
    args.request_timeout = Some(REQUEST_TIMEOUT.to_string());
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return Found::new();
    };
    let found = rt.block_on(async {
        let work = async {
            let s = session::session(&args).await.ok()?;
            query(s).await.ok()
        };
        tokio::time::timeout(BUDGET, work).await.ok().flatten()
    });
    // A DNS lookup still blocking a thread must not hold the TAB.
    rt.shutdown_background();
    found.unwrap_or_default()
}

/// The names of the `K`s of the line's namespace (of every namespace with `-A`), sorted.
fn names_of<K>(current: &OsStr) -> Vec<CompletionCandidate>
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let line = line();
    let all = line.all_namespaces;
    let found = fetch(&line, |s| async move {
        let api: Api<K> = if all {
            Api::all(s.client)
        } else {
            Api::namespaced(s.client, &s.namespace)
        };
        let mut names: Vec<String> = api
            .list_metadata(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|m| m.name_any())
            .collect();
        names.sort();
        names.dedup();
        Ok(names.into_iter().map(|n| (n, None)).collect())
    });
    candidates(current, found)
}

/// Rollout names (`rollout status <TAB>`).
pub fn rollouts(current: &OsStr) -> Vec<CompletionCandidate> {
    names_of::<Rollout>(current)
}

/// ListenerSet names (`listeners <TAB>`).
pub fn listener_sets(current: &OsStr) -> Vec<CompletionCandidate> {
    names_of::<ListenerSet>(current)
}

/// The Rollout the line names (its first positional) and what `pick` finds in it.
fn of_rollout<F>(current: &OsStr, pick: F) -> Vec<CompletionCandidate>
where
    F: FnOnce(Session, Rollout) -> std::pin::Pin<Box<dyn Future<Output = Result<Found, kube::Error>>>>,
{
    let line = line();
    let Some(name) = line.positionals.first().cloned() else {
        return Vec::new();
    };
    let found = fetch(&line, |s| async move {
        let api: Api<Rollout> = Api::namespaced(s.client.clone(), &s.namespace);
        let rollout = api.get(&name).await?;
        pick(s, rollout).await
    });
    candidates(current, found)
}

/// The Rollout's revision numbers, oldest first, each with its version and marks
/// (`undo web --to-revision <TAB>`, `history web --revision <TAB>`).
pub fn revisions(current: &OsStr) -> Vec<CompletionCandidate> {
    of_rollout(current, |s, rollout| {
        Box::pin(async move {
            let revs = revision_log::revisions(&s.client, &s.namespace, &rollout).await?;
            Ok(revision_log::entries(&rollout, &revs)
                .into_iter()
                .map(|e| {
                    let mut help = e.version;
                    if !e.marks.is_empty() {
                        help = format!("{help} ({})", e.marks.join(","));
                    }
                    (e.revision.to_string(), Some(help))
                })
                .collect())
        })
    })
}

/// The Rollout's instances (`status.instances[].name`), each with the version it runs
/// (`pin web --instances <TAB>`).
pub fn instances(current: &OsStr) -> Vec<CompletionCandidate> {
    of_rollout(current, |_, rollout| {
        Box::pin(async move { Ok(instances_of(&rollout, false)) })
    })
}

/// The Rollout's pinned instances (`unpin web --instances <TAB>`).
pub fn pinned_instances(current: &OsStr) -> Vec<CompletionCandidate> {
    of_rollout(current, |_, rollout| {
        Box::pin(async move { Ok(instances_of(&rollout, true)) })
    })
}

fn instances_of(rollout: &Rollout, pinned_only: bool) -> Found {
    let Some(status) = &rollout.status else {
        return Found::new();
    };
    status
        .instances
        .iter()
        .filter(|i| i.pinned || !pinned_only)
        .map(|i| {
            let version = i.pinned_version.clone().or_else(|| i.version.clone());
            (i.name.clone(), version)
        })
        .collect()
}

/// The cluster's namespaces (`-n <TAB>`).
pub fn namespaces(current: &OsStr) -> Vec<CompletionCandidate> {
    let line = line();
    let found = fetch(&line, |s| async move {
        let api: Api<Namespace> = Api::all(s.client);
        let list = api.list_metadata(&ListParams::default()).await?;
        Ok(list.items.into_iter().map(|m| (m.name_any(), None)).collect())
    });
    candidates(current, found)
}

/// The kubeconfig's contexts (`--context <TAB>`), each with its cluster; no request is made.
pub fn contexts(current: &OsStr) -> Vec<CompletionCandidate> {
    let line = line();
    let config = match &line.kube.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    };
    let Ok(config) = config else {
        return Vec::new();
    };
    let found = config
        .contexts
        .into_iter()
        .map(|c| {
            let cluster = c.context.map(|x| x.cluster).filter(|x| !x.is_empty());
            (c.name, cluster)
        })
        .collect();
    candidates(current, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(words: &[&str], current: usize) -> Line {
        let mut cmd = crate::cli::completion::command();
        cmd.build();
        let words: Vec<OsString> = words.iter().map(OsString::from).collect();
        read_line(&cmd, &words, current)
    }

    #[test]
    fn the_line_gives_kubectls_flags_wherever_they_are() {
        let l = read(
            &[
                "baton",
                "--kubeconfig=/k",
                "rollout",
                "-nteam",
                "undo",
                "--context",
                "prod",
                "web",
                "--to-revision",
                "",
            ],
            9,
        );
        assert_eq!(l.kube.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
        assert_eq!(l.kube.namespace.as_deref(), Some("team"));
        assert_eq!(l.kube.context.as_deref(), Some("prod"));
        assert_eq!(l.positionals, ["web"]);
        assert!(!l.all_namespaces);
    }

    #[test]
    fn option_values_are_not_names_and_the_current_word_is_left_out() {
        let l = read(
            &[
                "baton",
                "rollout",
                "pin",
                "--version",
                "v1",
                "web",
                "--instances",
                "web-",
            ],
            7,
        );
        assert_eq!(l.positionals, ["web"]);
        let l = read(&["baton", "rollout", "list", "-An", "x", "we"], 5);
        assert!(l.all_namespaces);
        assert_eq!(l.kube.namespace.as_deref(), Some("x"));
        assert!(l.positionals.is_empty());
        // `--watch` takes its value only inline: the word after it is the name.
        let l = read(&["baton", "rollout", "status", "--watch", "web", "-n=b", ""], 6);
        assert_eq!(l.positionals, ["web"]);
        assert_eq!(l.kube.namespace.as_deref(), Some("b"));
    }
}
