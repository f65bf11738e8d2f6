//! Which pods may take new listeners: selected, Ready, not draining or terminating, their agent
//! answering — and, while a registered pod may take them, registered.

use std::collections::BTreeSet;

use fnv::FnvHashSet;

use super::judge::Judged;
use super::{Input, LivenessFacts, Memory, PodFacts};
use crate::listeners::assigner::PodView;

/// Every selected pod, plus every pod named as a holder (never eligible unless selected). Of the
/// selected, Ready pods whose agents answer, those whose agent never registered are eligible only
/// while no registered one may take listeners ([`first_registered`]). `settled`: listeners of the
/// spec set aside from `input` (all held, none suspended).
pub(super) fn pod_views(input: &Input, judged: &Judged, memory: &Memory, settled: usize) -> Vec<PodView> {
    // Hashed: every Lease names its holder, and a set has far more Leases than pods.
    let holders: FnvHashSet<&str> = judged.views.iter().filter_map(|l| l.holder.as_deref()).collect();
    let answering: Vec<&PodFacts> = input
        .pods
        .iter()
        .filter(|p| p.selected && p.eligible && answers(input, judged, memory, p))
        .collect();
    let registered_only = first_registered(input, &answering, settled);
    let answering: BTreeSet<&str> = answering.iter().map(|p| p.uid.as_str()).collect();
    input
        .pods
        .iter()
        .filter(|p| p.selected || holders.contains(p.name.as_str()))
        .map(|p| PodView {
            name: p.name.clone(),
            uid: p.uid.clone(),
            eligible: answering.contains(p.uid.as_str()) && (!registered_only || registered(input, p)),
            weight: p.weight,
            rank: crate::listeners::assigner::rank(input.seed, &p.name),
        })
        .collect()
}

/// Whether pod `p`'s agent is registered on its liveness Lease.
fn registered(input: &Input, p: &PodFacts) -> bool {
    input.liveness.get(&p.uid).is_some_and(LivenessFacts::registered)
}

/// Whether only registered pods of `answering` (selected, Ready, their agents answering) may
/// take listeners: some are, and they can hold every listener (`maxPerPod`). A pod whose agent
/// never registered may have no agent at all; it is given listeners only when no registered
/// pod can run them, which is what agents of the per-listener protocol (which never register,
/// and show themselves only by acknowledging an assignment) need to be found.
fn first_registered(input: &Input, answering: &[&PodFacts], settled: usize) -> bool {
    let registered = answering.iter().filter(|p| registered(input, p)).count();
    let wanted = input.listeners.iter().filter(|l| !l.suspended).count() + settled;
    let room = match input.max_per_pod {
        0 => usize::MAX,
        m => registered.saturating_mul(usize::try_from(m).unwrap_or(usize::MAX)),
    };
    registered > 0 && room >= wanted
}

/// Whether a pod's agent answers: not fenced, not shutting down (its registration marked
/// leaving), not registered-but-silent, not lapsed here (it left an assignment of this set
/// unacknowledged and got no new chance since, or an agent of the per-listener protocol let a
/// Lease expire on it), and — unless its agent registered, which makes its liveness Lease the
/// judge — not unresponsive elsewhere.
fn answers(input: &Input, judged: &Judged, memory: &Memory, p: &PodFacts) -> bool {
    let live = input.liveness.get(&p.uid);
    let lease = live.and_then(|l| l.lease.as_ref());
    let (fenced, leaving) = (lease.is_some_and(|l| l.fenced), lease.is_some_and(|l| l.leaving));
    let stale = live.is_some_and(|l| l.silent(input.now, input.started, input.lease_duration));
    let lapsed = judged.lapsed_now(input, &p.uid) || memory.lapsed(p);
    let unresponsive = input.unresponsive.contains(p) && !registered(input, p);
    !fenced && !leaving && !stale && !lapsed && !unresponsive
}
