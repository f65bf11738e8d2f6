//! Simulations: whole rollouts stepped through the small world.

use super::*;

#[test]
fn simulation_v1_to_v2_converges_and_v3_rolls_back() {
    let mut inp = input(spec("v1", 4), vec![], vec![]);
    inp.spec.min_ready_seconds = 1;
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v1".to_string(), 4)].into());

    w.input.spec = spec("v2", 4);
    w.input.spec.min_ready_seconds = 1;
    w.input.spec.strategy.pause = pause(Some("3s"));
    w.run_until(200, |s| s.phase == Some(RolloutPhase::Healthy));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v2".to_string(), 4)].into());
    assert_eq!(st.updated_replicas, 4);
    assert_eq!(st.progress.as_ref().unwrap().completed, 4);
    assert!(w.input.pods.iter().all(|p| p.version == "v2"));

    let mut v3 = spec("v3", 4);
    v3.min_ready_seconds = 1;
    v3.progress_deadline_seconds = 20;
    w.input.spec = v3;
    w.behaviour.insert("v3".into(), Behaviour::NeverReady);
    let mut phases = Vec::new();
    for _ in 0..300 {
        let p = w.step();
        if phases.last() != p.status.phase.as_ref() {
            phases.push(p.status.phase.unwrap());
        }
        if p.status.phase == Some(RolloutPhase::RolledBack) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(
        phases,
        vec![
            RolloutPhase::Progressing,
            RolloutPhase::RollingBack,
            RolloutPhase::RolledBack
        ]
    );
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v2".to_string(), 4)].into());
    assert_eq!(condition(&st, ConditionType::Progressing).reason, "RolledBack");
    assert_eq!(condition(&st, ConditionType::Available).status, "True");
    assert!(w.input.pods.iter().all(|p| p.version == "v2"));
}

#[test]
fn simulation_crash_looping_version_rolls_back_before_the_deadline() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.progress_deadline_seconds = 10_000;
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::CrashLoop);
    let steps = w.run_until(50, |s| s.phase == Some(RolloutPhase::RolledBack));
    assert!(steps < 50);
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(
        st.failed_update.as_ref().unwrap().reason,
        FailureReason::PodCrashLooping
    );
    assert_eq!(condition(&st, ConditionType::Progressing).reason, "RolledBack");
}
