//! Unit tests of the parent module.
use super::encoding::{decode_set, encode_set};
use super::fieldset::FieldSet;
use super::*;
// The same random-JSON generator as the strategic-merge tests.
use crate::strategic::tests::random_value;
use serde_json::{json, Value};

struct Types;
impl ListTypes for Types {
    fn list_type(&self, path: &str) -> ListType {
        let keys = |k: &[&str]| ListType::Map(k.iter().map(|s| s.to_string()).collect());
        match path {
            "spec.containers" | "spec.template.spec.containers" => keys(&["name"]),
            "spec.template.spec.containers.env" | "spec.containers.env" => keys(&["name"]),
            "spec.template.spec.containers.ports" | "spec.containers.ports" => keys(&["containerPort", "protocol"]),
            "status.conditions" => keys(&["type"]),
            "metadata.finalizers" => ListType::Set,
            _ => ListType::Atomic,
        }
    }
    fn map_is_atomic(&self, path: &str) -> bool {
        path == "spec.selector"
    }
}

#[test]
fn random_inputs_do_not_panic() {
    let mut seed = 11;
    for _ in 0..5_000 {
        let live = random_value(&mut seed, 4);
        let cfg = random_value(&mut seed, 4);
        for sub in [None, Some("status")] {
            if let Ok(out) = apply(Some(&live), &cfg, "m", false, sub, true, &Types, T0) {
                let _ = apply(Some(&out), &live, "n", true, sub, false, &Types, T1);
            }
            let _ = apply(None, &cfg, "m", false, sub, false, &Types, T0);
            let mut new = cfg.clone();
            record_update(Some(&live), &mut new, "u", sub, &Types, T0);
            let _ = apply(Some(&new), &live, "m", false, sub, true, &Types, T1);
        }
    }
}

const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-01T00:01:00Z";

fn deploy(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns", "labels": {"app": "d"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    })
}

fn ssa(live: Option<&Value>, cfg: &Value, mgr: &str, force: bool) -> Result<Value, Vec<Conflict>> {
    apply(live, cfg, mgr, force, None, true, &Types, T0)
}

fn entry<'a>(obj: &'a Value, manager: &str, op: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == op)
}

#[test]
fn create_via_apply() {
    let obj = ssa(None, &deploy(2, "nginx:1"), "kubectl", false).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    let mf = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(
        mf[0],
        json!({
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}
                    }
                }
            }
        })
    );
}

#[test]
fn reapply_without_field_removes_it() {
    let obj = ssa(None, &deploy(2, "nginx:1"), "kubectl", false).unwrap();
    let mut cfg = deploy(2, "nginx:1");
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    cfg["metadata"].as_object_mut().unwrap().remove("labels");
    let obj2 = ssa(Some(&obj), &cfg, "kubectl", false).unwrap();
    assert!(obj2["spec"].get("replicas").is_none());
    assert!(obj2["metadata"].get("labels").is_none(), "{}", obj2["metadata"]);
    let f = &entry(&obj2, "kubectl", "Apply").unwrap()["fieldsV1"];
    assert!(f["f:spec"].get("f:replicas").is_none());
    // Same config again: no-op, the object (incl. managedFields time) is unchanged.
    let obj3 = apply(Some(&obj2), &cfg, "kubectl", false, None, true, &Types, T1).unwrap();
    assert_eq!(obj3, obj2);
}

#[test]
fn removing_a_container_removes_the_item() {
    let mut cfg = deploy(1, "a");
    cfg["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "c", "image": "a"}, {"name": "side", "image": "s"}]);
    let obj = ssa(None, &cfg, "m", false).unwrap();
    let obj2 = ssa(Some(&obj), &deploy(1, "a"), "m", false).unwrap();
    assert_eq!(
        obj2["spec"]["template"]["spec"]["containers"],
        json!([{"name": "c", "image": "a"}])
    );
}

#[test]
fn two_managers_disjoint_fields() {
    let obj = ssa(None, &deploy(1, "a"), "one", false).unwrap();
    let cfg2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns",
            "annotations": {"x": "y"}}});
    let obj2 = ssa(Some(&obj), &cfg2, "two", false).unwrap();
    assert_eq!(obj2["metadata"]["annotations"]["x"], "y");
    assert_eq!(obj2["spec"]["replicas"], 1);
    assert_eq!(obj2["metadata"]["managedFields"].as_array().unwrap().len(), 2);
    // "one" re-applies its config: the annotation owned by "two" stays.
    let obj3 = ssa(Some(&obj2), &deploy(1, "b"), "one", false).unwrap();
    assert_eq!(obj3["metadata"]["annotations"]["x"], "y");
    assert_eq!(obj3["spec"]["template"]["spec"]["containers"][0]["image"], "b");
    // "two" stops applying the annotation: removed.
    let cfg2b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}});
    let obj4 = ssa(Some(&obj3), &cfg2b, "two", false).unwrap();
    assert!(obj4["metadata"].get("annotations").is_none());
    assert!(entry(&obj4, "two", "Apply").is_none(), "empty entries are dropped");
}

#[test]
fn conflict_on_different_value_and_shared_ownership_on_same_value() {
    let obj = ssa(None, &deploy(1, "a"), "one", false).unwrap();
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}});
    let err = ssa(Some(&obj), &cfg, "two", false).unwrap_err();
    assert_eq!(
        err,
        vec![Conflict {
            manager: "one".into(),
            field: ".spec.replicas".into(),
            operation: "Apply".into(),
            api_version: "apps/v1".into(),
            subresource: None,
        }]
    );
    assert_eq!(
        conflict_message(&err, "apps/v1"),
        "Apply failed with 1 conflict: conflict with \"one\": .spec.replicas"
    );
    // Same value: no conflict, both own it.
    let mut same = cfg.clone();
    same["spec"]["replicas"] = json!(1);
    let obj2 = ssa(Some(&obj), &same, "two", false).unwrap();
    assert!(entry(&obj2, "two", "Apply").unwrap()["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_some());
    assert!(entry(&obj2, "one", "Apply").unwrap()["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_some());
    // "one" drops replicas: still owned by "two", so it stays.
    let mut one_cfg = deploy(1, "a");
    one_cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let obj3 = ssa(Some(&obj2), &one_cfg, "one", false).unwrap();
    assert_eq!(obj3["spec"]["replicas"], 1);
}

#[test]
fn force_takes_ownership() {
    let obj = ssa(None, &deploy(1, "a"), "one", false).unwrap();
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "c", "image": "b"}]}}}});
    let err = ssa(Some(&obj), &cfg, "two", false).unwrap_err();
    assert_eq!(err.len(), 2);
    assert_eq!(err[0].field, ".spec.replicas");
    assert_eq!(err[1].field, ".spec.template.spec.containers[name=\"c\"].image");
    let obj2 = ssa(Some(&obj), &cfg, "two", true).unwrap();
    assert_eq!(obj2["spec"]["replicas"], 5);
    let one = &entry(&obj2, "one", "Apply").unwrap()["fieldsV1"];
    assert!(one["f:spec"].get("f:replicas").is_none());
    assert!(
        one["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]
            .get("f:image")
            .is_none()
    );
    // Now "one" conflicts with "two".
    let err = ssa(Some(&obj2), &deploy(1, "a"), "one", false).unwrap_err();
    assert!(err.iter().all(|c| c.manager == "two"));
}

#[test]
fn apply_to_status_subresource() {
    let obj = ssa(None, &deploy(1, "a"), "kubectl", false).unwrap();
    // Status in a main-resource apply is ignored.
    let mut with_status = deploy(1, "a");
    with_status["status"] = json!({"replicas": 9});
    let obj = ssa(Some(&obj), &with_status, "kubectl", false).unwrap();
    assert!(obj.get("status").is_none());
    let status_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"x": "y"}},
            "spec": {"replicas": 100},
            "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}});
    let obj2 = apply(Some(&obj), &status_cfg, "ctrl", false, Some("status"), true, &Types, T1).unwrap();
    assert_eq!(obj2["status"]["replicas"], 1);
    assert_eq!(obj2["spec"]["replicas"], 1, "spec is not applied through /status");
    assert!(obj2["metadata"]["labels"].get("x").is_none());
    let e = entry(&obj2, "ctrl", "Apply").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:replicas": {}, "f:conditions": {"k:{\"type\":\"Available\"}": {".": {}, "f:type": {}, "f:status": {}}}}})
    );
    // Dropping a condition from the status config prunes it; spec is untouched.
    let status_cfg2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "status": {"replicas": 2}});
    let obj3 = apply(
        Some(&obj2),
        &status_cfg2,
        "ctrl",
        false,
        Some("status"),
        true,
        &Types,
        T1,
    )
    .unwrap();
    assert_eq!(obj3["status"], json!({"replicas": 2}));
    assert_eq!(obj3["spec"], obj2["spec"]);
}

#[test]
fn record_update_then_apply_conflicts_with_updater() {
    let mut created = deploy(3, "a");
    record_update(None, &mut created, "kubectl-client-side-apply", None, &Types, T0);
    let e = entry(&created, "kubectl-client-side-apply", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    let f = &e["fieldsV1"];
    assert_eq!(f["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert_eq!(f["f:spec"]["f:replicas"], json!({}));
    assert!(f["f:spec"].get(".").is_none());
    assert!(f["f:metadata"].get("f:name").is_none());
    let cfg =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 4}});
    let err = ssa(Some(&created), &cfg, "ssa", false).unwrap_err();
    assert_eq!(
        conflict_message(&err, "apps/v1"),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let forced = ssa(Some(&created), &cfg, "ssa", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 4);
    let upd = entry(&forced, "kubectl-client-side-apply", "Update").unwrap();
    assert!(upd["fieldsV1"]["f:spec"].get("f:replicas").is_none());
}

#[test]
fn update_takes_fields_from_applier() {
    let obj = ssa(None, &deploy(1, "a"), "kubectl", false).unwrap();
    let mut new = obj.clone();
    new["spec"]["replicas"] = json!(7);
    new["metadata"]["labels"] = json!({"app": "d", "extra": "1"});
    record_update(Some(&obj), &mut new, "hpa", None, &Types, T1);
    let hpa = entry(&new, "hpa", "Update").unwrap();
    assert_eq!(hpa["time"], T1);
    assert_eq!(
        hpa["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:extra": {}}}, "f:spec": {"f:replicas": {}}})
    );
    let k = entry(&new, "kubectl", "Apply").unwrap();
    assert!(k["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    // Apply entries sort before Update entries.
    assert_eq!(new["metadata"]["managedFields"][0]["operation"], "Apply");
    // kubectl re-applies with replicas 1: conflict with hpa.
    let err = ssa(Some(&new), &deploy(1, "a"), "kubectl", false).unwrap_err();
    assert_eq!(err[0].manager, "hpa");
    assert_eq!(err[0].operation, "Update");
    // A no-op update keeps everything.
    let mut same = new.clone();
    record_update(Some(&new), &mut same, "other", None, &Types, "2030-01-01T00:00:00Z");
    assert_eq!(same, new);
}

#[test]
fn update_removing_fields_drops_them_from_owners() {
    let obj = ssa(None, &deploy(1, "a"), "kubectl", false).unwrap();
    let mut new = obj.clone();
    new["metadata"].as_object_mut().unwrap().remove("labels");
    record_update(Some(&obj), &mut new, "editor", None, &Types, T1);
    assert!(entry(&new, "editor", "Update").is_none(), "nothing added: no entry");
    let k = entry(&new, "kubectl", "Apply").unwrap();
    assert!(k["fieldsV1"]["f:metadata"].get("f:labels").is_none());
}

#[test]
fn keyed_lists_merge_by_key_and_keep_others_items() {
    let mut base = deploy(1, "a");
    base["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "c", "image": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
    ]);
    let obj = ssa(None, &base, "one", false).unwrap();
    // Another manager adds a sidecar and an env var to "c".
    let cfg2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
    "spec": {"template": {"spec": {"containers": [
        {"name": "c", "env": [{"name": "E", "value": "1"}]},
        {"name": "side", "image": "s"}
    ]}}}});
    let obj2 = ssa(Some(&obj), &cfg2, "two", false).unwrap();
    let cs = obj2["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["name"], "c");
    assert_eq!(cs[0]["image"], "a");
    assert_eq!(cs[0]["env"][0]["name"], "E");
    assert_eq!(cs[1]["name"], "side");
    let two = &entry(&obj2, "two", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert_eq!(
        two["k:{\"name\":\"c\"}"],
        json!({".": {}, "f:name": {}, "f:env": {"k:{\"name\":\"E\"}": {".": {}, "f:name": {}, "f:value": {}}}})
    );
    let one = &entry(&obj2, "one", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(one["k:{\"name\":\"c\"}"]["f:ports"]
        .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
        .is_some());
    // "one" removes container c from its config: "two" still owns fields in it, so the
    // item stays, without "one"'s image and ports.
    let mut cfg1 = deploy(1, "a");
    cfg1["spec"]["template"]["spec"]["containers"] = json!([{"name": "side", "image": "s"}]);
    let obj3 = ssa(Some(&obj2), &cfg1, "one", false).unwrap();
    let cs = obj3["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    let c = cs.iter().find(|c| c["name"] == "c").unwrap();
    assert!(c.get("image").is_none());
    assert!(c.get("ports").is_none());
    assert_eq!(c["env"][0]["value"], "1");
}

#[test]
fn set_lists_and_atomic_lists() {
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "finalizers": ["a", "b"]},
            "data": {"k": "v"}, "spec": {"args": ["1", "2"]}});
    let obj = apply(None, &cfg, "m", false, None, false, &Types, T0).unwrap();
    let f = &obj["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(f["f:metadata"]["f:finalizers"], json!({"v:\"a\"": {}, "v:\"b\"": {}}));
    assert_eq!(f["f:spec"]["f:args"], json!({}));
    assert_eq!(f["f:data"], json!({"f:k": {}}));
    let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "finalizers": ["c"]}});
    let obj2 = apply(Some(&obj), &cfg2, "n", false, None, false, &Types, T0).unwrap();
    assert_eq!(obj2["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let cfg3 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {"args": ["3"]}});
    let err = apply(Some(&obj2), &cfg3, "n", false, None, false, &Types, T0).unwrap_err();
    assert_eq!(err[0].field, ".spec.args");
    // "m" drops finalizer "a" and the args.
    let cfg4 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "finalizers": ["b"]},
            "data": {"k": "v"}});
    let obj4 = apply(Some(&obj2), &cfg4, "m", false, None, false, &Types, T0).unwrap();
    assert_eq!(obj4["metadata"]["finalizers"], json!(["b", "c"]));
    assert!(obj4.get("spec").is_none());
}

#[test]
fn multiple_conflicts_message() {
    let cs = vec![
        Conflict {
            manager: "b".into(),
            field: ".spec.x".into(),
            operation: "Apply".into(),
            ..Default::default()
        },
        Conflict {
            manager: "a".into(),
            field: ".spec.y".into(),
            operation: "Update".into(),
            ..Default::default()
        },
        Conflict {
            manager: "a".into(),
            field: ".spec.z".into(),
            operation: "Update".into(),
            ..Default::default()
        },
    ];
    assert_eq!(
            conflict_message(&cs, "v1"),
            "Apply failed with 3 conflicts: conflicts with \"a\" using v1:\n- .spec.y\n- .spec.z\nconflicts with \"b\":\n- .spec.x"
        );
}

#[test]
fn fields_v1_roundtrip_and_bad_input() {
    let f = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}, "f:fin": {"v:\"a\"": {}}}});
    let mut set = FieldSet::new();
    decode_set(&f, &mut Vec::new(), &mut set);
    assert_eq!(encode_set(&set), f);
    // Garbage managedFields / config do not panic.
    let live = json!({"metadata": {"name": "x", "managedFields": [1, {"fieldsV1": "bad"}, {"fieldsV1": {"zz": 1, "k:notjson": {}}}]}});
    let out = apply(Some(&live), &json!(42), "m", false, None, false, &Types, T0).unwrap();
    assert!(out["metadata"].get("managedFields").is_none());
    let mut weird = json!({"metadata": 5, "spec": [1, [2], {"a": null}], "data": {"x": [[1]]}});
    record_update(Some(&json!("str")), &mut weird, "m", None, &Types, T0);
    assert_eq!(weird["metadata"], 5);
    let mut weird2 = json!({"metadata": {"labels": [1]}, "status": 1});
    let _ = apply(Some(&weird2), &weird, "m", true, Some("status"), true, &Types, T0);
    let _ = apply(Some(&weird), &weird2, "m", false, None, false, &Types, T0);
    record_update(Some(&weird), &mut weird2, "m", Some("status"), &Types, T0);
    let mut scalar = json!(3);
    record_update(None, &mut scalar, "m", None, &Types, T0);
    assert_eq!(scalar, json!(3));
}

#[test]
fn managed_fields_reset_and_server_metadata_ignored() {
    let mut created = deploy(1, "a");
    created["metadata"]["uid"] = json!("u1");
    created["metadata"]["resourceVersion"] = json!("5");
    record_update(None, &mut created, "kubectl-create", None, &Types, T0);
    let f = &entry(&created, "kubectl-create", "Update").unwrap()["fieldsV1"]["f:metadata"];
    assert!(f.get("f:uid").is_none() && f.get("f:resourceVersion").is_none());
    // Config carrying server metadata does not override it.
    let mut cfg = deploy(1, "a");
    cfg["metadata"]["uid"] = json!("other");
    cfg["metadata"]["creationTimestamp"] = Value::Null;
    let obj = ssa(Some(&created), &cfg, "kubectl-create", false).unwrap();
    assert_eq!(obj["metadata"]["uid"], "u1");
    // [{}] resets managedFields.
    let mut reset = created.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    reset["spec"]["replicas"] = json!(2);
    record_update(Some(&created), &mut reset, "x", None, &Types, T1);
    let mf = reset["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0]["manager"], "x");
}

/// A list map's items are matched by key across the two objects, the first item of a repeated
/// key standing for it on either side, whatever the list's length.
#[test]
fn list_map_items_are_matched_by_key_in_long_lists() {
    let item = |name: &str, image: &str| json!({"name": name, "image": image});
    let mut old: Vec<Value> = (0..5_000).map(|i| item(&format!("c{i}"), "v1")).collect();
    old.push(item("c7", "repeated"));
    let mut new = old.clone();
    new[42] = item("c42", "v2");
    new.remove(4_999);
    new.push(item("extra", "v1"));
    let cmp = compare::compare_objects(
        &json!({"spec": {"containers": old}}),
        &json!({"spec": {"containers": new}}),
        &Types,
    );
    let key = |name: &str| fieldset::Pe::Key(format!("{{\"name\":\"{name}\"}}"));
    let at = |name: &str, field: Option<&str>| {
        let mut p = vec![
            fieldset::Pe::Field("spec".into()),
            fieldset::Pe::Field("containers".into()),
            key(name),
        ];
        p.extend(field.map(|f| fieldset::Pe::Field(f.into())));
        p
    };
    assert_eq!(
        cmp.modified.into_iter().collect::<Vec<_>>(),
        vec![at("c42", Some("image"))]
    );
    assert_eq!(cmp.removed.into_iter().collect::<Vec<_>>(), vec![at("c4999", None)]);
    assert!(cmp.added.contains(&at("extra", None)), "{:?}", cmp.added);
    assert!(
        !cmp.added.iter().any(|p| p.starts_with(&at("c7", None))),
        "c7 is in both"
    );
}
