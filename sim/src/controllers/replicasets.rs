//! The ReplicaSet controller (kube-controller-manager's `replicaset` controller): each
//! `apps/v1` ReplicaSet keeps `spec.replicas` active pods from its template — named
//! `<replicaset>-<5 random characters>`, with the template's labels and annotations and a
//! controller ownerReference — deleting surplus ones gracefully in kube's order (unscheduled,
//! then not Ready, then the most recently Ready, the most restarted, the newest), and reports
//! `replicas`, `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas` (Ready for at least
//! `minReadySeconds`) and `observedGeneration`. Pods being deleted are not counted. Orphan
//! pods its selector matches are adopted, its own that no longer match released (see
//! [`claim`]); `SuccessfulCreate`/`SuccessfulDelete` events record each pod.
//!
//! The decision is a pure function ([`plan`]) of the ReplicaSet, its pods and the time; this
//! shell feeds it from the store and applies it. Its work queue ([`queue`]) and event recorder
//! ([`events`]) serve the Deployment controller too.
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::handlers::{Core, DeleteOpts, Opts, Sub};
use crate::resources::ResKey;
use crate::store::{Event, EventKind};

pub(crate) mod claim;
pub(crate) mod events;
mod plan;
pub(crate) mod queue;
mod rank;

pub use plan::{available, plan, Plan};
pub use rank::{deleted_before, parse_time, to_delete, RankedPod};

use events::Recorded;
use queue::{Controller, Key, Next};

pub(crate) fn rs_key() -> ResKey {
    ResKey {
        group: "apps".into(),
        plural: "replicasets".into(),
    }
}

pub(crate) fn pods_key() -> ResKey {
    ResKey {
        group: String::new(),
        plural: "pods".into(),
    }
}

pub(crate) fn controller_opts() -> Opts {
    Opts {
        field_manager: "kube-controller-manager".into(),
        ..Opts::default()
    }
}

/// The uid of `obj`'s controller (its ownerReference with `controller: true`).
pub(crate) fn controller_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|o| o.get("controller") == Some(&json!(true)))
        .and_then(|o| o.get("uid"))
        .and_then(Value::as_str)
}

/// The objects of `key` that `owner_uid` controls.
pub(crate) fn controlled(core: &Core, owner_uid: &str, key: &ResKey) -> Vec<Value> {
    core.store
        .dependents_of(owner_uid)
        .into_iter()
        .filter(|(k, _, _)| k == key)
        .filter_map(|(k, ns, n)| core.store.get(&k, &ns, &n))
        .map(|s| s.value())
        .filter(|v| controller_of(v) == Some(owner_uid))
        .collect()
}

struct ReplicaSets;

impl Controller for ReplicaSets {
    fn keys_of(&self, core: &Core, ev: &Event) -> Vec<Key> {
        if ev.key == rs_key() {
            if ev.kind == EventKind::Deleted {
                return vec![];
            }
            return vec![(ev.obj.namespace.clone(), ev.obj.name.clone())];
        }
        if ev.key != pods_key() {
            return vec![];
        }
        let prev = ev.prev.iter().flat_map(|p| p.owners.iter());
        ev.obj
            .owners
            .iter()
            .chain(prev)
            .filter_map(|o| core.store.lookup_uid(&o.uid))
            .filter(|(k, _, _)| *k == rs_key())
            .map(|(_, ns, n)| (ns, n))
            .collect()
    }

    fn all(&self, core: &Core) -> Vec<Key> {
        let (all, _) = core.store.list(&rs_key(), None);
        all.iter().map(|s| (s.namespace.clone(), s.name.clone())).collect()
    }

    fn reconcile(&self, core: &Core, (ns, name): &Key) -> Next {
        reconcile(core, ns, name)
    }
}

/// Run the controller until shutdown.
pub async fn run(core: Arc<Core>, shutdown: watch::Receiver<bool>) {
    queue::run(&core, &ReplicaSets, shutdown).await;
}

/// The pods of every ReplicaSet that `rs`'s owner controls (kube's "indirectly related" pods,
/// whose spread over nodes ranks pods for deletion); the ReplicaSet's own without an owner.
fn related_pods(core: &Core, rs: &Value, own: &[RankedPod]) -> Vec<RankedPod> {
    let Some(owner) = controller_of(rs) else {
        return own.to_vec();
    };
    controlled(core, owner, &rs_key())
        .iter()
        .filter_map(|s| s.pointer("/metadata/uid").and_then(Value::as_str))
        .flat_map(|uid| controlled(core, uid, &pods_key()))
        .map(|p| RankedPod::of(&p))
        .collect()
}

fn reconcile(core: &Core, ns: &str, name: &str) -> Next {
    let Some(stored) = core.store.get(&rs_key(), ns, name) else {
        return Next::Idle;
    };
    let rs = stored.value();
    let owner = claim::Owner {
        obj: &rs,
        api_version: "apps/v1",
        kind: "ReplicaSet",
    };
    let pods: Vec<RankedPod> = claim::claim(core, &owner, &pods_key())
        .iter()
        .map(RankedPod::of)
        .collect();
    // Only a scale-down ranks pods by their siblings: read those only then.
    let replicas = rs.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let surplus = pods.iter().filter(|p| p.active()).count() as i64 > replicas;
    let related = if surplus {
        related_pods(core, &rs, &pods)
    } else {
        Vec::new()
    };
    let p = plan(&rs, &pods, &related, jiff::Timestamp::now());
    let (Some(pods_rt), Some(rs_rt)) = (core.resource("", "pods"), core.resource("apps", "replicasets")) else {
        return Next::Idle;
    };
    let mut retry = false;
    for n in &p.delete {
        match core.delete(&pods_rt, ns, n, &DeleteOpts::default()) {
            Ok(_) => events::record(
                core,
                &rs,
                "replicaset-controller",
                &Recorded::normal("SuccessfulDelete", format!("Deleted pod: {n}")),
            ),
            Err(_) => retry = true,
        }
    }
    for _ in 0..p.create {
        match core.create(&pods_rt, Some(ns), pod_for(&rs, name, &stored.uid), &controller_opts()) {
            Ok(r) => {
                let pod = r.body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                let ev = Recorded::normal("SuccessfulCreate", format!("Created pod: {pod}"));
                events::record(core, &rs, "replicaset-controller", &ev);
            }
            Err(e) => {
                // The next creation would fail the same way: try again later.
                let ev = Recorded::warning("FailedCreate", format!("Error creating: {}", e.message));
                events::record(core, &rs, "replicaset-controller", &ev);
                retry = true;
                break;
            }
        }
    }
    if rs.get("status") != Some(&p.status) {
        let mut body = rs.clone();
        crate::handlers::set_pointer(&mut body, "/status", p.status.clone());
        retry |= core
            .update(&rs_rt, ns, name, body, Sub::Status, &controller_opts())
            .is_err();
    }
    match (retry, p.requeue) {
        (true, _) => Next::Retry,
        (false, Some(d)) => Next::After(d),
        (false, None) => Next::Idle,
    }
}

/// A pod from `rs`'s template, as kube's `GetPodFromTemplate` makes it.
fn pod_for(rs: &Value, name: &str, uid: &str) -> Value {
    let template = rs.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut meta = json!({
        "generateName": format!("{name}-"),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}],
    });
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{k}")).filter(|v| !v.is_null()) {
            meta[k] = v.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

#[cfg(test)]
mod tests;
