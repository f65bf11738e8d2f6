//! What a decision is made from, read from the caches: the set's own listener Leases (through the
//! [`LeaseIndex`](super::index::LeaseIndex), never every Lease of the cluster, and only those
//! changed since the set's last pass, the facts of the others kept), the namespace's pods, their
//! liveness, and the token ceiling the status carries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::Store;
use kube::ResourceExt;
use tokio::time::Instant;

use super::balance;
use super::desired::Desired;
use super::facts::{Made, Reread, SetLeases, Stamp};
use super::index::Changes;
use super::Context;
use crate::api::listenerset::lease::{self, owner_pod, CachedLease, LeaseFields};
use crate::api::listenerset::liveness::HOLDER_UID_LABEL;
use crate::api::listenerset::{
    ListenerSet, ListenerSetStatus, LEASE_FINALIZER, LISTENERSET_LABEL, PROTOCOL_ANNOTATION,
};
use crate::api::pod::CachedPod;
use crate::listeners::assigner;
use crate::listeners::decide::{decide, Decision, Input, LeaseFacts, PodFacts};

/// The highest token the status vouches for: its ceiling, or what the fields of controllers
/// before it recorded (read once, when such a controller wrote the status last); `None` when no
/// token was ever handed out.
pub(super) fn ceiling_of(status: &ListenerSetStatus) -> Option<i32> {
    status
        .fencing_tokens
        .values()
        .copied()
        .chain(status.assignments.iter().map(|a| a.transitions))
        .chain(status.fencing_token_ceiling)
        .max()
}

/// Whether the Lease carries what the liveness protocol puts on every Lease it writes.
fn adopted(l: &CachedLease) -> bool {
    let has_finalizer = l.finalizers().iter().any(|f| f == LEASE_FINALIZER);
    let protocol = l.annotation(PROTOCOL_ANNOTATION).is_some();
    let labelled = match owner_pod(l) {
        Some(o) if lease::Holder::of(l).is_some() => l.label(HOLDER_UID_LABEL) == Some(o.uid),
        _ => true,
    };
    has_finalizer && protocol && labelled
}

/// The set's listener Leases (the cache, corrected by the writes it has not shown yet).
fn set_leases(ctx: &Context, ns: &str, name: &str) -> Vec<Arc<CachedLease>> {
    let cached: Vec<Arc<CachedLease>> = ctx
        .index
        .leases_of(ns, name)
        .into_iter()
        .filter_map(|n| ctx.leases.get(ns, &n))
        .collect();
    ctx.with_expectations(ns, name, |e| e.overlay(cached, name_and_version, Instant::now()))
}

/// Bring `read`, set `set`'s kept Leases, up to the cache (corrected by the writes it has not
/// shown): only the Leases the index marked changed since the last pass, the writes not shown
/// yet and the Leases whose facts were not kept, when `read` is up to date with the index's
/// relist and made for `stamp`; else the whole set. Returns the Leases whose facts were made.
fn refresh(
    ctx: &Context,
    set: &ListenerSet,
    (ns, name): (&str, &str),
    read: &mut SetLeases,
    stamp: Stamp,
    (now, wall): (Instant, jiff::Timestamp),
) -> Vec<Arc<CachedLease>> {
    let since = read.epoch().filter(|_| *read.stamp() == stamp);
    let make = |l: &CachedLease| facts_of(ctx, set, name, l, now);
    let held_for = |l: &CachedLease| balance::held_for(l, wall);
    let (changed, epoch) = match ctx.index.take_changes(ns, name, since) {
        Changes::All { epoch } => (read.update(stamp, set_leases(ctx, ns, name), make, held_for), epoch),
        Changes::Some { epoch, names } => {
            let reread = reread(ctx, (ns, name), names, read.unkept());
            (read.update_some(reread, make, held_for), epoch)
        }
    };
    read.set_epoch(epoch);
    changed
}

/// The set's Leases of `marked`, of `unkept` and of the writes the cache has not shown, by
/// name, as [`set_leases`] reads them (`None`: not the set's now).
fn reread<'a>(
    ctx: &Context,
    (ns, name): (&str, &str),
    marked: Vec<String>,
    unkept: impl Iterator<Item = &'a str>,
) -> Vec<Reread> {
    let mut names: BTreeSet<String> = marked.into_iter().collect();
    names.extend(unkept.map(str::to_string));
    ctx.with_expectations(ns, name, |e| {
        names.extend(e.names().map(str::to_string));
        let cached: Vec<Arc<CachedLease>> = names
            .iter()
            .filter_map(|n| ctx.leases.get(ns, n))
            .filter(|l| l.label(LISTENERSET_LABEL) == Some(name))
            .collect();
        let mut shown = e
            .overlay(cached, name_and_version, Instant::now())
            .into_iter()
            .peekable();
        names
            .into_iter()
            .map(|n| {
                let lease = shown.next_if(|l| l.metadata.name.as_deref() == Some(n.as_str()));
                (n, lease)
            })
            .collect()
    })
}

/// A Lease's name and resourceVersion.
fn name_and_version(l: &Arc<CachedLease>) -> (&str, &str) {
    let m = &l.metadata;
    (
        m.name.as_deref().unwrap_or_default(),
        m.resource_version.as_deref().unwrap_or_default(),
    )
}

/// The namespace's pods as the decision sees them.
/// `settled`: workloads whose mixed revisions are intended (see [`balance::rollouts_of`]).
fn pod_facts(pods: &Store<CachedPod>, set: &ListenerSet, ns: &str, settled: &BTreeSet<String>) -> Vec<PodFacts> {
    pods.state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter_map(|p| {
            Some(PodFacts {
                name: p.metadata.name.clone()?,
                uid: p.metadata.uid.clone()?,
                selected: crate::api::pod::selector_matches_labels(&set.spec.selector, &p.labels),
                eligible: assigner::pod_is_eligible(p),
                ready: p.is_ready(),
                restarts: p.restarts(),
                weight: balance::weight(p),
                revision: balance::revision(p).filter(|(w, _)| !settled.contains(w)),
            })
        })
        .collect()
}

/// The seed of a set's order of pods for ties ([`Input::seed`]): a hash of its uid, so the
/// order stays while the set does.
fn seed_of(uid: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(uid.as_bytes());
    h.finish()
}

/// A set's listener Leases by listener, with the facts its decision was made from.
pub(super) type LeaseByListener = super::facts::Taken;

/// The facts of Lease `l` of set `set` (`None`: not one of its listener Leases), and whether
/// they may be kept while its resourceVersion stays.
fn facts_of(ctx: &Context, set: &ListenerSet, name: &str, l: &CachedLease, now: Instant) -> Option<Made> {
    let view = assigner::lease_view(l, name, false)?;
    let seen = ctx.index.observed(l);
    let facts = LeaseFacts {
        name: l.name_any(),
        view,
        observed: seen.unwrap_or(now).max(ctx.started),
        duration: crate::api::listenerset::lease::duration_of(l, set.spec.lease_duration_seconds),
        terminating: lease::is_terminating(l),
        adopted: adopted(l),
        labelled_uid: l.label(HOLDER_UID_LABEL).map(str::to_string),
    };
    Some((facts, seen.is_some()))
}

/// Decide from the caches now (see [`decide`]); also the Leases decided from, by listener.
pub(super) fn decide_now(
    ctx: &Context,
    pods: &Store<CachedPod>,
    set: &ListenerSet,
    desired: &Desired,
    previous: &ListenerSetStatus,
    live_now: Option<&BTreeSet<String>>,
    (settled, under_way): &(BTreeSet<String>, BTreeSet<String>),
) -> (Decision, LeaseByListener) {
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    let pod_facts = pod_facts(pods, set, &ns, settled);
    let wanted = &desired.wanted;
    let now = Instant::now();
    let wall = jiff::Timestamp::now();
    let mut read = ctx.lease_facts.take((ns.clone(), name.clone()));
    let stamp = Stamp {
        uid: set.uid().unwrap_or_default(),
        default_duration: set.spec.lease_duration_seconds,
    };
    let rebalance = balance::resolve(set, previous, wanted.len());
    // Without evening out nothing reads how long a Lease was held.
    read.set_residence(rebalance.as_ref().map_or(Duration::ZERO, |r| r.min_residence));
    let changed = refresh(ctx, set, (&ns, &name), &mut read, stamp, (now, wall));
    let has_lease = |listener: &str| read.contains_key(listener);
    ctx.metrics.objects.observe_leases(&ns, &name, &changed, has_lease);
    let facts = read.facts();
    let uids: fnv::FnvHashSet<&str> = pod_facts.iter().map(|p| p.uid.as_str()).chain(read.holders()).collect();
    let liveness = ctx.liveness.facts(&ns, uids);
    let unresponsive = ctx.unresponsive();
    let mut stopped = ctx.stopped.uids();
    stopped.extend(
        pods.state()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|p| p.has_stopped())
            .filter_map(|p| p.metadata.uid.clone()),
    );
    let input = Input {
        deleting: set.metadata.deletion_timestamp.is_some(),
        listeners: wanted,
        keep_unknown: desired.keep_unknown,
        max_per_pod: u32::try_from(set.spec.max_per_pod.max(0)).unwrap_or(0),
        rebalance: rebalance.as_ref(),
        under_way,
        pods: &pod_facts,
        leases: facts,
        liveness: &liveness,
        // What this controller wrote last may not be in the cache yet.
        ceiling: ceiling_of(previous).max(ctx.statuses.ceiling(&(ns.clone(), name.clone()))),
        recover: live_now,
        unresponsive: &unresponsive,
        stopped: &stopped,
        lease_duration: Duration::from_secs(u64::try_from(set.spec.lease_duration_seconds.max(1)).unwrap_or(1)),
        seed: seed_of(&set.uid().unwrap_or_default()),
        started: ctx.started,
        now,
        delta: Some(read.delta(desired.number)),
    };
    let decision = ctx.with_memory(&ns, &name, |m| decide(&input, m));
    ctx.learn_unresponsive(&ns, &decision, &pod_facts);
    (decision, read)
}
