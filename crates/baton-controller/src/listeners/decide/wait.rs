//! When evening out waits, whatever the loads: while the pods it would spread listeners over are
//! still changing. A scale adds (or removes) pods one after another — a StatefulSet creates each
//! pod once the one before is Ready, a Rollout or a Deployment rolls out in batches — and evening
//! out over a pod count the workload is about to leave moves listeners again at its next pod:
//! more moves than the final count needs. It also waits while listeners are between pods
//! ([`between_pods`]): the loads it would even out are about to change.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::Input;
use crate::listeners::assigner::Balancing;

/// How often a set waiting for a Rollout of its pods to settle looks again (the Rollout's status
/// turning Healthy changes no pod and no Lease, so nothing else wakes the set).
pub const ROLLOUT_RECHECK: Duration = Duration::from_secs(5);

/// How long the pods that may take listeners must have stayed the same (none joined, none left)
/// before evening out starts. A workload that adds pods one at a time creates the next one as
/// soon as the last is Ready (a StatefulSet's `OrderedReady`: well under a second on an idle
/// control plane, a few seconds on a loaded one), and the next pod, not Ready yet, holds evening
/// out by itself; this bridges the moment in between, so that a scale from 4 to 8 pods moves
/// listeners once, to the 8 pods. A pod that joins or leaves starts it again; so does a
/// controller that starts (it cannot know what changed just before). The decision asks to be
/// woken when it ends: nothing else would wake the set.
pub const PODS_SETTLE: Duration = Duration::from_secs(5);

/// Why loads are not evened out now, and when to look again unasked: a selected pod is starting,
/// not Ready, draining or terminating (a scale or a rollout is under way: evening out waits for
/// the pods to settle; their changes wake the set); a workload of the pods says it is rolling out
/// or scaling, or the pods of one workload run two revisions (a rollout between batches): then
/// [`ROLLOUT_RECHECK`]; the pods that may take listeners changed less than [`PODS_SETTLE`] ago
/// (`pods_since`: since when they are what they are): then when that ends.
pub(super) fn wait_for(input: &Input, pods_since: Option<Instant>) -> Option<(String, Option<Duration>)> {
    if let Some(p) = input
        .pods
        .iter()
        .find(|p| p.selected && !p.eligible && !input.stopped.contains(&p.uid))
    {
        return Some((
            format!("pod {} is not Ready, or is draining or terminating", p.name),
            None,
        ));
    }
    if let Some(w) = input.under_way.iter().next() {
        let why = format!("{w} is rolling out or scaling (not Healthy for its generation)");
        return Some((why, Some(ROLLOUT_RECHECK)));
    }
    let mut revisions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (workload, revision) in input
        .pods
        .iter()
        .filter(|p| p.selected)
        .filter_map(|p| p.revision.as_ref())
    {
        revisions.entry(workload).or_default().insert(revision);
    }
    if let Some((w, _)) = revisions.iter().find(|(_, r)| r.len() > 1) {
        let why = format!("{w} is between revisions (its pods run two, and it is not Healthy for its generation)");
        return Some((why, Some(ROLLOUT_RECHECK)));
    }
    let settled_at = pods_since? + PODS_SETTLE;
    (input.now < settled_at).then(|| {
        let why = format!(
            "the pods that may take listeners changed less than {} s ago (a scale may add or remove more)",
            PODS_SETTLE.as_secs()
        );
        (why, Some(settled_at.saturating_duration_since(input.now)))
    })
}

/// The longest a new set waits for its pods to settle before placing its first listeners
/// ([`first_placement`]): pods that keep changing (a large workload rolling out) do not keep it
/// from running anything.
pub const FIRST_PLACEMENT_MAX: Duration = Duration::from_secs(30);

/// Until when a new set (it never handed out a fencing token, and no pod holds a listener of it)
/// waits before placing its first listeners: until the pods that may take listeners have stayed
/// the same for [`PODS_SETTLE`] (`pods_since`: since when they are what they are), and at most
/// [`FIRST_PLACEMENT_MAX`] from the first pass that waited (`waiting_since`). A set created
/// beside its workload (`kubectl apply` of both, one Helm release) sees its pods turn Ready and
/// their agents register one after another, and placing at the first would give that pod every
/// listener; with no evening out (a `Sticky` set), it would keep them. `None`: place now. Like a
/// Kafka group's initial rebalance delay, it holds only a set with nothing running, so it costs
/// no listener a gap; pods that have long been what they are hold nothing.
pub(super) fn first_placement(
    input: &Input,
    pods_since: Option<Instant>,
    waiting_since: Option<Instant>,
    held: usize,
) -> Option<Instant> {
    let new = input.ceiling.is_none() && held == 0;
    if !new || input.deleting || !input.pods.iter().any(|p| p.selected && p.eligible) {
        return None;
    }
    let settled_at = pods_since? + PODS_SETTLE;
    let at = settled_at.min(waiting_since.unwrap_or(input.now) + FIRST_PLACEMENT_MAX);
    (input.now < at).then_some(at)
}

/// `spec.rebalance` as evening out takes it now (`None` for a `Sticky` set), with why it waits,
/// if it does ([`wait_for`], then [`between_pods`] for `unseen` listeners); and when to look
/// again unasked.
pub(super) fn balancing(
    input: &Input,
    pods_since: Option<Instant>,
    unseen: usize,
) -> (Option<Balancing>, Option<Duration>) {
    let (wait, recheck) = wait_for(input, pods_since).or_else(|| between_pods(unseen)).unzip();
    let balancing = input.rebalance.map(|r| Balancing {
        max_skew: r.max_skew,
        max_moves: r.max_moves,
        min_residence: r.min_residence,
        wait,
    });
    (balancing, recheck.flatten())
}

/// Why loads are not evened out while `unseen` listeners are between pods, where the assigner
/// does not count them: a holder gone but not yet known to have stopped, a Lease being deleted,
/// a fresh controller holding back a listener it has no Lease for. They land on the least loaded
/// pods once they are free, and a move asked before then evens out loads that are about to
/// change (a scale-in's last listeners, freed by the garbage collector after their pods left,
/// would make a survivor look busy for a moment). Their changes wake the set.
pub(super) fn between_pods(unseen: usize) -> Option<(String, Option<Duration>)> {
    (unseen > 0).then(|| {
        let why = format!(
            "{unseen} listener(s) are between pods (a holder that is gone, a Lease being deleted, or a controller that has just started)"
        );
        (why, None)
    })
}
