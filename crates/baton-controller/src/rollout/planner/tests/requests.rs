//! Runtime actions: promote, retry, abort and restart annotations.

use super::*;

#[test]
fn action_requests_from_annotations() {
    let a: BTreeMap<String, String> = [
        (annotations::PROMOTE.to_string(), "n1".to_string()),
        (annotations::RESTARTED_AT.to_string(), "t".to_string()),
        (annotations::ABORT.to_string(), String::new()),
    ]
    .into();
    let r = ActionRequests::from_annotations(&a);
    assert_eq!(r.promote.as_deref(), Some("n1"));
    assert_eq!(r.restarted_at.as_deref(), Some("t"));
    assert_eq!(r.abort, None);
}

#[test]
fn pause_without_duration_waits_for_promote_once_per_nonce() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.pause = pause(None);
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 1), ("v2".to_string(), 1)].into());
    assert!(st.message.unwrap().contains("waiting for promotion"));
    // Stays paused, no requeue needed (promotion is an annotation change).
    let p = plan(&w.input);
    assert!(p.actions.is_empty());
    assert_eq!(p.requeue_after, None);
    w.input.requests.promote = Some("n1".into());
    let p = w.step();
    assert!(has_event(&p, EventReason::Promoted));
    assert_eq!(p.status.batch.as_ref().unwrap().current, 2);
    assert_eq!(p.status.actions.as_ref().unwrap().promote.as_deref(), Some("n1"));
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 2)].into());
    // The same nonce does nothing for the next rollout.
    w.input.spec = spec("v3", 2);
    w.input.spec.strategy.pause = pause(None);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    assert_eq!(w.versions(), [("v2".to_string(), 1), ("v3".to_string(), 1)].into());
}

#[test]
fn retry_rolls_the_failed_revision_out_again_from_batch_one() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    w.run_until(200, |s| {
        s.phase == Some(RolloutPhase::RolledBack) && s.failed_update.is_some()
    });
    w.behaviour.insert("v2".into(), Behaviour::ReadyAfter(1));
    w.input.requests.retry = Some("r1".into());
    let p = w.step();
    assert!(has_event(&p, EventReason::RetryRequested));
    assert_eq!(p.status.batch.as_ref().unwrap().current, 1);
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
    w.run_until(100, |s| {
        s.phase == Some(RolloutPhase::Healthy) && s.failed_update.is_none()
    });
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn abort_mid_rollout_returns_to_current_revision() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.pause = pause(None);
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    w.input.requests.abort = Some("x".into());
    let p = w.step();
    assert!(has_event(&p, EventReason::RolloutAborted));
    assert_eq!(p.status.phase, Some(RolloutPhase::RollingBack));
    w.run_until(30, |s| s.phase == Some(RolloutPhase::RolledBack));
    assert_eq!(w.versions(), [("v1".to_string(), 4)].into());
    // Handled once: the nonce stays in the annotation, nothing more happens.
    for _ in 0..5 {
        assert!(w.step().events.is_empty());
    }
}

#[test]
fn restart_annotation_rolls_a_new_revision_in_batches() {
    let mut inp = healthy("v1", 3);
    inp.requests.restarted_at = Some("2024-05-01T00:00:00Z".into());
    let p = plan(&inp);
    let Action::CreateRevision { template, version, .. } = &p.actions[0] else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(version, "v1");
    assert_eq!(
        template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[annotations::RESTARTED_AT],
        "2024-05-01T00:00:00Z"
    );
    assert_eq!(creates(&p), vec![(0, "v1".into())]);
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert!(w.input.pods.iter().all(|p| p.revision_hash != hash_of("v1")));
}
