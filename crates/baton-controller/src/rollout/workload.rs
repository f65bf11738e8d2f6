//! The reconciler's side of `spec.workloadRef` (the decisions are the planner's, in
//! `planner/workload.rs`): the Deployment cache, pruned to what the planner reads; which
//! Rollouts a Deployment change wakes; what a plan is given of a Rollout's Deployment; and its
//! scale-down.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use serde_json::json;

use crate::api::rollout::Rollout;
use crate::api::ROLLOUT_MANAGER as MANAGER;
use crate::cache::Synced;
use crate::error::{is_status, Result};
use crate::rollout::planner::{ObservedWorkload, WorkloadRead};

/// How long a plan of a Rollout with `spec.workloadRef` waits for the Deployment cache's first
/// list before it reports the Deployment unreadable.
const SYNC_WAIT: Duration = Duration::from_secs(10);

/// Why a Deployment cannot be read when the cache never listed them: the watch fails, most
/// likely for want of a grant.
const NOT_LISTED: &str =
    "the controller could not list Deployments (does its role grant list and watch on deployments in group apps?)";

/// The Deployments a Rollout's `spec.workloadRef` may name, as the watch cache holds them.
#[derive(Clone)]
pub struct Workloads {
    pub deployments: Store<Deployment>,
    /// The cache has its first list. Only Rollouts with `spec.workloadRef` wait for it: the
    /// others never depend on Deployments, nor on the controller being allowed to list them.
    pub synced: Synced,
}

/// Strip a Deployment to what the planner reads (name, generation, replicas, pod template,
/// available pods): the cache holds every Deployment of the watched namespaces, most of them
/// never named by a Rollout, so not their managed fields, annotations or conditions.
pub fn prune(d: &mut Deployment) {
    let m = std::mem::take(&mut d.metadata);
    d.metadata = ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        generation: m.generation,
        resource_version: m.resource_version,
        ..ObjectMeta::default()
    };
    d.spec = d.spec.take().map(|s| DeploymentSpec {
        replicas: s.replicas,
        selector: s.selector,
        template: s.template,
        ..DeploymentSpec::default()
    });
    d.status = d.status.take().map(|s| DeploymentStatus {
        available_replicas: s.available_replicas,
        observed_generation: s.observed_generation,
        ..DeploymentStatus::default()
    });
}

/// The Rollouts (of the Rollout cache) whose `spec.workloadRef` names Deployment `d`: a change
/// of its template, replicas or available pods (or its deletion) is theirs to plan from.
pub fn rollouts_referencing(rollouts: &Store<Rollout>, d: &Deployment) -> Vec<ObjectRef<Rollout>> {
    let (Some(ns), Some(name)) = (d.metadata.namespace.as_deref(), d.metadata.name.as_deref()) else {
        return Vec::new();
    };
    rollouts
        .state()
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(ns))
        .filter(|r| {
            r.spec
                .workload_ref
                .as_ref()
                .is_some_and(|w| w.is_supported() && w.name == name)
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The planner's view of a Deployment.
pub fn observe(d: &Deployment) -> ObservedWorkload {
    let spec = d.spec.clone().unwrap_or_default();
    ObservedWorkload {
        name: d.name_any(),
        generation: d.metadata.generation.unwrap_or(0),
        // Unset is what the API server defaults to 1.
        replicas: spec.replicas.unwrap_or(1),
        available_replicas: d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0),
        template: std::sync::Arc::new(spec.template),
    }
}

impl Workloads {
    /// What a plan of `rollout` (in `ns`) is given of its `spec.workloadRef`: None without one,
    /// or for a kind the controller does not read (the spec's validation reports that).
    pub async fn read(&self, rollout: &Rollout, ns: &str) -> Option<WorkloadRead> {
        let r = rollout.spec.workload_ref.as_ref().filter(|r| r.is_supported())?;
        if !self.synced.wait_for(SYNC_WAIT).await {
            return Some(WorkloadRead::Unreadable(NOT_LISTED.into()));
        }
        Some(match self.deployments.get(&ObjectRef::new(&r.name).within(ns)) {
            Some(d) => WorkloadRead::Found(observe(&d)),
            None => WorkloadRead::NotFound,
        })
    }
}

/// Set the `spec.replicas` of Deployment `name` in `ns` through its scale subresource (what
/// `kubectl scale` does). A Deployment gone meanwhile is left to the next plan, which finds it
/// missing.
pub async fn scale(client: &kube::Client, ns: &str, name: &str, replicas: i32) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let params = PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..PatchParams::default()
    };
    let patch = json!({"spec": {"replicas": replicas}});
    match deployments.patch_scale(name, &params, &Patch::Merge(&patch)).await {
        Err(e) if is_status(&e, 404) => Ok(()),
        other => Ok(other.map(|_| ())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher;

    fn deployment(ns: &str, name: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "generation": 4, "uid": "u1",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "Recreate"},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
            "status": {"availableReplicas": 2, "replicas": 3, "conditions": [{"type": "Available", "status": "True"}]}
        }))
        .unwrap()
    }

    fn rollout(ns: &str, name: &str, kind: &str, target: &str) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "version": "v1",
                     "workloadRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}}
        }))
        .unwrap()
    }

    #[test]
    fn the_cache_keeps_what_the_planner_reads() {
        let full = deployment("default", "web");
        let mut d = full.clone();
        prune(&mut d);
        assert_eq!(d.metadata.annotations, None);
        assert_eq!(d.metadata.managed_fields, None);
        assert_eq!(d.spec.as_ref().unwrap().strategy, None);
        assert_eq!(d.status.as_ref().unwrap().conditions, None);
        assert_eq!(observe(&d), observe(&full));
        let o = observe(&d);
        assert_eq!(
            (o.name.as_str(), o.generation, o.replicas, o.available_replicas),
            ("web", 4, 3, 2)
        );
        assert_eq!(o.template.as_ref(), &full.spec.unwrap().template);
    }

    #[test]
    fn unset_replicas_are_one() {
        let mut d = deployment("default", "web");
        d.spec.as_mut().unwrap().replicas = None;
        d.status = None;
        assert_eq!((observe(&d).replicas, observe(&d).available_replicas), (1, 0));
    }

    #[test]
    fn a_deployment_wakes_the_rollouts_that_name_it() {
        let (store, mut writer) = reflector::store::<Rollout>();
        for r in [
            rollout("default", "a", "Deployment", "web"),
            rollout("default", "b", "Deployment", "other"),
            rollout("other", "c", "Deployment", "web"),
            rollout("default", "d", "StatefulSet", "web"),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(r));
        }
        let woken = rollouts_referencing(&store, &deployment("default", "web"));
        let names: Vec<&str> = woken.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a"]);
    }
}
