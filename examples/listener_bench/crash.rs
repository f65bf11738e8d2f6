//! Phase 2: crash takeovers (killed, hung and grace-0-deleted agents) waiting for Lease expiry.
use std::time::Duration;

use baton::api::pod::DRAIN_ANNOTATION;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::log::Log;
use crate::world::{running_world, World};
use crate::{CRASH_LEASE, CRASH_TARGET, DRAIN_AFTER_HANG, GRACE0_ROUNDS, HANG_ROUNDS, MIN_CRASHES, NS};

pub(crate) struct Crash {
    pub(crate) crashes: usize,
    pub(crate) takeovers: Vec<Duration>,
    /// Per crash: the crash → the last of its listeners running elsewhere.
    pub(crate) per_crash: Vec<Duration>,
    pub(crate) grace0: Vec<Duration>,
    /// Agent hung in a Ready pod.
    pub(crate) hung: Vec<Duration>,
    /// Agent hung in a Ready pod, the pod marked for drain `DRAIN_AFTER_HANG` later.
    pub(crate) drained: Vec<Duration>,
    pub(crate) overlaps: usize,
    pub(crate) token_regressions: usize,
}

/// The crash → each of `victim`'s listeners started on another pod.
pub(crate) fn takeover_times(log: &Log, victim: &str, listeners: &[String], t0: Instant) -> Vec<Duration> {
    let snap = log.snapshot();
    listeners
        .iter()
        .filter_map(|l| {
            snap.iter()
                .filter(|i| &i.listener == l && i.pod != victim && i.start >= t0)
                .map(|i| i.start - t0)
                .min()
        })
        .collect()
}

pub(crate) async fn crashes() -> Result<Crash, String> {
    let (mut w, mut live) = running_world(CRASH_LEASE).await?;
    // One full lease duration: the controller only judges expiry after observing a Lease for
    // that long, and the first renewals settle.
    tokio::time::sleep(Duration::from_secs(CRASH_LEASE as u64)).await;
    let limit = Duration::from_secs(CRASH_LEASE as u64 + 10);
    let mut takeovers = Vec::new();
    let mut per_crash = Vec::new();
    let mut crashes = 0;
    while (takeovers.len() < CRASH_TARGET || crashes < MIN_CRASHES) && crashes < 60 {
        let Some((victim, held)) = busiest(&w) else {
            return Err("nothing running".into());
        };
        w.dead.lock().unwrap().insert(victim.clone());
        let t0 = Instant::now();
        if !w.sim.kubelet.crash(NS, &victim) {
            return Err(format!("could not crash {victim}"));
        }
        w.wait_all_running(&format!("{victim}'s listeners taken over"), limit, |p| p != victim)
            .await?;
        let times = takeover_times(&w.log, &victim, &held, t0);
        if times.len() != held.len() {
            return Err(format!("{victim}: {} of {} takeovers found", times.len(), held.len()));
        }
        per_crash.push(times.iter().max().copied().unwrap_or_default());
        takeovers.extend(times);
        crashes += 1;
        // Replace the dead pod.
        live.retain(|p| p != &victim);
        w.delete_pod(&victim, 0).await?;
        let new = w.create_pod().await?;
        w.wait_ready(&new).await?;
        live.push(new);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Grace-0 deletes: the holder pod is gone from the API at once.
    let mut grace0 = Vec::new();
    for _ in 0..GRACE0_ROUNDS {
        let Some((victim, held)) = busiest(&w) else {
            break;
        };
        let t0 = Instant::now();
        w.delete_pod(&victim, 0).await?;
        w.wait_all_running(&format!("{victim}'s listeners after a grace-0 delete"), limit, |p| {
            p != victim
        })
        .await?;
        grace0.extend(takeover_times(&w.log, &victim, &held, t0));
        let new = w.create_pod().await?;
        w.wait_ready(&new).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An agent that hangs inside a pod that stays Ready (no kubelet status change), alone and
    // then with the pod marked for drain 2 s later, as a Rollout does when it reaches that pod:
    // the controller's release request is a Lease write.
    let mut hung = Vec::new();
    let mut drained = Vec::new();
    for round in 0..2 * HANG_ROUNDS {
        let drain = round % 2 == 1;
        let Some((victim, held)) = busiest(&w) else {
            break;
        };
        let t0 = Instant::now();
        w.hang.lock().unwrap().insert(victim.clone());
        w.hang_tx.send_modify(|g| *g += 1);
        if drain {
            tokio::time::sleep(DRAIN_AFTER_HANG).await;
            let patch = json!({"metadata": {"annotations": {DRAIN_ANNOTATION: "bench"}}});
            w.pods()
                .patch(&victim, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| e.to_string())?;
        }
        w.wait_all_running(&format!("{victim}'s listeners (agent hung)"), limit, |p| p != victim)
            .await?;
        let times = takeover_times(&w.log, &victim, &held, t0);
        if drain {
            drained.extend(times);
        } else {
            hung.extend(times);
        }
        w.delete_pod(&victim, 0).await?;
        let new = w.create_pod().await?;
        w.wait_ready(&new).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hung.sort();
    drained.sort();
    takeovers.sort();
    per_crash.sort();
    grace0.sort();
    let (overlaps, token_regressions) = w.log.duplicates();
    w.stop().await;
    Ok(Crash {
        crashes,
        takeovers,
        per_crash,
        grace0,
        hung,
        drained,
        overlaps,
        token_regressions,
    })
}

/// The pod holding the most listeners, and the listeners it runs.
pub(crate) fn busiest(w: &World) -> Option<(String, Vec<String>)> {
    let load = w.load();
    let (victim, _) = load.iter().max_by_key(|(_, n)| **n)?;
    let held = w
        .log
        .running()
        .into_iter()
        .filter(|(_, p)| p.contains(victim))
        .map(|(l, _)| l)
        .collect();
    Some((victim.clone(), held))
}
