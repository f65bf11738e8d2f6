//! Pods: the revision each slot should run, and the pod actions that move the slots there
//! within the surge and unavailability budgets, draining pods that hold listeners first.

use std::collections::{BTreeMap, BTreeSet};

use super::batches::{Mode, RolloutState};
use super::names::pod_labels_from;
use super::{add_duration, budgets, pod_name, Action, ObservedPod, Planner, RevisionInfo};

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
        let chosen: BTreeSet<i32> = if *mode == Mode::Rollout {
            let k = usize::try_from(batch.current).unwrap_or(1).max(1);
            let count = counts.get(k - 1).copied().unwrap_or(unpinned.len());
            self.choose(unpinned, count, target, stable.as_ref())
        } else {
            BTreeSet::new()
        };
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
            desired.insert(slot, want);
        }
        desired
    }

    fn delete_or_drain(&mut self, pod: &ObservedPod) {
        if pod.holds_listeners {
            match pod.drain_requested_at {
                None => {
                    self.actions.push(Action::DrainPod { name: pod.name.clone() });
                    self.wakeups.push(add_duration(self.now, self.input.drain_timeout));
                    return;
                }
                Some(at) => {
                    let until = add_duration(at, self.input.drain_timeout);
                    if until > self.now {
                        self.wakeups.push(until);
                        return;
                    }
                }
            }
        }
        self.actions.push(Action::DeletePod { name: pod.name.clone() });
    }

    pub(super) fn pod_actions(&mut self, desired: &BTreeMap<i32, Option<RevisionInfo>>) {
        let replicas = self.replicas();
        let (max_surge, max_unavailable) = budgets(&self.spec.strategy, replicas);
        let mut extra: i64 = 0;
        for (slot, pods) in &self.slots {
            let n = i64::try_from(pods.occupying()).unwrap_or(i64::MAX);
            extra += if *slot < 0 || *slot >= replicas {
                n
            } else {
                (n - 1).max(0)
            };
        }
        let mut surge_left = i64::from(max_surge) - extra;
        // Slots whose wanted pod is drained but Ready serve again once it is undrained below.
        let undrained: BTreeSet<i32> = desired
            .iter()
            .filter_map(|(slot, want)| {
                let want = want.as_ref()?;
                let pod = self.slots.get(slot)?.live_with(&want.hash)?;
                (pod.ready && pod.drain_requested_at.is_some()).then_some(*slot)
            })
            .collect();
        let unavailable_now = (0..replicas)
            .filter(|s| !self.slot_serving(*s) && !undrained.contains(s))
            .count();
        let mut unavailable_left = i64::from(max_unavailable) - i64::try_from(unavailable_now).unwrap_or(i64::MAX);

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
            self.delete_or_drain(pod);
        }

        for (slot, want) in desired {
            let Some(want) = want else { continue };
            let slot = *slot;
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
            let current = live.iter().copied().find(|p| p.revision_hash == want.hash);
            let others: Vec<&ObservedPod> = live.iter().copied().filter(|p| p.revision_hash != want.hash).collect();
            match current {
                Some(pod) => {
                    if pod.drain_requested_at.is_some() {
                        self.actions.push(Action::UndrainPod { name: pod.name.clone() });
                    }
                    let pod_available = self.available_if_undrained(pod);
                    if !pod_available && pod.ready {
                        if let Some(since) = pod.ready_since {
                            self.wakeups.push(self.available_at(since));
                        }
                    }
                    for other in others {
                        if pod_available || !other.serving() {
                            self.delete_or_drain(other);
                        }
                    }
                }
                None => {
                    // Pods that serve nothing go at once.
                    let mut serving_others: Vec<&ObservedPod> = Vec::new();
                    for other in &others {
                        if other.serving() {
                            serving_others.push(other);
                        } else {
                            self.delete_or_drain(other);
                        }
                    }
                    if name_taken {
                        continue;
                    }
                    let cost = i64::from(occupying > 0);
                    if cost == 0 || cost <= surge_left {
                        surge_left -= cost;
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
                    } else {
                        // No room to surge: replace in place. All but the last serving pod go
                        // for free; the last only if the slot may go unavailable.
                        let n = serving_others.len();
                        for (i, victim) in serving_others.into_iter().enumerate() {
                            if i + 1 < n {
                                self.delete_or_drain(victim);
                            } else if unavailable_left >= 1 {
                                unavailable_left -= 1;
                                self.delete_or_drain(victim);
                            }
                        }
                    }
                }
            }
        }
    }
}
