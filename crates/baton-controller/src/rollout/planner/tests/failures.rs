//! Failed batches: automatic rollback, crash loops and stopping without `autoRollback`.

use super::*;

#[test]
fn never_ready_version_rolls_back_automatically() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    let mut saw_rolling_back = false;
    for _ in 0..200 {
        let p = w.step();
        saw_rolling_back |= p.status.phase == Some(RolloutPhase::RollingBack);
        if p.status.phase == Some(RolloutPhase::RolledBack) && p.actions.is_empty() {
            break;
        }
    }
    assert!(saw_rolling_back);
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.phase, Some(RolloutPhase::RolledBack));
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(st.version.as_deref(), Some("v1"));
    let prog = condition(&st, ConditionType::Progressing);
    assert_eq!((prog.status.as_str(), prog.reason.as_str()), ("False", "RolledBack"));
    assert!(
        prog.message.contains("v2") && prog.message.contains("not healthy within 60s"),
        "{}",
        prog.message
    );
    assert_eq!(condition(&st, ConditionType::Available).status, "True");
    assert_eq!(st.failed_update.as_ref().unwrap().version, "v2");
    assert!(w
        .events
        .iter()
        .any(|e| e.reason == EventReason::BatchFailed && e.type_ == EventType::Warning));
    assert!(w.events.iter().any(|e| e.reason == EventReason::RolledBack));
    // It stays rolled back: no new attempt at v2 without a retry or a spec change.
    for _ in 0..100 {
        let p = w.step();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }
    assert!(w.events.iter().filter(|e| e.reason == EventReason::RolledBack).count() == 1);
}

#[test]
fn crash_loop_fails_the_batch_at_once() {
    let mut inp = updating(3);
    inp.spec.progress_deadline_seconds = 10_000;
    let mut bad = starting_pod(0, "v2", at(990));
    bad.crash_looping = true;
    bad.restarts = 4;
    inp.pods.push(bad.clone());
    inp.status.as_mut().unwrap().update_revision = Some(rev("v2", 2).name);
    inp.status.as_mut().unwrap().batch = Some(BatchStatus {
        current: 1,
        total: 3,
        started_at: Some(MicroTime(at(990))),
        pause_started_at: None,
        bake_started_at: None,
    });
    let p = plan(&inp);
    assert_eq!(p.status.phase, Some(RolloutPhase::RollingBack));
    assert_eq!(deletes(&p), vec![bad.name.clone()]);
    assert!(p.status.message.as_ref().unwrap().contains("crash-looping"));
    assert_eq!(
        p.status.failed_update.as_ref().unwrap().reason,
        FailureReason::PodCrashLooping
    );
}

#[test]
fn without_auto_rollback_the_rollout_stops_and_names_the_holdouts() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.auto_rollback = false;
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    w.run_until(100, |s| s.phase == Some(RolloutPhase::Degraded));
    let st = w.input.status.clone().unwrap();
    let prog = condition(&st, ConditionType::Progressing);
    assert_eq!(
        (prog.status.as_str(), prog.reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    assert!(
        st.message.as_ref().unwrap().contains("svc-0 (not ready)"),
        "{:?}",
        st.message
    );
    assert_eq!(condition(&st, ConditionType::Available).status, "True");
    for _ in 0..20 {
        let p = w.step();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }
    // Abort returns the instance even without autoRollback.
    w.input.requests.abort = Some("a1".into());
    w.run_until(50, |s| s.phase == Some(RolloutPhase::RolledBack));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(condition(&st, ConditionType::Progressing).reason, "RolloutAborted");
}
