//! The Deployment controller (kube-controller-manager's `deployment` controller) for
//! `apps/v1` Deployments: each template gets a ReplicaSet `<deployment>-<pod-template-hash>`
//! (labelled and selecting by `pod-template-hash`, controlled by the Deployment, annotated with
//! its revision and the Deployment's desired and maximum replicas), and the Deployment rolls
//! from the old ReplicaSets to the new one:
//!
//! * `RollingUpdate`: the new ReplicaSet grows while the total stays within `replicas +
//!   maxSurge`, old ones shrink while `replicas - maxUnavailable` pods stay available (surge
//!   rounds up, unavailability down, both zero → one unavailable); unavailable old replicas go
//!   first;
//! * `Recreate`: old ReplicaSets to zero, and once none of their pods is left, the new one;
//! * `paused`: no rollout, but scaling applies, proportionally across ReplicaSets mid-rollout;
//! * a template that an old ReplicaSet has (`kubectl rollout undo`) reuses it with the next
//!   revision; old ReplicaSets at zero beyond `revisionHistoryLimit` are deleted;
//! * status: counts summed over the ReplicaSets, `Available` (`MinimumReplicasAvailable`) and
//!   `Progressing` (`NewReplicaSetCreated`, `FoundNewReplicaSet`, `ReplicaSetUpdated`,
//!   `NewReplicaSetAvailable`, `ProgressDeadlineExceeded`, `DeploymentPaused`,
//!   `DeploymentResumed`), as kube-controller-manager sets them; a stalled rollout is looked at
//!   again when its `progressDeadlineSeconds` pass;
//! * orphan ReplicaSets its selector matches are adopted; `ScalingReplicaSet` events say what
//!   was resized.
//!
//! The pod-template hash is not kube's byte for byte (see [`template_hash`]). The decision is
//! a pure function ([`plan`]) of the Deployment, its ReplicaSets and the time; this shell feeds
//! it from the store and applies it through the API.
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::controllers::replicasets::claim;
use crate::controllers::replicasets::events::{self, Recorded};
use crate::controllers::replicasets::queue::{self, Controller, Key, Next};
use crate::controllers::replicasets::{controlled, controller_of, controller_opts, pods_key, rs_key};
use crate::handlers::{set_pointer, Core, DeleteOpts, Sub};
use crate::resources::ResKey;
use crate::store::{Event, EventKind};

mod model;
mod progress;
mod rolling;
mod sync;
mod util;

pub use model::{Condition, Deployment, IntOrPercent, ReplicaSet, Status, Strategy};
pub use sync::{plan, Plan, RsUpdate};
pub use util::{equal_ignore_hash, max_surge, max_unavailable, resolve_fenceposts, safe_encode, template_hash};

fn deploy_key() -> ResKey {
    ResKey {
        group: "apps".into(),
        plural: "deployments".into(),
    }
}

struct Deployments;

impl Deployments {
    /// The Deployments among the owners of the objects with these uids.
    fn owning(core: &Core, owner_uids: impl Iterator<Item = String>) -> Vec<Key> {
        owner_uids
            .filter_map(|uid| core.store.lookup_uid(&uid))
            .filter(|(k, _, _)| *k == deploy_key())
            .map(|(_, ns, n)| (ns, n))
            .collect()
    }
}

impl Controller for Deployments {
    fn keys_of(&self, core: &Core, ev: &Event) -> Vec<Key> {
        let owners = || {
            let prev = ev.prev.iter().flat_map(|p| p.owners.iter());
            ev.obj
                .owners
                .iter()
                .chain(prev)
                .map(|o| o.uid.clone())
                .collect::<Vec<_>>()
        };
        if ev.key == deploy_key() {
            if ev.kind == EventKind::Deleted {
                return vec![];
            }
            return vec![(ev.obj.namespace.clone(), ev.obj.name.clone())];
        }
        if ev.key == rs_key() {
            return Self::owning(core, owners().into_iter());
        }
        // A Recreate rollout waits for the last old pod to be gone.
        if ev.key == pods_key() && ev.kind == EventKind::Deleted {
            let rs_owners = owners()
                .into_iter()
                .filter_map(|uid| core.store.lookup_uid(&uid))
                .filter(|(k, _, _)| *k == rs_key())
                .filter_map(|(k, ns, n)| core.store.get(&k, &ns, &n))
                .flat_map(|rs| rs.owners.iter().map(|o| o.uid.clone()).collect::<Vec<_>>());
            return Self::owning(core, rs_owners);
        }
        vec![]
    }

    fn all(&self, core: &Core) -> Vec<Key> {
        let (all, _) = core.store.list(&deploy_key(), None);
        all.iter().map(|s| (s.namespace.clone(), s.name.clone())).collect()
    }

    fn reconcile(&self, core: &Core, (ns, name): &Key) -> Next {
        reconcile(core, ns, name)
    }
}

/// Run the controller until shutdown.
pub async fn run(core: Arc<Core>, shutdown: watch::Receiver<bool>) {
    queue::run(&core, &Deployments, shutdown).await;
}

fn reconcile(core: &Core, ns: &str, name: &str) -> Next {
    let Some(stored) = core.store.get(&deploy_key(), ns, name) else {
        return Next::Idle;
    };
    let dv = stored.value();
    let d = Deployment::of(&dv);
    let owner = claim::Owner {
        obj: &dv,
        api_version: "apps/v1",
        kind: "Deployment",
    };
    let rs_values = claim::claim(core, &owner, &rs_key());
    // Only a Recreate rollout looks at pods (and reading them all has a cost).
    let recreate = d.strategy == Strategy::Recreate;
    let rses: Vec<ReplicaSet> = rs_values
        .iter()
        .map(|v| {
            let uid = v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
            let live = if recreate { live_pods(core, uid) } else { 0 };
            ReplicaSet::of(v, live)
        })
        .collect();
    let p = plan(&d, &rses, jiff::Timestamp::now());
    apply(core, ns, &dv, &rs_values, p)
}

/// Pods of a ReplicaSet that have not finished, being deleted or not.
fn live_pods(core: &Core, rs_uid: &str) -> usize {
    controlled(core, rs_uid, &pods_key())
        .iter()
        .filter(|p| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .count()
}

fn apply(core: &Core, ns: &str, dv: &Value, rs_values: &[Value], p: Plan) -> Next {
    let (Some(rs_rt), Some(d_rt)) = (
        core.resource("apps", "replicasets"),
        core.resource("apps", "deployments"),
    ) else {
        return Next::Idle;
    };
    let name = dv.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let opts = controller_opts();
    if let Some(body) = &p.create {
        if let Err(e) = core.create(&rs_rt, Some(ns), body.clone(), &opts) {
            return create_failed(core, dv, body, &p, &e);
        }
    }
    for u in &p.update {
        let Some(mut body) = rs_values
            .iter()
            .find(|v| v["metadata"]["name"] == u.name.as_str())
            .cloned()
        else {
            continue;
        };
        set_pointer(&mut body, "/spec/replicas", u.replicas.into());
        set_pointer(&mut body, "/spec/minReadySeconds", u.min_ready_seconds.into());
        set_pointer(&mut body, "/metadata/annotations", json!(u.annotations));
        if core.update(&rs_rt, ns, &u.name, body, Sub::Main, &opts).is_err() {
            return Next::Retry;
        }
    }
    for n in &p.delete {
        let _ = core.delete(&rs_rt, ns, n, &DeleteOpts::default());
    }
    for ev in &p.events {
        events::record(core, dv, "deployment-controller", ev);
    }
    let mut cur = dv.clone();
    if let Some(a) = &p.annotations {
        set_pointer(&mut cur, "/metadata/annotations", json!(a));
        match core.update(&d_rt, ns, name, cur, Sub::Main, &opts) {
            Ok(r) => cur = r.body,
            Err(_) => return Next::Retry,
        }
    }
    if let Some(st) = &p.status {
        set_pointer(&mut cur, "/status", st.clone());
        if core.update(&d_rt, ns, name, cur, Sub::Status, &opts).is_err() {
            return Next::Retry;
        }
    }
    p.requeue.map_or(Next::Idle, Next::After)
}

/// The new ReplicaSet could not be created. Under its name stands another template's
/// ReplicaSet (a hash collision: count it, so the next hash differs), or this Deployment's
/// own that the next sync finds; any other failure is reported and retried.
fn create_failed(core: &Core, dv: &Value, body: &Value, p: &Plan, e: &crate::error::ApiError) -> Next {
    let ns = dv.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let name = dv.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let rs_name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if e.reason != "AlreadyExists" {
        let msg = format!("Failed to create new replica set \"{rs_name}\": {}", e.message);
        events::record(
            core,
            dv,
            "deployment-controller",
            &Recorded::warning("ReplicaSetCreateError", msg),
        );
        return Next::Retry;
    }
    let Some(existing) = core.store.get(&rs_key(), ns, rs_name).map(|s| s.value()) else {
        return Next::Retry;
    };
    let uid = dv.pointer("/metadata/uid").and_then(Value::as_str);
    let template = |v: &Value| v.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    if controller_of(&existing) == uid && equal_ignore_hash(&template(&existing), &template(body)) {
        return Next::Retry;
    }
    let mut status = p
        .status
        .clone()
        .unwrap_or_else(|| dv.get("status").cloned().unwrap_or_default());
    let count = status.get("collisionCount").and_then(Value::as_i64).unwrap_or(0);
    set_pointer(&mut status, "/collisionCount", (count + 1).into());
    let mut cur = dv.clone();
    set_pointer(&mut cur, "/status", status);
    if let Some(rt) = core.resource("apps", "deployments") {
        let _ = core.update(&rt, ns, name, cur, Sub::Status, &controller_opts());
    }
    Next::Retry
}

#[cfg(test)]
mod tests;
