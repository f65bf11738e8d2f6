//! kube-controller-manager's StatefulSet controller for `apps/v1` StatefulSets
//! (`pkg/controller/statefulset`, as of 1.32): pods `<set>-<ordinal>` with stable names,
//! created in ordinal order and each only once the ones before it are Running, Ready and
//! available (`OrderedReady`), or all at once (`Parallel`); scaled down from the highest
//! ordinal; replaced highest first when the template changes (`RollingUpdate` with a
//! partition) or only when deleted (`OnDelete`). The template's history is kept as
//! ControllerRevisions, which `kubectl rollout history|undo` read and apply.
//!
//! The decisions are pure ([`view`] reads the objects with the API defaults, [`revisions`]
//! picks and names revisions, [`plan`] decides a pass); [`run`] is the shell that feeds them
//! from the store's event stream and writes what they decide, as a client of [`Core`].
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::handlers::{Core, DeleteOpts, Opts, Sub};
use crate::resources::ResKey;
use crate::selector::LabelSelector;
use crate::store::{Event, EventKind, Write};

pub mod plan;
pub mod revisions;
pub mod view;

use plan::Revision;
use revisions::{RevisionView, UpdateRevision};
use view::{SetPod, SetView};

/// How many names a new revision tries before the pass gives up (each name collision with a
/// revision of other data bumps `collisionCount`).
const MAX_COLLISIONS: usize = 16;

const FIELD_MANAGER: &str = "kube-controller-manager";

fn key(group: &str, plural: &str) -> ResKey {
    ResKey {
        group: group.into(),
        plural: plural.into(),
    }
}

fn sets_key() -> ResKey {
    key("apps", "statefulsets")
}

fn revisions_key() -> ResKey {
    key("apps", "controllerrevisions")
}

fn pods_key() -> ResKey {
    key("", "pods")
}

fn opts() -> Opts {
    Opts {
        field_manager: FIELD_MANAGER.into(),
        ..Opts::default()
    }
}

/// Run the controller until shutdown.
pub async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut rx = core.store.subscribe();
    // Sets looked at again at a time (minReadySeconds), by namespace and name.
    let mut timers: BTreeMap<(String, String), Timestamp> = BTreeMap::new();
    resync(&core, &mut timers);
    loop {
        let next = timers.values().min().copied();
        let sleep = tokio::time::sleep_until(instant_of(next));
        tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => {
                    for (ns, name) in sets_of(&core, &ev) {
                        requeue(&mut timers, ns.clone(), name.clone(), reconcile(&core, &ns, &name));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => resync(&core, &mut timers),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = sleep, if next.is_some() => {
                let now = Timestamp::now();
                let due: Vec<(String, String)> = timers.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
                for (ns, name) in due {
                    timers.remove(&(ns.clone(), name.clone()));
                    requeue(&mut timers, ns.clone(), name.clone(), reconcile(&core, &ns, &name));
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// The tokio instant of a wall-clock time (now when it is past; far off when there is none).
fn instant_of(t: Option<Timestamp>) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    match t {
        None => now + std::time::Duration::from_secs(3600),
        Some(t) => {
            let wait = t.duration_since(Timestamp::now());
            now + std::time::Duration::try_from(wait).unwrap_or_default()
        }
    }
}

fn requeue(timers: &mut BTreeMap<(String, String), Timestamp>, ns: String, name: String, at: Option<Timestamp>) {
    match at {
        Some(at) => {
            let t = timers.entry((ns, name)).or_insert(at);
            *t = (*t).min(at);
        }
        None => {
            timers.remove(&(ns, name));
        }
    }
}

/// Every set, again (at start, and after falling behind the event stream).
fn resync(core: &Core, timers: &mut BTreeMap<(String, String), Timestamp>) {
    let (sets, _) = core.store.list(&sets_key(), None);
    for s in sets {
        let at = reconcile(core, &s.namespace, &s.name);
        requeue(timers, s.namespace.clone(), s.name.clone(), at);
    }
}

/// The sets an event concerns: a set itself, or the owner of a pod or revision.
fn sets_of(core: &Core, ev: &Event) -> Vec<(String, String)> {
    if ev.key == sets_key() {
        if ev.kind == EventKind::Deleted {
            return Vec::new();
        }
        return vec![(ev.obj.namespace.clone(), ev.obj.name.clone())];
    }
    if ev.key != pods_key() && ev.key != revisions_key() {
        return Vec::new();
    }
    let prev = ev.prev.as_ref().map(|p| p.owners.clone()).unwrap_or_default();
    let mut out = BTreeSet::new();
    for o in ev.obj.owners.iter().chain(prev.iter()) {
        if let Some((k, ns, name)) = core.store.lookup_uid(&o.uid) {
            if k == sets_key() {
                out.insert((ns, name));
            }
        }
    }
    out.into_iter().collect()
}

/// Whether `v` names `uid` as its controller.
fn controlled_by(v: &Value, uid: &str) -> bool {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|rs| {
            rs.iter()
                .any(|r| r["controller"] == json!(true) && r["uid"] == json!(uid))
        })
}

/// The set's revisions and pods: those it controls that its selector selects (and, for pods,
/// whose names are `<set>-<ordinal>`).
fn owned(core: &Core, set: &SetView, selector: &LabelSelector) -> (Vec<RevisionView>, Vec<SetPod>) {
    let mut revisions = Vec::new();
    let mut pods = Vec::new();
    for (k, ns, name) in core.store.dependents_of(&set.uid) {
        let Some(obj) = core.store.get(&k, &ns, &name) else {
            continue;
        };
        if !selector.matches(&obj.label_map()) {
            continue;
        }
        let v = obj.value();
        if !controlled_by(&v, &set.uid) {
            continue;
        }
        if k == revisions_key() {
            revisions.push(RevisionView::of(&v));
        } else if k == pods_key() && view::parent_and_ordinal(&name).is_some_and(|(p, _)| p == set.name) {
            pods.extend(SetPod::of(&v));
        }
    }
    revisions::sort(&mut revisions);
    (revisions, pods)
}

/// One pass over set `ns/name`; returns when to look again (minReadySeconds), if ever.
fn reconcile(core: &Core, ns: &str, name: &str) -> Option<Timestamp> {
    let stored = core.store.get(&sets_key(), ns, name)?;
    let set = SetView::of(&stored.value());
    let selector = crate::selector::from_label_selector_json(&set.selector).ok()?;
    let (revisions, pods) = owned(core, &set, &selector);
    let (update, collision_count) = update_revision(core, &set, &revisions)?;
    let current = revisions
        .iter()
        .find(|r| r.name == set.current_revision)
        .unwrap_or(&update);
    let current_template = revisions::template_of(&set, &current.data).ok()?;
    let update_template = revisions::template_of(&set, &update.data).ok()?;
    let p = plan::plan(
        &set,
        Revision {
            name: &current.name,
            template: &current_template,
        },
        Revision {
            name: &update.name,
            template: &update_template,
        },
        collision_count,
        &pods,
        Timestamp::now(),
    );
    apply(core, &set, &stored.uid, &p);
    let mut live: BTreeSet<&str> = pods.iter().map(|p| p.revision.as_str()).collect();
    live.insert(&current.name);
    live.insert(&update.name);
    if let Some(rt) = core.resource("apps", "controllerrevisions") {
        for old in revisions::prune(set.revision_history_limit, &revisions, &live) {
            let _ = core.delete(&rt, ns, &old, &DeleteOpts::default());
        }
    }
    p.requeue_at
}

/// Write a pass's decisions: graceful deletes, creates, then the status.
fn apply(core: &Core, set: &SetView, uid: &str, p: &plan::Plan) {
    if let Some(pods_rt) = core.resource("", "pods") {
        for n in &p.delete {
            // The default grace period: the kubelet stops the pod's processes first.
            let _ = core.delete(&pods_rt, &set.namespace, n, &DeleteOpts::default());
        }
        for pod in &p.create {
            // A name still taken (its pod terminating) is made again once the pod is gone.
            let _ = core.create(&pods_rt, Some(&set.namespace), pod.clone(), &opts());
        }
    }
    if !p.write_status {
        return;
    }
    let _ = core.store.write(&sets_key(), &set.namespace, &set.name, false, |cur| {
        let Some(cur) = cur.filter(|c| c.uid == uid) else {
            return Ok(Write::Keep);
        };
        let mut v = cur.value();
        if v.get("status") == Some(&p.status) {
            return Ok(Write::Keep);
        }
        v["status"] = p.status.clone();
        Ok(Write::Put(v))
    });
}

/// The revision the set's template is at, made or renumbered as needed, with the collision
/// count its name took. None when the API refused.
fn update_revision(core: &Core, set: &SetView, revisions: &[RevisionView]) -> Option<(RevisionView, i64)> {
    let rt = core.resource("apps", "controllerrevisions")?;
    match revisions::choose(set, revisions) {
        UpdateRevision::Latest(name) => {
            let r = revisions.iter().find(|r| r.name == name)?;
            Some((r.clone(), set.collision_count))
        }
        UpdateRevision::Renumber { name, revision } => {
            // A rollback: the older revision becomes the newest (`UpdateControllerRevision`).
            let mut v = core.store.get(&revisions_key(), &set.namespace, &name)?.value();
            v["revision"] = json!(revision);
            let reply = core.update(&rt, &set.namespace, &name, v, Sub::Main, &opts()).ok()?;
            Some((RevisionView::of(&reply.body), set.collision_count))
        }
        UpdateRevision::Create { revision } => create_revision(core, &rt, set, revision),
    }
}

/// `CreateControllerRevision`: a name taken by a revision with the same data is that
/// revision; one taken by other data bumps the collision count and tries the next name.
fn create_revision(
    core: &Core,
    rt: &crate::resources::ResourceType,
    set: &SetView,
    revision: i64,
) -> Option<(RevisionView, i64)> {
    let mut collision_count = set.collision_count;
    let mut obj = revisions::new_revision(set, revision, collision_count);
    let data = obj["data"].clone();
    for _ in 0..MAX_COLLISIONS {
        let name = revisions::revision_name(&set.name, &revisions::hash(&data, collision_count));
        obj["metadata"]["name"] = json!(name);
        match core.create(rt, Some(&set.namespace), obj.clone(), &opts()) {
            Ok(reply) => return Some((RevisionView::of(&reply.body), collision_count)),
            Err(e) if e.code == 409 => {
                let taken = core.store.get(&revisions_key(), &set.namespace, &name)?;
                let taken = RevisionView::of(&taken.value());
                if taken.data == data {
                    return Some((taken, collision_count));
                }
                collision_count += 1;
            }
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests;
