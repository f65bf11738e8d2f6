//! `baton listeners NAME` (assignment table), `baton listeners list [-A]` and
//! `baton listeners recover NAME` (reassign orphans now, and say which listeners moved).
use crate::api::LISTENERSET_RESOURCE;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;

use super::get::{get, Printer, Query};
use super::output::{self, Got, PrintFlags};
use super::{emit, CliError, Session};
use crate::api::listenerset::view::{self, State};
use crate::api::listenerset::{
    lease, lease_name, ListenerSet, ListenerSetStatus, LISTENERSET_LABEL, RECOVERED_ANNOTATION, RECOVER_ANNOTATION,
};
use crate::session::exit;
use k8s_openapi::api::coordination::v1::Lease;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ListenersArgs {
    #[command(subcommand)]
    pub command: Option<ListenersCommand>,
    /// ListenerSet whose assignments to print.
    #[arg(add = super::completion::listener_sets())]
    pub name: Option<String>,
    #[command(flatten)]
    pub print: PrintFlags,
}

#[derive(Subcommand, Debug)]
pub enum ListenersCommand {
    /// Print which pod runs which listener (same as `baton listeners NAME`).
    Show {
        #[arg(add = super::completion::listener_sets())]
        name: String,
        #[command(flatten)]
        print: PrintFlags,
    },
    /// List ListenerSets (this namespace, or every one with -A), with the columns of
    /// `kubectl get listenersets`.
    #[command(visible_alias = "get")]
    List {
        /// Only these ListenerSets.
        #[arg(add = super::completion::listener_sets())]
        names: Vec<String>,
        /// List the ListenerSets of every namespace.
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
    /// Reassign orphaned listeners now: those whose holder pod is gone, not Ready or terminating
    /// are treated as expired at once. Listeners on Ready pods are never moved.
    Recover {
        #[arg(add = super::completion::listener_sets())]
        name: String,
        /// How long to wait for the controller to act and the listeners to be placed.
        #[arg(long, default_value_t = 30)]
        timeout_seconds: u64,
    },
}

/// One listener, as the table shows it: who holds its Lease, since when, its fencing token,
/// and its state in the words every view of the set uses.
struct Row {
    listener: String,
    pod: Option<String>,
    since: Option<Timestamp>,
    token: Option<i32>,
    state: State,
}

/// The rows of `set`: a listener per Lease of the set and per listener of the spec without one,
/// sorted by id.
fn rows_of(set: &ListenerSet, leases: &[Lease]) -> Vec<Row> {
    let status = set.status.as_ref();
    let suspended = |id: &str| set.spec.listeners.iter().any(|l| l.id == id && l.suspend);
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for l in leases {
        let Some((_, id)) = lease::listener_of(l) else {
            continue;
        };
        let spec = l.spec.as_ref();
        rows.insert(
            id.to_string(),
            Row {
                listener: id.to_string(),
                pod: spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty()),
                since: spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
                token: Some(lease::fencing_token(l)),
                state: view::state(id, Some(l), suspended(id), status),
            },
        );
    }
    for l in &set.spec.listeners {
        rows.entry(l.id.clone()).or_insert_with(|| Row {
            listener: l.id.clone(),
            pod: None,
            since: None,
            token: None,
            state: view::state(&l.id, None, l.suspend, status),
        });
    }
    rows.into_values().collect()
}

/// The summary of a ListenerSet and the table of its listeners, from its Leases (`leases`: every
/// Lease labelled with the set): who holds each, since when, its fencing token, what it is doing.
pub fn render(set: &ListenerSet, leases: &[Lease]) -> String {
    render_at(set, leases, Timestamp::now(), false)
}

/// [`render`] at `now`; `wide` adds each Lease's name.
pub fn render_at(set: &ListenerSet, leases: &[Lease], now: Timestamp, wide: bool) -> String {
    let mut out = String::new();
    let name = set.name_any();
    let Some(st) = &set.status else {
        return format!("ListenerSet {name}: no status yet (is the controller running?)\n");
    };
    out.push_str(&format!("ListenerSet {name}: {}\n", view::summary(st)));
    for c in &st.conditions {
        out.push_str(&format!("  {}={} ({}): {}\n", c.type_, c.status, c.reason, c.message));
    }
    for a in &st.attention {
        let pod = a.pod.as_deref().map(|p| format!(" (pod {p})")).unwrap_or_default();
        // The state in the words of the table below ("pending", not the API's "Pending").
        out.push_str(&format!(
            "  {} {}: {}{pod}\n",
            a.state.to_lowercase(),
            a.listener,
            a.reason
        ));
    }
    if st.attention_omitted > 0 {
        out.push_str(&format!("  … and {} more needing attention\n", st.attention_omitted));
    }
    let mut head = vec!["LISTENER", "POD", "AGE", "TOKEN", "STATE"];
    if wide {
        head.push("LEASE");
    }
    let mut table = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in rows_of(set, leases) {
        let since = r.since.map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
        let mut row = vec![
            r.listener.clone(),
            r.pod.clone().unwrap_or_else(|| "-".into()),
            if r.pod.is_some() {
                output::age(since.as_ref(), now)
            } else {
                "-".into()
            },
            r.token.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            r.state.to_string(),
        ];
        if wide {
            row.push(lease_name(&name, &r.listener));
        }
        table.push(row);
    }
    out.push_str(&output::table(&table));
    out
}

/// Every Lease of ListenerSet `name` (the per-listener truth the status only counts).
pub async fn set_leases(client: &kube::Client, ns: &str, name: &str) -> Result<Vec<Lease>, kube::Error> {
    let lp = ListParams::default().labels(&format!("{LISTENERSET_LABEL}={name}"));
    Ok(Api::<Lease>::namespaced(client.clone(), ns).list(&lp).await?.items)
}

/// The ListenerSets table at `now`, header first, with the columns of `kubectl get
/// listenersets` ([`view::COLUMNS`]); `namespaces` adds NAMESPACE.
pub fn set_rows(sets: &[ListenerSet], now: Timestamp, namespaces: bool, wide: bool) -> Vec<Vec<String>> {
    let mut head: Vec<String> = Vec::new();
    if namespaces {
        head.push("NAMESPACE".into());
    }
    head.push("NAME".into());
    head.extend(view::columns(wide).map(|c| c.name.to_string()));
    let mut rows = vec![head];
    for s in sets {
        let mut row = Vec::new();
        if namespaces {
            row.push(s.namespace().unwrap_or_default());
        }
        row.push(s.name_any());
        for c in view::columns(wide) {
            row.push(match c.kind {
                "date" => output::age(s.metadata.creation_timestamp.as_ref(), now),
                _ => output::or_none(view::cell(c, s.status.as_ref()).as_deref()),
            });
        }
        rows.push(row);
    }
    rows
}

pub async fn execute(s: &Session, args: ListenersArgs) -> Result<ExitCode, CliError> {
    let api: Api<ListenerSet> = Api::namespaced(s.client.clone(), &s.namespace);
    match (args.command, args.name) {
        (Some(ListenersCommand::Show { name, print }), _) => show(s, &api, &name, &print).await,
        (None, Some(name)) => show(s, &api, &name, &args.print).await,
        (
            Some(ListenersCommand::List {
                names,
                all_namespaces,
                selector,
                print,
                watch,
            }),
            _,
        ) => {
            let kind = Printer {
                resource: LISTENERSET_RESOURCE,
                plural: "listenersets.baton.dev",
                rows: set_rows,
            };
            let query = Query {
                names: &names,
                all_namespaces,
                selector: selector.as_deref(),
            };
            get(s, &kind, &query, &print, watch).await
        }
        (Some(ListenersCommand::Recover { name, timeout_seconds }), _) => {
            let (text, outcome) =
                recover_with(&api, &name, Duration::from_secs(timeout_seconds), &|e| s.error(e)).await?;
            emit(&text);
            Ok(ExitCode::from(match outcome {
                Recovered::Settled => exit::SUCCESS,
                Recovered::CannotMove => exit::FAILED,
                Recovered::Waiting => exit::TIMEOUT,
            }))
        }
        (None, None) => Err(CliError::usage(
            "name a ListenerSet: baton listeners NAME, baton listeners list, or baton listeners recover NAME",
        )),
    }
}

/// `baton listeners NAME`: the set's summary and listener table, or the set in any other of
/// kubectl's formats.
async fn show(s: &Session, api: &Api<ListenerSet>, name: &str, flags: &PrintFlags) -> Result<ExitCode, CliError> {
    let printer = flags.printer()?;
    let set = api.get(name).await.map_err(|e| s.error(&e))?;
    if printer.is_table() {
        let leases = set_leases(&s.client, &s.namespace, name)
            .await
            .map_err(|e| s.error(&e))?;
        emit(&render_at(&set, &leases, Timestamp::now(), printer.wide()));
    } else {
        let objects = [output::object(&set)?];
        let got = Got {
            resource: LISTENERSET_RESOURCE,
            objects: &objects,
            single: true,
        };
        emit(&printer.print(&got, Vec::new())?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Which pod each listener is assigned to (from its Lease).
fn placement(leases: &[Lease]) -> BTreeMap<String, String> {
    leases
        .iter()
        .filter_map(|l| {
            let (_, id) = lease::listener_of(l)?;
            let holder = l.spec.as_ref()?.holder_identity.clone().filter(|h| !h.is_empty())?;
            Some((id.to_string(), holder))
        })
        .collect()
}

/// What `recover` did, from the placement before and after: `(listener, from, to)` per listener
/// that moved (`to` None: released, not placed yet).
pub fn moves(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<(String, String, Option<String>)> {
    before
        .iter()
        .filter_map(|(l, from)| match after.get(l) {
            Some(to) if to == from => None,
            to => Some((l.clone(), from.clone(), to.cloned())),
        })
        .collect()
}

/// How a recover ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Every listener that is not suspended has a live holder.
    Settled,
    /// Listeners wait and the status says no pod may take any (why is in the report).
    CannotMove,
    /// Listeners still wait for a pod when the time was up.
    Waiting,
}

/// The report of a recover: which listeners moved where, and, while some still wait (`st`: the
/// set's status after), how many and why, in the words of the set's other views.
pub fn report(name: &str, moved: &[(String, String, Option<String>)], st: &ListenerSetStatus) -> String {
    let placed: Vec<String> = moved
        .iter()
        .filter_map(|(l, from, to)| to.as_ref().map(|to| format!("{l}: {from} → {to}")))
        .collect();
    let released: Vec<&str> = moved
        .iter()
        .filter(|(_, _, to)| to.is_none())
        .map(|(l, _, _)| l.as_str())
        .collect();
    let waiting = st.orphaned + st.pending > 0 || !released.is_empty();
    let head = format!("{LISTENERSET_RESOURCE}/{name} recovered");
    let mut out = match placed.len() {
        0 if !waiting => format!("{head}: no orphaned listener to move\n"),
        0 => format!("{head}: no listener moved\n"),
        1 => format!("{head}: 1 listener moved ({})\n", placed[0]),
        n => format!("{head}: {n} listeners moved ({})\n", placed.join(", ")),
    };
    if waiting {
        let why = match view::cannot_move(st) {
            Some(why) => format!("{}{why}", view::CANNOT_MOVE),
            None => "not placed yet".to_string(),
        };
        out.push_str(&format!("{} orphaned, {} pending: {why}\n", st.orphaned, st.pending));
    }
    if !released.is_empty() {
        out.push_str(&format!("released, waiting for a pod: {}\n", released.join(", ")));
    }
    out
}

/// Ask the controller to reassign orphans now; wait until it has acted and the listeners it
/// released are placed, the status says none can be, or the timeout. Returns the report (with
/// the set's view after) and how it ended.
pub async fn recover_with(
    api: &Api<ListenerSet>,
    name: &str,
    timeout: Duration,
    error: &(dyn Fn(&kube::Error) -> CliError + Sync),
) -> Result<(String, Recovered), CliError> {
    api.get(name).await.map_err(|e| error(&e))?;
    let leases = |api: &Api<ListenerSet>| {
        let lp = ListParams::default().labels(&format!("{LISTENERSET_LABEL}={name}"));
        let leases: Api<Lease> = Api::namespaced(api.clone().into_client(), api.namespace().unwrap_or_default());
        async move { leases.list(&lp).await.map(|l| l.items) }
    };
    let was = placement(&leases(api).await.map_err(|e| error(&e))?);
    let nonce = Timestamp::now().as_nanosecond().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {RECOVER_ANNOTATION: nonce}}});
    let pp = PatchParams {
        field_manager: Some(super::rollout::FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(name, &pp, &Patch::Merge(&patch))
        .await
        .map_err(|e| error(&e))?;
    let end = tokio::time::Instant::now() + timeout;
    let mut acted = false;
    loop {
        let set = api.get(name).await.map_err(|e| error(&e))?;
        acted = acted || set.annotations().get(RECOVERED_ANNOTATION) == Some(&nonce);
        let st = set.status.clone().unwrap_or_default();
        let now_held = leases(api).await.map_err(|e| error(&e))?;
        let moved = moves(&was, &placement(&now_held));
        let current = acted && st.observed_generation == set.metadata.generation;
        let outcome = if current && st.orphaned == 0 && st.pending == 0 && moved.iter().all(|(_, _, to)| to.is_some()) {
            Some(Recovered::Settled)
        } else if current && st.orphaned + st.pending > 0 && view::cannot_move(&st).is_some() {
            Some(Recovered::CannotMove)
        } else if acted && tokio::time::Instant::now() > end {
            Some(Recovered::Waiting)
        } else {
            None
        };
        if let Some(outcome) = outcome {
            let text = report(name, &moved, &st) + &render(&set, &now_held);
            return Ok((text, outcome));
        }
        if tokio::time::Instant::now() > end {
            return Err(CliError::with_code(
                format!("error: the controller did not act on the recover request within {timeout:?}: is it running?"),
                exit::TIMEOUT,
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`recover_with`], printing the report (the library entry point).
pub async fn recover(api: &Api<ListenerSet>, name: &str, timeout: Duration) -> Result<(), String> {
    let (text, _) = recover_with(api, name, timeout, &|e| super::session::kube_error(e, "the API server"))
        .await
        .map_err(|e| e.message)?;
    emit(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_recover_reports_the_listeners_that_moved() {
        let before = map(&[("l1", "web-0"), ("l2", "web-1"), ("l3", "web-0")]);
        let after = map(&[("l1", "web-2"), ("l2", "web-1"), ("l3", "web-1")]);
        let m = moves(&before, &after);
        let fine = ListenerSetStatus::default();
        assert_eq!(
            report("sxt", &m, &fine),
            "listenerset.baton.dev/sxt recovered: 2 listeners moved (l1: web-0 → web-2, l3: web-0 → web-1)\n"
        );
        assert_eq!(
            report("sxt", &moves(&before, &before), &fine),
            "listenerset.baton.dev/sxt recovered: no orphaned listener to move\n"
        );
        let gone = map(&[("l2", "web-1")]);
        let pending = ListenerSetStatus {
            pending: 2,
            ..Default::default()
        };
        assert_eq!(
            report("sxt", &moves(&before, &gone), &pending),
            "listenerset.baton.dev/sxt recovered: no listener moved\n0 orphaned, 2 pending: not placed yet\nreleased, waiting for a pod: l1, l3\n"
        );
    }

    #[test]
    fn a_recover_that_cannot_move_anything_says_why_in_the_status_words() {
        let why = "no eligible pod (none of the 2 pods matching spec.selector is Ready)";
        let st = ListenerSetStatus {
            orphaned: 2,
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: crate::api::listenerset::CONDITION_READY.into(),
                status: "False".into(),
                reason: "NoEligiblePods".into(),
                message: format!("{}{why}", view::CANNOT_MOVE),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
                observed_generation: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            report("sxt", &[], &st),
            format!("listenerset.baton.dev/sxt recovered: no listener moved\n2 orphaned, 0 pending: no listener can move: {why}\n")
        );
    }
}
