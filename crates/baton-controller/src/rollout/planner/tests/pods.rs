//! Pod actions: surge and unavailability budgets, repairs, scaling and draining.

use super::*;

#[test]
fn old_pod_goes_only_once_the_new_one_is_available() {
    let mut inp = updating(4);
    inp.spec.min_ready_seconds = 10;
    inp.spec.progress_deadline_seconds = 100;
    let mut new = starting_pod(0, "v2", at(995));
    inp.pods.push(new.clone());
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // Ready, but not for minReadySeconds yet.
    new.ready = true;
    inp.pods.pop();
    inp.pods.push(new.clone());
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // Ready "at 995 s" in whole seconds may mean 995.9 s: minReadySeconds counts from 996 s.
    assert_eq!(p.requeue_after, Some(Duration::from_secs(6)));
    inp.now = at(1005);
    assert!(plan(&inp).actions.is_empty(), "minReadySeconds cut short");
    inp.now = at(1006);
    let p = plan(&inp);
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
}

#[test]
fn max_unavailable_replaces_in_place_without_surge() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.strategy.batches = vec![];
    inp.spec.strategy.max_surge = IntOrString::Int(0);
    inp.spec.strategy.max_unavailable = IntOrString::Int(1);
    // TerminationStarted (the default without listeners): the replacement starts with the
    // deletion, in the same plan.
    let p = plan(&inp);
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    let mut w = World::new(inp.clone());
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
    // TerminationComplete: only once the old pod is gone.
    inp.spec.strategy.pod_replacement_policy = Some(PodReplacementPolicy::TerminationComplete);
    let p = plan(&inp);
    assert!(creates(&p).is_empty());
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

/// A v1 Rollout of 4 updating to v2 with surge 1: slot 0 has a v2 pod, Ready, and its v1 pod.
fn surge_in_progress(policy: Option<PodReplacementPolicy>) -> PlanInput {
    let mut inp = updating(4);
    inp.spec.strategy.batches = vec![];
    inp.spec.strategy.pod_replacement_policy = policy;
    inp.pods.push(ready_pod(0, "v2", at(990)));
    inp
}

#[test]
fn termination_started_replaces_in_one_plan_and_does_not_count_terminating_pods() {
    let started = Some(PodReplacementPolicy::TerminationStarted);
    let inp = surge_in_progress(started);
    // The old pod of slot 0 goes, and its room goes to slot 1 at once.
    let p = plan(&inp);
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    assert_eq!(creates(&p), vec![(1, "v2".into())]);
    // With the old pod still terminating, room is there for the next one too.
    let mut inp = surge_in_progress(started);
    inp.pods
        .iter_mut()
        .find(|p| p.slot == 0 && p.version == "v1")
        .unwrap()
        .terminating = true;
    assert_eq!(creates(&plan(&inp)), vec![(1, "v2".into())]);
    let mut w = World::new(surge_in_progress(started));
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
}

#[test]
fn termination_complete_waits_for_the_old_pod_to_be_gone() {
    let complete = Some(PodReplacementPolicy::TerminationComplete);
    let p = plan(&surge_in_progress(complete));
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    assert!(creates(&p).is_empty(), "{:?}", p.actions);
    let mut inp = surge_in_progress(complete);
    inp.pods
        .iter_mut()
        .find(|p| p.slot == 0 && p.version == "v1")
        .unwrap()
        .terminating = true;
    assert!(creates(&plan(&inp)).is_empty(), "a terminating pod takes the surge");
    inp.pods.retain(|p| !p.terminating);
    assert_eq!(creates(&plan(&inp)), vec![(1, "v2".into())]);
    // Without a policy set, pods holding listeners make it the default.
    let mut inp = surge_in_progress(None);
    for pod in &mut inp.pods {
        pod.holds_listeners = true;
        pod.drain = Some(Drain::Since(at(0)));
    }
    inp.pods
        .iter_mut()
        .find(|p| p.slot == 0 && p.version == "v1")
        .unwrap()
        .terminating = true;
    assert!(creates(&plan(&inp)).is_empty(), "listeners held: TerminationComplete");
    let mut w = World::new(surge_in_progress(complete));
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
}

#[test]
fn missing_and_failed_pods_are_recreated() {
    let mut inp = healthy("v1", 3);
    inp.pods.remove(1);
    inp.pods[0].failed = true;
    inp.pods[0].ready = false;
    let p = plan(&inp);
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    assert_eq!(creates(&p), vec![(1, "v1".into())]);
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    let mut w = World::new(inp);
    w.run_until(20, |s| s.phase == Some(RolloutPhase::Healthy));
}

#[test]
fn scale_up_adds_slots_and_scale_down_removes_highest_first() {
    let mut inp = healthy("v1", 3);
    inp.spec.replicas = 5;
    let p = plan(&inp);
    assert_eq!(creates(&p), vec![(3, "v1".into()), (4, "v1".into())]);
    inp.spec.replicas = 1;
    let p = plan(&inp);
    assert_eq!(
        deletes(&p),
        vec![pod_name(NAME, 2, &hash_of("v1")), pod_name(NAME, 1, &hash_of("v1"))]
    );
    assert!(creates(&p).is_empty());
}

/// v1 on 2 instances whose pods hold listeners, v2 asked: the first batch started, its new pod
/// Ready, the old pod of instance 0 still there.
fn v2_first_batch_over_listener_holders() -> PlanInput {
    let mut inp = updating(2);
    for pod in &mut inp.pods {
        pod.holds_listeners = true;
    }
    inp.pods.push(ready_pod(0, "v2", at(0)));
    inp.status.as_mut().unwrap().update_revision = Some(rev("v2", 2).name);
    inp.status.as_mut().unwrap().batch = Some(BatchStatus {
        current: 1,
        total: 2,
        started_at: Some(MicroTime(at(990))),
        pause_started_at: None,
        bake_started_at: None,
    });
    inp
}

#[test]
fn pods_holding_listeners_are_drained_before_deletion() {
    let mut inp = v2_first_batch_over_listener_holders();
    let old = pod_name(NAME, 0, &hash_of("v1"));
    let p = plan(&inp);
    assert_eq!(p.actions, vec![Action::DrainPod { name: old.clone() }]);
    inp.pods[0].drain = Some(Drain::Since(inp.now));
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert_eq!(p.requeue_after, Some(DEFAULT_DRAIN_TIMEOUT));
    // Listeners moved: delete.
    inp.pods[0].holds_listeners = false;
    assert_eq!(plan(&inp).actions, vec![Action::DeletePod { name: old.clone() }]);
    // Or the drain timed out.
    inp.pods[0].holds_listeners = true;
    inp.now = add_duration(inp.now, DEFAULT_DRAIN_TIMEOUT);
    assert_eq!(plan(&inp).actions, vec![Action::DeletePod { name: old }]);
}

#[test]
fn a_drain_set_by_hand_takes_the_pod_out_of_service_and_stays() {
    // `kubectl annotate pod svc-0-… baton.dev/drain=true`: the ListenerSet side moves the pod's
    // listeners away, so the planner must not count it as serving either, and the drain is the
    // person's to withdraw.
    let mut inp = healthy("v1", 2);
    inp.pods[0].holds_listeners = true;
    inp.pods[0].drain = Some(Drain::ByHand);
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.status.available_replicas, 1);
    assert_eq!(p.status.ready_replicas, 2);
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(p.status.message.as_deref(), Some("1 of 2 instances available on v1"));
    // The drain this controller asked (a time) is withdrawn when the pod is wanted.
    inp.pods[0].drain = Some(Drain::Since(inp.now));
    assert_eq!(
        plan(&inp).actions,
        vec![Action::UndrainPod {
            name: inp.pods[0].name.clone()
        }]
    );
}

#[test]
fn a_pod_drained_by_hand_is_drained_with_a_time_before_it_is_replaced() {
    let mut inp = v2_first_batch_over_listener_holders();
    inp.pods[0].drain = Some(Drain::ByHand);
    let old = pod_name(NAME, 0, &hash_of("v1"));
    // No time to count the bounded wait from: the drain is asked again, with one.
    let p = plan(&inp);
    assert_eq!(p.actions, vec![Action::DrainPod { name: old.clone() }]);
    assert_eq!(p.requeue_after, Some(DEFAULT_DRAIN_TIMEOUT));
    inp.pods[0].drain = Some(Drain::Since(inp.now));
    assert!(plan(&inp).actions.is_empty());
}
