//! Lease writes: each [`Move`] of a decision as one conditional API call (two for a delete), each
//! [`Fence`] as one, and the liveness Leases of new pods.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use super::Stats;
use crate::api::listenerset::lease::{handover, pod_owner_reference, CachedLease};
use crate::api::listenerset::liveness::{
    liveness_lease_name, FENCED_ANNOTATION, HOLDER_UID_LABEL, LIVENESS_LABEL, LIVENESS_LABEL_VALUE,
};
use crate::api::listenerset::{
    lease_name, CONFIG_ANNOTATION, CONFIG_VERSION_ANNOTATION, HANDED_OVER_FROM_ANNOTATION, LEASE_FINALIZER,
    LISTENERSET_LABEL, LISTENER_LABEL, PROTOCOL_ANNOTATION, PROTOCOL_VERSION, RELEASE_REQUESTED_ANNOTATION,
    RELEASE_TO_ANNOTATION,
};
use crate::error::is_status;
use crate::listeners::assigner::{Move, ReleaseReason, Successor};
use crate::listeners::decide::Fence;

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// What a [`Move`] is applied with: the set's Lease API and name, the Lease the move was
/// decided from (if the cache shows one), the listener's config reference and the version of its
/// Secret that reference was resolved from, and the set's default lease duration.
pub(super) struct Target<'a> {
    pub(super) api: &'a Api<Lease>,
    pub(super) ns: &'a str,
    pub(super) set: &'a str,
    pub(super) lease: Option<Arc<CachedLease>>,
    pub(super) config: Option<String>,
    pub(super) config_version: Option<String>,
    pub(super) default_duration: i32,
}

/// Apply one move; the Lease it made (`None` for a delete, or when there was nothing to write),
/// as the cache holds it (the API server answers every write with the whole Lease, its
/// `managedFields` included: kept for a burst of 10,000 writes they were most of the
/// controller's memory).
pub(super) async fn apply_move(t: Target<'_>, m: &Move, stats: &Stats) -> Result<Option<CachedLease>, kube::Error> {
    Ok(write_move(t, m, stats).await?.map(CachedLease::from))
}

async fn write_move(t: Target<'_>, m: &Move, stats: &Stats) -> Result<Option<Lease>, kube::Error> {
    let name = t.lease.as_ref().and_then(|l| l.metadata.name.clone());
    match (m, name) {
        (
            Move::Assign {
                listener,
                pod,
                pod_uid,
                from_resource_version: Some(rv),
                transitions,
            },
            Some(name),
        ) => {
            let written = reassign(&t, &name, listener, rv, (pod, pod_uid), *transitions).await?;
            stats.lease_updates.fetch_add(1, Ordering::Relaxed);
            Ok(Some(written))
        }
        (
            Move::Assign {
                listener,
                pod,
                pod_uid,
                transitions,
                ..
            },
            _,
        ) => {
            let written = create(&t, listener, (pod, pod_uid), *transitions).await?;
            stats.lease_creates.fetch_add(1, Ordering::Relaxed);
            Ok(Some(written))
        }
        (
            Move::RequestRelease {
                resource_version,
                reason,
                to,
                ..
            },
            Some(name),
        ) => {
            let patch = request_patch(&t, resource_version, *reason, to.as_ref());
            let written = merge(t.api, &name, &patch).await?;
            stats.release_requests.fetch_add(1, Ordering::Relaxed);
            Ok(Some(written))
        }
        (Move::DeleteLease { resource_version, .. }, Some(name)) => {
            // Let go of the finalizer first (conditional), then delete that very version.
            let patched = remove_finalizer(t.api, t.lease.as_deref(), &name, resource_version).await?;
            let rv = patched.resource_version.unwrap_or_default();
            delete(t.api, &name, patched.uid, &rv).await?;
            stats.lease_deletes.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
        (Move::RemoveFinalizer { resource_version, .. }, Some(name)) => {
            remove_finalizer(t.api, t.lease.as_deref(), &name, resource_version).await?;
            stats.lease_deletes.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
        (
            Move::Adopt {
                resource_version,
                holder_uid,
                ..
            },
            Some(name),
        ) => {
            let mut finalizers = t
                .lease
                .as_ref()
                .map(|l| l.metadata.finalizers.clone().unwrap_or_default())
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == LEASE_FINALIZER) {
                finalizers.push(LEASE_FINALIZER.to_string());
            }
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": resource_version,
                    "finalizers": finalizers,
                    "labels": {HOLDER_UID_LABEL: holder_uid},
                    "annotations": {PROTOCOL_ANNOTATION: PROTOCOL_VERSION},
                },
            });
            let written = merge(t.api, &name, &patch).await?;
            stats.lease_updates.fetch_add(1, Ordering::Relaxed);
            Ok(Some(written))
        }
        // A move about a Lease the cache no longer shows: nothing to write.
        (_, None) => Ok(None),
    }
}

/// The release request's patch, conditional on `rv`: the reason and, handing the listener to a
/// successor, that pod and the listener's config as the controller's assignment would name it
/// now (the successor's tenure comes from this copy).
fn request_patch(t: &Target<'_>, rv: &str, reason: ReleaseReason, to: Option<&Successor>) -> serde_json::Value {
    let mut annotations = serde_json::json!({RELEASE_REQUESTED_ANNOTATION: reason.as_str()});
    if let Some(s) = to {
        annotations[RELEASE_TO_ANNOTATION] = handover::value(&s.pod, &s.uid).into();
        annotations[CONFIG_ANNOTATION] = serde_json::json!(t.config);
        annotations[CONFIG_VERSION_ANNOTATION] = serde_json::json!(t.config.as_ref().and(t.config_version.as_ref()));
    }
    serde_json::json!({"metadata": {"resourceVersion": rv, "annotations": annotations}})
}

async fn merge(api: &Api<Lease>, name: &str, patch: &serde_json::Value) -> Result<Lease, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await
}

/// Every field of a new tenure's spec: `pod` holds the Lease from now, with fencing token
/// `transitions` (the agents' handovers write the same, [`handover::tenure`]).
fn tenure(pod: &str, transitions: i32, duration: i32) -> serde_json::Value {
    handover::tenure(pod, transitions, duration, &now_micro())
}

/// Give the existing Lease `name` to a new holder: a merge patch conditional on the
/// resourceVersion `rv` the decision read. 404 when the Lease was deleted meanwhile (a PUT would
/// create it again: Leases allow create on update), and the next reconcile decides again.
async fn reassign(
    t: &Target<'_>,
    name: &str,
    listener: &str,
    rv: &str,
    (pod, uid): (&str, &str),
    transitions: i32,
) -> Result<Lease, kube::Error> {
    let mut finalizers = t
        .lease
        .as_ref()
        .and_then(|l| l.metadata.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == LEASE_FINALIZER) {
        finalizers.push(LEASE_FINALIZER.to_string());
    }
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": rv,
            "labels": {LISTENERSET_LABEL: t.set, LISTENER_LABEL: listener, HOLDER_UID_LABEL: uid},
            "annotations": {
                RELEASE_REQUESTED_ANNOTATION: null,
                RELEASE_TO_ANNOTATION: null,
                HANDED_OVER_FROM_ANNOTATION: null,
                CONFIG_ANNOTATION: t.config,
                CONFIG_VERSION_ANNOTATION: t.config.as_ref().and(t.config_version.as_ref()),
                PROTOCOL_ANNOTATION: PROTOCOL_VERSION,
            },
            "ownerReferences": [pod_owner_reference(pod, uid)],
            "finalizers": finalizers,
        },
        "spec": tenure(pod, transitions, t.default_duration),
    });
    merge(t.api, name, &patch).await
}

/// Create the Lease of `listener` (409 AlreadyExists when someone else did first).
async fn create(
    t: &Target<'_>,
    listener: &str,
    (pod, uid): (&str, &str),
    transitions: i32,
) -> Result<Lease, kube::Error> {
    let mut annotations = BTreeMap::from([(PROTOCOL_ANNOTATION.to_string(), PROTOCOL_VERSION.to_string())]);
    if let Some(c) = &t.config {
        annotations.insert(CONFIG_ANNOTATION.into(), c.clone());
        if let Some(v) = &t.config_version {
            annotations.insert(CONFIG_VERSION_ANNOTATION.into(), v.clone());
        }
    }
    let spec: LeaseSpec = serde_json::from_value(tenure(pod, transitions, t.default_duration)).unwrap_or_default();
    let l = Lease {
        metadata: ObjectMeta {
            name: Some(lease_name(t.set, listener)),
            namespace: Some(t.ns.to_string()),
            labels: Some(BTreeMap::from([
                (LISTENERSET_LABEL.into(), t.set.into()),
                (LISTENER_LABEL.into(), listener.to_string()),
                (HOLDER_UID_LABEL.into(), uid.to_string()),
            ])),
            annotations: Some(annotations),
            owner_references: Some(vec![pod_owner_reference(pod, uid)]),
            finalizers: Some(vec![LEASE_FINALIZER.to_string()]),
            ..Default::default()
        },
        spec: Some(spec),
    };
    t.api.create(&PostParams::default(), &l).await
}

/// Remove [`LEASE_FINALIZER`] from Lease `name`, conditional on `rv`; the metadata it has then.
/// A Lease being deleted goes with it; one without the finalizer is left as it is (answered as
/// read).
async fn remove_finalizer(
    api: &Api<Lease>,
    read: Option<&CachedLease>,
    name: &str,
    rv: &str,
) -> Result<ObjectMeta, kube::Error> {
    let as_read = || read.map(|l| ObjectMeta::from(&l.metadata)).unwrap_or_default();
    let finalizers: Vec<String> = read.and_then(|l| l.metadata.finalizers.clone()).unwrap_or_default();
    if !finalizers.iter().any(|f| f == LEASE_FINALIZER) {
        return Ok(as_read());
    }
    let kept: Vec<String> = finalizers.into_iter().filter(|f| f != LEASE_FINALIZER).collect();
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": rv, "finalizers": (!kept.is_empty()).then_some(kept)},
    });
    match merge(api, name, &patch).await {
        Ok(l) => Ok(l.metadata),
        // Its last finalizer gone, a Lease being deleted is gone too.
        Err(e) if is_status(&e, 404) => Ok(as_read()),
        Err(e) => Err(e),
    }
}

/// Delete Lease `name` of uid `uid`, on the precondition that it is still at `rv` (already gone
/// is fine).
async fn delete(api: &Api<Lease>, name: &str, uid: Option<String>, rv: &str) -> Result<(), kube::Error> {
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: (!rv.is_empty()).then(|| rv.to_string()),
            uid,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// End a pod's liveness registration: clear the holder of its liveness Lease on the copy judged
/// (409 if its agent wrote since), or create it fenced when it has none (409 if it exists).
pub(super) async fn fence(api: &Api<Lease>, ns: &str, f: &Fence) -> Result<Lease, kube::Error> {
    let mut l = write_fence(api, ns, f).await?;
    l.metadata.managed_fields = None;
    Ok(l)
}

async fn write_fence(api: &Api<Lease>, ns: &str, f: &Fence) -> Result<Lease, kube::Error> {
    let at = jiff::Timestamp::now().to_string();
    match &f.lease {
        Some((name, rv)) => {
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": rv, "annotations": {FENCED_ANNOTATION: at}},
                "spec": {"holderIdentity": null},
            });
            merge(api, name, &patch).await
        }
        None => {
            let mut l = liveness_lease(ns, &f.pod, &f.uid);
            l.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(FENCED_ANNOTATION.into(), at);
            api.create(&PostParams::default(), &l).await
        }
    }
}

/// The liveness Lease of pod `pod` (uid `uid`), unregistered.
pub(super) fn liveness_lease(ns: &str, pod: &str, uid: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(liveness_lease_name(uid)),
            namespace: Some(ns.to_string()),
            labels: Some(BTreeMap::from([
                (LIVENESS_LABEL.into(), LIVENESS_LABEL_VALUE.into()),
                (HOLDER_UID_LABEL.into(), uid.to_string()),
            ])),
            annotations: Some(BTreeMap::from([(
                PROTOCOL_ANNOTATION.to_string(),
                PROTOCOL_VERSION.to_string(),
            )])),
            owner_references: Some(vec![pod_owner_reference(pod, uid)]),
            ..Default::default()
        },
        spec: Some(LeaseSpec::default()),
    }
}
