//! Pods whose agents do not answer: what the status names, and the per-listener-protocol lapses
//! remembered across every set of the controller.

use std::collections::{BTreeMap, BTreeSet};

use super::judge::Judged;
use super::{Decision, Input, Memory, PodFacts};

/// A selected pod whose agent does not answer (see [`silent`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silent {
    pub pod: String,
    pub why: Silence,
}

/// Why a selected pod gets nothing new: what its Leases show of its agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// Never seen registering or acknowledging anything: no agent, or one that may not update
    /// Leases.
    NeverRenewed,
    /// Its agent stopped: fenced, its registration not renewed for its duration, or (never
    /// registered) it let an acknowledged Lease expire — dead, hung or cut off.
    Stopped,
    /// Its agent renews its registration but left an assignment of this set unacknowledged
    /// under it: it does not serve this set (its `--listenerset`), or could not acknowledge.
    NotServing,
}

/// Pods an agent of the per-listener protocol let a Lease expire on, by uid, with their restart
/// count then, and the pods ever seen renewing: shared by every set's decisions. (A pod whose
/// agent speaks the liveness protocol is fenced instead, on its liveness Lease, which every set
/// and every controller reads.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unresponsive {
    lapsed: BTreeMap<String, i32>,
    renewed: BTreeSet<String>,
}

impl Unresponsive {
    /// Whether `pod` is unresponsive.
    pub fn contains(&self, pod: &PodFacts) -> bool {
        self.lapsed.get(&pod.uid).is_some_and(|r| pod.restarts <= *r)
    }

    /// Whether the pod of `uid` was ever seen renewing a Lease.
    pub fn ever_renewed(&self, uid: &str) -> bool {
        self.renewed.contains(uid)
    }

    /// Learn from one decision about the pods of one namespace (`pods`): only lapses of pods that
    /// never registered a liveness Lease count here.
    pub fn learn(&mut self, decision: &Decision, pods: &[PodFacts], registered: impl Fn(&str) -> bool) {
        for pod in pods {
            if decision.renewed.contains(&pod.uid) || registered(&pod.uid) {
                self.lapsed.remove(&pod.uid);
                self.renewed.insert(pod.uid.clone());
            } else if decision.lapsed.contains(&pod.uid) {
                self.lapsed.insert(pod.uid.clone(), pod.restarts);
            } else if self.lapsed.get(&pod.uid).is_some_and(|r| pod.restarts > *r) {
                self.lapsed.remove(&pod.uid);
            }
        }
    }

    /// Forget pods that no longer exist (`exists(uid)`).
    pub fn retain(&mut self, exists: impl Fn(&str) -> bool) {
        self.lapsed.retain(|uid, _| exists(uid));
        self.renewed.retain(|uid| exists(uid));
    }
}

/// Selected pods that get nothing new because their agent does not answer: fenced, registered
/// but silent, lapsed in this set, or (never registered) unresponsive in another; and why. A pod
/// whose agent renews its registration is never said to have stopped; nor is a pod on its way
/// out whose agent marked it leaving.
pub(super) fn silent(input: &Input, judged: &Judged, memory: &Memory) -> Vec<Silent> {
    input
        .pods
        .iter()
        .filter(|p| p.selected && !judged.renewed.contains(&p.uid))
        .filter_map(|p| {
            let live = input.liveness.get(&p.uid);
            // On its way out (terminating, draining, not Ready), its agent marked it leaving: it
            // left as asked, nothing for a person to see to.
            if !p.eligible && live.is_some_and(super::LivenessFacts::leaving) {
                return None;
            }
            let lease = live.and_then(|l| l.lease.as_ref());
            let registered = live.is_some_and(super::LivenessFacts::registered);
            let fenced = lease.is_some_and(|l| l.fenced);
            let stale = live.is_some_and(|l| l.silent(input.now, input.started, input.lease_duration));
            let unresponsive = input.unresponsive.contains(p) && !registered;
            let lapsed = judged.lapsed_now(input, &p.uid) || memory.lapsed(p) || unresponsive;
            let never = live.and_then(|l| l.observed).is_none()
                && !input.unresponsive.ever_renewed(&p.uid)
                && !judged
                    .views
                    .iter()
                    .any(|l| l.renewed && l.holder_uid.as_deref() == Some(p.uid.as_str()));
            let why = match () {
                _ if fenced || stale => Silence::Stopped,
                _ if registered => Silence::NotServing,
                _ if never => Silence::NeverRenewed,
                _ => Silence::Stopped,
            };
            (fenced || stale || lapsed).then(|| Silent {
                pod: p.name.clone(),
                why,
            })
        })
        .collect()
}
