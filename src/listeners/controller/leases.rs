//! Lease writes: each [`Move`] of the assigner as one conditional API call, and how a
//! successful assignment is reported.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::Stats;
use crate::api::listenerset::lease::pod_owner_reference;
use crate::api::listenerset::{
    lease_name, CONFIG_ANNOTATION, EVENT_ASSIGNED, EVENT_HANDOVER, EVENT_LEASE_RECREATED, EVENT_TAKEOVER,
    LISTENERSET_LABEL, LISTENER_LABEL, RELEASE_REQUESTED_ANNOTATION,
};
use crate::error::is_status;
use crate::events::Severity as EventType;
use crate::listeners::assigner::Move;
use crate::listeners::decide::Kind;

/// `(reason, note, type)` of the Event for an assignment of `listener` to `pod`; counts
/// handovers and takeovers.
pub(super) fn assignment_event(
    kind: &Kind,
    listener: &str,
    pod: &str,
    transitions: i32,
    stats: &Stats,
) -> (&'static str, String, EventType) {
    match kind {
        Kind::Assigned => (
            EVENT_ASSIGNED,
            format!("listener {listener} assigned to pod {pod} (fencing token {transitions})"),
            EventType::Normal,
        ),
        Kind::Handover => {
            stats.handovers.fetch_add(1, Ordering::Relaxed);
            (
                EVENT_HANDOVER,
                format!("listener {listener} handed over to pod {pod} (fencing token {transitions})"),
                EventType::Normal,
            )
        }
        Kind::Recreated => (
            EVENT_LEASE_RECREATED,
            format!(
                "the Lease of listener {listener} was deleted while pod {pod} may still run it: recreated for \
                 {pod} (fencing token {transitions}), so no other pod starts it"
            ),
            EventType::Warning,
        ),
        Kind::Takeover { why, .. } => {
            stats.takeovers.fetch_add(1, Ordering::Relaxed);
            (
                EVENT_TAKEOVER,
                format!("listener {listener} taken over by pod {pod} (fencing token {transitions}): {why}"),
                EventType::Warning,
            )
        }
    }
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// What a [`Move`] is applied with: the set's Lease API and name, the Lease the move was
/// decided from (if the cache shows one), the listener's config reference, and the set's
/// default lease duration.
pub(super) struct Target<'a> {
    pub(super) api: &'a Api<Lease>,
    pub(super) ns: &'a str,
    pub(super) set: &'a str,
    pub(super) lease: Option<Arc<Lease>>,
    pub(super) config: Option<String>,
    pub(super) default_duration: i32,
}

/// Apply one move as one conditional API call; the Lease it made (`None` for a delete, or when
/// there was nothing to write).
pub(super) async fn apply_move(t: Target<'_>, m: &Move, stats: &Stats) -> Result<Option<Lease>, kube::Error> {
    match m {
        Move::Assign {
            listener,
            pod,
            pod_uid,
            from_resource_version,
            transitions,
        } => {
            let spec = assignment_spec(pod, *transitions, t.default_duration);
            let owner = pod_owner_reference(pod, pod_uid);
            match (&t.lease, from_resource_version) {
                (Some(l), Some(rv)) => {
                    let written = reassign(&t, &lease_name_of(l), listener, rv, spec, owner).await?;
                    stats.lease_updates.fetch_add(1, Ordering::Relaxed);
                    Ok(Some(written))
                }
                _ => {
                    let written = create(&t, listener, spec, owner).await?;
                    stats.lease_creates.fetch_add(1, Ordering::Relaxed);
                    Ok(Some(written))
                }
            }
        }
        Move::RequestRelease {
            resource_version,
            reason,
            ..
        } => {
            let Some(lease) = t.lease else { return Ok(None) };
            // A patch, conditional on the resourceVersion: unlike a PUT it never recreates a
            // Lease deleted meanwhile (Leases allow create on update).
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": resource_version,
                    "annotations": {RELEASE_REQUESTED_ANNOTATION: reason.as_str()},
                },
            });
            let written = t
                .api
                .patch(&lease_name_of(&lease), &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            stats.release_requests.fetch_add(1, Ordering::Relaxed);
            Ok(Some(written))
        }
        Move::DeleteLease { resource_version, .. } => {
            let Some(lease) = t.lease else { return Ok(None) };
            delete(t.api, &lease, resource_version).await?;
            stats.lease_deletes.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
    }
}

/// The spec of a new tenure: `pod` holds the Lease from now, with fencing token `transitions`.
fn assignment_spec(pod: &str, transitions: i32, duration: i32) -> LeaseSpec {
    let now = now_micro();
    LeaseSpec {
        holder_identity: Some(pod.to_string()),
        lease_duration_seconds: Some(duration),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// Give the existing Lease `name` to a new holder: a merge patch conditional on the
/// resourceVersion `rv` the decision read. 404 when the Lease was deleted meanwhile (a PUT would
/// create it again: Leases allow create on update), and the next reconcile decides again from
/// what it sees.
async fn reassign(
    t: &Target<'_>,
    name: &str,
    listener: &str,
    rv: &str,
    spec: LeaseSpec,
    owner: OwnerReference,
) -> Result<Lease, kube::Error> {
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": rv,
            "labels": {LISTENERSET_LABEL: t.set, LISTENER_LABEL: listener},
            "annotations": {
                RELEASE_REQUESTED_ANNOTATION: null,
                CONFIG_ANNOTATION: t.config,
            },
            "ownerReferences": [owner],
        },
        // Every field of the spec: those this write does not set are cleared.
        "spec": {
            "holderIdentity": spec.holder_identity,
            "leaseDurationSeconds": spec.lease_duration_seconds,
            "acquireTime": spec.acquire_time,
            "renewTime": spec.renew_time,
            "leaseTransitions": spec.lease_transitions,
            "preferredHolder": null,
            "strategy": null,
        },
    });
    t.api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await
}

/// Create the Lease of `listener` (409 AlreadyExists when someone else did first).
async fn create(t: &Target<'_>, listener: &str, spec: LeaseSpec, owner: OwnerReference) -> Result<Lease, kube::Error> {
    let l = Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(t.set, listener)),
            namespace: Some(t.ns.to_string()),
            labels: Some(BTreeMap::from([
                (LISTENERSET_LABEL.into(), t.set.into()),
                (LISTENER_LABEL.into(), listener.to_string()),
            ])),
            annotations: t
                .config
                .clone()
                .map(|c| BTreeMap::from([(CONFIG_ANNOTATION.into(), c)])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(spec),
    };
    t.api.create(&PostParams::default(), &l).await
}

/// Delete `lease`, on the precondition that it is still at `rv` (already gone is fine).
async fn delete(api: &Api<Lease>, lease: &Lease, rv: &str) -> Result<(), kube::Error> {
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: Some(rv.to_string()),
            uid: lease.metadata.uid.clone(),
        }),
        ..Default::default()
    };
    match api.delete(&lease_name_of(lease), &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

fn lease_name_of(l: &Lease) -> String {
    l.metadata.name.clone().unwrap_or_default()
}
