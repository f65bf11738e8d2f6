//! A sample Rollout spec for tests, here and in the crates above (hidden from the docs): 3
//! replicas of `svc:v1` labelled `app=svc`, batches 1, 50 %, 100 %, the default strategy
//! otherwise, a 300 s progress deadline, automatic rollback.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{RolloutSpec, RolloutStrategy};

pub fn sample_spec() -> RolloutSpec {
    let labels: BTreeMap<String, String> = [("app".to_string(), "svc".to_string())].into();
    RolloutSpec {
        replicas: 3,
        selector: LabelSelector {
            match_labels: Some(labels.clone()),
            match_expressions: None,
        },
        version: "v1".into(),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("svc:v1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        },
        strategy: RolloutStrategy {
            batches: vec![
                IntOrString::Int(1),
                IntOrString::String("50%".into()),
                IntOrString::String("100%".into()),
            ],
            ..Default::default()
        },
        min_ready_seconds: 0,
        progress_deadline_seconds: 300,
        auto_rollback: true,
        paused: false,
        revision_history_limit: 10,
        pins: vec![],
        bake_seconds: 0,
        checks: vec![],
        notifications: vec![],
        hooks: Default::default(),
        workload_ref: None,
    }
}
