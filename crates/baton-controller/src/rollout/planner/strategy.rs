//! The strategy's numbers: surge and unavailability budgets, and the cumulative batch sizes.

use crate::api::rollout::{scaled_value, RolloutStrategy};

/// `(maxSurge, maxUnavailable)` resolved against `replicas` (surge rounds up, unavailable
/// down; both zero → surge 1).
pub fn budgets(strategy: &RolloutStrategy, replicas: i32) -> (i32, i32) {
    let surge = scaled_value(&strategy.max_surge, replicas, true).unwrap_or(1);
    let unavailable = scaled_value(&strategy.max_unavailable, replicas, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        (1, 0)
    } else {
        (surge, unavailable)
    }
}

/// Cumulative batch counts over `unpinned` slots: ascending, distinct, non-zero, ending at
/// `unpinned` (empty when `unpinned` is 0).
pub fn batch_counts(strategy: &RolloutStrategy, unpinned: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    if unpinned == 0 {
        return out;
    }
    let total = i32::try_from(unpinned).unwrap_or(i32::MAX);
    for batch in &strategy.batches {
        let count = scaled_value(batch, total, true)
            .ok()
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(unpinned)
            .min(unpinned);
        if count == 0 || out.last().is_some_and(|last| *last >= count) {
            continue;
        }
        out.push(count);
    }
    if out.last() != Some(&unpinned) {
        out.push(unpinned);
    }
    out
}
