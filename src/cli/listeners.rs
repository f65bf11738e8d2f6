//! `baton listeners NAME` (assignment table) and `baton listeners recover NAME`.
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use kube::api::{Api, Patch, PatchParams};

use crate::api::listenerset::ListenerSet;
use crate::api::listenerset::{RECOVERED_ANNOTATION, RECOVER_ANNOTATION};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ListenersArgs {
    #[command(subcommand)]
    pub command: Option<ListenersCommand>,
    /// ListenerSet whose assignments to print.
    pub name: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ListenersCommand {
    /// Print which pod runs which listener (same as `baton listeners NAME`).
    Show { name: String },
    /// Reassign orphaned listeners now: those whose holder pod is gone, not Ready or terminating
    /// are treated as expired at once. Listeners on Ready pods are never moved.
    Recover {
        name: String,
        /// How long to wait for the controller to act.
        #[arg(long, default_value_t = 30)]
        timeout_seconds: u64,
    },
}

/// The assignment table of a ListenerSet.
pub fn render(set: &ListenerSet) -> String {
    let mut out = String::new();
    let name = set.metadata.name.as_deref().unwrap_or("?");
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
    let mut rows = vec![["LISTENER".to_string(), "POD".into(), "SINCE".into(), "TOKEN".into()]];
    for a in &st.assignments {
        rows.push([
            a.listener.clone(),
            if a.starting {
                format!("{} (starting)", a.pod)
            } else {
                a.pod.clone()
            },
            a.since.as_ref().map(|t| t.0.to_string()).unwrap_or_else(|| "-".into()),
            a.transitions.to_string(),
        ]);
    }
    let mut ids: Vec<(String, bool)> = set.spec.listeners.iter().map(|l| (l.id.clone(), l.suspend)).collect();
    ids.sort();
    for (id, suspended) in ids {
        if !st.assignments.iter().any(|a| a.listener == id) {
            let what = if suspended { "(suspended)" } else { "(not running)" };
            rows.push([id, what.into(), "-".into(), "-".into()]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: String = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}   ", w = widths[i]))
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub async fn run(client: kube::Client, ns: &str, args: ListenersArgs) -> ExitCode {
    let api: Api<ListenerSet> = Api::namespaced(client, ns);
    let result = match (args.command, args.name) {
        (Some(ListenersCommand::Show { name }), _) | (None, Some(name)) => show(&api, &name).await,
        (Some(ListenersCommand::Recover { name, timeout_seconds }), _) => {
            recover(&api, &name, Duration::from_secs(timeout_seconds)).await
        }
        (None, None) => Err("name a ListenerSet: baton listeners NAME, or baton listeners recover NAME".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn show(api: &Api<ListenerSet>, name: &str) -> Result<(), String> {
    let set = api
        .get(name)
        .await
        .map_err(|e| format!("reading ListenerSet {name}: {e}"))?;
    print!("{}", render(&set));
    Ok(())
}

/// Ask the controller to reassign orphans now; wait until it has acted.
pub async fn recover(api: &Api<ListenerSet>, name: &str, timeout: Duration) -> Result<(), String> {
    let nonce = jiff::Timestamp::now().as_nanosecond().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {RECOVER_ANNOTATION: nonce}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("annotating ListenerSet {name}: {e}"))?;
    let end = tokio::time::Instant::now() + timeout;
    loop {
        let set = api
            .get(name)
            .await
            .map_err(|e| format!("reading ListenerSet {name}: {e}"))?;
        let done = set
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECOVERED_ANNOTATION))
            == Some(&nonce);
        if done {
            println!("recover {nonce}: the controller reassigned the orphans of {name}");
            print!("{}", render(&set));
            return Ok(());
        }
        if tokio::time::Instant::now() > end {
            return Err(format!(
                "the controller did not act on recover {nonce} within {timeout:?}: is it running?"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
