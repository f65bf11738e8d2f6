//! Unit tests of the planner, by concept, on shared fixtures: a spec and pods of `svc`
//! (below), a small world that applies plans (`world`) and invariants every plan must keep
//! (`invariants`).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;

use super::*;
use crate::api::pod::Drain;
use crate::api::rollout::{
    annotations, labels, scaled_value, BatchStatus, ConditionType, EventReason, FailedUpdate, FailureReason, Pause,
    PauseMode, Pin, PodReplacementPolicy, RolloutPhase, RolloutSpec, RolloutStatus, RolloutStrategy,
};

mod bake;
mod batches;
mod checks;
mod conditions;
mod failures;
mod gate_properties;
mod honesty;
mod hooks;
mod invariants;
mod pods;
mod properties;
mod records;
mod requests;
mod revisions;
mod simulation;
mod strategy;
mod targets;
mod validation;
mod workload;
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

/// A pause between batches: for `duration`, or (None) until promoted.
fn pause(duration: Option<&str>) -> Option<Pause> {
    Some(Pause {
        duration: duration.map(Into::into),
        manual: None,
    })
}

/// The API's sample spec (3 batches: 1, 50%, 100%; surge 1, unavailable 0) for `version` on
/// `replicas` instances, with a 60 s progress deadline.
fn spec(version: &str, replicas: i32) -> RolloutSpec {
    let mut s = crate::api::rollout::fixtures::sample_spec();
    s.replicas = replicas;
    s.version = version.into();
    if let Some(c) = s.template.spec.as_mut().and_then(|p| p.containers.first_mut()) {
        c.image = Some(format!("svc:{version}"));
    }
    s.progress_deadline_seconds = 60;
    s
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
        sink_problems: None,
        jobs: Vec::new(),
        workload: None,
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

/// [`healthy`] on v1 with `replicas` slots, its spec changed to v2 (revision 2 recorded).
fn updating(replicas: i32) -> PlanInput {
    let mut inp = healthy("v1", replicas);
    inp.spec = spec("v2", replicas);
    inp.revisions.push(rev("v2", 2));
    inp
}

/// A pod of `version` in `slot` created at `since` that is not Ready yet.
fn starting_pod(slot: i32, version: &str, since: Timestamp) -> ObservedPod {
    ObservedPod {
        ready: false,
        ..ready_pod(slot, version, since)
    }
}

/// The pod a `CreatePod` action makes, as a cache first shows it at `now` (None for another
/// action).
fn created_pod(action: &Action, now: Timestamp) -> Option<ObservedPod> {
    let Action::CreatePod {
        name,
        slot,
        hash,
        version,
        ..
    } = action
    else {
        return None;
    };
    Some(ObservedPod {
        version: version.clone(),
        created: Some(now),
        ..ObservedPod::new(name.clone(), *slot, hash.clone())
    })
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
