//! The phases of one size: start, rest, drain of the busiest pod, SIGKILL of the next busiest
//! pod's agent.
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use crate::harness::{self, wait_for, Ns, R};
use crate::measure::{self, Cpu, Requests, Usage};

/// Listeners per Secret: a Secret holds at most 1 MiB, so a large set reads several through
/// `listenersFrom.secretSelector`.
const PER_SECRET: usize = 10_000;

pub struct Start {
    pub status_all_running: Duration,
    pub apps_all_running: Duration,
    pub writes: Requests,
}

/// The names of `sets` sets: `big` alone, or `s000`, `s001`, ….
pub fn set_names(sets: usize) -> Vec<String> {
    match sets {
        0 | 1 => vec!["big".to_string()],
        _ => (0..sets).map(|j| format!("s{j:03}")).collect(),
    }
}

/// Create set `name` of `n` listeners, read from its own Secrets (of at most [`PER_SECRET`]).
async fn create_set(ns: &Ns, name: &str, n: usize, lease: i32) -> R<()> {
    let secrets = kube::Api::<Secret>::namespaced(ns.client.clone(), &ns.name);
    for (k, chunk) in (0..n).collect::<Vec<_>>().chunks(PER_SECRET).enumerate() {
        let data: BTreeMap<String, String> = chunk
            .iter()
            .map(|i| (format!("acct-{i:05}"), format!("token-{i}")))
            .collect();
        let secret: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("accounts-{name}-{k}"), "namespace": ns.name,
                         "labels": {"accounts": name}},
            "stringData": data}))
        .map_err(|e| e.to_string())?;
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut set = harness::listenersets::set(&ns.name, name, harness::APP, Vec::new(), lease);
    set.spec.listeners_from = Some(baton::api::listenerset::ListenersFrom {
        secret_ref: None,
        secret_selector: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("accounts".to_string(), name.to_string())].into()),
            ..Default::default()
        }),
    });
    ns.sets()
        .create(&PostParams::default(), &set)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Whether every set's status says all its `per_set` listeners run.
async fn statuses_all_running(ns: &Ns, names: &[String], per_set: usize) -> bool {
    let Ok(list) = ns.sets().list(&Default::default()).await else {
        return false;
    };
    let full = list
        .items
        .iter()
        .filter(|s| names.iter().any(|n| s.metadata.name.as_deref() == Some(n)))
        .filter_map(|s| s.status.as_ref())
        .filter(|s| s.listeners as usize == per_set && s.running as usize == per_set)
        .count();
    full == names.len()
}

/// Create `sets` sets of `n ÷ sets` listeners each (their Secrets first); wait until their
/// status and the apps say all `n` run.
pub async fn start(ns: &Ns, n: usize, sets: usize, lease: i32) -> R<Start> {
    let names = set_names(sets);
    let per_set = n / names.len();
    let before = measure::writes(ns);
    let t0 = Instant::now();
    for name in &names {
        create_set(ns, name, per_set, lease).await?;
    }
    let deadline = Duration::from_secs(900);
    // (status says all running, apps run all): when first seen.
    let seen = std::sync::Mutex::new((None, None));
    let (seen, names_ref) = (&seen, &names);
    wait_for("status and apps: all running", deadline, || async move {
        let apps = ns.log.running_count() == n;
        let status = statuses_all_running(ns, names_ref, per_set).await;
        let mut g = seen.lock().unwrap_or_else(|p| p.into_inner());
        if status && g.0.is_none() {
            g.0 = Some(t0.elapsed());
        }
        if apps && g.1.is_none() {
            g.1 = Some(t0.elapsed());
        }
        (g.0.is_some() && g.1.is_some()).then_some(())
    })
    .await?;
    let (status_at, apps_at) = *seen.lock().unwrap_or_else(|p| p.into_inner());
    for name in &names {
        ns.settled(name, per_set, "Leases and apps agree", deadline).await?;
    }
    Ok(Start {
        status_all_running: status_at.unwrap_or_default(),
        apps_all_running: apps_at.unwrap_or_default(),
        writes: measure::delta(&measure::writes(ns), &before),
    })
}

pub struct Rest {
    pub secs: f64,
    pub writes: Requests,
    pub controller: Usage,
    pub agents: Usage,
}

/// Nothing changes for `secs`: what it costs.
pub async fn rest(ns: &Ns, controller: u32, secs: u64) -> R<Rest> {
    let (w0, c, a, t0) = (
        measure::writes(ns),
        Cpu::start(vec![controller]),
        Cpu::start(measure::agent_pids(ns)),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (controller, agents) = (c.stop(), a.stop());
    let secs = t0.elapsed().as_secs_f64();
    Ok(Rest {
        secs,
        writes: measure::delta(&measure::writes(ns), &w0),
        controller,
        agents,
    })
}

pub struct Moved {
    pub pod: String,
    pub listeners: usize,
    /// The event → the last of them running elsewhere.
    pub all_moved: Duration,
    /// Per listener: old app stopped → new app started (drain), or the event → new app started
    /// (SIGKILL).
    pub times: Vec<Duration>,
    pub writes: Requests,
    /// Reads answered by the simulator meanwhile (none on the real control plane).
    pub reads: Requests,
    /// First / median / last of each kind of step (see [`measure::timeline`]).
    pub timeline: String,
    /// CPU seconds spent from the event to the last listener running elsewhere.
    pub cpu: measure::CpuSpent,
}

/// Annotate the busiest pod `baton.dev/drain`; wait until its listeners all run elsewhere.
pub async fn drain(ns: &Ns, n: usize, controller: u32) -> R<Moved> {
    let (pod, _) = measure::busiest(ns, &[]).ok_or("no pod runs a listener")?;
    let held = measure::on_pod(ns, &pod);
    let before = (
        measure::writes(ns),
        measure::reads(ns),
        measure::CpuSplit::now(ns, controller),
    );
    let t0 = Instant::now();
    let patch = json!({"metadata": {"annotations": {"baton.dev/drain": jiff::Timestamp::now().to_string()}}});
    ns.pods_api()
        .patch(&pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| e.to_string())?;
    let moved = moved_off(ns, &pod, &held, n, t0).await?;
    let times = moved
        .values()
        .map(|(stop, start)| start.duration_since(*stop))
        .collect();
    finish(ns, pod, held.len(), &moved, t0, times, before)
}

/// SIGKILL the agent of the busiest pod other than `not` (the app keeps running until its
/// listeners' `validUntil`); wait until its listeners all run elsewhere.
pub async fn kill(ns: &Ns, n: usize, not: &str, controller: u32) -> R<Moved> {
    let (pod, _) = measure::busiest(ns, &[not.to_string()]).ok_or("no other pod runs a listener")?;
    let held = measure::on_pod(ns, &pod);
    let before = (
        measure::writes(ns),
        measure::reads(ns),
        measure::CpuSplit::now(ns, controller),
    );
    let t0 = Instant::now();
    ns.kill_agent(&pod).await?;
    let moved = moved_off(ns, &pod, &held, n, t0).await?;
    let times = moved.values().map(|(_, start)| start.duration_since(t0)).collect();
    finish(ns, pod, held.len(), &moved, t0, times, before)
}

/// Wait until every listener of `held` runs once, on a pod other than `pod`, and all `n` run;
/// how each moved.
async fn moved_off(
    ns: &Ns,
    pod: &str,
    held: &[String],
    n: usize,
    t0: Instant,
) -> R<BTreeMap<String, (Instant, Instant)>> {
    ns.wait_running(
        "the pod's listeners running elsewhere",
        held,
        Duration::from_secs(300),
        |p| p != pod,
    )
    .await?;
    wait_for("all listeners running", Duration::from_secs(300), || async {
        (ns.log.running_count() == n).then_some(())
    })
    .await?;
    Ok(measure::moves(&ns.log.snapshot(), pod, t0))
}

fn finish(
    ns: &Ns,
    pod: String,
    listeners: usize,
    moved: &BTreeMap<String, (Instant, Instant)>,
    t0: Instant,
    mut times: Vec<Duration>,
    (writes_before, reads_before, cpu_before): (Requests, Requests, measure::CpuSplit),
) -> R<Moved> {
    let cpu = cpu_before.since();
    if moved.len() != listeners {
        return Err(format!("{} of {listeners} listeners of {pod} moved", moved.len()));
    }
    times.sort();
    let last = moved.values().map(|(_, start)| *start).max().unwrap_or(t0);
    Ok(Moved {
        timeline: measure::timeline(ns, &pod, t0),
        pod,
        listeners,
        all_moved: last.duration_since(t0),
        times,
        writes: measure::delta(&measure::writes(ns), &writes_before),
        reads: measure::delta(&measure::reads(ns), &reads_before),
        cpu,
    })
}
