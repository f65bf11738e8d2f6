//! Property tests of what status claims under incidents: a new version that is good, never
//! ready or crash-looping, with or without automatic rollback, manual pauses, a pin, and
//! runtime actions and `spec.paused` flips at random steps. Every step keeps the invariants
//! (`invariants::check_status`: Ready only when every unpinned instance serves this
//! generation's revision, progress that adds up, ...); the end state is judged against what
//! the version did.

use super::*;

/// A runtime action or spec change at some step of the rollout of v2.
#[derive(Clone, Copy, Debug)]
enum Incident {
    Promote,
    PromoteFull,
    Abort,
    Retry,
    TogglePaused,
}

fn arb_incident() -> impl Strategy<Value = (usize, Incident)> {
    let incident = prop::sample::select(vec![
        Incident::Promote,
        Incident::PromoteFull,
        Incident::Abort,
        Incident::Retry,
        Incident::TogglePaused,
    ]);
    (0usize..40, incident)
}

fn nonce(step: usize) -> Option<String> {
    Some(format!("n{step}"))
}

fn inject(w: &mut World, step: usize, incident: Incident) {
    let requests = &mut w.input.requests;
    match incident {
        Incident::Promote => requests.promote = nonce(step),
        Incident::PromoteFull => requests.promote_full = nonce(step),
        Incident::Abort => requests.abort = nonce(step),
        Incident::Retry => requests.retry = nonce(step),
        Incident::TogglePaused => {
            let mut s = w.input.spec.clone();
            s.paused = !s.paused;
            w.set_spec(s);
        }
    }
}

/// Waiting for promotion after a healthy batch?
fn waiting_for_promotion(st: &RolloutStatus) -> bool {
    st.phase == Some(RolloutPhase::Paused)
        && crate::api::rollout::reasons::find(&st.conditions, ConditionType::Progressing)
            .is_some_and(|c| c.reason == crate::api::rollout::Reason::BatchPaused.as_str())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_no_status_calls_a_failed_version_healthy_or_ready(
        replicas in 1i32..6,
        behaviour in prop::sample::select(vec![Behaviour::ReadyAfter(2), Behaviour::NeverReady, Behaviour::CrashLoop]),
        auto_rollback in any::<bool>(),
        manual_pause in any::<bool>(),
        pin in prop::option::of(0i32..6),
        deadline in 20i32..40,
        incidents in prop::collection::vec(arb_incident(), 0..5),
    ) {
        let mut w = World::new(healthy("v1", replicas));
        w.behaviour.insert("v2".into(), behaviour);
        let mut v2 = spec("v2", replicas);
        v2.auto_rollback = auto_rollback;
        v2.progress_deadline_seconds = deadline;
        if manual_pause {
            v2.strategy.pause = Some(Pause { duration: None, manual: Some(true) });
        }
        if let Some(slot) = pin.filter(|s| *s < replicas) {
            v2.pins = vec![Pin { instances: vec![format!("{NAME}-{slot}")], version: "v1".into() }];
        }
        w.set_spec(v2);
        let mut aborted = false;
        for step in 0..40 {
            for (_, incident) in incidents.iter().filter(|(at, _)| *at == step) {
                inject(&mut w, step, *incident);
                aborted |= matches!(incident, Incident::Abort);
            }
            w.step();
        }
        // Then let it finish: resumed, promoted whenever it waits for promotion.
        if w.input.spec.paused {
            let mut s = w.input.spec.clone();
            s.paused = false;
            w.set_spec(s);
        }
        let mut last = None;
        for step in 40..400 {
            let p = w.step();
            if waiting_for_promotion(&p.status) {
                w.input.requests.promote = nonce(step);
            }
            let settled = p.actions.is_empty()
                && matches!(p.status.phase, Some(RolloutPhase::Healthy | RolloutPhase::RolledBack | RolloutPhase::Degraded));
            if settled {
                last = Some(p.status);
                break;
            }
        }
        let st = last.expect("the rollout settles");
        let phase = st.phase.expect("a phase");
        let ready = condition(&st, ConditionType::Ready).status == "True";
        prop_assert_eq!(ready, phase == RolloutPhase::Healthy);
        let unpinned = replicas - i32::from(pin.is_some_and(|s| s < replicas));
        match (behaviour, phase) {
            // A version that never became available is never Healthy, nor the serving version.
            (Behaviour::NeverReady | Behaviour::CrashLoop, RolloutPhase::Healthy) if unpinned > 0 => {
                prop_assert!(false, "Healthy on a failed version: {:?}", st.message);
            }
            (_, RolloutPhase::RolledBack) => {
                prop_assert!(behaviour != Behaviour::ReadyAfter(2) || aborted, "{:?}", st.message);
                prop_assert_eq!(st.version.as_deref(), Some("v1"));
                prop_assert_eq!(w.versions(), [("v1".to_string(), replicas)].into());
                let p = st.progress.expect("progress");
                prop_assert_eq!((p.completed, p.pending, p.failed + p.rolled_back), (0, 0, unpinned));
            }
            // (With every instance pinned to v1, v1 is what serves.)
            (Behaviour::ReadyAfter(_), RolloutPhase::Healthy) if unpinned > 0 => {
                prop_assert_eq!(st.version.as_deref(), Some("v2"));
                prop_assert_eq!(st.versions.get("v2").copied(), Some(unpinned));
            }
            (_, RolloutPhase::Healthy) => {
                prop_assert_eq!(st.version.as_deref(), Some("v1"));
                prop_assert!(st.message.as_deref().unwrap_or("").contains("0 on v2, 1 pinned to v1"), "{:?}", st.message);
            }
            (Behaviour::ReadyAfter(_), RolloutPhase::Degraded) => {
                prop_assert!(false, "a good version stopped: {:?}", st.message);
            }
            // Stopped without automatic rollback: what serves is still v1, and it says so.
            (_, _) => {
                prop_assert!(!auto_rollback || aborted, "{:?}", st.message);
                prop_assert_eq!(st.version.as_deref(), Some("v1"));
                let p = st.progress.expect("progress");
                prop_assert!(p.failed >= 1, "{:?}", p);
            }
        }
    }
}
