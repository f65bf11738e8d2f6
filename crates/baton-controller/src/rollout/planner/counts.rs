//! What status reports as observed: counts, instances, versions, and the progress of the
//! update revision.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::batches::{Mode, RolloutState};
use super::{parse_slot, slot_name, Planner};
use crate::api::rollout::{selector_string, InstanceStatus, ProgressStatus, RolloutStatus};

impl Planner<'_> {
    /// Counts, instances and versions as observed, and the progress of the update revision.
    pub(super) fn observe(&self, rollout: &RolloutState) -> RolloutStatus {
        let RolloutState {
            target, pins, known, ..
        } = rollout;
        let number = |hash: &str| known.iter().find(|r| r.hash == hash).map_or(0, |r| r.revision);
        let mut status = RolloutStatus {
            selector: Some(selector_string(&self.spec.selector)),
            ..Default::default()
        };
        let mut max_slot = self.replicas() - 1;
        if let Some((slot, _)) = self.slots.iter().rev().find(|(_, p)| !p.live.is_empty()) {
            max_slot = max_slot.max(*slot);
        }
        for slot in 0..=max_slot {
            let pods = self.slots.get(&slot);
            let live = pods.map(|p| p.live.as_slice()).unwrap_or(&[]);
            if slot >= self.replicas() && live.is_empty() {
                continue;
            }
            let want_hash = pins.get(&slot).map_or(target.hash.as_str(), |p| p.hash.as_str());
            let primary = live
                .iter()
                .copied()
                .max_by_key(|p| (p.ready, p.revision_hash == want_hash, std::cmp::Reverse(p.name.clone())));
            if !live.is_empty() {
                status.replicas += 1;
            }
            if live.iter().any(|p| p.ready) {
                status.ready_replicas += 1;
            }
            if live.iter().any(|p| self.available(p)) {
                status.available_replicas += 1;
            }
            if live.iter().any(|p| p.revision_hash == target.hash) {
                status.updated_replicas += 1;
            }
            if let Some(p) = primary {
                *status.versions.entry(p.version.clone()).or_default() += 1;
            }
            status.instances.push(InstanceStatus {
                name: slot_name(&self.input.name, slot),
                pod: primary.map(|p| p.name.clone()),
                version: primary.map(|p| p.version.clone()),
                revision: primary.map_or(0, |p| number(&p.revision_hash)),
                ready: primary.is_some_and(|p| p.ready),
                since: primary.and_then(|p| {
                    if p.ready {
                        p.ready_since.or(p.created)
                    } else {
                        p.created
                    }
                    .map(Time)
                }),
                pinned: pins.contains_key(&slot),
                pinned_version: pins.get(&slot).map(|r| r.version.clone()),
            });
        }
        status.progress = Some(self.progress(rollout));
        status
    }

    /// Progress of the update revision over the unpinned slots. Completed: available on it;
    /// failed: crash-looping on it, or recorded as failed; pending: the rest, except after a
    /// rollback (or abort), when every instance that did not fail counts as rolled back.
    fn progress(&self, rollout: &RolloutState) -> ProgressStatus {
        let RolloutState {
            target,
            unpinned,
            failed,
            mode,
            ..
        } = rollout;
        let total = i32::try_from(unpinned.len()).unwrap_or(i32::MAX);
        let recorded: BTreeSet<i32> = failed
            .iter()
            .flat_map(|f| f.instances.iter())
            .filter_map(|i| parse_slot(&self.input.name, i))
            .filter(|s| unpinned.contains(s))
            .collect();
        let on_target = |slot: i32| self.slots.get(&slot).and_then(|p| p.live_with(&target.hash));
        let failed_now = unpinned
            .iter()
            .filter(|s| recorded.contains(s) || on_target(**s).is_some_and(|p| p.crash_looping))
            .count();
        let failed_now = i32::try_from(failed_now).unwrap_or(i32::MAX);
        if *mode == Mode::Rollback {
            let failed = i32::try_from(recorded.len()).unwrap_or(i32::MAX);
            return ProgressStatus {
                total,
                completed: 0,
                failed,
                pending: 0,
                rolled_back: total - failed,
            };
        }
        let completed = unpinned
            .iter()
            .filter(|s| !recorded.contains(s))
            .filter(|s| on_target(**s).is_some_and(|p| !p.crash_looping && self.available(p)))
            .count();
        let completed = i32::try_from(completed).unwrap_or(i32::MAX);
        ProgressStatus {
            total,
            completed,
            failed: failed_now,
            pending: (total - completed - failed_now).max(0),
            rolled_back: 0,
        }
    }
}

/// Pinned version per instance name, as a status records them (an instance pinned by a status
/// written before `pinnedVersion` existed counts as pinned to an unknown version).
pub(super) fn pinned_versions(instances: &[InstanceStatus]) -> BTreeMap<&str, Option<&str>> {
    instances
        .iter()
        .filter(|i| i.pinned)
        .map(|i| (i.name.as_str(), i.pinned_version.as_deref()))
        .collect()
}
