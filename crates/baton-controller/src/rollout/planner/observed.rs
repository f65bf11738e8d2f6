//! The pods as observed: one [`ObservedPod`] per pod, grouped per slot, and what they say about
//! a slot (serving, available, healthy on a revision).

use jiff::Timestamp;

use crate::api::pod::Drain;

use super::{add_secs, slot_name, Planner, RevisionInfo};

/// One observed pod of the Rollout (selected by label `baton.dev/rollout`).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedPod {
    pub name: String,
    /// Label `baton.dev/slot`.
    pub slot: i32,
    /// Label `baton.dev/revision-hash`.
    pub revision_hash: String,
    /// Label `app.kubernetes.io/version`.
    pub version: String,
    /// Condition `Ready` is True.
    pub ready: bool,
    /// `lastTransitionTime` of the Ready condition when Ready.
    pub ready_since: Option<Timestamp>,
    /// A container is in `CrashLoopBackOff` (or restarting repeatedly).
    pub crash_looping: bool,
    pub restarts: i32,
    /// Phase `Failed` or `Succeeded`: the pod will never run again.
    pub failed: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    pub created: Option<Timestamp>,
    /// The pod is draining (annotation `baton.dev/drain`, read by [`crate::api::pod::drain`]).
    pub drain: Option<Drain>,
    /// The pod holds at least one listener Lease.
    pub holds_listeners: bool,
    /// `status.podIP` (for checks).
    pub ip: Option<String>,
}

impl ObservedPod {
    /// A pod with every flag off (handy for builders and tests).
    pub fn new(name: impl Into<String>, slot: i32, revision_hash: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            slot,
            revision_hash: revision_hash.into(),
            version: String::new(),
            ready: false,
            ready_since: None,
            crash_looping: false,
            restarts: 0,
            failed: false,
            terminating: false,
            created: None,
            drain: None,
            holds_listeners: false,
            ip: None,
        }
    }

    pub(super) fn live(&self) -> bool {
        !self.terminating && !self.failed
    }

    /// Ready and not on its way out.
    pub(super) fn serving(&self) -> bool {
        self.live() && self.ready && self.drain.is_none()
    }
}

/// The pods of one slot, by state.
#[derive(Default)]
pub(super) struct SlotPods<'a> {
    pub(super) live: Vec<&'a ObservedPod>,
    /// Terminating (not failed).
    pub(super) terminating: Vec<&'a ObservedPod>,
    pub(super) failed: Vec<&'a ObservedPod>,
}

impl SlotPods<'_> {
    pub(super) fn live_with(&self, hash: &str) -> Option<&ObservedPod> {
        self.live.iter().copied().find(|p| p.revision_hash == hash)
    }
    /// Pods that still take room (everything but failed pods).
    pub(super) fn occupying(&self) -> usize {
        self.live.len() + self.terminating.len()
    }
}

/// How a slot stands against the revision it should run.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum SlotHealth {
    Ok,
    Waiting(String),
    Crashing(String),
}

impl Planner<'_> {
    pub(super) fn min_ready(&self) -> i64 {
        i64::from(self.spec.min_ready_seconds.max(0))
    }

    /// Ready for `minReadySeconds` (and not draining).
    pub(super) fn available(&self, pod: &ObservedPod) -> bool {
        pod.drain.is_none() && self.available_if_undrained(pod)
    }

    /// Available once a drain request is withdrawn.
    pub(super) fn available_if_undrained(&self, pod: &ObservedPod) -> bool {
        pod.live() && pod.ready && pod.ready_since.is_none_or(|since| self.available_at(since) <= self.now)
    }

    /// When a pod Ready since `since` counts as available: `minReadySeconds` later. The API
    /// server keeps condition times in whole seconds, truncated, so a time without a fraction
    /// counts from the end of its second: minReadySeconds is never cut short.
    pub(super) fn available_at(&self, since: Timestamp) -> Timestamp {
        let min_ready = self.min_ready();
        if min_ready == 0 {
            return since;
        }
        let start = if since.subsec_nanosecond() == 0 {
            add_secs(since, 1)
        } else {
            since
        };
        add_secs(start, min_ready)
    }

    pub(super) fn slot_serving(&self, slot: i32) -> bool {
        self.slots
            .get(&slot)
            .is_some_and(|s| s.live.iter().any(|p| p.serving()))
    }

    pub(super) fn slot_health(&mut self, slot: i32, want: &RevisionInfo) -> SlotHealth {
        let instance = slot_name(&self.input.name, slot);
        let Some(pods) = self.slots.get(&slot) else {
            return SlotHealth::Waiting(format!("{instance} (no pod)"));
        };
        let Some(pod) = pods.live_with(&want.hash) else {
            return SlotHealth::Waiting(format!("{instance} (no {} pod yet)", want.version));
        };
        if pod.crash_looping {
            let restarts = match pod.restarts {
                1 => "1 restart".to_string(),
                n => format!("{n} restarts"),
            };
            return SlotHealth::Crashing(format!("{instance} crash-looping ({restarts})"));
        }
        if !pod.ready {
            return SlotHealth::Waiting(format!("{instance} (not ready)"));
        }
        if pod.drain.is_some() {
            return SlotHealth::Waiting(format!("{instance} (draining)"));
        }
        if !self.available(pod) {
            if let Some(since) = pod.ready_since {
                self.wakeups.push(self.available_at(since));
            }
            return SlotHealth::Waiting(format!("{instance} (ready, minReadySeconds not reached)"));
        }
        if pods.live.len() > 1 {
            return SlotHealth::Waiting(format!("{instance} (old pod still running)"));
        }
        SlotHealth::Ok
    }

    pub(super) fn any_broken(&self) -> bool {
        !self.broken_list().is_empty()
    }

    pub(super) fn broken_list(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|(slot, _)| **slot >= 0 && **slot < self.replicas())
            .filter(|(_, pods)| pods.live.iter().any(|p| p.crash_looping))
            .map(|(slot, _)| format!("{} crash-looping", slot_name(&self.input.name, *slot)))
            .collect()
    }

    pub(super) fn count_available(&self) -> i32 {
        let n = (0..self.replicas())
            .filter(|slot| {
                self.slots
                    .get(slot)
                    .is_some_and(|p| p.live.iter().any(|pod| self.available(pod)))
            })
            .count();
        i32::try_from(n).unwrap_or(i32::MAX)
    }
}
