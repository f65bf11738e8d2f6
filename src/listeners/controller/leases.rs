//! Lease writes: each [`Move`] of the assigner as one conditional API call, and how a
//! successful assignment is reported.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
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
        Kind::Takeover(why) => {
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

#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_move(
    api: &Api<Lease>,
    ns: &str,
    set: &str,
    m: &Move,
    lease: Option<Arc<Lease>>,
    config: Option<String>,
    default_duration: i32,
    stats: &Stats,
) -> Result<(), kube::Error> {
    match m {
        Move::Assign {
            listener,
            pod,
            pod_uid,
            from_resource_version,
            transitions,
        } => {
            let now = now_micro();
            let spec = LeaseSpec {
                holder_identity: Some(pod.clone()),
                lease_duration_seconds: Some(default_duration),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(*transitions),
                ..Default::default()
            };
            let owner = pod_owner_reference(pod, pod_uid);
            match (&lease, from_resource_version) {
                (Some(l), Some(rv)) => {
                    // A merge patch conditional on the resourceVersion: 404 when the Lease was
                    // deleted meanwhile (a PUT would create it again: Leases allow create on
                    // update), and the next reconcile decides again from what it sees.
                    let patch = serde_json::json!({
                        "metadata": {
                            "resourceVersion": rv,
                            "labels": {LISTENERSET_LABEL: set, LISTENER_LABEL: listener},
                            "annotations": {
                                RELEASE_REQUESTED_ANNOTATION: null,
                                CONFIG_ANNOTATION: config,
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
                    api.patch(&lease_name_of(l), &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                    stats.lease_updates.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    let l = Lease {
                        metadata: ObjectMeta {
                            name: Some(lease_name(set, listener)),
                            namespace: Some(ns.to_string()),
                            labels: Some(BTreeMap::from([
                                (LISTENERSET_LABEL.into(), set.into()),
                                (LISTENER_LABEL.into(), listener.clone()),
                            ])),
                            annotations: config.map(|c| BTreeMap::from([(CONFIG_ANNOTATION.into(), c)])),
                            owner_references: Some(vec![owner]),
                            ..Default::default()
                        },
                        spec: Some(spec),
                    };
                    api.create(&PostParams::default(), &l).await?;
                    stats.lease_creates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Move::RequestRelease {
            resource_version,
            reason,
            ..
        } => {
            let Some(lease) = lease else { return Ok(()) };
            // A patch, conditional on the resourceVersion: unlike a PUT it never recreates a
            // Lease deleted meanwhile (Leases allow create on update).
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": resource_version,
                    "annotations": {RELEASE_REQUESTED_ANNOTATION: reason.as_str()},
                },
            });
            api.patch(&lease_name_of(&lease), &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            stats.release_requests.fetch_add(1, Ordering::Relaxed);
        }
        Move::DeleteLease { resource_version, .. } => {
            let Some(lease) = lease else { return Ok(()) };
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(resource_version.clone()),
                    uid: lease.metadata.uid.clone(),
                }),
                ..Default::default()
            };
            match api.delete(&lease_name_of(&lease), &dp).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e),
            }
            stats.lease_deletes.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn lease_name_of(l: &Lease) -> String {
    l.metadata.name.clone().unwrap_or_default()
}
