//! Unit tests of the parent module: bodies are built with prost the way client-go lays them out.
use super::*;

/// `k8s\0` + `runtime.Unknown{typeMeta, raw}` around `object`.
fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
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
    assert_eq!(got, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {}}));
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
fn other_kinds_are_415_naming_the_kind() {
    let e = decode(&envelope("v1", "Pod", &ConfigMap::default())).expect_err("Pod is not decoded");
    assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
    assert!(e.message.contains("\"Pod\""), "{}", e.message);
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
