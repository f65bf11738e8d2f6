//! A handover written by the agent that lets a listener go: when the controller's release
//! request names the listener's successor ([`RELEASE_TO_ANNOTATION`]), the holder's agent, once
//! its application stopped the listener, gives the Lease to that pod in the same conditional
//! write that would have released it. The write is the controller's assignment word for word
//! (a new tenure, [`tenure`]: the successor as holder, its Pod ownerReference and uid label, the
//! next fencing token, `acquireTime = renewTime`), so everything after it — the successor's
//! acknowledgement, the controller's judgement of an unacknowledged assignment — is unchanged;
//! it saves the bare release, the controller's pass over it and its assignment write.
//!
//! Safe as the controller's assignment is: it is conditional on the copy that carries the
//! request, the listener was stopped before it is sent, and the controller raised the set's
//! token ceiling to the next token before it wrote the request. An agent that does not know the
//! annotation releases as before, and the controller assigns.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde_json::{json, Value};

use super::{fencing_token, is_terminating, pod_owner_reference, release_requested, LeaseFields};
use crate::listenerset::holder::HOLDER_UID_LABEL;
use crate::listenerset::{
    DEFAULT_LEASE_DURATION_SECONDS, HANDED_OVER_FROM_ANNOTATION, RELEASE_REQUESTED_ANNOTATION, RELEASE_TO_ANNOTATION,
};

/// The pod a release request hands the listener to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Successor<'a> {
    pub name: &'a str,
    pub uid: &'a str,
}

/// The value of [`RELEASE_TO_ANNOTATION`] naming pod `name` of uid `uid`.
pub fn value(name: &str, uid: &str) -> String {
    format!("{name}/{uid}")
}

/// The successor a pending release request names, if it names one (a pod name has no `/`; the
/// uid is what follows the first one; both must be there).
pub fn successor<L: LeaseFields + ?Sized>(lease: &L) -> Option<Successor<'_>> {
    release_requested(lease)?;
    let (name, uid) = lease.annotation(RELEASE_TO_ANNOTATION)?.split_once('/')?;
    (!name.is_empty() && !uid.is_empty()).then_some(Successor { name, uid })
}

/// Every field of a new tenure's spec: `pod` holds the Lease from `now`, with fencing token
/// `transitions`, for `duration` seconds. Fields the tenure does not set are cleared.
pub fn tenure(pod: &str, transitions: i32, duration: i32, now: &MicroTime) -> Value {
    json!({
        "holderIdentity": pod,
        "leaseDurationSeconds": duration,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": transitions,
        "preferredHolder": null,
        "strategy": null,
    })
}

/// The merge patch that hands `lease` (as read, the release request on it) to the successor it
/// names: conditional on its resourceVersion; the successor's Pod ownerReference in place of the
/// holder's (other owners kept), its uid label, the request's annotations removed (and
/// [`HANDED_OVER_FROM_ANNOTATION`] naming the holder that let it go), and a new
/// tenure with the next fencing token and the Lease's own duration. `None` when the request
/// names no successor, the Lease is being deleted (it is let go bare, and its listener gets a new
/// Lease) or the copy has no resourceVersion.
pub fn patch(lease: &Lease, now: &MicroTime) -> Option<Value> {
    if is_terminating(lease) {
        return None;
    }
    let to = successor(lease)?;
    let rv = lease.metadata.resource_version.as_deref()?;
    let mut owners: Vec<Value> = lease
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| !(o.kind == "Pod" && o.api_version == "v1"))
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    owners.push(serde_json::to_value(pod_owner_reference(to.name, to.uid)).ok()?);
    let duration = lease
        .lease_duration_seconds()
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_LEASE_DURATION_SECONDS);
    let token = fencing_token(lease).saturating_add(1);
    Some(json!({
        "metadata": {
            "resourceVersion": rv,
            "labels": {HOLDER_UID_LABEL: to.uid},
            "annotations": {
                RELEASE_REQUESTED_ANNOTATION: null,
                RELEASE_TO_ANNOTATION: null,
                HANDED_OVER_FROM_ANNOTATION: lease.holder_identity(),
            },
            "ownerReferences": owners,
        },
        "spec": tenure(to.name, token, duration, now),
    }))
}

#[cfg(test)]
mod tests;
