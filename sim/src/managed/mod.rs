//! Server-side apply and `metadata.managedFields`, modelled on kube-apiserver's fieldmanager
//! and sigs.k8s.io/structured-merge-diff (SMD), simplified.
//!
//! Field sets are sets of paths; a path is a list of path elements (`f:<field>`,
//! `k:<key json>` for items of map-lists, `v:<value json>` for items of set-lists,
//! `i:<index>`). A path in a set means the field (or list item) at that path is owned.
//! They are stored in `managedFields[].fieldsV1` in the real encoding, with `"."` marking a
//! node that is owned itself and also has owned children.
//!
//! Schema knowledge is limited to what the caller gives through [`ListTypes`]: how lists
//! merge, and (optionally) which maps are atomic. Everything else is a granular map.
//!
//! `apply` and `update` are the two kinds of write; they build on `fieldset` (paths and the
//! fields a value sets), `compare` (what a write changes), `merge` (applying a configuration)
//! and `encoding` (the `managedFields` entries).

mod apply;
mod compare;
mod encoding;
mod fieldset;
mod merge;
mod update;

pub use apply::{apply, conflict_message, print_manager, unchanged_last_applied};
pub use update::record_update;

/// How lists are treated at a path: atomic (replace whole), map keyed by fields, or set (primitive values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Map(Vec<String>),
    Set,
}

/// Caller-supplied schema information, looked up by dotted path without indices,
/// e.g. "spec.template.spec.containers" or "metadata.finalizers".
pub trait ListTypes {
    /// List type of the list at `path`.
    fn list_type(&self, path: &str) -> ListType;
    /// Whether the object at `path` is atomic (`x-kubernetes-map-type: atomic`,
    /// `+structType=atomic`, e.g. a Deployment's `spec.selector`): owned and replaced as a
    /// whole. Defaults to granular.
    fn map_is_atomic(&self, _path: &str) -> bool {
        false
    }
    /// Whether the object is a custom resource (unstructured: its top-level `spec` and
    /// `status` are owned like other fields). Defaults to a built-in kind.
    fn custom(&self) -> bool {
        false
    }
}

/// One field that an apply would take from another manager.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The field, like `.spec.replicas` or `.spec.containers[name="c"].image`.
    pub field: String,
    /// The other manager's operation: "Apply" or "Update" (the real message then says
    /// `using <apiVersion>`).
    pub operation: String,
    /// The other manager's API version ("" for the request's) and subresource.
    pub api_version: String,
    pub subresource: Option<String>,
}

#[cfg(test)]
mod tests;
