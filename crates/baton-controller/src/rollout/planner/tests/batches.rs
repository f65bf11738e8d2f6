//! Batch progression: the first rollout, batches and pauses, superseding targets, `spec.paused` and requeues.

use super::*;

#[test]
fn first_rollout_creates_revision_and_every_slot_at_once() {
    let p = plan(&input(spec("v1", 3), vec![], vec![]));
    assert!(matches!(
        &p.actions[0],
        Action::CreateRevision { revision: 1, version, .. } if version == "v1"
    ));
    assert_eq!(creates(&p), vec![(0, "v1".into()), (1, "v1".into()), (2, "v1".into())]);
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(p.status.current_revision, None);
    assert_eq!(p.status.update_revision, Some(rev("v1", 1).name));
    assert_eq!(p.status.batch_label.as_deref(), Some("1/1"));
    assert!(has_event(&p, EventReason::BatchStarted));
    assert_eq!(condition(&p.status, ConditionType::Available).status, "False");
    assert_eq!(condition(&p.status, ConditionType::InvalidSpec).status, "False");
}

#[test]
fn a_finished_first_rollout_plans_the_status_it_wrote() {
    // The plan that completes a first rollout counts one batch (there is no healthy revision
    // yet); the plans after it have one and must not count the strategy's batches instead: a
    // status that changes with no change in the pods is a write (150 KB at 1,000 instances)
    // after every first rollout, which held up the next rollout's first reaction.
    let mut w = World::new(input(spec("v1", 4), vec![], vec![]));
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Healthy));
    let stored = w.input.status.clone().unwrap_or_default();
    assert_eq!(stored.batch_label.as_deref(), Some("1/1"));
    for _ in 0..3 {
        let p = w.step();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.status.batch, stored.batch);
        assert_eq!(p.status.batch_label, stored.batch_label);
        assert_eq!(
            crate::rollout::status_write::decide(Some(&stored), &p.status, None),
            crate::rollout::status_write::StatusWrite::Unchanged,
        );
    }
    // The next rollout counts the strategy's batches.
    w.set_spec(spec("v2", 4));
    let p = w.step();
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((1, 3)));
    w.run_until(60, |s| {
        s.phase == Some(RolloutPhase::Healthy) && s.version.as_deref() == Some("v2")
    });
    let stored = w.input.status.clone().unwrap_or_default();
    assert_eq!(stored.batch_label.as_deref(), Some("3/3"));
    assert_eq!(w.step().status.batch_label.as_deref(), Some("3/3"));
}

#[test]
fn batch_one_surges_a_single_new_pod_and_keeps_the_old_one() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    let p = plan(&inp);
    assert!(matches!(&p.actions[0], Action::CreateRevision { revision: 2, .. }));
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
    assert!(deletes(&p).is_empty());
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((1, 3)));
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(p.status.current_revision, Some(rev("v1", 1).name));
    assert!(has_event(&p, EventReason::BatchStarted));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(60)), "progress deadline");
}

#[test]
fn converges_through_batches_and_pauses() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.pause = pause(Some("5s"));
    let mut w = World::new(inp);
    let mut saw = BTreeSet::new();
    for _ in 0..200 {
        let p = w.step();
        if let Some(b) = &p.status.batch {
            saw.insert(b.current);
        }
        if p.status.message.as_deref().unwrap_or("").contains("paused until") {
            assert!(p.requeue_after.is_some());
            assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
            assert_eq!(condition(&p.status, ConditionType::Progressing).reason, "BatchPaused");
        }
        // At most batch-count pods on v2 before the batch advances.
        let b = p.status.batch.clone().unwrap();
        let limit = [1, 2, 4][usize::try_from(b.current).unwrap() - 1];
        assert!(p.status.updated_replicas <= limit, "{:?}", p.status);
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(saw, [1, 2, 3].into());
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.phase, Some(RolloutPhase::Healthy));
    assert_eq!(st.versions, [("v2".to_string(), 4)].into());
    assert_eq!(st.current_revision, Some(rev("v2", 2).name));
    let reasons: Vec<&str> = w.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "BatchCompleted").count(),
        2,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"RolloutCompleted"));
}

#[test]
fn new_spec_mid_rollout_supersedes_the_old_target() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.pause = pause(None);
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    assert_eq!(w.versions().get("v2"), Some(&1));
    w.input.spec = spec("v3", 4);
    let p = w.step();
    assert!(has_event(&p, EventReason::BatchStarted));
    assert_eq!(p.status.batch.as_ref().unwrap().current, 1);
    assert_eq!(p.status.current_revision, Some(rev("v1", 1).name));
    // The v2 instance is the first one moved to v3.
    assert_eq!(creates(&p), vec![(0, "v3".into())]);
    w.run_until(100, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v3".to_string(), 4)].into());
}

#[test]
fn scale_up_mid_rollout_fills_the_batch_with_new_slots() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.batches = vec![pct("50%")];
    inp.spec.strategy.pause = pause(None);
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    w.input.spec.replicas = 4;
    let p = w.step();
    // 50% of 4 = 2: slot 0 (already v2) plus the new slot 2; slot 3 starts on v1.
    assert_eq!(creates(&p), vec![(2, "v2".into()), (3, "v1".into())]);
}

#[test]
fn paused_stops_progress_but_recreates_missing_pods() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.paused = true;
    inp.pods.remove(2);
    let p = plan(&inp);
    assert_eq!(creates(&p), vec![(2, "v1".into())]);
    assert!(deletes(&p).is_empty());
    assert!(has_event(&p, EventReason::Paused));
    assert_eq!(p.status.phase, Some(RolloutPhase::Paused));
    let prog = condition(&p.status, ConditionType::Progressing);
    assert_eq!(
        (prog.status.as_str(), prog.reason.as_str()),
        ("Unknown", "RolloutPaused")
    );
    // Time passes while paused: no deadline.
    let mut w = World::new(inp);
    for _ in 0..200 {
        let p = w.step();
        assert_ne!(p.status.phase, Some(RolloutPhase::RollingBack));
    }
    w.input.spec.paused = false;
    let p = w.step();
    assert!(has_event(&p, EventReason::Resumed));
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn requeue_covers_pause_and_deadline() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.pause = pause(Some("1m"));
    let mut w = World::new(inp);
    let p = w.run_until(30, |s| s.message.as_deref().unwrap_or("").contains("paused until"));
    assert!(p < 30);
    let p = plan(&w.input);
    let left = p.requeue_after.unwrap();
    assert!(
        left <= Duration::from_secs(60) && left > Duration::from_secs(50),
        "{left:?}"
    );
}
