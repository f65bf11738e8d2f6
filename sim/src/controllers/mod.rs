//! The simulator's in-process controllers: what kube-controller-manager, the kubelet and
//! kube-apiserver's post-start hooks do in a cluster. They are clients of [`Core`]: they read
//! its store and write through its API methods, and the core never calls them — they are
//! started here, and the synchronous ones hook into it through [`crate::handlers::AfterWrite`].
//!
//! * `bootstrap` (and `rbac_bootstrap`): the objects every cluster starts with.
//! * `namespaces`: a new namespace's default ServiceAccount and root CA ConfigMap; a deleted
//!   one emptied, then removed.
//! * `rbac_aggregation`: ClusterRoles with an `aggregationRule` get the rules they select.
//! * `gc`: the garbage collector (ownerReferences, `orphan` and `foregroundDeletion`).
//! * `crd_cleanup`: apiextensions-apiserver's CRD finalizer (a deleted CRD's custom resources
//!   are deleted before it goes).
//! * `jobs`: the Job controller.
//! * `replicasets`, `deployments`, `statefulsets`: kube-controller-manager's workload
//!   controllers for `apps/v1`.
//! * `kubelet`: pods' lifecycle on one simulated node, with attached processes.
use std::sync::Arc;

use tokio::sync::watch;

use crate::handlers::Core;

pub mod bootstrap;
pub mod crd_cleanup;
pub mod deployments;
pub mod gc;
pub mod jobs;
pub mod kubelet;
pub mod namespaces;
pub mod rbac_aggregation;
pub mod rbac_bootstrap;
pub mod replicasets;
pub mod statefulsets;

use kubelet::{Kubelet, KubeletConfig};

/// Hook the synchronous controllers into `core`, create what every cluster starts with, and
/// spawn the others until `shutdown`. Returns the kubelet (the server reaches it for exec,
/// attach and its admin endpoints).
pub fn start(core: &Arc<Core>, kubelet: KubeletConfig, shutdown: &watch::Receiver<bool>) -> Arc<Kubelet> {
    core.add_hook(Arc::new(namespaces::Populate));
    core.add_hook(Arc::new(rbac_aggregation::Aggregation::default()));
    bootstrap::run(core);
    core.store.start_history();
    let kubelet = Kubelet::new(core.clone(), kubelet);
    tokio::spawn(kubelet.clone().run(shutdown.clone()));
    tokio::spawn(gc::run(core.clone(), shutdown.clone()));
    tokio::spawn(crd_cleanup::run(core.clone(), shutdown.clone()));
    tokio::spawn(jobs::run(core.clone(), shutdown.clone()));
    tokio::spawn(replicasets::run(core.clone(), shutdown.clone()));
    tokio::spawn(deployments::run(core.clone(), shutdown.clone()));
    tokio::spawn(statefulsets::run(core.clone(), shutdown.clone()));
    kubelet
}
