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

use super::output::{self, Output};
use super::{emit, CliError, Session};
use crate::api::listenerset::{
    lease, lease_name, ListenerSet, LISTENERSET_LABEL, RECOVERED_ANNOTATION, RECOVER_ANNOTATION,
};
use k8s_openapi::api::coordination::v1::Lease;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ListenersArgs {
    #[command(subcommand)]
    pub command: Option<ListenersCommand>,
    /// ListenerSet whose assignments to print.
    pub name: Option<String>,
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

#[derive(Subcommand, Debug)]
pub enum ListenersCommand {
    /// Print which pod runs which listener (same as `baton listeners NAME`).
    Show {
        name: String,
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// List ListenerSets (this namespace, or every one with -A).
    #[command(visible_alias = "get")]
    List {
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Reassign orphaned listeners now: those whose holder pod is gone, not Ready or terminating
    /// are treated as expired at once. Listeners on Ready pods are never moved.
    Recover {
        name: String,
        /// How long to wait for the controller to act and the listeners to be placed.
        #[arg(long, default_value_t = 30)]
        timeout_seconds: u64,
    },
}

/// One listener's Lease, as the table shows it.
struct Row {
    listener: String,
    pod: Option<String>,
    since: Option<Timestamp>,
    token: i32,
    state: &'static str,
}

fn row_of(l: &Lease) -> Option<Row> {
    let (_, listener) = lease::listener_of(l)?;
    let spec = l.spec.as_ref();
    let pod = spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
    let state = match (&pod, lease::is_terminating(l), lease::release_requested(l).is_some()) {
        (None, true, _) => "deleting",
        (None, false, _) => "released",
        (Some(_), true, _) | (Some(_), false, true) => "releasing",
        (Some(_), false, false) if lease::acknowledged(l) => "running",
        (Some(_), false, false) => "starting",
    };
    Some(Row {
        listener: listener.to_string(),
        pod,
        since: spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
        token: lease::fencing_token(l),
        state,
    })
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
    out.push_str(&format!(
        "ListenerSet {name}: {} listeners, {} running, {} starting, {} pending, {} orphaned, {} suspended\n",
        st.listeners, st.running, st.starting, st.pending, st.orphaned, st.suspended
    ));
    for c in &st.conditions {
        out.push_str(&format!("  {}={} ({}): {}\n", c.type_, c.status, c.reason, c.message));
    }
    for a in &st.attention {
        let pod = a.pod.as_deref().map(|p| format!(" (pod {p})")).unwrap_or_default();
        out.push_str(&format!("  {} {}: {}{pod}\n", a.state, a.listener, a.reason));
    }
    if st.attention_omitted > 0 {
        out.push_str(&format!("  … and {} more needing attention\n", st.attention_omitted));
    }
    let mut head = vec!["LISTENER", "POD", "AGE", "TOKEN", "STATE"];
    if wide {
        head.push("LEASE");
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    let mut found: Vec<Row> = leases.iter().filter_map(row_of).collect();
    found.sort_by(|a, b| a.listener.cmp(&b.listener));
    for r in &found {
        let since = r.since.map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
        let mut row = vec![
            r.listener.clone(),
            r.pod.clone().unwrap_or_else(|| "-".into()),
            output::age(since.as_ref(), now),
            r.token.to_string(),
            r.state.to_string(),
        ];
        if wide {
            row.push(lease_name(&name, &r.listener));
        }
        rows.push(row);
    }
    let mut ids: Vec<(String, bool)> = set.spec.listeners.iter().map(|l| (l.id.clone(), l.suspend)).collect();
    ids.sort();
    for (id, suspended) in ids {
        if !found.iter().any(|r| r.listener == id) {
            let what = if suspended { "suspended" } else { "pending" };
            let mut row = vec![id.clone(), "-".into(), "-".into(), "-".into(), what.into()];
            if wide {
                row.push(lease_name(&name, &id));
            }
            rows.push(row);
        }
    }
    out.push_str(&output::table(&rows));
    out
}

/// Every Lease of ListenerSet `name` (the per-listener truth the status only counts).
pub async fn set_leases(client: &kube::Client, ns: &str, name: &str) -> Result<Vec<Lease>, kube::Error> {
    let lp = ListParams::default().labels(&format!("{LISTENERSET_LABEL}={name}"));
    Ok(Api::<Lease>::namespaced(client.clone(), ns).list(&lp).await?.items)
}

/// The ListenerSets table at `now`.
pub fn sets_table(sets: &[ListenerSet], now: Timestamp, namespaces: bool) -> String {
    let mut head = vec![
        "NAME",
        "LISTENERS",
        "RUNNING",
        "PENDING",
        "ORPHANED",
        "SUSPENDED",
        "AGE",
    ];
    if namespaces {
        head.insert(0, "NAMESPACE");
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for s in sets {
        let st = s.status.clone().unwrap_or_default();
        let mut row = Vec::new();
        if namespaces {
            row.push(s.namespace().unwrap_or_default());
        }
        row.extend([
            s.name_any(),
            st.listeners.to_string(),
            st.running.to_string(),
            st.pending.to_string(),
            st.orphaned.to_string(),
            st.suspended.to_string(),
            output::age(s.metadata.creation_timestamp.as_ref(), now),
        ]);
        rows.push(row);
    }
    output::table(&rows)
}

pub async fn execute(s: &Session, args: ListenersArgs) -> Result<ExitCode, CliError> {
    let api: Api<ListenerSet> = Api::namespaced(s.client.clone(), &s.namespace);
    match (args.command, args.name) {
        (Some(ListenersCommand::Show { name, output }), _) => show(s, &api, &name, output.or(args.output)).await,
        (None, Some(name)) => show(s, &api, &name, args.output).await,
        (Some(ListenersCommand::List { all_namespaces, output }), _) => {
            list(s, all_namespaces, output.or(args.output)).await
        }
        (Some(ListenersCommand::Recover { name, timeout_seconds }), _) => {
            let (text, settled) =
                recover_with(&api, &name, Duration::from_secs(timeout_seconds), &|e| s.error(e)).await?;
            emit(&text);
            Ok(if settled {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::session::exit::TIMEOUT)
            })
        }
        (None, None) => Err(CliError::usage(
            "name a ListenerSet: baton listeners NAME, baton listeners list, or baton listeners recover NAME",
        )),
    }
}

async fn show(s: &Session, api: &Api<ListenerSet>, name: &str, out: Option<Output>) -> Result<ExitCode, CliError> {
    let set = api.get(name).await.map_err(|e| s.error(&e))?;
    match out {
        Some(o @ (Output::Json | Output::Yaml)) => emit(&output::document(&output::object(&set)?, o)?),
        Some(Output::Name) => emit(&format!("{LISTENERSET_RESOURCE}/{name}\n")),
        other => {
            let leases = set_leases(&s.client, &s.namespace, name)
                .await
                .map_err(|e| s.error(&e))?;
            emit(&render_at(&set, &leases, Timestamp::now(), other == Some(Output::Wide)))
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(s: &Session, all: bool, out: Option<Output>) -> Result<ExitCode, CliError> {
    let api: Api<ListenerSet> = if all {
        Api::all(s.client.clone())
    } else {
        Api::namespaced(s.client.clone(), &s.namespace)
    };
    let mut sets = api.list(&ListParams::default()).await.map_err(|e| s.error(&e))?.items;
    sets.sort_by_key(|x| (x.namespace(), x.name_any()));
    match out {
        Some(o @ (Output::Json | Output::Yaml)) => {
            let items = sets.iter().map(output::object).collect::<Result<Vec<_>, _>>()?;
            emit(&output::document(&output::list(items), o)?);
        }
        Some(Output::Name) => {
            for x in &sets {
                emit(&format!("{LISTENERSET_RESOURCE}/{}\n", x.name_any()));
            }
        }
        _ if sets.is_empty() => eprintln!("No resources found in {} namespace.", s.namespace),
        _ => emit(&sets_table(&sets, Timestamp::now(), all)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Which pod each listener is assigned to (from its Lease).
fn placement(leases: &[Lease]) -> BTreeMap<String, String> {
    leases
        .iter()
        .filter_map(row_of)
        .filter_map(|r| Some((r.listener, r.pod?)))
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

/// The report of a recover.
pub fn report(name: &str, moved: &[(String, String, Option<String>)], pending: i32) -> String {
    let placed: Vec<String> = moved
        .iter()
        .filter_map(|(l, from, to)| to.as_ref().map(|to| format!("{l}: {from} → {to}")))
        .collect();
    let waiting: Vec<&str> = moved
        .iter()
        .filter(|(_, _, to)| to.is_none())
        .map(|(l, _, _)| l.as_str())
        .collect();
    let mut out = match placed.len() {
        0 if waiting.is_empty() => format!("{LISTENERSET_RESOURCE}/{name} recovered: no orphaned listener to move\n"),
        0 => format!("{LISTENERSET_RESOURCE}/{name} recovered: no listener placed yet\n"),
        1 => format!(
            "{LISTENERSET_RESOURCE}/{name} recovered: 1 listener moved ({})\n",
            placed[0]
        ),
        n => format!(
            "{LISTENERSET_RESOURCE}/{name} recovered: {n} listeners moved ({})\n",
            placed.join(", ")
        ),
    };
    if !waiting.is_empty() {
        out.push_str(&format!(
            "{} released and not placed yet (no eligible pod?): {}\n",
            waiting.len(),
            waiting.join(", ")
        ));
    } else if pending > 0 {
        out.push_str(&format!("{pending} listeners are pending (no eligible pod?)\n"));
    }
    out
}

/// Ask the controller to reassign orphans now; wait until it has acted and the listeners it
/// released are placed (or the timeout). Returns the report and the set, and whether every
/// listener found a pod.
pub async fn recover_with(
    api: &Api<ListenerSet>,
    name: &str,
    timeout: Duration,
    error: &(dyn Fn(&kube::Error) -> CliError + Sync),
) -> Result<(String, bool), CliError> {
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
        let settled = acted
            && st.orphaned == 0
            && st.pending == 0
            && moved.iter().all(|(_, _, to)| to.is_some())
            && st.observed_generation == set.metadata.generation;
        let late = tokio::time::Instant::now() > end;
        if settled || (acted && late) {
            let text = report(name, &moved, st.pending) + &render(&set, &now_held);
            return Ok((text, settled));
        }
        if late {
            return Err(CliError::with_code(
                format!("error: the controller did not act on the recover request within {timeout:?}: is it running?"),
                super::session::exit::TIMEOUT,
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
        assert_eq!(
            report("sxt", &m, 0),
            "listenerset.baton.dev/sxt recovered: 2 listeners moved (l1: web-0 → web-2, l3: web-0 → web-1)\n"
        );
        assert_eq!(
            report("sxt", &moves(&before, &before), 0),
            "listenerset.baton.dev/sxt recovered: no orphaned listener to move\n"
        );
        let gone = map(&[("l2", "web-1")]);
        assert_eq!(
            report("sxt", &moves(&before, &gone), 2),
            "listenerset.baton.dev/sxt recovered: no listener placed yet\n2 released and not placed yet (no eligible pod?): l1, l3\n"
        );
    }
}
