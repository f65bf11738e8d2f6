//! Tests of the pod and lease views built from Kubernetes objects.
use super::*;
use crate::api::listenerset::lease::CachedLease;
use k8s_openapi::api::coordination::v1::Lease;

fn k8s_pod(ready: bool, annotations: &[(&str, &str)], terminating: bool) -> CachedPod {
    CachedPod::from(Pod {
        metadata: ObjectMeta {
            name: Some("p1".into()),
            uid: Some("u1".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            deletion_timestamp: terminating.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        },
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[test]
fn pod_views() {
    let view = pod_view(&k8s_pod(true, &[], false), true);
    assert_eq!(
        view,
        Some(PodView {
            weight: 1,
            name: "p1".into(),
            uid: "u1".into(),
            eligible: true,
            rank: 0,
        })
    );
    assert_eq!(
        pod_view(&k8s_pod(true, &[], false), false).map(|p| p.eligible),
        Some(false)
    );
    assert!(!pod_is_eligible(&k8s_pod(false, &[], false)));
    assert!(!pod_is_eligible(&k8s_pod(true, &[], true)));
    assert!(!pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "true")], false)));
    assert!(!pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "")], false)));
    assert!(pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "false")], false)));
    assert_eq!(pod_view(&CachedPod::default(), true), None);
}

#[test]
fn lease_views() {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("sxt-a".into()),
            resource_version: Some("42".into()),
            labels: Some(
                [
                    (LISTENERSET_LABEL.to_string(), "sxt".to_string()),
                    (LISTENER_LABEL.to_string(), "a".to_string()),
                ]
                .into(),
            ),
            annotations: Some([(RELEASE_REQUESTED_ANNOTATION.to_string(), "suspended".to_string())].into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: "p1".into(),
                uid: "u1".into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("p1".into()),
            lease_transitions: Some(5),
            ..Default::default()
        }),
    };
    assert_eq!(
        lease_view(&lease, "sxt", true),
        Some(LeaseView {
            held_for: None,
            successor: None,
            rebalancing: false,
            listener: "a".into(),
            holder: Some("p1".into()),
            holder_uid: Some("u1".into()),
            expired: true,
            transitions: 5,
            resource_version: "42".into(),
            release_requested: true,
            renewed: false,
        })
    );
    assert_eq!(lease_view(&lease, "other", false), None);
    // The cache's projection reads the same.
    let cached = CachedLease::from(&lease);
    assert_eq!(lease_view(&cached, "sxt", true), lease_view(&lease, "sxt", true));
    assert_eq!(lease_view(&cached, "other", false), None);
    let mut empty = lease.clone();
    empty.spec = Some(LeaseSpec {
        holder_identity: Some(String::new()),
        ..Default::default()
    });
    assert_eq!(lease_view(&empty, "sxt", false).and_then(|v| v.holder), None);
}
