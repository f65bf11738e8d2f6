//! `spec.workloadRef`: the Deployment's template rolled out, a missing or unreadable one an
//! invalid spec, and the scale-down decisions.
use std::sync::Arc;

use super::*;
use crate::api::rollout::workload_ref::{DEPLOYMENT_API_VERSION, DEPLOYMENT_KIND};
use crate::api::rollout::{ScaleDown, WorkloadRef, WorkloadRefStatus};

/// Deployment `web` with `replicas`, whose template is the fixtures' template of `version`.
fn deployment(version: &str, replicas: i32) -> ObservedWorkload {
    ObservedWorkload {
        name: "web".into(),
        generation: 1,
        replicas,
        available_replicas: replicas,
        template: Arc::new(spec(version, 1).template),
    }
}

/// `inp` with its template taken from `read` (Deployment `web`) instead of `spec.template`,
/// and `original` replicas of it recorded in the stored status.
fn referencing(mut inp: PlanInput, mode: ScaleDown, read: WorkloadRead, original: Option<i32>) -> PlanInput {
    inp.spec.template = PodTemplateSpec::default();
    inp.spec.workload_ref = Some(WorkloadRef {
        api_version: DEPLOYMENT_API_VERSION.into(),
        kind: DEPLOYMENT_KIND.into(),
        name: "web".into(),
        scale_down: mode,
    });
    if let Some(original) = original {
        let seen = match &read {
            WorkloadRead::Found(d) => d.replicas,
            _ => original,
        };
        inp.status.get_or_insert_with(Default::default).workload_ref = Some(WorkloadRefStatus {
            name: "web".into(),
            replicas: seen,
            original_replicas: Some(original),
            ..Default::default()
        });
    }
    inp.workload = Some(read);
    inp
}

/// A first rollout of v1 on 3 instances, one of them available, from Deployment `web`.
fn one_available(mode: ScaleDown, observed: i32, original: Option<i32>) -> PlanInput {
    let inp = input(spec("v1", 3), vec![ready_pod(0, "v1", at(0))], vec![rev("v1", 1)]);
    referencing(inp, mode, WorkloadRead::Found(deployment("v1", observed)), original)
}

fn scales(p: &Plan) -> Vec<(String, i32)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::ScaleWorkload { name, replicas } => Some((name.clone(), *replicas)),
            _ => None,
        })
        .collect()
}

/// `status.workloadRef.originalReplicas` as planned.
fn recorded(p: &Plan) -> Option<i32> {
    p.status.workload_ref.as_ref().and_then(|w| w.original_replicas)
}

fn invalid_message(p: &Plan) -> String {
    let c = condition(&p.status, ConditionType::InvalidSpec);
    assert_eq!(c.status, "True", "{c:?}");
    assert!(p.actions.is_empty(), "an invalid spec moves nothing: {:?}", p.actions);
    assert!(
        p.events
            .iter()
            .any(|e| e.reason == EventReason::InvalidSpec && e.type_ == EventType::Warning && e.message == c.message),
        "{:?}",
        p.events
    );
    assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
    c.message.clone()
}

#[test]
fn the_scale_down_target_follows_the_mode() {
    use ScaleDown::*;
    // (mode, observed, original, available, healthy) -> target
    let cases = [
        ((Never, 3, 3, 3, true), None),
        ((OnSuccess, 3, 3, 2, false), None),
        ((OnSuccess, 3, 3, 3, true), Some(0)),
        ((Progressively, 3, 3, 0, false), Some(3)),
        ((Progressively, 3, 3, 1, false), Some(2)),
        ((Progressively, 2, 3, 3, false), Some(0)),
        ((Progressively, 1, 3, 5, false), Some(0)),
        ((Progressively, 2, 3, 3, true), Some(0)),
        // Healthy on fewer instances than the Deployment had: it keeps the rest.
        ((Progressively, 3, 5, 2, true), Some(3)),
        // Instances that stop serving during the migration give the Deployment its pods back.
        ((Progressively, 1, 3, 0, false), Some(3)),
        // At 0 it stays: the migration is over.
        ((Progressively, 0, 3, 0, false), None),
        ((OnSuccess, 0, 3, 0, false), None),
    ];
    for ((mode, observed, original, available, healthy), want) in cases {
        assert_eq!(
            scale_down_target(mode, observed, original, available, healthy),
            want,
            "{mode:?} observed {observed} original {original} available {available} healthy {healthy}"
        );
    }
}

#[test]
fn progressively_the_deployment_never_keeps_fewer_than_original_minus_available() {
    for original in 0..6 {
        for available in 0..8 {
            let target = scale_down_target(ScaleDown::Progressively, original.max(1), original, available, false);
            let t = target.unwrap_or(original.max(1));
            assert!(t >= (original - available).max(0), "{original} {available}: {t}");
            assert!(
                t <= original.max(0),
                "never above the original: {original} {available}: {t}"
            );
        }
    }
}

#[test]
fn the_pods_are_made_from_the_deployments_template_with_the_rollouts_labels() {
    let inp = referencing(
        input(spec("v1", 2), vec![], vec![]),
        ScaleDown::Never,
        WorkloadRead::Found(deployment("v1", 2)),
        None,
    );
    let p = plan(&inp);
    let template = deployment("v1", 2).template;
    let revision = p.actions.iter().find_map(|a| match a {
        Action::CreateRevision { template, hash, .. } => Some((template.clone(), hash.clone())),
        _ => None,
    });
    let (rev_template, hash) = revision.expect("a first revision");
    assert_eq!(rev_template, template);
    // The same template and version as `spec.template` would be: the same revision.
    assert_eq!(hash, hash_of("v1"));
    let created: Vec<&BTreeMap<String, String>> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod {
                labels, template: t, ..
            } => {
                assert_eq!(t, &template);
                Some(labels)
            }
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 2);
    for l in created {
        assert_eq!(l.get("app").map(String::as_str), Some("svc"), "{l:?}");
        assert_eq!(l.get(labels::ROLLOUT).map(String::as_str), Some(NAME), "{l:?}");
    }
    // `never`: nothing recorded, nothing scaled; the status says what was seen.
    assert!(scales(&p).is_empty(), "{:?}", p.actions);
    let w = p.status.workload_ref.expect("status.workloadRef");
    assert_eq!((w.name.as_str(), w.replicas, w.original_replicas), ("web", 2, None));
}

#[test]
fn a_change_of_the_deployments_template_is_a_new_revision() {
    let mut inp = healthy("v1", 3);
    inp = referencing(inp, ScaleDown::Never, WorkloadRead::Found(deployment("v1", 3)), None);
    let steady = plan(&inp);
    assert_eq!(steady.status.phase, Some(RolloutPhase::Healthy));
    assert!(steady.actions.is_empty(), "{:?}", steady.actions);
    inp.status = Some(steady.status);
    // The Deployment's image changes; the Rollout's spec (and version) do not.
    let mut changed = deployment("v2", 3);
    changed.generation = 2;
    inp.workload = Some(WorkloadRead::Found(changed.clone()));
    let p = plan(&inp);
    let created = p.actions.iter().find_map(|a| match a {
        Action::CreateRevision { template, revision, .. } => Some((template.clone(), *revision)),
        _ => None,
    });
    assert_eq!(created, Some((changed.template.clone(), 2)));
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert!(has_event(&p, EventReason::BatchStarted), "{:?}", p.events);
    assert_eq!(p.status.workload_ref.unwrap().observed_generation, 2);
}

#[test]
fn a_missing_deployment_is_an_invalid_spec_naming_it() {
    let mut inp = referencing(
        healthy("v1", 3),
        ScaleDown::Progressively,
        WorkloadRead::NotFound,
        Some(3),
    );
    let message = invalid_message(&plan(&inp));
    assert!(
        message.contains("spec.workloadRef names Deployment web, which is not in namespace default"),
        "{message}"
    );
    inp.workload = Some(WorkloadRead::Unreadable("forbidden".into()));
    let message = invalid_message(&plan(&inp));
    assert!(
        message.contains("spec.workloadRef: Deployment web cannot be read: forbidden"),
        "{message}"
    );
}

#[test]
fn a_selector_that_misses_the_deployments_labels_is_an_invalid_spec() {
    let mut d = deployment("v1", 3);
    Arc::make_mut(&mut d.template).metadata.as_mut().unwrap().labels =
        Some([("app".to_string(), "other".to_string())].into());
    let inp = referencing(healthy("v1", 3), ScaleDown::Never, WorkloadRead::Found(d), None);
    let message = invalid_message(&plan(&inp));
    assert!(
        message.contains("spec.selector does not match the pod template labels of Deployment web"),
        "{message}"
    );
}

#[test]
fn the_original_replicas_are_recorded_before_any_scale_down() {
    let p = plan(&one_available(ScaleDown::Progressively, 3, None));
    assert_eq!(recorded(&p), Some(3));
    assert!(
        scales(&p).is_empty(),
        "nothing is scaled before the record is read back"
    );
    let p = plan(&one_available(ScaleDown::OnSuccess, 3, None));
    assert_eq!(recorded(&p), Some(3));
    let p = plan(&one_available(ScaleDown::Never, 3, None));
    assert_eq!(recorded(&p), None);
    // What was recorded for another Deployment says nothing of this one: recorded anew.
    let mut inp = one_available(ScaleDown::Progressively, 2, Some(5));
    inp.status.as_mut().unwrap().workload_ref.as_mut().unwrap().name = "old".into();
    let p = plan(&inp);
    assert_eq!(recorded(&p), Some(2));
    assert!(scales(&p).is_empty());
    // The record outlives an invalid spec: the next valid plan scales from it.
    let mut inp = one_available(ScaleDown::Progressively, 3, Some(3));
    inp.workload = Some(WorkloadRead::NotFound);
    assert_eq!(recorded(&plan(&inp)), Some(3));
}

#[test]
fn progressively_the_deployment_gives_up_a_pod_per_available_instance() {
    let mut inp = one_available(ScaleDown::Progressively, 3, Some(3));
    let p = plan(&inp);
    assert_eq!(p.status.available_replicas, 1);
    assert_eq!(scales(&p), [("web".to_string(), 2)]);
    let ev = p
        .events
        .iter()
        .find(|e| e.reason == EventReason::WorkloadScaled)
        .expect("a WorkloadScaled event");
    assert_eq!(
        ev.message,
        "scaled Deployment web from 3 to 2 replicas: 1 of the Rollout's instances available, 3 replicas before the migration"
    );
    let w = p.status.workload_ref.clone().unwrap();
    assert_eq!((w.replicas, w.original_replicas), (2, Some(3)));
    // A cache that does not show the scale yet: the same write again, not another Event.
    inp.status = Some(p.status);
    let again = plan(&inp);
    assert_eq!(scales(&again), [("web".to_string(), 2)]);
    assert!(!has_event(&again, EventReason::WorkloadScaled), "{:?}", again.events);
    // The cache shows it: nothing to do.
    inp.workload = Some(WorkloadRead::Found(deployment("v1", 2)));
    assert!(scales(&plan(&inp)).is_empty());
}

#[test]
fn onsuccess_the_deployment_goes_to_zero_once_the_rollout_is_healthy() {
    assert!(scales(&plan(&one_available(ScaleDown::OnSuccess, 3, Some(3)))).is_empty());
    let inp = referencing(
        healthy("v1", 2),
        ScaleDown::OnSuccess,
        WorkloadRead::Found(deployment("v1", 3)),
        Some(3),
    );
    let p = plan(&inp);
    assert_eq!(scales(&p), [("web".to_string(), 0)]);
    assert!(
        p.events
            .iter()
            .any(|e| e.message == "scaled Deployment web from 3 to 0 replicas: the Rollout is Healthy"),
        "{:?}",
        p.events
    );
}

#[test]
fn progressively_a_smaller_rollout_leaves_the_deployment_the_rest() {
    // Healthy on 2 instances: the Deployment keeps 1 of its 3 until the Rollout is scaled up.
    let inp = referencing(
        healthy("v1", 2),
        ScaleDown::Progressively,
        WorkloadRead::Found(deployment("v1", 3)),
        Some(3),
    );
    assert_eq!(scales(&plan(&inp)), [("web".to_string(), 1)]);
    let inp = referencing(
        healthy("v1", 3),
        ScaleDown::Progressively,
        WorkloadRead::Found(deployment("v1", 1)),
        Some(3),
    );
    assert_eq!(scales(&plan(&inp)), [("web".to_string(), 0)]);
}

#[test]
fn a_deployment_at_zero_stays_there() {
    for mode in [ScaleDown::Progressively, ScaleDown::OnSuccess] {
        // An instance stops serving after the migration: the Deployment is not scaled up.
        let inp = one_available(mode, 0, Some(3));
        assert!(scales(&plan(&inp)).is_empty(), "{mode:?}");
    }
}

#[test]
fn scale_down_never_leaves_the_deployment_alone() {
    let inp = referencing(
        healthy("v1", 3),
        ScaleDown::Never,
        WorkloadRead::Found(deployment("v1", 3)),
        Some(3),
    );
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.status.workload_ref.unwrap().replicas, 3);
}

#[test]
fn a_refused_pod_names_the_deployments_template() {
    let mut inp = one_available(ScaleDown::Never, 3, None);
    inp.rejected = Some("Pod \"svc-1-x\" is invalid: spec.containers[0].image: Required value".into());
    let message = invalid_message(&plan(&inp));
    assert!(
        message.contains("fix the pod template of Deployment web or spec.version"),
        "{message}"
    );
}

fn deployment_replicas(w: &World) -> i32 {
    match w.input.workload.as_ref() {
        Some(WorkloadRead::Found(d)) => d.replicas,
        other => panic!("no Deployment: {other:?}"),
    }
}

#[test]
fn a_migration_hands_the_pods_over_and_follows_the_deployments_template() {
    let inp = referencing(
        input(spec("v1", 3), vec![], vec![]),
        ScaleDown::Progressively,
        WorkloadRead::Found(deployment("v1", 3)),
        None,
    );
    let mut w = World::new(inp);
    let mut healthy_at_zero = false;
    for _ in 0..60 {
        let p = w.step();
        let replicas = deployment_replicas(&w);
        assert!(
            replicas >= 3 - p.status.available_replicas,
            "Deployment at {replicas} with {} instances available",
            p.status.available_replicas
        );
        if p.status.phase == Some(RolloutPhase::Healthy) && replicas == 0 && p.actions.is_empty() {
            healthy_at_zero = true;
            break;
        }
    }
    assert!(healthy_at_zero, "{:?}", w.input.status.as_ref().map(|s| &s.message));
    // The Deployment's template changes: a new revision rolls out; the Deployment stays at 0.
    if let Some(WorkloadRead::Found(d)) = w.input.workload.as_mut() {
        d.template = deployment("v2", 0).template;
        d.generation = 2;
    }
    let new_hash = revision_hash(&spec("v2", 1).template, "v1");
    w.run_until(120, |s| {
        s.phase == Some(RolloutPhase::Healthy) && s.update_revision == Some(revision_name(NAME, &new_hash))
    });
    assert!(
        w.input.pods.iter().all(|p| p.revision_hash == new_hash),
        "{:?}",
        w.input.pods
    );
    assert_eq!(deployment_replicas(&w), 0);
    let scaled: Vec<&str> = w
        .events
        .iter()
        .filter(|e| e.reason == EventReason::WorkloadScaled)
        .map(|e| e.message.as_str())
        .collect();
    assert!(
        !scaled.is_empty() && scaled.iter().all(|m| m.starts_with("scaled Deployment web from ")),
        "{scaled:?}"
    );
}
