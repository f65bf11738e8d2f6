//! Targeted batches (`spec.strategy.targets`): the cumulative batch sizes raised to cover the
//! instances each batch names, and which slots a batch must include.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{parse_slot, Planner, RevisionInfo};
use crate::api::rollout::{scaled_value, BatchTarget, RolloutStrategy};
use crate::api::Invalid;

/// The batches of a rollout: cumulative sizes, and for each the slots it must include
/// (cumulative too).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Batches {
    pub(super) counts: Vec<usize>,
    pub(super) named: Vec<BTreeSet<i32>>,
}

impl Batches {
    /// The slots batch `k` (1-based) must include.
    pub(super) fn named_in(&self, k: usize) -> BTreeSet<i32> {
        self.named.get(k.max(1) - 1).cloned().unwrap_or_default()
    }

    /// Slots named by a batch after `k`, not by `k` or an earlier one.
    pub(super) fn named_later(&self, k: usize) -> BTreeSet<i32> {
        let now = self.named_in(k);
        self.named
            .last()
            .map_or_else(BTreeSet::new, |all| all.difference(&now).copied().collect())
    }
}

/// Cumulative batches over the `unpinned` slots, with the slots `targets` names per written
/// batch (1-based; slots outside `unpinned` are ignored, validation reports them). Sizes are
/// ascending, distinct and non-zero, each at least the named slots so far, ending at all of
/// `unpinned`; a batch whose size equals the one before it merges into it (with its names).
pub(super) fn resolve(strategy: &RolloutStrategy, unpinned: &[i32], named: &BTreeMap<usize, Vec<i32>>) -> Batches {
    let total = unpinned.len();
    let mut out = Batches::default();
    if total == 0 {
        return out;
    }
    let all = i32::try_from(total).unwrap_or(i32::MAX);
    let hundred = [IntOrString::String("100%".into())];
    let written: &[IntOrString] = if strategy.batches.is_empty() {
        &hundred
    } else {
        &strategy.batches
    };
    let unpinned_set: BTreeSet<i32> = unpinned.iter().copied().collect();
    let mut so_far: BTreeSet<i32> = BTreeSet::new();
    for (i, batch) in written.iter().enumerate() {
        if let Some(slots) = named.get(&(i + 1)) {
            so_far.extend(slots.iter().filter(|s| unpinned_set.contains(s)));
        }
        let raw = scaled_value(batch, all, true)
            .ok()
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(total)
            .min(total);
        let count = raw.max(so_far.len());
        if count == 0 {
            continue;
        }
        match out.counts.last() {
            Some(last) if *last >= count => {
                if let Some(names) = out.named.last_mut() {
                    names.clone_from(&so_far);
                }
            }
            _ => {
                out.counts.push(count);
                out.named.push(so_far.clone());
            }
        }
    }
    if out.counts.last() != Some(&total) {
        out.counts.push(total);
        out.named.push(so_far);
    }
    out
}

impl Planner<'_> {
    /// Slots named by `spec.strategy.targets`, per written batch, and every problem with the
    /// names: an instance that does not exist or is pinned.
    pub(super) fn target_slots(&self, pins: &BTreeMap<i32, RevisionInfo>) -> (BTreeMap<usize, Vec<i32>>, Vec<Invalid>) {
        target_slots(&self.input.name, self.replicas(), &self.spec.strategy.targets, |slot| {
            pins.contains_key(&slot)
        })
    }
}

/// Slots that `targets` name, per written batch, and every problem with the names: an instance
/// that is not one of the `replicas` instances of Rollout `name`, or one that `pinned`.
pub fn target_slots(
    name: &str,
    replicas: i32,
    targets: &[BatchTarget],
    pinned: impl Fn(i32) -> bool,
) -> (BTreeMap<usize, Vec<i32>>, Vec<Invalid>) {
    let mut named: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let batch = usize::try_from(t.batch).unwrap_or(0);
        for instance in &t.instances {
            match parse_slot(name, instance) {
                Some(slot) if slot < replicas => {
                    if pinned(slot) {
                        errors.push(Invalid::new(
                            format!("spec.strategy.targets[{i}]"),
                            format!(
                                "names instance {instance}, which spec.pins holds on another version; unpin it or name another instance"
                            ),
                        ));
                    }
                    named.entry(batch).or_default().push(slot);
                }
                _ => errors.push(not_an_instance(
                    name,
                    replicas,
                    &format!("spec.strategy.targets[{i}]"),
                    instance,
                )),
            }
        }
    }
    (named, errors)
}

/// "`at` names instance "x", which is not one of web-0 .. web-2; fix the name or the replicas".
pub(super) fn not_an_instance(name: &str, replicas: i32, at: &str, instance: &str) -> Invalid {
    Invalid::new(
        at,
        format!(
            "names instance {instance:?}, which is not one of {name}-0 .. {name}-{}; fix the name or the replicas",
            replicas - 1
        ),
    )
}
