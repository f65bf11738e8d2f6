//! [`CachedPod`]: the part of a Pod the controllers decide from, and all their watch caches
//! hold. A `k8s_openapi` `Pod` is 2 KiB before any of its fields are filled (its `spec` is held
//! inline even when empty); this projection keeps the metadata that names, selects and owns
//! (labels, owner references, times, baton's annotations) and of the status the phase, the
//! Ready condition, the pod IP and each container's restarts and state. It is decoded straight
//! from the API server's JSON: the rest of the object is never held.
use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;

use super::Labels;

/// A Pod as the watch caches hold it (see the module). Read it with the methods here and
/// [`super::drain`] on its `metadata`. Its labels are in [`labels`](Self::labels), compacted,
/// not in `metadata` (whose `labels` is always `None`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(from = "RawPod")]
pub struct CachedPod {
    pub metadata: ObjectMeta,
    pub labels: Labels,
    pub status: CachedPodStatus,
}

/// The JSON as it comes; [`CachedPod`] moves the labels out and prunes the metadata.
#[derive(Deserialize)]
struct RawPod {
    #[serde(default, deserialize_with = "null_default")]
    metadata: RawMeta,
    #[serde(default, deserialize_with = "null_default")]
    status: CachedPodStatus,
}

/// The metadata fields a [`CachedPod`] keeps; the others (`managedFields` above all, a tree per
/// field manager) are skipped while decoding, never built.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
}

impl From<RawPod> for CachedPod {
    fn from(raw: RawPod) -> Self {
        let m = raw.metadata;
        let metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            ..ObjectMeta::default()
        };
        CachedPod::new(metadata, raw.status)
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodStatus {
    #[serde(default)]
    pub phase: Option<String>,
    /// Only the `Ready` condition is kept.
    #[serde(default, rename = "conditions", deserialize_with = "ready_only")]
    pub ready: Option<ReadyCondition>,
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub container_statuses: Vec<CachedContainer>,
    #[serde(default, deserialize_with = "null_default")]
    pub init_container_statuses: Vec<CachedContainer>,
}

/// The pod's `Ready` condition.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReadyCondition {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub last_transition_time: Option<Time>,
}

/// A container's restarts and state (which of running, terminated, waiting is set; the
/// waiting reason).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CachedContainer {
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default)]
    pub state: Option<CachedState>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CachedState {
    #[serde(default)]
    pub running: Option<Present>,
    #[serde(default)]
    pub terminated: Option<Present>,
    #[serde(default)]
    pub waiting: Option<Waiting>,
}

/// A field that is set (its content is not kept).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
pub struct Present {}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Waiting {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyCondition {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    last_transition_time: Option<Time>,
}

fn ready_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ReadyCondition>, D::Error> {
    let all: Option<Vec<AnyCondition>> = Option::deserialize(d)?;
    let ready = all.into_iter().flatten().find(|c| c.type_ == "Ready");
    Ok(ready.map(|c| ReadyCondition {
        status: c.status,
        last_transition_time: c.last_transition_time,
    }))
}

/// `null` reads as the default (the API server omits or nulls empty fields).
pub(crate) fn null_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl kube::Resource for CachedPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl CachedPod {
    /// The pod of `metadata` (its labels moved into [`Labels`], the rest pruned) and `status`.
    pub fn new(mut metadata: ObjectMeta, status: CachedPodStatus) -> Self {
        let labels = metadata.labels.take().map(|l| Labels::from(&l)).unwrap_or_default();
        let mut pod = CachedPod {
            metadata,
            labels,
            status,
        };
        pod.prune();
        pod
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    /// Drop the metadata no decision reads (done by [`new`](Self::new) and decoding):
    /// managedFields, annotations other than baton's (`baton.dev/…`), generateName, finalizers;
    /// labels left in `metadata` move to [`labels`](Self::labels).
    pub fn prune(&mut self) {
        if let Some(l) = self.metadata.labels.take() {
            self.labels = Labels::from(&l);
        }
        let m = &mut self.metadata;
        m.managed_fields = None;
        m.generate_name = None;
        m.finalizers = None;
        if let Some(a) = m.annotations.as_mut() {
            a.retain(|k, _| k.starts_with("baton.dev/"));
            if a.is_empty() {
                m.annotations = None;
            }
        }
    }

    /// The `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.status.ready.as_ref().is_some_and(|c| c.status == "True")
    }

    /// When the pod last became Ready, if it is.
    pub fn ready_since(&self) -> Option<jiff::Timestamp> {
        let ready = self.status.ready.as_ref().filter(|c| c.status == "True")?;
        ready.last_transition_time.as_ref().map(|t| t.0)
    }

    fn all_containers(&self) -> impl Iterator<Item = &CachedContainer> {
        let s = &self.status;
        s.container_statuses.iter().chain(s.init_container_statuses.iter())
    }

    /// Restarts of the pod's containers (init containers included), summed.
    pub fn restarts(&self) -> i32 {
        self.all_containers().fold(0, |n, c| n.saturating_add(c.restart_count))
    }

    /// Restarts of the pod's (non-init) containers, summed.
    pub fn container_restarts(&self) -> i32 {
        self.status.container_statuses.iter().map(|c| c.restart_count).sum()
    }

    /// A (non-init) container waits in `CrashLoopBackOff`.
    pub fn crash_looping(&self) -> bool {
        self.status.container_statuses.iter().any(|c| {
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
            waiting.and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff")
        })
    }

    /// Phase `Succeeded` or `Failed`.
    pub fn has_finished(&self) -> bool {
        matches!(self.status.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    /// See [`super::has_stopped`].
    pub fn has_stopped(&self) -> bool {
        if self.has_finished() {
            return true;
        }
        let mut any = false;
        let terminated = self.all_containers().all(|c| {
            any = true;
            c.state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some() && s.running.is_none() && s.waiting.is_none())
        });
        any && terminated
    }
}

impl From<&Pod> for CachedPod {
    fn from(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let containers = |cs: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>| -> Vec<CachedContainer> {
            cs.into_iter()
                .flatten()
                .map(|c| CachedContainer {
                    restart_count: c.restart_count,
                    state: c.state.as_ref().map(|s| CachedState {
                        running: s.running.as_ref().map(|_| Present {}),
                        terminated: s.terminated.as_ref().map(|_| Present {}),
                        waiting: s.waiting.as_ref().map(|w| Waiting {
                            reason: w.reason.clone(),
                        }),
                    }),
                })
                .collect()
        };
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| ReadyCondition {
                status: c.status.clone(),
                last_transition_time: c.last_transition_time.clone(),
            });
        let status = CachedPodStatus {
            phase: status.and_then(|s| s.phase.clone()),
            ready,
            pod_ip: status.and_then(|s| s.pod_ip.clone()),
            container_statuses: containers(status.and_then(|s| s.container_statuses.as_ref())),
            init_container_statuses: containers(status.and_then(|s| s.init_container_statuses.as_ref())),
        };
        CachedPod::new(pod.metadata.clone(), status)
    }
}

impl From<Pod> for CachedPod {
    fn from(pod: Pod) -> Self {
        CachedPod::from(&pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projection decoded from the API server's JSON reads as the Pod it came from.
    #[test]
    fn decodes_what_decisions_read_and_drops_the_rest() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-0-abc", "namespace": "ns", "uid": "u1", "generateName": "web-0-",
                "labels": {"app": "web"},
                "annotations": {"baton.dev/drain": "true", "kubectl.kubernetes.io/last-applied-configuration": "{…}"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                "ownerReferences": [{"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "name": "web", "uid": "r1", "controller": true}]
            },
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            "status": {
                "phase": "Running", "podIP": "10.0.0.1", "hostIP": "192.168.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "x"}
                ],
                "containerStatuses": [
                    {"name": "app", "image": "nginx", "imageID": "sha", "ready": true, "restartCount": 2,
                     "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}},
                    {"name": "agent", "image": "baton", "imageID": "sha", "ready": true, "restartCount": 1,
                     "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
                ]
            }
        });
        let pod: Pod = serde_json::from_value(json.clone()).unwrap();
        let decoded: CachedPod = serde_json::from_value(json).unwrap();
        assert_eq!(decoded, CachedPod::from(&pod));
        assert_eq!(decoded.label("app"), Some("web"));
        assert!(decoded.metadata.labels.is_none());
        assert!(decoded.is_ready());
        assert_eq!(decoded.ready_since(), Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(decoded.restarts(), 3);
        assert!(decoded.crash_looping());
        assert!(!decoded.has_stopped());
        assert_eq!(decoded.status.pod_ip.as_deref(), Some("10.0.0.1"));
        assert!(super::super::is_draining(&decoded.metadata));
        let m = &decoded.metadata;
        assert_eq!(m.annotations.as_ref().map(|a| a.len()), Some(1));
        assert!(m.managed_fields.is_none() && m.generate_name.is_none());
        assert_eq!(m.owner_references.as_ref().map(|o| o[0].uid.as_str()), Some("r1"));
    }

    #[test]
    fn a_pod_with_no_status_is_neither_ready_nor_stopped() {
        let decoded: CachedPod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": null})).unwrap();
        assert!(!decoded.is_ready() && !decoded.has_stopped() && !decoded.crash_looping());
        let stopped: CachedPod = serde_json::from_value(serde_json::json!({"status": {"containerStatuses": [
            {"restartCount": 0, "state": {"terminated": {"exitCode": 0}}}
        ]}}))
        .unwrap();
        assert!(stopped.has_stopped());
    }
}
