//! Pins and invalid specs.

use super::*;

#[test]
fn pins_hold_instances_outside_the_batches() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.strategy.batches = vec![IntOrString::Int(1)];
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-2".into()],
        version: "v1".into(),
    }];
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 1), ("v2".to_string(), 2)].into());
    assert!(st.instances[2].pinned);
    assert_eq!(st.instances[2].version.as_deref(), Some("v1"));
    assert_eq!(st.progress.as_ref().unwrap().total, 2);
    assert_eq!(st.batch.as_ref().unwrap().total, 2);
    // Pin a healthy v2 instance back to v1 (single-instance rollback).
    w.input.spec.pins[0].instances.push("svc-0".into());
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v1".to_string(), 2), ("v2".to_string(), 1)].into());
    // Unpin: back to the spec version.
    w.input.spec.pins.clear();
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn unknown_pin_version_or_instance_moves_nothing() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-1".into()],
        version: "v0.9".into(),
    }];
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let c = condition(&p.status, ConditionType::InvalidSpec);
    assert_eq!(c.status, "True");
    assert!(
        c.message.contains("v0.9") && c.message.contains("known: v1"),
        "{}",
        c.message
    );
    assert!(p
        .events
        .iter()
        .any(|e| e.reason == EventReason::InvalidSpec && e.type_ == EventType::Warning));
    assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
    // The gate: stalled on the invalid spec, for this generation.
    for (type_, status) in [
        (ConditionType::Ready, "False"),
        (ConditionType::Reconciling, "False"),
        (ConditionType::Stalled, "True"),
    ] {
        let c = condition(&p.status, type_);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            (status, "InvalidSpec"),
            "{type_}"
        );
        assert_eq!(c.observed_generation, Some(inp.generation));
    }
    // Stable across reconciles: no new event for the same problem.
    let mut again = inp.clone();
    again.status = Some(p.status.clone());
    let p2 = plan(&again);
    assert!(p2.events.is_empty());
    assert_eq!(p2.status, p.status);
    // Unknown instance.
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-7".into()],
        version: "v1".into(),
    }];
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert!(condition(&p.status, ConditionType::InvalidSpec)
        .message
        .contains("\"svc-7\""));
}

#[test]
fn invalid_spec_moves_nothing_and_says_what_to_fix() {
    let mut inp = healthy("v1", 3);
    inp.spec.strategy.max_surge = IntOrString::Int(0);
    inp.spec.strategy.max_unavailable = IntOrString::Int(0);
    inp.spec.version = "v2".into();
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert!(condition(&p.status, ConditionType::InvalidSpec)
        .message
        .contains("set maxSurge to 1"));
    // Nonces are not consumed while invalid.
    inp.requests.abort = Some("a".into());
    assert_eq!(plan(&inp).status.actions, inp.status.as_ref().unwrap().actions);
}

/// Replicas beyond the product bound: InvalidSpec at once, in time and memory independent of
/// the number (no slot is materialised).
#[test]
fn replicas_beyond_the_bound_are_an_invalid_spec_decided_without_materialising_slots() {
    for replicas in [crate::api::rollout::MAX_REPLICAS + 1, 1_000_000_000, i32::MAX] {
        let mut inp = healthy("v1", 3);
        inp.spec = spec("v2", replicas);
        let started = std::time::Instant::now();
        let p = plan(&inp);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{replicas}: {:?}",
            started.elapsed()
        );
        assert!(p.actions.is_empty(), "{replicas}: {:?}", p.actions);
        let c = condition(&p.status, ConditionType::InvalidSpec);
        assert_eq!(c.status, "True");
        assert!(c.message.contains("at most 10000 instances"), "{}", c.message);
        assert!(p.status.instances.len() <= 3, "{}", p.status.instances.len());
    }
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v1", crate::api::rollout::MAX_REPLICAS);
    let p = plan(&inp);
    assert_eq!(condition(&p.status, ConditionType::InvalidSpec).status, "False");
}

/// The API server refused an object made from the spec: InvalidSpec with its message, a
/// Warning event once, nothing moves.
#[test]
fn a_refusal_by_the_api_server_is_an_invalid_spec_with_its_message() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.rejected = Some("Pod \"svc-0-abc\" is invalid: spec.containers: Required value".into());
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let c = condition(&p.status, ConditionType::InvalidSpec);
    assert_eq!(c.status, "True");
    assert!(c.message.contains("spec.containers: Required value"), "{}", c.message);
    assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
    let warnings: Vec<_> = p
        .events
        .iter()
        .filter(|e| e.reason == EventReason::InvalidSpec)
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", p.events);
    // Planned again from the status it wrote: no second event.
    inp.status = Some(p.status.clone());
    let again = plan(&inp);
    assert!(
        again.events.iter().all(|e| e.reason != EventReason::InvalidSpec),
        "{:?}",
        again.events
    );
}

#[test]
fn an_undecodable_rollout_is_reported_as_an_invalid_spec_keeping_what_it_observed() {
    let prior = plan(&healthy("v1", 3)).status;
    let p = plan_undecodable(
        4,
        Some(prior.clone()),
        at(2000),
        "invalid value: integer `2147483648`, expected i32",
    );
    assert!(p.actions.is_empty());
    let c = condition(&p.status, ConditionType::InvalidSpec);
    assert_eq!((c.status.as_str(), c.observed_generation), ("True", Some(4)));
    assert!(c.message.contains("expected i32"), "{}", c.message);
    assert_eq!(condition(&p.status, ConditionType::Ready).status, "False");
    assert_eq!(p.status.instances, prior.instances);
    assert_eq!(p.status.selector, prior.selector);
    assert!(p.events.iter().any(|e| e.reason == EventReason::InvalidSpec));
    // Without a readable status.
    let p = plan_undecodable(1, None, at(2000), "e");
    assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
}

/// A spec with thousands of problems, or a huge bad value, still gets a report of bounded size
/// (a condition message is at most 32,768 characters; the report must be writable).
#[test]
fn the_invalid_spec_message_is_bounded_whatever_the_spec_holds() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v1", 3);
    inp.spec.pins = vec![Pin {
        instances: std::iter::once("x".repeat(1 << 20))
            .chain((0..10_000).map(|i| format!("other-{i}")))
            .collect(),
        version: "v1".into(),
    }];
    let p = plan(&inp);
    let c = condition(&p.status, ConditionType::InvalidSpec);
    assert_eq!(c.status, "True");
    assert!(c.message.len() < 5000, "{}", c.message.len());
    assert!(
        c.message.ends_with("and 9991 more problems"),
        "{}",
        &c.message[c.message.len() - 60..]
    );
    assert!(p.status.message.as_ref().is_some_and(|m| m.len() < 5100));
}
