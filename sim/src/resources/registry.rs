//! The set of served resource types, and the discovery documents (legacy and aggregated) that
//! describe them.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{builtins, discovery, ResourceType, ScaleSpec};

/// The set of served resource types.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    /// (group, version, plural) → type
    types: BTreeMap<(String, String, String), Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        for t in builtins() {
            r.insert(t);
        }
        r
    }

    pub fn insert(&mut self, t: ResourceType) {
        self.types
            .insert((t.group.clone(), t.version.clone(), t.plural.clone()), Arc::new(t));
    }

    /// Remove every version of a group/plural (a deleted CRD).
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.types.retain(|(g, _, p), _| !(g == group && p == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Any served version of a group/plural (internal writers use this).
    pub fn any_version(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Group → versions served, core group first as `""`.
    fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let vs = g.entry(t.group.clone()).or_default();
            if !vs.contains(&t.version) {
                vs.push(t.version.clone());
            }
        }
        g
    }

    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types.keys().any(|(g, v, _)| g == group && v == version)
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.types.keys().any(|(g, _, _)| g == group)
    }

    /// Legacy `GET /api`.
    pub fn api_versions(&self) -> Value {
        json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
    }

    fn group_json(group: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        let preferred = vs.first().cloned().unwrap_or(Value::Null);
        json!({"name": group, "versions": vs, "preferredVersion": preferred})
    }

    /// Legacy `GET /apis`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .ordered_groups()
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, vs)| Self::group_json(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// The groups in the order kube-apiserver lists them ([`discovery::group_rank`]).
    fn ordered_groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = self.groups().into_iter().collect();
        groups.sort_by_key(|(g, _)| discovery::group_rank(g));
        groups
    }

    /// Legacy `GET /apis/<group>`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let groups = self.groups();
        let vs = groups.get(group)?;
        let mut v = Self::group_json(group, vs);
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), json!("APIGroup"));
            o.insert("apiVersion".into(), json!("v1"));
        }
        Some(v)
    }

    /// Legacy `GET /api/v1` or `/apis/<g>/<v>`.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        if !self.has_group_version(group, version) {
            return None;
        }
        let mut resources: Vec<Value> = Vec::new();
        let mut custom = false;
        for t in self.types.values().filter(|t| t.group == group && t.version == version) {
            custom |= t.custom;
            resources.extend(discovery::legacy_entries(t));
        }
        // A built-in group version's list is sorted by name, subresources included;
        // apiextensions-apiserver writes each custom resource followed by its subresources.
        if !custom {
            resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2`) for `/api` (core) or `/apis` (all groups).
    pub fn aggregated(&self, core: bool) -> Value {
        let mut items = Vec::new();
        for (group, versions) in self.ordered_groups() {
            if core != group.is_empty() {
                continue;
            }
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = self
                        .types
                        .values()
                        .filter(|t| t.group == group && &t.version == v)
                        .map(|t| discovery::aggregated_entry(t))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            items.push(json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": vs}));
        }
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
    }

    /// The resource types a CRD object defines (one per served version); Err names what is wrong.
    pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
        let spec = crd.get("spec").ok_or("spec is required")?;
        let group = spec
            .get("group")
            .and_then(Value::as_str)
            .ok_or("spec.group is required")?;
        let names = spec.get("names").ok_or("spec.names is required")?;
        let plural = names
            .get("plural")
            .and_then(Value::as_str)
            .ok_or("spec.names.plural is required")?;
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("spec.names.kind is required")?;
        let singular = names
            .get("singular")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase());
        let str_list = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let short_names = str_list(names.get("shortNames"));
        let categories = str_list(names.get("categories"));
        let namespaced = match spec.get("scope").and_then(Value::as_str) {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            _ => return Err("spec.scope must be Namespaced or Cluster".into()),
        };
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .filter(|v| !v.is_empty())
            .ok_or("spec.versions must have at least one version")?;
        let mut out = Vec::new();
        for v in versions {
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or("spec.versions[].name is required")?;
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let subs = v.get("subresources");
            let status = subs.and_then(|s| s.get("status")).is_some();
            let scale = subs.and_then(|s| s.get("scale")).map(|s| ScaleSpec {
                spec_replicas_path: s
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas_path: s
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .to_string(),
                label_selector_path: s.get("labelSelectorPath").and_then(Value::as_str).map(str::to_string),
            });
            out.push(ResourceType {
                group: group.to_string(),
                version: name.to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                kind: kind.to_string(),
                namespaced,
                short_names: short_names.clone(),
                categories: categories.clone(),
                status_subresource: status,
                scale,
                printer_columns: v.get("additionalPrinterColumns").cloned(),
                schema: v.get("schema").and_then(|s| s.get("openAPIV3Schema")).cloned(),
                cel: v
                    .pointer("/schema/openAPIV3Schema")
                    .and_then(crate::cel::Validator::new)
                    .map(std::sync::Arc::new),
                custom: true,
                tracks_generation: true,
                field_labels: &[],
                view: None,
                create_only: false,
            });
        }
        Ok(out)
    }
}
