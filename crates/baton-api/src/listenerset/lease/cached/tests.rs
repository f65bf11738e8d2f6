use super::*;
use crate::listenerset::lease::{self, Holder};
use crate::listenerset::liveness::HOLDER_UID_LABEL;
use crate::listenerset::{
    CONFIG_ANNOTATION, CONFIG_VERSION_ANNOTATION, LEASE_FINALIZER, LISTENERSET_LABEL, LISTENER_LABEL,
    PROTOCOL_ANNOTATION, RELEASE_REQUESTED_ANNOTATION,
};

/// A listener Lease as kube-apiserver returns it: managedFields of the controller and the agent,
/// an annotation and a label not baton's, a second ownerReference.
fn held() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": "sxt-acct-42", "namespace": "ns", "uid": "l-uid", "resourceVersion": "1234",
            "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3,
            "deletionTimestamp": "2026-01-01T00:05:00Z", "deletionGracePeriodSeconds": 0,
            "labels": {
                LISTENERSET_LABEL: "sxt", LISTENER_LABEL: "acct-42", HOLDER_UID_LABEL: "p-uid",
                "team": "payments"
            },
            "annotations": {
                PROTOCOL_ANNOTATION: "2", CONFIG_ANNOTATION: "tokens/acct.42", CONFIG_VERSION_ANNOTATION: "977",
                RELEASE_REQUESTED_ANNOTATION: "rebalance",
                "kubectl.kubernetes.io/last-applied-configuration": {"not": ["even", "a", "string"]}
            },
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid"},
                {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": "p-uid", "blockOwnerDeletion": false}
            ],
            "finalizers": [LEASE_FINALIZER, "example.com/other"],
            "managedFields": [
                {"manager": "baton-controller", "operation": "Update", "apiVersion": "coordination.k8s.io/v1",
                 "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:baton.dev/listener": {}}},
                              "f:spec": {"f:holderIdentity": {}, "f:acquireTime": {}}}},
                {"manager": "baton-agent", "operation": "Update", "apiVersion": "coordination.k8s.io/v1",
                 "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:spec": {"f:renewTime": {}}}}
            ]
        },
        "spec": {
            "holderIdentity": "web-0", "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:01.500000Z",
            "leaseTransitions": 7, "preferredHolder": "web-1", "strategy": "OldestEmulationVersion"
        }
    })
}

/// Decoded from the API server's JSON, the projection keeps what the protocol reads, reads as the
/// whole Lease does, and equals the projection of the whole Lease.
#[test]
fn decodes_what_the_controller_reads_and_drops_the_rest() {
    let mut json = held();
    let decoded: CachedLease = serde_json::from_value(json.clone()).unwrap();
    // The whole Lease has only string annotation values.
    json["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{…}".into();
    let whole: Lease = serde_json::from_value(json).unwrap();
    assert_eq!(decoded, CachedLease::from(&whole));

    let m = &decoded.metadata;
    assert_eq!(m.name.as_deref(), Some("sxt-acct-42"));
    assert_eq!(m.namespace.as_deref(), Some("ns"));
    assert_eq!(m.uid.as_deref(), Some("l-uid"));
    assert_eq!(m.resource_version.as_deref(), Some("1234"));
    assert!(m.deletion_timestamp.is_some());
    assert_eq!(
        m.finalizers.as_deref(),
        Some(&[LEASE_FINALIZER.to_string(), "example.com/other".to_string()][..])
    );
    assert_eq!(decoded.labels.len(), 3);
    assert_eq!(decoded.label("team"), None);
    // The config's Secret version is the holder's agent's alone: not kept.
    assert_eq!(decoded.annotations.len(), 3);
    assert_eq!(lease::config_version_of(&decoded), None);
    assert_eq!(lease::config_version_of(&whole), Some("977"));
    assert_eq!(
        decoded.owner,
        Some(CachedOwner {
            name: "web-0".into(),
            uid: "p-uid".into()
        })
    );

    // Every rule of the protocol reads the same of both.
    assert_eq!(lease::listener_of(&decoded), Some(("sxt", "acct-42")));
    assert_eq!(lease::listener_of(&decoded), lease::listener_of(&whole));
    assert_eq!(
        Holder::of(&decoded),
        Some(Holder {
            name: "web-0",
            uid: Some("p-uid")
        })
    );
    assert_eq!(Holder::of(&decoded), Holder::of(&whole));
    assert!(lease::held_by(&decoded, "web-0", "p-uid"));
    assert_eq!(lease::fencing_token(&decoded), 7);
    assert!(lease::acknowledged(&decoded) && lease::acknowledged(&whole));
    assert!(lease::is_terminating(&decoded) && lease::is_terminating(&whole));
    assert_eq!(lease::release_requested(&decoded), Some("rebalance"));
    assert_eq!(lease::config_of(&decoded), Some(Ok(("tokens", "acct.42"))));
    assert_eq!(lease::config_of(&decoded), lease::config_of(&whole));
    assert_eq!(lease::duration_of(&decoded, 30).as_secs(), 15);
    assert_eq!(decoded.label(HOLDER_UID_LABEL), Some("p-uid"));
    assert_eq!(decoded.annotation(PROTOCOL_ANNOTATION), Some("2"));
    assert_eq!(decoded.acquire_time(), whole.acquire_time());
    assert_eq!(decoded.renew_time(), whole.renew_time());
    assert!(decoded.deletion_requested() && whole.deletion_requested());
    assert_eq!(decoded.version(), whole.version());

    // As the watch decodes it: what kube's watcher reads, and the same Lease kept.
    let watched: WatchedLease = serde_json::from_value(held()).unwrap();
    assert_eq!(kube::Resource::meta(&watched).name.as_deref(), Some("sxt-acct-42"));
    assert_eq!(kube::Resource::meta(&watched).resource_version.as_deref(), Some("1234"));
    assert_eq!(
        <WatchedLease as kube::Resource>::api_version(&()),
        "coordination.k8s.io/v1"
    );
    assert_eq!(<WatchedLease as kube::Resource>::plural(&()), "leases");
    assert_eq!(CachedLease::from(watched), decoded);
}

/// A released Lease the controller has not adopted: no spec fields but the holder, no labels
/// but the set's, no annotations, ownerReferences or finalizers.
#[test]
fn a_lease_missing_optional_fields_decodes() {
    let decoded: CachedLease = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "sxt-a", "namespace": "ns", "labels": {LISTENERSET_LABEL: "sxt"}},
        "spec": {"holderIdentity": ""}
    }))
    .unwrap();
    assert_eq!(decoded.label(LISTENERSET_LABEL), Some("sxt"));
    assert_eq!(lease::listener_of(&decoded), None);
    assert_eq!(Holder::of(&decoded), None);
    assert_eq!(decoded.owner, None);
    assert!(decoded.annotations.is_empty() && decoded.metadata.finalizers.is_none());
    assert_eq!(lease::fencing_token(&decoded), 0);
    assert!(!lease::acknowledged(&decoded) && !lease::is_terminating(&decoded));
    assert_eq!(lease::duration_of(&decoded, 30).as_secs(), 30);

    let empty: CachedLease = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(empty, CachedLease::default());
    assert_eq!(empty, CachedLease::from(&Lease::default()));
}

#[test]
fn null_fields_decode_as_absent() {
    let decoded: CachedLease = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "sxt-a", "namespace": null, "uid": null, "resourceVersion": null,
            "deletionTimestamp": null, "labels": null, "annotations": null,
            "ownerReferences": null, "finalizers": null, "managedFields": null
        },
        "spec": {
            "holderIdentity": null, "leaseDurationSeconds": null, "acquireTime": null,
            "renewTime": null, "leaseTransitions": null, "preferredHolder": null, "strategy": null
        }
    }))
    .unwrap();
    let mut expected = CachedLease::default();
    expected.metadata.name = Some("sxt-a".into());
    assert_eq!(decoded, expected);
    let no_spec: CachedLease = serde_json::from_value(serde_json::json!({"metadata": null, "spec": null})).unwrap();
    assert_eq!(no_spec, CachedLease::default());
}

/// A watch event carries the Lease inside another object (decoded through serde's buffer when
/// its `type` comes last): the projection decodes from there too.
#[test]
fn decodes_from_a_watch_event() {
    let event = serde_json::json!({"object": held(), "type": "MODIFIED"});
    let text = serde_json::to_string(&event).unwrap();
    let decoded: kube::core::WatchEvent<CachedLease> = serde_json::from_str(&text).unwrap();
    let kube::core::WatchEvent::Modified(l) = decoded else {
        panic!("a MODIFIED event");
    };
    assert_eq!(l, serde_json::from_value::<CachedLease>(held()).unwrap());
}
