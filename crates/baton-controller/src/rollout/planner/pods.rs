//! Pods: the revision each slot should run, and the pod actions that move the slots there
//! within the surge and unavailability budgets, draining pods that hold listeners first.

use std::collections::{BTreeMap, BTreeSet};

use super::batches::{Mode, RolloutState};
use super::names::pod_labels_from;
use super::{add_duration, budgets, pod_name, Action, ObservedPod, Planner, RevisionInfo};
use crate::api::pod::Drain;
use crate::api::rollout::PodReplacementPolicy;

/// Whether the planner withdraws `pod`'s drain when it wants the pod again: only a drain it
/// asked itself (with a time), never one a person set.
fn undrains(pod: &ObservedPod) -> bool {
    matches!(pod.drain, Some(Drain::Since(_)))
}

/// What a plan may still add (surge) and take down (unavailability).
struct Budget {
    surge_left: i64,
    unavailable_left: i64,
    /// TerminationStarted: a terminating pod takes no room.
    started: bool,
}

impl Planner<'_> {
    /// Desired revision of every slot (None = leave the slot as it is).
    pub(super) fn desired_revisions(&self, rollout: &RolloutState) -> BTreeMap<i32, Option<RevisionInfo>> {
        let spec = self.spec;
        let RolloutState {
            target,
            stable,
            pins,
            unpinned,
            counts,
            batch,
            mode,
            ..
        } = rollout;
        // Until the preRollout hook succeeds, only slots already on the update revision stay.
        let on_target = |slot: &i32| {
            self.slots
                .get(slot)
                .is_some_and(|p| p.live.iter().any(|p| p.revision_hash == target.hash))
        };
        let mut chosen: BTreeSet<i32> = if *mode == Mode::Rollout {
            let k = usize::try_from(batch.current).unwrap_or(1).max(1);
            let count = counts.get(k - 1).copied().unwrap_or(unpinned.len());
            self.choose(rollout, k, count)
        } else {
            BTreeSet::new()
        };
        if rollout.hold {
            chosen.retain(on_target);
        }
        let fallback = stable.clone().unwrap_or_else(|| target.clone());
        let mut desired: BTreeMap<i32, Option<RevisionInfo>> = BTreeMap::new();
        for slot in 0..self.replicas() {
            let has_pods = self.slots.get(&slot).is_some_and(|s| !s.live.is_empty());
            let base = if let Some(pin) = pins.get(&slot) {
                pin.clone()
            } else {
                match mode {
                    Mode::Steady => target.clone(),
                    Mode::Rollout if chosen.contains(&slot) => target.clone(),
                    Mode::Rollout | Mode::Rollback | Mode::Stopped => fallback.clone(),
                }
            };
            let frozen = spec.paused || *mode == Mode::Stopped;
            let want = match (frozen, has_pods, pins.contains_key(&slot)) {
                (true, true, _) => None,
                // Frozen: a missing pod comes back on the current revision, not the new one.
                (true, false, false) => Some(fallback.clone()),
                _ => Some(base),
            };
            // Held by the preRollout hook on a first rollout: no pod of the new code starts.
            let held = rollout.hold && stable.is_none() && !pins.contains_key(&slot) && !on_target(&slot);
            desired.insert(slot, if held { None } else { want });
        }
        desired
    }

    /// Delete `pod`, or ask it to hand its listeners over first. True when deleted now.
    fn delete_or_drain(&mut self, pod: &ObservedPod) -> bool {
        if pod.holds_listeners {
            match pod.drain {
                // A drain asked by hand has no time to count from: asking again records one.
                None | Some(Drain::ByHand) => {
                    self.actions.push(Action::DrainPod { name: pod.name.clone() });
                    self.wakeups.push(add_duration(self.now, self.input.drain_timeout));
                    return false;
                }
                Some(Drain::Since(at)) => {
                    let until = add_duration(at, self.input.drain_timeout);
                    if until > self.now {
                        self.wakeups.push(until);
                        return false;
                    }
                }
            }
        }
        self.actions.push(Action::DeletePod { name: pod.name.clone() });
        true
    }

    /// The replacement policy in force (see [`PodReplacementPolicy::effective`]).
    pub(super) fn replacement_policy(&self) -> PodReplacementPolicy {
        let held = self.input.pods.iter().any(|p| p.holds_listeners);
        PodReplacementPolicy::effective(self.spec.strategy.pod_replacement_policy, held)
    }

    pub(super) fn pod_actions(&mut self, desired: &BTreeMap<i32, Option<RevisionInfo>>) {
        let replicas = self.replicas();
        let (max_surge, max_unavailable) = budgets(&self.spec.strategy, replicas);
        // Under TerminationStarted a terminating pod takes no room: deleting a pod frees its
        // room for a create in the same plan.
        let started = self.replacement_policy() == PodReplacementPolicy::TerminationStarted;
        let freed = i64::from(started);
        let mut extra: i64 = 0;
        for (slot, pods) in &self.slots {
            let n = if started { pods.live.len() } else { pods.occupying() };
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            extra += if *slot < 0 || *slot >= replicas {
                n
            } else {
                (n - 1).max(0)
            };
        }
        let mut surge_left = i64::from(max_surge) - extra;
        // Slots whose wanted pod is drained (by this controller) but Ready serve again once it is
        // undrained below.
        let undrained: BTreeSet<i32> = desired
            .iter()
            .filter_map(|(slot, want)| {
                let want = want.as_ref()?;
                let pod = self.slots.get(slot)?.live_with(&want.hash)?;
                (pod.ready && undrains(pod)).then_some(*slot)
            })
            .collect();
        let unavailable_now = (0..replicas)
            .filter(|s| !self.slot_serving(*s) && !undrained.contains(s))
            .count();
        let unavailable_left = i64::from(max_unavailable) - i64::try_from(unavailable_now).unwrap_or(i64::MAX);

        // Dead pods go first; they hold nothing.
        let failed: Vec<&ObservedPod> = self
            .slots
            .values()
            .flat_map(|p| p.failed.iter().copied())
            .filter(|p| !p.terminating)
            .collect();
        for pod in failed {
            self.actions.push(Action::DeletePod { name: pod.name.clone() });
        }

        // Scale down: slots outside 0..replicas, highest ordinal first.
        let removed: Vec<&ObservedPod> = self
            .slots
            .iter()
            .rev()
            .filter(|(slot, _)| **slot < 0 || **slot >= replicas)
            .flat_map(|(_, p)| p.live.iter().copied())
            .collect();
        for pod in removed {
            if self.delete_or_drain(pod) {
                surge_left += freed;
            }
        }

        // Slots that have their wanted pod first: the old pods they delete free room for the
        // creates of the slots that follow.
        for (slot, want) in desired {
            let Some(want) = want else { continue };
            let Some(pods) = self.slots.get(slot) else { continue };
            let Some(pod) = pods.live_with(&want.hash) else {
                continue;
            };
            let others: Vec<&ObservedPod> = pods
                .live
                .iter()
                .copied()
                .filter(|p| p.revision_hash != want.hash)
                .collect();
            if undrains(pod) {
                self.actions.push(Action::UndrainPod { name: pod.name.clone() });
            }
            let pod_available = pod.drain != Some(Drain::ByHand) && self.available_if_undrained(pod);
            if !pod_available && pod.ready {
                if let Some(since) = pod.ready_since {
                    self.wakeups.push(self.available_at(since));
                }
            }
            for other in others {
                if (pod_available || !other.serving()) && self.delete_or_drain(other) {
                    surge_left += freed;
                }
            }
        }

        let mut budget = Budget {
            surge_left,
            unavailable_left,
            started,
        };
        for (slot, want) in desired {
            if let Some(want) = want {
                self.replace(*slot, want, &mut budget);
            }
        }
    }

    /// Give `slot`, which has no live pod of `want`, a pod of it within `budget`: a surge
    /// create when there is room, else the old pods go first.
    fn replace(&mut self, slot: i32, want: &RevisionInfo, budget: &mut Budget) {
        let (live, occupying, name_taken) = match self.slots.get(&slot) {
            Some(p) => (
                p.live.clone(),
                p.occupying(),
                p.terminating
                    .iter()
                    .chain(p.failed.iter())
                    .any(|t| t.name == pod_name(&self.input.name, slot, &want.hash)),
            ),
            None => (Vec::new(), 0, false),
        };
        if live.iter().any(|p| p.revision_hash == want.hash) {
            return;
        }
        // Pods that serve nothing go at once.
        let mut live_left = live.len();
        let mut serving_others: Vec<&ObservedPod> = Vec::new();
        for other in &live {
            if other.serving() {
                serving_others.push(other);
            } else if self.delete_or_drain(other) {
                live_left -= 1;
            }
        }
        if name_taken {
            return;
        }
        let cost = i64::from(if budget.started { live_left > 0 } else { occupying > 0 });
        if cost == 0 || cost <= budget.surge_left {
            budget.surge_left -= cost;
            self.create_pod(slot, want);
            return;
        }
        // No room to surge: replace in place. All but the last serving pod go for free; the
        // last only if the slot may go unavailable.
        let n = serving_others.len();
        for (i, victim) in serving_others.into_iter().enumerate() {
            let may = i + 1 < n || budget.unavailable_left >= 1;
            if i + 1 == n && may {
                budget.unavailable_left -= 1;
            }
            if may && self.delete_or_drain(victim) {
                live_left -= 1;
            }
        }
        // The slot is empty once its last pod terminates: under TerminationStarted its
        // replacement starts now.
        if budget.started && live_left == 0 {
            self.create_pod(slot, want);
        }
    }

    fn create_pod(&mut self, slot: i32, want: &RevisionInfo) {
        let rollout = &self.input.name;
        self.actions.push(Action::CreatePod {
            name: pod_name(rollout, slot, &want.hash),
            slot,
            revision: want.name.clone(),
            hash: want.hash.clone(),
            version: want.version.clone(),
            labels: pod_labels_from(&want.template, rollout, slot, &want.hash, &want.version),
            template: want.template.clone(),
        });
    }
}
