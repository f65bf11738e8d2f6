//! Phase 3: the holder's stop confirmed by the kubelet, and Leases deleted by hand while their
//! holder lives (the "missing Lease is not a free one" rule).
use std::collections::BTreeSet;
use std::time::Duration;

use baton::api::listenerset::lease_name;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use tokio::time::Instant;

use crate::log::{End, Interval, Log};
use crate::world::{world, World};
use crate::{AGAIN_TIMES, CONFIRMED_ROUNDS, FAULT_LEASE, LEASE_DELETES_PER_ROUND, LEASE_DELETE_ROUNDS, NS, PODS};

pub(crate) struct Faults {
    /// Confirmed stop: the holder's kill → each of its listeners running on another pod.
    pub(crate) confirmed: Vec<Duration>,
    /// Hand-deleted Leases of listeners running for a while.
    pub(crate) deleted: LeaseDeletes,
    /// Hand-deleted again (`AGAIN_TIMES` times) as soon as the listener ran again.
    pub(crate) again: LeaseDeletes,
    pub(crate) overlaps: usize,
    pub(crate) token_regressions: usize,
}

#[derive(Default)]
pub(crate) struct LeaseDeletes {
    /// The holder's stop (it saw its Lease go) → the listener running again.
    pub(crate) times: Vec<Duration>,
    /// How many came back on the same pod (the Lease recreated for its holder).
    pub(crate) same_pod: usize,
    /// Restarts on the same pod whose fencing token did not go up.
    pub(crate) token_regressions: usize,
    /// Those that took over 1 s: what happened to each.
    pub(crate) slow: Vec<String>,
}

impl LeaseDeletes {
    fn add(&mut self, results: Vec<(String, Duration, bool, bool)>) {
        for (what, took, same, regressed) in results {
            if took > Duration::from_secs(1) {
                self.slow.push(what);
            }
            self.times.push(took);
            self.same_pod += usize::from(same);
            self.token_regressions += usize::from(regressed);
        }
    }
}

pub(crate) async fn faults() -> Result<Faults, String> {
    let mut w = world().await?;
    let mut live = Vec::new();
    for _ in 0..PODS {
        live.push(w.create_pod().await?);
    }
    for p in &live {
        w.wait_ready(p).await?;
    }
    w.create_set(FAULT_LEASE).await?;
    w.wait_all_running("200 listeners running", Duration::from_secs(30), |_| true)
        .await?;
    // Well under one lease duration per takeover: a takeover that waited for expiry shows.
    let limit = Duration::from_secs(FAULT_LEASE as u64 + 20);
    let mut confirmed = Vec::new();
    for _ in 0..CONFIRMED_ROUNDS {
        confirmed.extend(confirmed_round(&mut w, limit).await?);
    }
    // Each round takes listeners no earlier round touched; then a last few Leases are deleted
    // again and again, each time as soon as their listeners run again (before the controller
    // may have seen the holder take the recreated Lease).
    let mut touched = BTreeSet::new();
    let mut deleted = LeaseDeletes::default();
    for _ in 0..LEASE_DELETE_ROUNDS {
        let victims = pick(&w, &mut touched);
        deleted.add(lease_delete_round(&w, &victims, limit).await?);
    }
    let mut again = LeaseDeletes::default();
    let victims = pick(&w, &mut touched);
    deleted.add(lease_delete_round(&w, &victims, limit).await?);
    let mut victims = victims;
    for _ in 0..AGAIN_TIMES {
        let running = w.log.running();
        victims = victims
            .into_iter()
            .filter_map(|(l, _)| Some((l.clone(), running.get(&l)?.first()?.clone())))
            .collect();
        again.add(lease_delete_round(&w, &victims, limit).await?);
    }
    confirmed.sort();
    deleted.times.sort();
    again.times.sort();
    let (overlaps, token_regressions) = w.log.duplicates();
    w.stop().await;
    Ok(Faults {
        confirmed,
        deleted,
        again,
        overlaps,
        token_regressions,
    })
}

/// The busiest pod's agent and application die without releasing anything (`kill -9`; the
/// restarted container runs no agent), then the pod is deleted gracefully: its container exits on
/// SIGTERM, the kubelet reports it terminated and removes the pod. That is proof its listeners
/// stopped, so they move at once rather than after their Leases expire.
async fn confirmed_round(w: &mut World, limit: Duration) -> Result<Vec<Duration>, String> {
    let (victim, held) = crate::crash::busiest(w).ok_or("nothing running")?;
    w.dead.lock().unwrap().insert(victim.clone());
    if !w.sim.kubelet.crash(NS, &victim) {
        return Err(format!("could not crash {victim}"));
    }
    w.delete_pod(&victim, 30).await?;
    w.wait_all_running(&format!("{victim}'s listeners after a confirmed stop"), limit, |p| {
        p != victim
    })
    .await?;
    let snap = w.log.snapshot();
    let times: Vec<Duration> = held
        .iter()
        .filter_map(|l| {
            let (_, next) = last_then_next(&snap, l, &victim)?;
            let killed = killed_at(&snap, l, &victim)?;
            Some(next.start - killed)
        })
        .collect();
    if times.len() != held.len() {
        return Err(format!("{victim}: {} of {} takeovers found", times.len(), held.len()));
    }
    let new = w.create_pod().await?;
    w.wait_ready(&new).await?;
    Ok(times)
}

/// A few running listeners no earlier round touched, each on another pod: (listener, pod).
fn pick(w: &World, touched: &mut BTreeSet<String>) -> Vec<(String, String)> {
    let mut victims: Vec<(String, String)> = Vec::new();
    for (listener, pods) in w.log.running() {
        let fresh = !touched.contains(&listener) && !victims.iter().any(|(_, p)| *p == pods[0]);
        if victims.len() < LEASE_DELETES_PER_ROUND && fresh {
            touched.insert(listener.clone());
            victims.push((listener, pods[0].clone()));
        }
    }
    victims
}

/// Deletes the Leases of `victims` (listener, holder pod) at once; waits until every listener
/// runs again. Per listener: (what happened, its holder's stop → it running again, on the same
/// pod, with a fencing token not above the old one).
async fn lease_delete_round(
    w: &World,
    victims: &[(String, String)],
    limit: Duration,
) -> Result<Vec<(String, Duration, bool, bool)>, String> {
    let t0 = Instant::now();
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), NS);
    for (listener, _) in victims {
        leases
            .delete(&lease_name("bench", listener), &DeleteParams::default())
            .await
            .map_err(|e| format!("delete the Lease of {listener}: {e}"))?;
    }
    let stopped_since = |log: &Log| {
        let snap = log.snapshot();
        victims.iter().all(|(l, p)| {
            snap.iter()
                .any(|i| &i.listener == l && &i.pod == p && ended_after(i, t0))
        })
    };
    crate::world::wait_for("the holders saw their Leases go", limit, || {
        let done = stopped_since(&w.log);
        async move { done.then_some(()) }
    })
    .await?;
    w.wait_all_running("every listener running after the Lease deletes", limit, |_| true)
        .await?;
    let snap = w.log.snapshot();
    victims
        .iter()
        .map(|(l, p)| {
            let (old, next) = last_then_next(&snap, l, p).ok_or(format!("{l}: no restart found"))?;
            let stopped = old.end.as_ref().map(|(t, _)| *t).ok_or("still running")?;
            let same = next.pod == *p;
            let how = old.end.as_ref().map(|(_, e)| format!("{e:?}")).unwrap_or_default();
            let took = next.start - stopped;
            let what = format!(
                "{l} on {p}: stopped ({how}) token {} → {} on {} after {took:?}",
                old.token, next.token, next.pod
            );
            Ok((what, took, same, same && next.token <= old.token))
        })
        .collect()
}

fn ended_after(i: &Interval, t0: Instant) -> bool {
    i.end.as_ref().is_some_and(|(t, _)| *t >= t0)
}

/// `listener`'s last interval on `pod` and the interval that followed it (any pod).
fn last_then_next<'a>(snap: &'a [Interval], listener: &str, pod: &str) -> Option<(&'a Interval, &'a Interval)> {
    let mut is: Vec<&Interval> = snap.iter().filter(|i| i.listener == listener).collect();
    is.sort_by_key(|i| i.start);
    let at = is.iter().rposition(|i| i.pod == pod && i.end.is_some())?;
    Some((is[at], *is.get(at + 1)?))
}

fn killed_at(snap: &[Interval], listener: &str, pod: &str) -> Option<Instant> {
    snap.iter()
        .filter(|i| i.listener == listener && i.pod == pod)
        .filter_map(|i| match &i.end {
            Some((t, End::Killed)) => Some(*t),
            _ => None,
        })
        .max()
}
