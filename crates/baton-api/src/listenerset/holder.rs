//! Which pod a Lease belongs to, told the same way on both kinds of Lease: a listener Lease
//! ([`super::lease`]) names the pod assigned its listener, a liveness Lease
//! ([`super::liveness`]) the pod whose agent it keeps alive. Either carries the pod's Pod
//! ownerReference (uid included, so the pod's deletion takes the Lease along) and its uid in
//! [`HOLDER_UID_LABEL`].

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Label on a pod's liveness Lease and on every listener Lease assigned to the pod: the pod's uid.
/// An agent watches exactly the Leases with its own uid here, so a change to another pod's
/// listeners never reaches it.
pub const HOLDER_UID_LABEL: &str = "baton.dev/holder-uid";

/// The Lease's Pod ownerReference (the holder the controller assigned).
pub fn owner_pod(lease: &Lease) -> Option<&OwnerReference> {
    lease
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Pod" && o.api_version == "v1")
}

/// The ownerReference that ties a Lease to its holder pod (so the pod's deletion takes it along).
pub fn pod_owner_reference(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: name.to_string(),
        uid: uid.to_string(),
        ..Default::default()
    }
}
