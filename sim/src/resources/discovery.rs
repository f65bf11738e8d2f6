//! The details of discovery documents as kube-apiserver writes them: the order of groups and
//! of resources, verbs, `storageVersionHash`, and how a custom resource differs from a
//! built-in one.

use base64::Engine;
use serde_json::{json, Value};

use super::ResourceType;

/// kube-apiserver's built-in groups in the order `/apis` lists them (the aggregator sorts
/// APIServices by `groupPriorityMinimum`, highest first; these are the priorities of
/// `pkg/controlplane/apiserver`). Groups not listed (custom resources, priority 1000) follow,
/// by name.
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// The sort key of a group in `/apis`.
pub fn group_rank(group: &str) -> (usize, String) {
    let i = GROUP_ORDER
        .iter()
        .position(|g| *g == group)
        .unwrap_or(GROUP_ORDER.len());
    (i, group.to_string())
}

/// The groups whose resources are in the `api-extensions` category.
const EXTENSION_GROUPS: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
];

/// `discovery.StorageVersionHash`: the first 8 bytes of SHA-256 over the storage
/// `group/version/Kind`, in base64 (a view of another resource hashes that resource's).
pub fn storage_version_hash(t: &ResourceType) -> String {
    let (group, version, kind) = match t.view {
        Some(v) => (v.storage().0.to_string(), "v1".to_string(), t.kind.clone()),
        None => (t.group.clone(), t.version.clone(), t.kind.clone()),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// The verbs of a resource, in the order its discovery lists them: apiextensions-apiserver
/// writes a custom resource's in its own order; built-in storages that lack an operation leave
/// it out (a namespace has no `deletecollection`, component statuses are read-only).
pub fn verbs(t: &ResourceType) -> Vec<&'static str> {
    if t.create_only {
        return vec!["create"];
    }
    if t.custom {
        return vec![
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ];
    }
    match (t.group.as_str(), t.plural.as_str()) {
        ("", "componentstatuses") => vec!["get", "list"],
        ("", "namespaces") => vec!["create", "delete", "get", "list", "patch", "update", "watch"],
        _ => vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
    }
}

/// The categories of a resource (`api-extensions` for the extension groups' resources).
pub fn categories(t: &ResourceType) -> Vec<String> {
    let mut c = t.categories.clone();
    if !t.custom && EXTENSION_GROUPS.contains(&t.group.as_str()) && !c.iter().any(|x| x == "api-extensions") {
        c.push("api-extensions".into());
    }
    c
}

/// A resource's entries in a legacy `APIResourceList`: the resource, then its subresources
/// (a custom resource's `status` before `scale`, as apiextensions-apiserver writes them; the
/// list of a built-in group version is sorted by name afterwards).
pub fn legacy_entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
        "kind": t.kind, "verbs": verbs(t),
    });
    if let Some(o) = main.as_object_mut() {
        if !t.short_names.is_empty() {
            o.insert("shortNames".into(), json!(t.short_names));
        }
        let cats = categories(t);
        if !cats.is_empty() {
            o.insert("categories".into(), json!(cats));
        }
        if !t.create_only {
            o.insert("storageVersionHash".into(), json!(storage_version_hash(t)));
        }
    }
    let mut out = vec![main];
    let sub = |name: &str, extra: Value, verbs: Value| {
        let mut v = json!({"name": format!("{}/{name}", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": verbs});
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    };
    let rw = json!(["get", "patch", "update"]);
    if t.status_subresource {
        out.push(sub("status", json!({}), rw.clone()));
    }
    if t.scale.is_some() {
        out.push(sub(
            "scale",
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
            rw,
        ));
    }
    if t.is_service_accounts() {
        out.push(sub(
            "token",
            json!({"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}),
            json!(["create"]),
        ));
    }
    out
}

/// A resource's `responseKind` in aggregated discovery: a built-in's names only its kind (the
/// group and version are the document's), a custom resource's all three.
pub fn response_kind(t: &ResourceType) -> Value {
    if t.custom {
        json!({"group": t.group, "version": t.version, "kind": t.kind})
    } else {
        json!({"group": "", "version": "", "kind": t.kind})
    }
}

/// A resource's entry in aggregated discovery (`apidiscovery.k8s.io/v2`).
pub fn aggregated_entry(t: &ResourceType) -> Value {
    let mut subs = Vec::new();
    if t.status_subresource {
        subs.push(
            json!({"subresource": "status", "responseKind": response_kind(t), "verbs": ["get", "patch", "update"]}),
        );
    }
    if t.scale.is_some() {
        subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
    }
    if t.is_service_accounts() {
        subs.push(json!({"subresource": "token", "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}, "verbs": ["create"]}));
    }
    if !t.custom {
        // A built-in's subresources come in the order of their paths (`scale` before
        // `status`); a custom resource's as apiextensions-apiserver lists them.
        subs.sort_by(|a, b| a["subresource"].as_str().cmp(&b["subresource"].as_str()));
    }
    let mut r = json!({
        "resource": t.plural,
        "responseKind": response_kind(t),
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": verbs(t),
    });
    if let Some(o) = r.as_object_mut() {
        if !t.short_names.is_empty() {
            o.insert("shortNames".into(), json!(t.short_names));
        }
        let cats = categories(t);
        if !cats.is_empty() {
            o.insert("categories".into(), json!(cats));
        }
        if !subs.is_empty() {
            o.insert("subresources".into(), json!(subs));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_version_hashes_are_kube_apiservers() {
        let reg = crate::resources::Registry::with_builtins();
        let hash = |g: &str, p: &str| storage_version_hash(&reg.get(g, "v1", p).expect("served"));
        // As kube-apiserver 1.33 lists them.
        assert_eq!(hash("", "configmaps"), "qFsyl6wFWjQ=");
        assert_eq!(hash("coordination.k8s.io", "leases"), "gqkMMb/YqFM=");
        assert_eq!(hash("events.k8s.io", "events"), "r2yiGXH7wu8=");
        assert_eq!(hash("", "events"), "r2yiGXH7wu8=");
    }

    #[test]
    fn groups_in_kube_apiservers_order() {
        let mut groups = vec![
            "baton.dev",
            "coordination.k8s.io",
            "apps",
            "aaa.example.com",
            "apiregistration.k8s.io",
        ];
        groups.sort_by_key(|g| group_rank(g));
        assert_eq!(
            groups,
            vec![
                "apiregistration.k8s.io",
                "apps",
                "coordination.k8s.io",
                "aaa.example.com",
                "baton.dev"
            ]
        );
    }
}
