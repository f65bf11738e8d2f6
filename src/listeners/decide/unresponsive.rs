//! Pods whose agents do not renew, remembered across every set of the controller.

use std::collections::{BTreeMap, BTreeSet};

use super::{Decision, Input, PodFacts};
use crate::listeners::assigner::LeaseView;

/// A selected pod whose agent does not renew (see [`Unresponsive`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silent {
    pub pod: String,
    /// Not seen renewing anything, ever (no agent, or one that may not update Leases), as opposed
    /// to an agent that stopped renewing (dead, hung or cut off).
    pub never_renewed: bool,
}

/// Pods whose agents let a Lease expire, by uid, with their restart count then, and the pods
/// ever seen renewing: shared by every set's decisions (see the module doc).
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

    /// Learn from one decision about the pods of one namespace (`pods`).
    pub fn learn(&mut self, decision: &Decision, pods: &[PodFacts]) {
        for pod in pods {
            if decision.renewed.contains(&pod.uid) {
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

/// Selected pods that let a Lease expire (now or before) and did not renew since.
pub(super) fn silent(
    input: &Input,
    leases: &[LeaseView],
    lapsed: &BTreeSet<String>,
    renewed: &BTreeSet<String>,
) -> Vec<Silent> {
    input
        .pods
        .iter()
        .filter(|p| p.selected && !renewed.contains(&p.uid))
        .filter(|p| lapsed.contains(&p.uid) || input.unresponsive.contains(p))
        .map(|p| Silent {
            pod: p.name.clone(),
            never_renewed: !input.unresponsive.ever_renewed(&p.uid)
                && !leases
                    .iter()
                    .any(|l| l.renewed && l.holder_uid.as_deref() == Some(p.uid.as_str())),
        })
        .collect()
}
