//! The resource types the server serves: built-in kinds and those defined by CRDs,
//! and the discovery documents (legacy and aggregated) that describe them.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

/// `scale` subresource paths of a CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// Everything the server knows about one resource (one group/version/plural).
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScaleSpec>,
    /// CRD `additionalPrinterColumns` (None for built-ins).
    pub printer_columns: Option<Value>,
    /// CRD `openAPIV3Schema` (None for built-ins).
    pub schema: Option<Value>,
    /// The schema's compiled CEL rules (None for built-ins and schemas without rules).
    pub cel: Option<std::sync::Arc<crate::cel::Validator>>,
    /// Defined by a CRD: no strategic merge patch, schema validation applies.
    pub custom: bool,
    /// Whether `metadata.generation` is maintained.
    pub tracks_generation: bool,
    /// Extra field selector labels this resource supports beyond metadata.name/namespace.
    pub field_labels: &'static [&'static str],
    /// A second view of another resource's objects (events.k8s.io/v1 Events).
    pub view: Option<crate::views::View>,
    /// Create-only APIs whose objects are answers, never stored (SelfSubjectAccessReview,
    /// TokenReview, ...).
    pub create_only: bool,
}

impl ResourceType {
    /// Storage key: objects are stored once per group and plural, whatever version is asked.
    pub fn key(&self) -> ResKey {
        if let Some(v) = self.view {
            let (group, plural) = v.storage();
            return ResKey {
                group: group.into(),
                plural: plural.into(),
            };
        }
        ResKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `leases.coordination.k8s.io`: the name errors use.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Whether a DELETE that removes the object at once answers with the object rather than a
    /// `Status` (kube-apiserver's `ReturnDeletedObject` storage option).
    pub fn returns_deleted_object(&self) -> bool {
        self.group.is_empty()
            && matches!(
                self.plural.as_str(),
                "pods" | "services" | "serviceaccounts" | "namespaces"
            )
    }

    /// core/v1 ServiceAccounts (which have the `token` subresource).
    pub fn is_service_accounts(&self) -> bool {
        self.group.is_empty() && self.plural == "serviceaccounts"
    }

    pub fn supports_field(&self, field: &str) -> bool {
        field == "metadata.name"
            || (self.namespaced && field == "metadata.namespace")
            || self.field_labels.contains(&field)
    }
}

/// Where objects of a resource live in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResKey {
    pub group: String,
    pub plural: String,
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "reason",
    "reportingController",
    "type",
];
const SECRET_FIELDS: &[&str] = &["type"];
const NAMESPACE_FIELDS: &[&str] = &["status.phase"];
const NODE_FIELDS: &[&str] = &["spec.unschedulable"];

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
    fields: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if ["pods", "services", "deployments", "jobs"].contains(&plural) {
            vec!["all".into()]
        } else {
            vec![]
        },
        status_subresource: status,
        scale: None,
        printer_columns: None,
        schema: None,
        cel: None,
        custom: false,
        tracks_generation: generation,
        field_labels: fields,
        view: None,
        create_only: false,
    }
}

/// A create-only review API of `group`/v1.
fn review(group: &str, plural: &str, kind: &str, namespaced: bool) -> ResourceType {
    let mut t = builtin(group, "v1", plural, kind, namespaced, &[], false, false, &[]);
    t.create_only = true;
    t
}

/// The built-in resources the simulator serves.
pub fn builtins() -> Vec<ResourceType> {
    let mut v = vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
            NAMESPACE_FIELDS,
        ),
        builtin("", "v1", "pods", "Pod", true, &["po"], true, true, POD_FIELDS),
        builtin("", "v1", "secrets", "Secret", true, &[], false, false, SECRET_FIELDS),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false, false, &[]),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
            &[],
        ),
        builtin("", "v1", "services", "Service", true, &["svc"], true, false, &[]),
        builtin("", "v1", "events", "Event", true, &["ev"], false, false, EVENT_FIELDS),
        builtin("", "v1", "nodes", "Node", false, &["no"], true, false, NODE_FIELDS),
        builtin(
            "",
            "v1",
            "componentstatuses",
            "ComponentStatus",
            false,
            &["cs"],
            false,
            false,
            &[],
        ),
        builtin(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "APIService",
            false,
            &[],
            true,
            false,
            &[],
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
            false,
            &[],
        ),
        builtin(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
            &[],
        ),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
            &[],
        ),
        builtin("batch", "v1", "jobs", "Job", true, &[], true, true, &[]),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
            false,
            EVENTS_V1_FIELDS,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            true,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
            &[],
        ),
        builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
            true,
            &[],
        ),
        builtin(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            false,
            &[],
            true,
            true,
            &[],
        ),
        builtin(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            false,
            &[],
            false,
            true,
            &[],
        ),
        review("authentication.k8s.io", "tokenreviews", "TokenReview", false),
        review(
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
            false,
        ),
        review(
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            true,
        ),
    ];
    for r in &mut v {
        if r.kind == "CustomResourceDefinition" {
            r.singular = "customresourcedefinition".into();
        }
        if r.group == "events.k8s.io" {
            r.view = Some(crate::views::View::EventsV1);
        }
        if r.plural == "componentstatuses" {
            r.singular = "componentstatus".into();
        }
        if r.plural == "apiservices" {
            r.singular = "apiservice".into();
        }
        if r.plural == "controllerrevisions" {
            r.singular = "controllerrevision".into();
        }
        if r.plural.starts_with("validatingadmissionpolic") {
            r.singular = r.kind.to_lowercase();
        }
    }
    v
}

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
            .groups()
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, vs)| Self::group_json(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
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
        let mut resources = Vec::new();
        for t in self.types.values().filter(|t| t.group == group && t.version == version) {
            let mut r = json!({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind, "verbs": t.verbs(),
            });
            if let Some(o) = r.as_object_mut() {
                if !t.short_names.is_empty() {
                    o.insert("shortNames".into(), json!(t.short_names));
                }
                if !t.categories.is_empty() {
                    o.insert("categories".into(), json!(t.categories));
                }
            }
            resources.push(r);
            if t.status_subresource {
                resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
            }
            if t.scale.is_some() {
                resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
            }
            if t.is_service_accounts() {
                resources.push(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
            }
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
        for (group, versions) in self.groups() {
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
                        .map(|t| {
                            let mut subs = Vec::new();
                            if t.status_subresource {
                                subs.push(json!({"subresource": "status", "responseKind": {"group": t.group, "version": t.version, "kind": t.kind}, "verbs": ["get", "patch", "update"]}));
                            }
                            if t.scale.is_some() {
                                subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                            }
                            if t.is_service_accounts() {
                                subs.push(json!({"subresource": "token", "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}, "verbs": ["create"]}));
                            }
                            let mut r = json!({
                                "resource": t.plural,
                                "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular,
                                "verbs": t.verbs(),
                                "subresources": subs,
                            });
                            if let Some(o) = r.as_object_mut() {
                                if !t.short_names.is_empty() {
                                    o.insert("shortNames".into(), json!(t.short_names));
                                }
                                if !t.categories.is_empty() {
                                    o.insert("categories".into(), json!(t.categories));
                                }
                            }
                            r
                        })
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
