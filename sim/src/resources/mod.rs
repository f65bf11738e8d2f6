//! The resource types the server serves: built-in kinds and those defined by CRDs,
//! and the discovery documents (legacy and aggregated) that describe them.

use serde_json::Value;

mod builtin;
pub mod discovery;
mod registry;
pub mod views;

pub use builtin::builtins;
pub use registry::Registry;

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
    pub view: Option<views::View>,
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

    /// The verbs discovery lists for this resource (see [`discovery::verbs`]).
    pub fn verbs(&self) -> Vec<&'static str> {
        discovery::verbs(self)
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
