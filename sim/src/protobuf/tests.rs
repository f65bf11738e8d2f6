//! Unit tests of the parent module: bodies are built with k8s-pb's messages the way client-go
//! lays them out.
use std::collections::BTreeMap;

use k8s_pb::api::core::v1::{ConfigMap, Secret};
use k8s_pb::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, FieldsV1, ManagedFieldsEntry, ObjectMeta, OwnerReference, Preconditions, Time,
};
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::json;

use super::*;

/// `k8s\0` + `runtime.Unknown{typeMeta, raw}` around `object`.
fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    super::envelope(api_version, kind, object.encode_to_vec())
}

fn time(seconds: i64) -> Option<Time> {
    Some(Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        // What Go sends for an unset creationTimestamp: the zero time, not nothing.
        creation_timestamp: time(GO_ZERO_TIME_SECONDS),
        ..Default::default()
    }
}

#[test]
fn secret_decodes_to_the_json_client_go_would_send() {
    let mut m = meta("sh.helm.release.v1.baton.v1");
    m.labels = BTreeMap::from([("owner".into(), "helm".into()), ("version".into(), "1".into())]);
    m.annotations = BTreeMap::from([("a".into(), "b".into())]);
    m.resource_version = Some("42".into());
    m.generation = Some(0);
    m.finalizers = vec!["example.com/keep".into()];
    m.owner_references = vec![OwnerReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some("owner".into()),
        uid: Some("u-1".into()),
        controller: Some(true),
        block_owner_deletion: None,
    }];
    m.managed_fields = vec![ManagedFieldsEntry {
        manager: Some("helm".into()),
        operation: Some("Update".into()),
        api_version: Some("v1".into()),
        time: time(1_700_000_000),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1 {
            raw: Some(br#"{"f:data":{}}"#.to_vec()),
        }),
        subresource: None,
    }];
    let secret = Secret {
        metadata: Some(m),
        data: BTreeMap::from([("release".into(), b"\x00\xffhello".to_vec())]),
        r#type: Some("helm.sh/release.v1".into()),
        string_data: BTreeMap::from([("plain".into(), "text".into())]),
        immutable: Some(false),
    };
    let got = decode(&envelope("v1", "Secret", &secret)).expect("decodes");
    let want = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sh.helm.release.v1.baton.v1",
            "namespace": "default",
            "resourceVersion": "42",
            "labels": {"owner": "helm", "version": "1"},
            "annotations": {"a": "b"},
            "finalizers": ["example.com/keep"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1", "controller": true}],
            "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "v1",
                               "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}],
        },
        "data": {"release": "AP9oZWxsbw=="},
        "type": "helm.sh/release.v1",
        "stringData": {"plain": "text"},
        "immutable": false,
    });
    assert_eq!(got, want);
}

#[test]
fn config_map_decodes_with_binary_data_in_base64() {
    let mut m = meta("cm");
    m.creation_timestamp = Some(Time {
        seconds: Some(1_700_000_000),
        nanos: Some(999),
    });
    m.deletion_grace_period_seconds = Some(30);
    let cm = ConfigMap {
        metadata: Some(m),
        data: BTreeMap::from([("k".into(), "v".into())]),
        binary_data: BTreeMap::from([("bin".into(), vec![1, 2, 3])]),
        immutable: None,
    };
    let got = decode(&envelope("v1", "ConfigMap", &cm)).expect("decodes");
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "creationTimestamp": "2023-11-14T22:13:20Z",
                         "deletionGracePeriodSeconds": 30},
            "data": {"k": "v"},
            "binaryData": {"bin": "AQID"},
        })
    );
}

#[test]
fn empty_fields_are_left_out_as_go_json_would() {
    let got = decode(&envelope("v1", "Secret", &Secret::default())).expect("decodes");
    assert_eq!(got, json!({"apiVersion": "v1", "kind": "Secret"}));
}

#[test]
fn delete_options_decode() {
    let d = DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some("u".into()),
            resource_version: None,
        }),
        orphan_dependents: None,
        propagation_policy: Some("Foreground".into()),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    for api_version in ["v1", "meta.k8s.io/v1"] {
        let got = decode(&envelope(api_version, "DeleteOptions", &d)).expect("decodes");
        assert_eq!(
            got,
            json!({"apiVersion": api_version, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                   "preconditions": {"uid": "u"}, "propagationPolicy": "Foreground", "dryRun": ["All"]})
        );
    }
}

#[test]
fn kinds_not_served_are_415_naming_the_kind() {
    let e = decode(&envelope("apps/v1", "StatefulSet", &ConfigMap::default())).expect_err("StatefulSet is not served");
    assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
    assert_eq!(
        e.message,
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; \
         application/vnd.kubernetes.protobuf is served for built-in kinds only, got kind \"StatefulSet\" (apiVersion \"apps/v1\")"
    );
    let e = decode(&envelope("apps/v1", "Secret", &Secret::default())).expect_err("apps/v1 Secret is no Secret");
    assert_eq!(e.code, 415);
    assert_eq!(e.details, Some(json!({"kind": "Secret", "group": "apps"})));
}

#[test]
fn malformed_bodies_are_400_not_panics() {
    let valid = envelope("v1", "Secret", &Secret::default());
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"k8s".to_vec(),
        b"{\"kind\":\"Secret\"}".to_vec(),
        // magic, then a field 1 claiming 100 bytes that are not there
        [MAGIC.as_slice(), &[0x0a, 100, 1, 2]].concat(),
        // magic, then a wire type 7 (invalid)
        [MAGIC.as_slice(), &[0x0f]].concat(),
        // no kind
        [MAGIC.as_slice(), &Unknown::default().encode_to_vec()].concat(),
        // a Secret whose raw bytes are garbage
        {
            let mut u = Unknown::decode(&valid[4..]).expect("own envelope");
            u.raw = Some(vec![0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]);
            [MAGIC.as_slice(), &u.encode_to_vec()].concat()
        },
        // gzip'd inner object
        {
            let mut u = Unknown::decode(&valid[4..]).expect("own envelope");
            u.content_encoding = Some("gzip".into());
            [MAGIC.as_slice(), &u.encode_to_vec()].concat()
        },
        // a name that is not UTF-8
        // (FieldsV1's field 1 stands in for ConfigMap's metadata: {name: b"\xc3\x28"})
        envelope(
            "v1",
            "ConfigMap",
            &FieldsV1 {
                raw: Some(vec![0x0a, 0x02, 0xc3, 0x28]),
            },
        ),
        // managedFields whose fieldsV1 is not JSON
        envelope(
            "v1",
            "Secret",
            &Secret {
                metadata: Some(ObjectMeta {
                    managed_fields: vec![ManagedFieldsEntry {
                        fields_v1: Some(FieldsV1 {
                            raw: Some(b"{not json".to_vec()),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        // a timestamp out of range
        envelope(
            "v1",
            "Secret",
            &Secret {
                metadata: Some(ObjectMeta {
                    creation_timestamp: time(i64::MAX),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
    ];
    for body in &bodies {
        match decode(body) {
            Err(e) => assert_eq!((e.code, e.reason), (400, "BadRequest"), "{body:?}: {e}"),
            Ok(v) => panic!("{body:?} decoded to {v}"),
        }
    }
    // Every truncation of a valid body either stops at a field boundary (and decodes) or is a 400.
    let mut rejected = 0;
    for n in 0..valid.len() {
        match decode(&valid[..n]) {
            Err(e) => {
                assert_eq!((e.code, e.reason), (400, "BadRequest"), "{n}: {e}");
                rejected += 1;
            }
            Ok(v) => assert_eq!(v["kind"], "Secret"),
        }
    }
    assert!(rejected > MAGIC.len(), "only {rejected} truncations were rejected");
}

#[test]
fn random_bytes_never_panic() {
    // A small deterministic generator (xorshift) so failures reproduce.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid = envelope("v1", "Secret", &Secret::default());
    for _ in 0..5_000 {
        let len = (next() % 64) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if next() % 2 == 0 {
            body.splice(0..0, MAGIC.iter().copied());
        }
        if let Err(e) = decode(&body) {
            assert!(matches!(e.code, 400 | 415), "{e}");
        }
        // Flip one byte of a valid body.
        let mut flipped = valid.clone();
        let i = (next() as usize) % flipped.len();
        flipped[i] ^= (next() as u8) | 1;
        if let Err(e) = decode(&flipped) {
            assert!(matches!(e.code, 400 | 415), "{e}");
        }
    }
}

/// A JSON object through our encoder, then k8s-pb's own decoder and back: field numbers and
/// JSON names agree with k8s-pb and k8s-openapi.
fn round_trip(v: serde_json::Value) -> serde_json::Value {
    let bytes = encode(&v).expect("encodable kind").expect("encodes");
    decode(&bytes).expect("decodes")
}

#[test]
fn a_pod_round_trips_and_k8s_pb_reads_our_bytes() {
    use k8s_openapi::api::core::v1::Pod;
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "x"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-0", "controller": true}]},
        "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "enableServiceLinks": true,
            "containers": [{"name": "c", "image": "app:1", "args": ["--port", "80"],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": false}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                "livenessProbe": {"tcpSocket": {"port": 8080}}}]},
        "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.244.0.2", "podIPs": [{"ip": "10.244.0.2"}],
            "startTime": "2026-01-01T00:00:01Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:02Z"}]}});
    // It is what k8s-openapi would serialize.
    let typed: Pod = serde_json::from_value(pod.clone()).expect("a valid Pod");
    assert_eq!(serde_json::to_value(&typed).expect("json"), pod);
    assert_eq!(round_trip(pod.clone()), pod);
    // k8s-pb decodes our bytes into the right fields.
    let bytes = encode(&pod).expect("encodable").expect("encodes");
    let unknown = Unknown::decode(&bytes[4..]).expect("envelope");
    assert_eq!(unknown.type_meta.and_then(|t| t.kind).as_deref(), Some("Pod"));
    let p = k8s_pb::api::core::v1::Pod::decode(unknown.raw.unwrap_or_default().as_slice()).expect("k8s-pb decodes");
    let status = p.status.expect("status");
    assert_eq!(status.host_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(status.pod_ips[0].ip.as_deref(), Some("10.244.0.2"));
    let c = &p.spec.expect("spec").containers[0];
    let port = c
        .readiness_probe
        .as_ref()
        .and_then(|r| r.handler.as_ref())
        .and_then(|h| h.http_get.as_ref())
        .and_then(|g| g.port.clone());
    assert_eq!(port.and_then(|p| p.str_val).as_deref(), Some("http"));
    let cm_ref = c.env[0]
        .value_from
        .as_ref()
        .and_then(|v| v.config_map_key_ref.as_ref())
        .expect("configMapKeyRef");
    assert_eq!(
        cm_ref.local_object_reference.as_ref().and_then(|l| l.name.as_deref()),
        Some("cm")
    );
    assert_eq!(
        c.resources
            .as_ref()
            .and_then(|r| r.limits.get("cpu"))
            .and_then(|q| q.string.as_deref()),
        Some("500m")
    );
}

#[test]
fn every_served_kind_round_trips() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}], "selector": {"app": "x"}}, "status": {"loadBalancer": {}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": 2}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}}, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0, "renewTime": "2026-01-01T00:00:00.123456Z"}}),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000001Z", "regarding": {"kind": "Pod", "name": "p"}, "reason": "R", "note": "n", "type": "Normal", "reportingController": "c", "reportingInstance": "i", "action": "A"}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 6, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}, "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"}, "revision": 3, "data": {"spec": {"template": {"x": 1}}}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cr"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"a": "b"}}}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "8"}, "nodeInfo": {"machineID": "m", "kubeletVersion": "v1.32.0"}, "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}),
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}]}),
    ];
    for o in objects {
        assert_eq!(round_trip(o.clone()), o);
    }
    // A custom resource (or any kind not served) has no encoding.
    assert!(encode(&json!({"apiVersion": "baton.dev/v1", "kind": "Rollout"})).is_none());
}
