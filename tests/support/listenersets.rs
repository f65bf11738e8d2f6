//! What the two listener harnesses share (the in-process agents of `listener_world.rs` and the
//! real processes of `tests/listener_procs/harness`, through `#[path]`): a ListenerSet's spec,
//! its listeners, its Lease holders and a pod's readiness.
#![allow(dead_code)]

use std::collections::BTreeMap;

use baton::api::listenerset::{Listener, ListenerSet, ListenerSetSpec, LISTENERSET_LABEL, LISTENER_LABEL};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ObjectMeta;

/// ListenerSet `name` in `namespace` over the pods labelled `app=<app>`.
pub fn set(namespace: &str, name: &str, app: &str, listeners: Vec<Listener>, lease_seconds: i32) -> ListenerSet {
    ListenerSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec: ListenerSetSpec {
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), app.to_string())].into()),
                ..Default::default()
            },
            listeners,
            listeners_from: None,
            max_per_pod: 0,
            lease_duration_seconds: lease_seconds,
            rebalance: None,
            notifications: Vec::new(),
        },
        status: None,
    }
}

/// The ids `l000`, `l001`… of `n` listeners.
pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("l{i:03}")).collect()
}

/// `n` listeners `l000`… with no config.
pub fn listeners(n: usize) -> Vec<Listener> {
    ids(n)
        .into_iter()
        .map(|id| Listener {
            id,
            ..Default::default()
        })
        .collect()
}

/// The label selector of the Leases of set `set`.
pub fn lease_selector(set: &str) -> String {
    format!("{LISTENERSET_LABEL}={set}")
}

/// The listener a Lease is for (its label).
pub fn lease_listener(lease: &Lease) -> Option<&String> {
    lease.metadata.labels.as_ref()?.get(LISTENER_LABEL)
}

/// Lease holders: listener → (holder, lease transitions = fencing token).
pub fn holders(leases: Vec<Lease>) -> BTreeMap<String, (Option<String>, i32)> {
    leases
        .into_iter()
        .filter_map(|l| {
            let id = lease_listener(&l)?.clone();
            let spec = l.spec.unwrap_or_default();
            let holder = spec.holder_identity.filter(|h| !h.is_empty());
            Some((id, (holder, spec.lease_transitions.unwrap_or(0))))
        })
        .collect()
}

/// Whether `pod` is Ready and not terminating.
pub fn ready_and_running(pod: &Pod) -> bool {
    baton::api::pod::is_ready(pod) && pod.metadata.deletion_timestamp.is_none()
}
