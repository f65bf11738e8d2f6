//! Unit tests of the parent module.
use super::*;
use serde_json::json;

/// Deterministic pseudo-random JSON built from a vocabulary that hits the directives
/// and merge keys.
pub(crate) fn random_value(seed: &mut u64, depth: u32) -> Value {
    const KEYS: &[&str] = &[
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$deleteFromPrimitiveList/finalizers",
        "$setElementOrder/finalizers",
        "containers",
        "name",
        "env",
        "ports",
        "containerPort",
        "port",
        "metadata",
        "finalizers",
        "spec",
        "status",
        "conditions",
        "type",
        "labels",
        "managedFields",
        "fieldsV1",
        "f:spec",
        "k:{\"name\":\"a\"}",
        ".",
        "v:1",
        "manager",
        "operation",
    ];
    const STRS: &[&str] = &["delete", "replace", "merge", "a", "b", "name", "Apply", "Update"];
    fn next(seed: &mut u64) -> usize {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    }
    let choice = if depth == 0 { next(seed) % 4 } else { next(seed) % 7 };
    match choice {
        0 => Value::Null,
        1 => json!(next(seed) % 3),
        2 => json!(STRS[next(seed) % STRS.len()]),
        3 => json!(next(seed).is_multiple_of(2)),
        4 | 5 => {
            let n = next(seed) % 4;
            let mut m = Map::new();
            for _ in 0..n {
                let k = KEYS[next(seed) % KEYS.len()];
                m.insert(k.to_string(), random_value(seed, depth - 1));
            }
            Value::Object(m)
        }
        _ => {
            let n = next(seed) % 4;
            Value::Array((0..n).map(|_| random_value(seed, depth - 1)).collect())
        }
    }
}

#[test]
fn random_inputs_do_not_panic() {
    let mut seed = 7;
    for _ in 0..20_000 {
        let orig = random_value(&mut seed, 4);
        let patch = random_value(&mut seed, 4);
        for kind in ["Pod", "Service", "Node"] {
            let _ = strategic_merge_patch(&orig, &patch, kind);
            let _ = strategic_merge_patch(&pod(), &patch, kind);
        }
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "tolerations": [{"key": "k1", "operator": "Exists"}]
        }
    })
}

fn smp(orig: &Value, patch: Value) -> Value {
    strategic_merge_patch(orig, &patch, "Pod").unwrap()
}

#[test]
fn change_image_in_container_list() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}),
    );
    let cs = &out["spec"]["containers"];
    assert_eq!(cs.as_array().unwrap().len(), 2);
    assert_eq!(cs[0]["name"], "app");
    assert_eq!(cs[0]["image"], "nginx:2");
    assert_eq!(cs[0]["env"][0]["name"], "A");
    assert_eq!(cs[1]["name"], "sidecar");
}

#[test]
fn add_env_var_and_container() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [
            {"name": "app", "env": [{"name": "B", "value": "2"}]},
            {"name": "new", "image": "busybox"}
        ]}}),
    );
    let cs = out["spec"]["containers"].as_array().unwrap();
    let names: Vec<_> = cs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    // New items not in the live list come before the server-only ones (as the real server).
    assert_eq!(names, vec!["app", "new", "sidecar"]);
    let env: Vec<_> = cs[0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, vec!["B", "A"]);
}

#[test]
fn null_removes_label_and_scalar_replace() {
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"tier": null, "new": "x", "absent": null}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
}

#[test]
fn non_merge_list_is_replaced() {
    let out = smp(
        &pod(),
        json!({"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}),
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "k2", "operator": "Exists"}]));
}

#[test]
fn patch_delete_on_container() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
    );
    let cs = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0]["name"], "app");
}

#[test]
fn patch_replace_on_list_and_map() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([{"name": "only", "image": "x"}]));
    let out = smp(&pod(), json!({"metadata": {"labels": {"$patch": "replace", "z": "1"}}}));
    assert_eq!(out["metadata"]["labels"], json!({"z": "1"}));
    let out = smp(&pod(), json!({"metadata": {"labels": {"$patch": "delete"}}}));
    assert_eq!(out["metadata"]["labels"], json!({}));
}

#[test]
fn retain_keys() {
    let dep = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let out = strategic_merge_patch(
        &dep,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
        "Deployment",
    )
    .unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // A key in the patch missing from $retainKeys is an error.
    let err = strategic_merge_patch(
        &dep,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
        "Deployment",
    )
    .unwrap_err();
    assert_eq!(err, ERR_RETAIN_KEYS);
}

#[test]
fn set_element_order() {
    // What kubectl apply sends when it reorders and adds containers.
    let out = smp(
        &pod(),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}, {"name": "app"}],
            "containers": [{"name": "new", "image": "busybox"}]
        }}),
    );
    let names: Vec<_> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["sidecar", "new", "app"]);
    // Directive alone (no list in patch) just reorders.
    let out = smp(
        &pod(),
        json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}),
    );
    assert_eq!(out["spec"]["containers"][0]["name"], "sidecar");
    assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1");
}

#[test]
fn set_element_order_mismatch_is_error() {
    let err = strategic_merge_patch(
        &pod(),
        &json!({"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "b"}, {"name": "app", "image": "c"}]
        }}),
        "Pod",
    )
    .unwrap_err();
    assert!(err.contains("doesn't match $setElementOrder list"), "{err}");
}

#[test]
fn primitive_merge_list_and_delete_from_primitive_list() {
    let out = smp(&pod(), json!({"metadata": {"finalizers": ["c", "a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = smp(
        &pod(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let out = smp(
        &pod(),
        json!({"metadata": {
            "$setElementOrder/finalizers": ["b", "c"],
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "finalizers": ["c"]
        }}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
}

#[test]
fn service_ports_keyed_by_port() {
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
    let out = strategic_merge_patch(
        &svc,
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        "Service",
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );
}

#[test]
fn container_ports_keyed_by_container_port() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
    );
}

#[test]
fn deployment_template_and_status_conditions() {
    let dep = json!({
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}, {"name": "d", "image": "b"}]}}},
        "status": {"conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}]}
    });
    let out = strategic_merge_patch(
        &dep,
        &json!({
            "spec": {"template": {"spec": {"containers": [{"name": "d", "image": "z"}]}}},
            "status": {"conditions": [{"type": "Available", "status": "False"}]}
        }),
        "Deployment",
    )
    .unwrap();
    assert_eq!(out["spec"]["template"]["spec"]["containers"][1]["image"], "z");
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["image"], "a");
    assert_eq!(out["status"]["conditions"][0]["status"], "False");
    assert_eq!(out["status"]["conditions"][1]["type"], "Progressing");
}

#[test]
fn new_keys_have_directives_stripped() {
    let out = smp(
        &json!({"metadata": {"name": "p"}}),
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "$patch": "delete"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([{"name": "a"}]));
}

#[test]
fn owner_references_keyed_by_uid() {
    let orig = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}});
    let out = smp(
        &orig,
        json!({"metadata": {"ownerReferences": [{"uid": "2", "$patch": "delete"}]}}),
    );
    assert_eq!(out["metadata"]["ownerReferences"], json!([{"uid": "1", "name": "a"}]));
}

#[test]
fn malformed_patches_are_errors() {
    let e = strategic_merge_patch(&pod(), &json!([1]), "Pod").unwrap_err();
    assert_eq!(
        e,
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    assert!(strategic_merge_patch(&pod(), &json!("x"), "Pod").is_err());
    let e = strategic_merge_patch(&pod(), &json!({"metadata": {"$patch": "bogus"}}), "Pod").unwrap_err();
    assert!(e.starts_with("unknown patch type: bogus"), "{e}");
    let e = strategic_merge_patch(&pod(), &json!({"spec": {"containers": [{"image": "x"}]}}), "Pod").unwrap_err();
    assert!(e.contains("does not contain declared merge key: name"), "{e}");
    let e = strategic_merge_patch(
        &pod(),
        &json!({"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}),
        "Pod",
    )
    .unwrap_err();
    assert!(e.contains("merging lists cannot yet be specified"), "{e}");
    let e = strategic_merge_patch(&pod(), &json!({"spec": {"$retainKeys": "x"}}), "Pod").unwrap_err();
    assert_eq!(e, ERR_RETAIN_KEYS);
    let e = strategic_merge_patch(
        &pod(),
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
        "Pod",
    )
    .unwrap_err();
    assert_eq!(e, ERR_PRIMITIVE_LIST);
    let e = strategic_merge_patch(&pod(), &json!({"spec": {"$setElementOrder/containers": 3}}), "Pod").unwrap_err();
    assert!(e.contains("expected a []interface {}"), "{e}");
    let e = strategic_merge_patch(&pod(), &json!({"metadata": {"finalizers": [["x"]]}}), "Pod").unwrap_err();
    assert!(e.starts_with("list element types are not identical"), "{e}");
    let orig = json!({"metadata": {"finalizers": []}});
    let e = strategic_merge_patch(&orig, &json!({"metadata": {"finalizers": [["x"]]}}), "Pod").unwrap_err();
    assert_eq!(e, "lists of lists are not supported");
    assert!(strategic_merge_patch(&pod(), &json!({"$bogus": 1}), "Pod").is_err());
}

#[test]
fn null_patch_and_type_changes() {
    assert_eq!(strategic_merge_patch(&pod(), &Value::Null, "Pod").unwrap(), pod());
    let out = smp(&pod(), json!({"spec": {"containers": "weird"}}));
    assert_eq!(out["spec"]["containers"], "weird");
    let out = smp(&json!({}), json!({"a": {"b": null, "c": 1}}));
    assert_eq!(out, json!({"a": {"c": 1}}));
}

#[test]
fn numeric_merge_keys_compare_as_numbers() {
    let orig = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}});
    let out = smp(
        &orig,
        json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.0, "name": "h"}]}]}}),
    );
    assert_eq!(out["spec"]["containers"][0]["ports"].as_array().unwrap().len(), 1);
}

#[test]
fn admission_policy_match_conditions_merge_by_name() {
    // kubectl apply of a changed ValidatingAdmissionPolicy sends only the changed condition and
    // the order of all of them.
    let original = json!({"spec": {"matchConditions": [
        {"name": "a", "expression": "true"}, {"name": "b", "expression": "false"}]}});
    let patch = json!({"spec": {"$setElementOrder/matchConditions": [{"name": "a"}, {"name": "b"}],
        "matchConditions": [{"name": "b", "expression": "1 == 1"}]}});
    let out = strategic_merge_patch(&original, &patch, "ValidatingAdmissionPolicy").expect("patch applies");
    assert_eq!(
        out["spec"]["matchConditions"],
        json!([{"name": "a", "expression": "true"}, {"name": "b", "expression": "1 == 1"}])
    );
}
