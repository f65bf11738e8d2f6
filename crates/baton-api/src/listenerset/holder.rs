//! Which pod a Lease belongs to, told the same way on both kinds of Lease: a listener Lease
//! ([`super::lease`]) names the pod assigned its listener, a liveness Lease
//! ([`super::liveness`]) the pod whose agent it keeps alive. Either carries the pod's Pod
//! ownerReference (uid included, so the pod's deletion takes the Lease along) and its uid in
//! [`HOLDER_UID_LABEL`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::lease::LeaseFields;

/// Label on a pod's liveness Lease and on every listener Lease assigned to the pod: the pod's uid.
/// An agent watches exactly the Leases with its own uid here, so a change to another pod's
/// listeners never reaches it.
pub const HOLDER_UID_LABEL: &str = "baton.dev/holder-uid";

/// A Lease's Pod ownerReference: the pod's name and uid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodOwner<'a> {
    pub name: &'a str,
    pub uid: &'a str,
}

/// The Lease's Pod ownerReference (the holder the controller assigned): its first ownerReference
/// of kind `Pod`, API version `v1`.
pub fn owner_pod<L: LeaseFields + ?Sized>(lease: &L) -> Option<PodOwner<'_>> {
    lease.pod_owner()
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
