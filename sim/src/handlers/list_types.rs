//! How lists merge for server-side apply and `managedFields`: CRD schema list types, or the
//! built-in kinds' merge keys.

use serde_json::Value;

use crate::managed::{ListType, ListTypes};

/// List types for server-side apply: built-in merge keys and CRD schema list-map keys.
pub(super) struct SchemaListTypes<'a> {
    pub(super) schema: Option<&'a Value>,
}

/// Built-in fields owned as a whole (`+mapType=atomic`, `+structType=atomic`), by the end of
/// their path: label selectors of workloads, Services and disruption budgets; a Service's and
/// a pod's `nodeSelector` maps; role references; an Event's object references; the
/// references of environment variables; each owner reference (items of the list, keyed by
/// uid).
const ATOMIC_BUILTIN: &[&str] = &[
    "spec.selector",
    "nodeSelector",
    "roleRef",
    "involvedObject",
    "regarding",
    "related",
    "fieldRef",
    "resourceFieldRef",
    "configMapKeyRef",
    "secretKeyRef",
    "ownerReferences",
];

impl SchemaListTypes<'_> {
    /// The schema node at dotted `path`, if the schema describes it.
    fn node(&self, path: &str) -> Option<&Value> {
        let mut node = self.schema?;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            node = node
                .get("properties")
                .and_then(|p| p.get(part))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
                .or_else(|| {
                    node.get("items")
                        .and_then(|i| i.get("properties"))
                        .and_then(|p| p.get(part))
                })?;
        }
        Some(node)
    }
}

impl ListTypes for SchemaListTypes<'_> {
    fn custom(&self) -> bool {
        self.schema.is_some()
    }

    fn map_is_atomic(&self, path: &str) -> bool {
        if self.schema.is_some() {
            return self
                .node(path)
                .is_some_and(|n| n.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"));
        }
        ATOMIC_BUILTIN.iter().any(|a| {
            path == *a || path.ends_with(&format!(".{a}")) || (*a == "spec.selector" && path == "spec.selector")
        })
    }

    fn list_type(&self, path: &str) -> ListType {
        if let Some(schema) = self.schema {
            let mut node = schema;
            for part in path.split('.').filter(|p| !p.is_empty()) {
                let next = node
                    .get("properties")
                    .and_then(|p| p.get(part))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
                    .or_else(|| {
                        node.get("items")
                            .and_then(|i| i.get("properties"))
                            .and_then(|p| p.get(part))
                    });
                match next {
                    Some(n) => node = n,
                    None => return ListType::Atomic,
                }
            }
            return match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => ListType::Map(
                    node.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                        .unwrap_or_default(),
                ),
                Some("set") => ListType::Set,
                _ => ListType::Atomic,
            };
        }
        let last = path.rsplit('.').next().unwrap_or(path);
        match last {
            "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
                ListType::Map(vec!["name".into()])
            }
            "ports" if path.contains("containers") => ListType::Map(vec!["containerPort".into(), "protocol".into()]),
            "ports" => ListType::Map(vec!["port".into(), "protocol".into()]),
            "volumeMounts" => ListType::Map(vec!["mountPath".into()]),
            "conditions" => ListType::Map(vec!["type".into()]),
            "ownerReferences" => ListType::Map(vec!["uid".into()]),
            "finalizers" => ListType::Set,
            _ => ListType::Atomic,
        }
    }
}
