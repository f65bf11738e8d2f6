//! At the planner: what status and events claim after failures, the gate conditions per
//! generation, progress counts, sub-second times, and runtime actions that are never lost.

use super::*;

fn gate(st: &RolloutStatus) -> [(String, String); 3] {
    [ConditionType::Ready, ConditionType::Reconciling, ConditionType::Stalled].map(|t| {
        let c = condition(st, t);
        (c.status.clone(), c.reason.clone())
    })
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

/// v2 never becomes ready on a healthy v1 of 3: rolled back.
fn rolled_back_world() -> World {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    w.run_until(200, |s| s.phase == Some(RolloutPhase::RolledBack));
    w
}

#[test]
fn after_a_rollback_nothing_says_healthy_or_ready_about_the_failed_version() {
    let w = rolled_back_world();
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.phase, Some(RolloutPhase::RolledBack));
    assert_eq!(st.version.as_deref(), Some("v1"), "VERSION is what serves");
    assert_eq!(
        gate(&st),
        [
            pair("False", "RolledBack"),
            pair("False", "RolledBack"),
            pair("True", "RolledBack")
        ]
    );
    assert_eq!(condition(&st, ConditionType::Available).status, "True");
    let p = st.progress.unwrap();
    assert_eq!(
        (p.total, p.completed, p.failed, p.pending, p.rolled_back),
        (3, 0, 1, 0, 2)
    );
    assert_eq!(st.failed_update.unwrap().instances, ["svc-0"]);
    // The phase change to RolledBack is a Warning.
    assert!(w.events.iter().any(|e| e.reason == EventReason::PhaseChanged
        && e.type_ == EventType::Warning
        && e.message == "phase RollingBack -> RolledBack"));
}

#[test]
fn progress_deadline_failure_counts_the_instances_that_failed() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.batches = vec![IntOrString::Int(2), pct("100%")];
    inp.spec.auto_rollback = false;
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    w.run_until(200, |s| s.phase == Some(RolloutPhase::Degraded));
    let st = w.input.status.clone().unwrap();
    let p = st.progress.clone().unwrap();
    assert_eq!(
        (p.total, p.completed, p.failed, p.pending, p.rolled_back),
        (4, 0, 2, 2, 0)
    );
    assert_eq!(
        gate(&st),
        [
            pair("False", "ProgressDeadlineExceeded"),
            pair("False", "ProgressDeadlineExceeded"),
            pair("True", "ProgressDeadlineExceeded")
        ]
    );
    assert_eq!(st.version.as_deref(), Some("v1"));
}

#[test]
fn ready_is_false_from_the_first_plan_of_a_new_generation_until_it_is_out() {
    let mut w = World::new(healthy("v1", 3));
    let st = w.step().status;
    assert_eq!(condition(&st, ConditionType::Ready).status, "True");
    w.set_spec(spec("v2", 3));
    let p = w.step();
    let ready = condition(&p.status, ConditionType::Ready);
    assert_eq!((ready.status.as_str(), ready.observed_generation), ("False", Some(2)));
    assert_eq!(condition(&p.status, ConditionType::Reconciling).status, "True");
    assert_eq!(p.status.version.as_deref(), Some("v1"), "v2 does not serve yet");
    let mut saw_ready_early = false;
    for _ in 0..100 {
        let p = w.step();
        let ready = condition(&p.status, ConditionType::Ready).status == "True";
        let all_v2 = w
            .input
            .pods
            .iter()
            .filter(|p| !p.terminating)
            .all(|p| p.version == "v2");
        saw_ready_early |= ready && !all_v2;
        if ready && p.actions.is_empty() {
            break;
        }
    }
    assert!(!saw_ready_early);
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.phase, Some(RolloutPhase::Healthy));
    assert_eq!(st.version.as_deref(), Some("v2"));
    assert_eq!(condition(&st, ConditionType::Ready).observed_generation, Some(2));
}

#[test]
fn simulation_ready_follows_each_generation_through_a_failure_and_a_fix() {
    let mut w = World::new(healthy("v1", 4));
    let mut v2 = spec("v2", 4);
    v2.progress_deadline_seconds = 15;
    w.set_spec(v2);
    w.behaviour.insert("v2".into(), Behaviour::CrashLoop);
    let mut versions_shown = BTreeSet::new();
    for _ in 0..60 {
        let p = w.step();
        assert_ne!(
            condition(&p.status, ConditionType::Ready).status,
            "True",
            "Ready for v2"
        );
        versions_shown.insert(p.status.version.clone());
        if p.status.phase == Some(RolloutPhase::RolledBack) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(versions_shown, [Some("v1".to_string())].into(), "VERSION never says v2");
    assert_eq!(w.input.status.as_ref().unwrap().phase, Some(RolloutPhase::RolledBack));
    w.set_spec(spec("v3", 4));
    w.run_until(100, |s| s.phase == Some(RolloutPhase::Healthy));
    let st = w.input.status.clone().unwrap();
    assert_eq!(gate(&st)[0], pair("True", "NewRevisionAvailable"));
    assert_eq!(st.version.as_deref(), Some("v3"));
    assert_eq!(st.failed_update, None);
}

#[test]
fn the_progress_deadline_is_measured_below_the_second() {
    let mut inp = updating(3);
    inp.spec.progress_deadline_seconds = 8;
    let new = starting_pod(0, "v2", at(990));
    inp.pods.push(new);
    let started = add_duration(at(990), Duration::from_millis(550));
    let st = inp.status.as_mut().unwrap();
    st.update_revision = Some(rev("v2", 2).name);
    st.batch = Some(BatchStatus {
        current: 1,
        total: 3,
        started_at: Some(MicroTime(started)),
        pause_started_at: None,
        bake_started_at: None,
    });
    // 7.45 s after the batch started: not failed yet, and the wake-up is at the exact deadline.
    inp.now = at(998);
    let p = plan(&inp);
    assert_eq!(p.status.failed_update, None);
    assert_eq!(p.requeue_after, Some(Duration::from_millis(550)));
    inp.now = add_duration(started, Duration::from_secs(8));
    let p = plan(&inp);
    assert_eq!(
        p.status.failed_update.map(|f| f.reason),
        Some(FailureReason::ProgressDeadlineExceeded)
    );
    // Stored as written: to the microsecond.
    let json = serde_json::to_value(&inp.status.as_ref().unwrap().batch).unwrap();
    assert!(json["startedAt"].as_str().unwrap().ends_with(".550000Z"), "{json}");
}

#[test]
fn min_ready_seconds_counts_from_an_exact_ready_time_when_it_has_one() {
    let mut inp = updating(2);
    inp.spec.min_ready_seconds = 3;
    inp.spec.progress_deadline_seconds = 100;
    let since = add_duration(at(997), Duration::from_millis(400));
    inp.pods.push(ready_pod(0, "v2", since));
    let p = plan(&inp);
    assert!(deletes(&p).is_empty(), "available after 2.6 s: {:?}", p.actions);
    assert_eq!(p.requeue_after, Some(Duration::from_millis(400)));
    inp.now = add_duration(since, Duration::from_secs(3));
    assert_eq!(deletes(&plan(&inp)), vec![pod_name(NAME, 0, &hash_of("v1"))]);
}

/// v2 on 3 instances with a manual pause, waiting after batch 1.
fn waiting_for_promotion() -> World {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.strategy.pause = Some(Pause {
        duration: None,
        manual: Some(true),
    });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    w
}

#[test]
fn promote_while_spec_paused_is_kept_and_acted_on_at_resume() {
    let mut w = waiting_for_promotion();
    w.input.spec.paused = true;
    w.input.requests.promote = Some("p1".into());
    for _ in 0..5 {
        let p = w.step();
        assert_eq!(p.status.phase, Some(RolloutPhase::Paused));
        assert_eq!(p.status.batch.as_ref().unwrap().current, 1);
        assert_eq!(
            p.status.actions.as_ref().unwrap().promote,
            None,
            "recorded while paused"
        );
        assert!(!has_event(&p, EventReason::Promoted) && !has_event(&p, EventReason::ActionIgnored));
    }
    w.input.spec.paused = false;
    let p = w.step();
    assert!(has_event(&p, EventReason::Promoted), "{:?}", p.events);
    assert_eq!(p.status.batch.as_ref().unwrap().current, 2);
    assert_eq!(p.status.actions.as_ref().unwrap().promote.as_deref(), Some("p1"));
}

#[test]
fn requests_with_nothing_to_act_on_are_recorded_with_a_warning() {
    // Promote in the middle of a batch: no pause to end.
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.requests.promote = Some("p1".into());
    let p = plan(&inp);
    let ignored: Vec<&PlanEvent> = p
        .events
        .iter()
        .filter(|e| e.reason == EventReason::ActionIgnored)
        .collect();
    assert_eq!(ignored.len(), 1, "{:?}", p.events);
    assert_eq!(ignored[0].type_, EventType::Warning);
    assert!(ignored[0]
        .message
        .starts_with("promote requested, nothing done: batch 1/3 of v2 is not healthy yet"));
    assert_eq!(p.status.actions.as_ref().unwrap().promote.as_deref(), Some("p1"));
    // Abort and retry on a healthy rollout.
    let mut inp = healthy("v1", 3);
    inp.requests.abort = Some("a1".into());
    inp.requests.retry = Some("r1".into());
    let p = plan(&inp);
    let messages: Vec<&str> = p
        .events
        .iter()
        .filter(|e| e.reason == EventReason::ActionIgnored)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "retry requested, nothing done: v1 (revision 1) has not failed",
            "abort requested, nothing done: no rollout in progress: v1 is rolled out"
        ]
    );
    assert!(p.actions.is_empty());
    // Handled once.
    let mut again = inp.clone();
    again.status = Some(p.status);
    assert!(plan(&again).events.is_empty());
}

#[test]
fn promote_full_skips_the_remaining_batches_and_pauses() {
    let mut inp = healthy("v1", 5);
    inp.spec = spec("v2", 5);
    inp.spec.strategy.batches = vec![
        IntOrString::Int(1),
        IntOrString::Int(2),
        IntOrString::Int(3),
        pct("100%"),
    ];
    inp.spec.strategy.pause = Some(Pause {
        duration: None,
        manual: Some(true),
    });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    w.input.requests.promote_full = Some("f1".into());
    let p = w.step();
    assert!(has_event(&p, EventReason::Promoted));
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((4, 4)));
    for _ in 0..60 {
        let p = w.step();
        assert_ne!(p.status.phase, Some(RolloutPhase::Paused), "{:?}", p.status.message);
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(w.versions(), [("v2".to_string(), 5)].into());
}

#[test]
fn a_new_target_with_promote_full_goes_straight_there() {
    // What `baton rollout undo` writes: an older revision's spec and a full promotion at once.
    let mut w = waiting_for_promotion();
    let mut back = spec("v0", 3);
    back.strategy.pause = w.input.spec.strategy.pause.clone();
    w.set_spec(back);
    w.input.requests.promote_full = Some("u1".into());
    let p = w.step();
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((3, 3)));
    let phases: Vec<_> = (0..60).map(|_| w.step().status.phase).collect();
    assert!(!phases.contains(&Some(RolloutPhase::Paused)), "{phases:?}");
    assert_eq!(w.versions(), [("v0".to_string(), 3)].into());
}

#[test]
fn pause_shapes() {
    let mode = |duration: Option<&str>, manual: Option<bool>| {
        Pause {
            duration: duration.map(str::to_string),
            manual,
        }
        .mode()
        .unwrap()
    };
    assert_eq!(mode(None, None), PauseMode::Manual, "today's `pause: {{}}`");
    assert_eq!(mode(Some("30s"), None), PauseMode::Timed(Duration::from_secs(30)));
    assert_eq!(mode(Some("30s"), Some(true)), PauseMode::Manual, "merge-patched manual");
    assert_eq!(mode(None, Some(true)), PauseMode::Manual);
    assert_eq!(
        mode(Some("30s"), Some(false)),
        PauseMode::Timed(Duration::from_secs(30))
    );
    assert_eq!(mode(None, Some(false)), PauseMode::None);
    // A timed pause with manual: true waits for promotion in the planner too.
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.pause = Some(Pause {
        duration: Some("1s".into()),
        manual: Some(true),
    });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    for _ in 0..10 {
        assert_eq!(w.step().status.phase, Some(RolloutPhase::Paused));
    }
}

#[test]
fn pins_unpins_and_restarts_are_each_reported_once() {
    let mut w = World::new(healthy("v1", 3));
    let mut v2 = spec("v2", 3);
    w.set_spec(v2.clone());
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    v2.pins = vec![Pin {
        instances: vec!["svc-0".into(), "svc-2".into()],
        version: "v1".into(),
    }];
    w.set_spec(v2.clone());
    let p = w.step();
    let pinned: Vec<&str> = p
        .events
        .iter()
        .filter(|e| e.reason == EventReason::Pinned)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(pinned, ["svc-0, svc-2 pinned to v1 (spec.pins)"]);
    assert!(w.step().events.iter().all(|e| e.reason != EventReason::Pinned));
    v2.pins[0].instances = vec!["svc-0".into()];
    w.set_spec(v2);
    let p = w.step();
    let unpinned: Vec<&str> = p
        .events
        .iter()
        .filter(|e| e.reason == EventReason::Unpinned)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(unpinned, ["svc-2 unpinned: back to v2 with the other instances"]);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    w.input.requests.restarted_at = Some("2024-05-01T00:00:00Z".into());
    let p = w.step();
    assert_eq!(
        p.events.iter().filter(|e| e.reason == EventReason::Restarted).count(),
        1,
        "{:?}",
        p.events
    );
    assert!(w.step().events.iter().all(|e| e.reason != EventReason::Restarted));
}

#[test]
fn the_first_phase_event_names_no_previous_phase() {
    let p = plan(&input(spec("v1", 2), vec![], vec![]));
    // Said by the event of the transition it follows from (one Event per transition).
    let notes: Vec<(EventReason, &str)> = p.events.iter().map(|e| (e.reason, e.message.as_str())).collect();
    assert_eq!(
        notes,
        [(
            EventReason::BatchStarted,
            "rolling out v1 (revision 1): batch 1/1, 2 of 2 instances (phase set to Progressing)"
        )]
    );
    // Starting the batch of a new target is reported once, even if the plan is repeated
    // from the status it wrote.
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let p = plan(&inp);
    assert_eq!(
        p.events
            .iter()
            .filter(|e| e.reason == EventReason::BatchStarted)
            .count(),
        1
    );
    inp.status = Some(p.status);
    assert!(plan(&inp).events.iter().all(|e| e.reason != EventReason::BatchStarted));
}
