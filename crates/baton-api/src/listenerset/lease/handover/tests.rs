use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};

use super::*;
use crate::listenerset::{RELEASE_REQUESTED_ANNOTATION, RELEASE_TO_ANNOTATION};

fn lease(annotations: &[(&str, &str)]) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some("accounts-a".into()),
            resource_version: Some("41".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: Some(vec![
                pod_owner_reference("web-0", "uid-0"),
                OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "web".into(),
                    uid: "uid-rs".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("web-0".into()),
            lease_transitions: Some(6),
            lease_duration_seconds: Some(12),
            ..Default::default()
        }),
    }
}

fn now() -> MicroTime {
    MicroTime("2026-01-02T03:04:05Z".parse().unwrap_or_default())
}

#[test]
fn a_request_naming_a_successor_hands_over_to_it_with_the_next_token() {
    let l = lease(&[
        (RELEASE_REQUESTED_ANNOTATION, "drain"),
        (RELEASE_TO_ANNOTATION, "web-1/uid-1"),
    ]);
    assert_eq!(
        successor(&l),
        Some(Successor {
            name: "web-1",
            uid: "uid-1"
        })
    );
    let p = patch(&l, &now()).expect("a handover");
    assert_eq!(p["metadata"]["resourceVersion"], "41");
    assert_eq!(p["metadata"]["labels"][HOLDER_UID_LABEL], "uid-1");
    assert!(p["metadata"]["annotations"][RELEASE_REQUESTED_ANNOTATION].is_null());
    assert!(p["metadata"]["annotations"][RELEASE_TO_ANNOTATION].is_null());
    assert_eq!(
        p["metadata"]["annotations"][crate::listenerset::HANDED_OVER_FROM_ANNOTATION],
        "web-0"
    );
    let owners = p["metadata"]["ownerReferences"].as_array().expect("owners");
    let kinds: Vec<(&str, &str)> = owners
        .iter()
        .map(|o| (o["kind"].as_str().unwrap_or(""), o["uid"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("ReplicaSet", "uid-rs"), ("Pod", "uid-1")]);
    assert_eq!(p["spec"]["holderIdentity"], "web-1");
    assert_eq!(p["spec"]["leaseTransitions"], 7);
    assert_eq!(p["spec"]["leaseDurationSeconds"], 12);
    assert_eq!(p["spec"]["acquireTime"], p["spec"]["renewTime"]);
}

#[test]
fn the_tenure_is_the_controllers_assignment() {
    let t = tenure("web-2", 3, 15, &now());
    let spec: LeaseSpec = serde_json::from_value(t).expect("a Lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("web-2"));
    assert_eq!(spec.lease_transitions, Some(3));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert!(spec.acquire_time.is_some() && spec.acquire_time == spec.renew_time);
}

#[test]
fn no_handover_without_a_request_or_a_well_formed_successor() {
    for annotations in [
        vec![(RELEASE_TO_ANNOTATION, "web-1/uid-1")],
        vec![(RELEASE_REQUESTED_ANNOTATION, "drain")],
        vec![
            (RELEASE_REQUESTED_ANNOTATION, "drain"),
            (RELEASE_TO_ANNOTATION, "web-1"),
        ],
        vec![
            (RELEASE_REQUESTED_ANNOTATION, "drain"),
            (RELEASE_TO_ANNOTATION, "/uid-1"),
        ],
        vec![
            (RELEASE_REQUESTED_ANNOTATION, "drain"),
            (RELEASE_TO_ANNOTATION, "web-1/"),
        ],
    ] {
        let l = lease(&annotations);
        assert_eq!(successor(&l), None, "{annotations:?}");
        assert_eq!(patch(&l, &now()), None, "{annotations:?}");
    }
}

#[test]
fn the_value_reads_back() {
    let l = lease(&[
        (RELEASE_REQUESTED_ANNOTATION, "rebalance"),
        (RELEASE_TO_ANNOTATION, &value("web-9", "u-9")),
    ]);
    assert_eq!(
        successor(&l),
        Some(Successor {
            name: "web-9",
            uid: "u-9"
        })
    );
}

#[test]
fn a_lease_being_deleted_is_let_go_bare() {
    let mut l = lease(&[
        (RELEASE_REQUESTED_ANNOTATION, "drain"),
        (RELEASE_TO_ANNOTATION, "web-1/uid-1"),
    ]);
    l.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-02T03:04:05Z".parse().unwrap_or_default(),
    ));
    assert_eq!(patch(&l, &now()), None);
}
