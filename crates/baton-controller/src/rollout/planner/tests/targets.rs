//! Targeted batches: a batch includes the instances it names, its size covers them, later
//! batches' instances wait, and names that are not instances (or are pinned) are an invalid
//! spec.

use super::*;
use crate::api::rollout::BatchTarget;

fn target(batch: i32, instances: &[&str]) -> BatchTarget {
    BatchTarget {
        batch,
        instances: instances.iter().map(|s| s.to_string()).collect(),
    }
}

/// `v1` healthy on `replicas` slots, spec now `v2` with `batches` and `targets`.
fn rollout_with(replicas: i32, batches: Vec<IntOrString>, targets: Vec<BatchTarget>) -> PlanInput {
    let mut inp = healthy("v1", replicas);
    inp.spec = spec("v2", replicas);
    inp.spec.strategy.batches = batches;
    inp.spec.strategy.targets = targets;
    inp
}

#[test]
fn the_first_batch_is_the_named_canary() {
    let inp = rollout_with(4, vec![IntOrString::Int(1), pct("100%")], vec![target(1, &["svc-3"])]);
    let p = plan(&inp);
    assert_eq!(creates(&p), vec![(3, "v2".into())]);
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((1, 2)));
    // Without the target the canary is the lowest ordinal.
    let mut plain = inp.clone();
    plain.spec.strategy.targets.clear();
    assert_eq!(creates(&plan(&plain)), vec![(0, "v2".into())]);
}

#[test]
fn a_batch_grows_to_cover_the_instances_it_names() {
    let inp = rollout_with(
        4,
        vec![IntOrString::Int(1), pct("100%")],
        vec![target(1, &["svc-1", "svc-2"])],
    );
    let p = plan(&inp);
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((1, 2)));
    // maxSurge 1: one at a time, but both named slots are the batch; they go first in order.
    assert_eq!(creates(&p), vec![(1, "v2".into())]);
    let mut inp = inp;
    inp.spec.strategy.pause = Some(Pause {
        duration: None,
        manual: Some(true),
    });
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Paused));
    assert_eq!(w.input.status.as_ref().map(|s| s.updated_replicas), Some(2));
    let on_v2: BTreeSet<i32> = w
        .input
        .pods
        .iter()
        .filter(|p| p.version == "v2" && p.ready)
        .map(|p| p.slot)
        .collect();
    assert!(on_v2.is_superset(&[1, 2].into()), "{on_v2:?}");
}

#[test]
fn instances_named_by_a_later_batch_wait_for_it() {
    let inp = rollout_with(
        4,
        vec![IntOrString::Int(1), IntOrString::Int(2), pct("100%")],
        vec![target(2, &["svc-0"])],
    );
    let p = plan(&inp);
    assert_eq!(
        creates(&p),
        vec![(1, "v2".into())],
        "svc-0 is batch 2's, batch 1 takes svc-1"
    );
    let mut w = World::new(inp);
    let mut order = Vec::new();
    for _ in 0..200 {
        let p = w.step();
        for (slot, _) in creates(&p) {
            order.push(slot);
        }
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(&order[..2], &[1, 0], "creation order {order:?}");
    assert_eq!(w.versions().get("v2"), Some(&4));
}

#[test]
fn resolved_batches_merge_equal_sizes_and_end_at_every_instance() {
    let strategy = RolloutStrategy {
        batches: vec![IntOrString::Int(1), IntOrString::Int(2), pct("50%")],
        ..Default::default()
    };
    let named: BTreeMap<usize, Vec<i32>> = [(1, vec![5, 6]), (3, vec![7])].into();
    let b = crate::rollout::planner::targets::resolve(&strategy, &(0..10).collect::<Vec<_>>(), &named);
    // [1 -> 2 (named 5, 6), 2 -> merges, 50% = 5 (with 7), implicit 10].
    assert_eq!(b.counts, vec![2, 5, 10]);
    assert_eq!(b.named_in(1), [5, 6].into());
    assert_eq!(b.named_in(2), [5, 6, 7].into());
    assert_eq!(b.named_later(1), [7].into());
    assert!(b.named_later(3).is_empty());
}

#[test]
fn an_unknown_or_pinned_target_instance_is_an_invalid_spec_and_moves_nothing() {
    let mut inp = rollout_with(3, vec![IntOrString::Int(1), pct("100%")], vec![target(1, &["svc-7"])]);
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
    let invalid = condition(&p.status, ConditionType::InvalidSpec);
    assert_eq!(invalid.status, "True");
    assert!(invalid.message.contains("\"svc-7\""), "{}", invalid.message);
    assert!(p
        .events
        .iter()
        .any(|e| e.reason == EventReason::InvalidSpec && e.type_ == EventType::Warning));

    inp.spec.strategy.targets = vec![target(1, &["svc-1"])];
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-1".into()],
        version: "v1".into(),
    }];
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert!(condition(&p.status, ConditionType::InvalidSpec)
        .message
        .contains("spec.pins"));

    inp.spec.pins.clear();
    inp.spec.strategy.targets = vec![target(3, &["svc-1"])];
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    let message = &condition(&p.status, ConditionType::InvalidSpec).message;
    assert!(message.contains("targets[0].batch is 3"), "{message}");
}
