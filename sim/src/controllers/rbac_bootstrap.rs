//! The default roles and bindings (`rbac_bootstrap.yaml`), created at start as kube-apiserver's RBAC
//! post-start hook does, with its labels and auto-update annotation.

use serde_json::{json, Value};

use crate::handlers::{Core, Opts};

const POLICY: &str = include_str!("rbac_bootstrap.yaml");

fn with_defaults(mut obj: Value, kind: &str) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!("rbac.authorization.k8s.io/v1"));
        o.insert("kind".into(), json!(kind));
    }
    let meta = obj.get_mut("metadata").and_then(Value::as_object_mut);
    if let Some(m) = meta {
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
        }
        m.insert(
            "annotations".into(),
            json!({"rbac.authorization.kubernetes.io/autoupdate": "true"}),
        );
    }
    obj
}

pub fn create(core: &Core) {
    // The policy is part of the binary; a parse error is a bug the unit test catches.
    let Ok(policy) = serde_saphyr::from_str::<Value>(POLICY) else {
        return;
    };
    let opts = Opts {
        field_manager: "kube-apiserver".into(),
        ..Opts::default()
    };
    for (field, plural, kind) in [
        ("clusterRoles", "clusterroles", "ClusterRole"),
        ("clusterRoleBindings", "clusterrolebindings", "ClusterRoleBinding"),
    ] {
        let Some(rt) = core.resource(crate::auth::rbac::GROUP, plural) else {
            continue;
        };
        for obj in policy.get(field).and_then(Value::as_array).into_iter().flatten() {
            let _ = core.create(&rt, None, with_defaults(obj.clone(), kind), &opts);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_parses() {
        let v: serde_json::Value = serde_saphyr::from_str(super::POLICY).expect("bootstrap.yaml parses");
        assert!(v["clusterRoles"].as_array().is_some_and(|a| a.len() >= 10));
        assert!(v["clusterRoleBindings"].as_array().is_some_and(|a| a.len() >= 5));
    }
}
