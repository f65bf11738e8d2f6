//! Unit tests of the planner, by concept, on shared fixtures: a spec and pods of `svc`
//! (below), a small world that applies plans (`world`) and invariants every plan must keep
//! (`invariants`).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, MicroTime, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;

use super::*;
use crate::api::pod::Drain;
use crate::api::rollout::{
    annotations, labels, scaled_value, BatchStatus, ConditionType, EventReason, FailedUpdate, FailureReason, Pause,
    PauseMode, Pin, PodReplacementPolicy, RolloutPhase, RolloutSpec, RolloutStatus, RolloutStrategy,
};

mod batches;
mod checks;
mod failures;
mod gate_properties;
mod history;
mod honesty;
mod hooks;
mod invariants;
mod pods;
mod properties;
mod requests;
mod revisions;
mod simulation;
mod status;
mod strategy;
mod targets;
mod validation;
mod world;

use invariants::check_invariants;
use world::{Behaviour, World};

const NAME: &str = "svc";

fn t0() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn at(secs: i64) -> Timestamp {
    add_secs(t0(), secs)
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn spec(version: &str, replicas: i32) -> RolloutSpec {
    let labels: BTreeMap<String, String> = [("app".to_string(), NAME.to_string())].into();
    RolloutSpec {
        replicas,
        selector: LabelSelector {
            match_labels: Some(labels.clone()),
            match_expressions: None,
        },
        version: version.into(),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some(format!("svc:{version}")),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        },
        strategy: RolloutStrategy {
            batches: vec![IntOrString::Int(1), pct("50%"), pct("100%")],
            pause: None,
            max_surge: IntOrString::Int(1),
            max_unavailable: IntOrString::Int(0),
            pod_replacement_policy: None,
            targets: vec![],
        },
        min_ready_seconds: 0,
        progress_deadline_seconds: 60,
        auto_rollback: true,
        paused: false,
        revision_history_limit: 10,
        pins: vec![],
        bake_seconds: 0,
        checks: vec![],
        hooks: Default::default(),
    }
}

fn hash_of(version: &str) -> String {
    let s = spec(version, 1);
    revision_hash(&s.template, version)
}

fn rev(version: &str, number: i64) -> RevisionInfo {
    let hash = hash_of(version);
    RevisionInfo {
        name: revision_name(NAME, &hash),
        revision: number,
        hash,
        version: version.into(),
        template: std::sync::Arc::new(spec(version, 1).template),
    }
}

fn ready_pod(slot: i32, version: &str, since: Timestamp) -> ObservedPod {
    let hash = hash_of(version);
    ObservedPod {
        version: version.into(),
        ready: true,
        ready_since: Some(since),
        created: Some(since),
        ..ObservedPod::new(pod_name(NAME, slot, &hash), slot, hash)
    }
}

fn input(spec: RolloutSpec, pods: Vec<ObservedPod>, revisions: Vec<RevisionInfo>) -> PlanInput {
    PlanInput {
        name: NAME.into(),
        namespace: "default".into(),
        generation: 1,
        spec,
        requests: ActionRequests::default(),
        status: None,
        pods,
        revisions,
        now: at(1000),
        drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        rejected: None,
        origin: Default::default(),
        checks: BTreeMap::new(),
        jobs: Vec::new(),
    }
}

/// A Healthy rollout of `version` on `replicas` slots.
fn healthy(version: &str, replicas: i32) -> PlanInput {
    let pods = (0..replicas).map(|s| ready_pod(s, version, at(0))).collect();
    let mut inp = input(spec(version, replicas), pods, vec![rev(version, 1)]);
    let first = plan(&inp);
    assert_eq!(
        first.status.phase,
        Some(RolloutPhase::Healthy),
        "{:?}",
        first.status.message
    );
    inp.status = Some(first.status);
    inp
}

fn creates(p: &Plan) -> Vec<(i32, String)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod { slot, version, .. } => Some((*slot, version.clone())),
            _ => None,
        })
        .collect()
}

fn deletes(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn condition(st: &RolloutStatus, type_: ConditionType) -> &Condition {
    crate::api::rollout::reasons::find(&st.conditions, type_).unwrap()
}

fn has_event(p: &Plan, reason: EventReason) -> bool {
    p.events.iter().any(|e| e.reason == reason)
}
