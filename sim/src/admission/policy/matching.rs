//! Whether a policy or binding applies to a request (k8s.io/apiserver admission/plugin/policy
//! matching, webhook rules, namespace and object matchers): namespace selector (cluster-scoped
//! requests other than namespaces always match), object selector (old or new labels), excluded
//! rules, then resource rules by operation, group, version, resource/subresource, scope and
//! resource names. An empty rule list matches everything.

use std::collections::BTreeMap;

use serde_json::Value;

use super::compile::{MatchResources, Rule};
use crate::admission::Attributes;

fn has_or_star(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == "*" || x == s)
}

fn labels_of(v: Option<&Value>) -> Option<BTreeMap<String, String>> {
    let labels = v?.pointer("/metadata/labels").and_then(Value::as_object);
    Some(
        labels
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn rule_matches(r: &Rule, a: &Attributes) -> bool {
    let scope = match r.scope.as_str() {
        "Cluster" => a.namespace.is_empty(),
        "Namespaced" => !a.namespace.is_empty(),
        _ => true,
    };
    let resource = r.resources.iter().any(|res| {
        let (res, sub) = res.split_once('/').unwrap_or((res.as_str(), ""));
        (res == "*" || res == a.rt.plural) && (sub == "*" || sub == a.subresource)
    });
    let named = r.resource_names.is_empty() || r.resource_names.iter().any(|n| n == a.name);
    scope
        && has_or_star(&r.operations, a.operation)
        && has_or_star(&r.api_groups, &a.rt.group)
        && has_or_star(&r.api_versions, &a.rt.version)
        && resource
        && named
}

/// Whether `m` selects the request `a` (`namespace_labels`: the labels of its namespace).
pub fn matches(m: &MatchResources, a: &Attributes, namespace_labels: Option<&BTreeMap<String, String>>) -> bool {
    if let Some(sel) = &m.namespace_selector {
        let cluster_scoped = a.namespace.is_empty() && a.rt.plural != "namespaces";
        if !cluster_scoped && !sel.is_empty() {
            let empty = BTreeMap::new();
            if !sel.matches(namespace_labels.unwrap_or(&empty)) {
                return false;
            }
        }
    }
    if let Some(sel) = &m.object_selector {
        if !sel.is_empty() {
            let hit = |v: Option<&Value>| labels_of(v).is_some_and(|l| sel.matches(&l));
            if !hit(a.object) && !hit(a.old_object) {
                return false;
            }
        }
    }
    if m.exclude.iter().any(|r| rule_matches(r, a)) {
        return false;
    }
    m.rules.is_empty() || m.rules.iter().any(|r| rule_matches(r, a))
}
