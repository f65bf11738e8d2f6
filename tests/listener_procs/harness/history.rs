//! Every change of the Leases, ListenerSets and pods of the namespaces under test — straight from
//! the simulator's store, or from watches of the real control plane (`real::feed`) — each with
//! its resourceVersion (one global order), and the checks made
//! on it at the end of a test: fencing tokens never go back, nothing is assigned to a pod after it
//! was marked dead, and status never counts a listener as running before its holder renewed.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baton_sim::store::{Event, EventKind};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::real::feed::Change;

/// One state of a listener Lease.
#[derive(Clone, Debug)]
pub struct LeaseRec {
    pub rv: u64,
    pub deleted: bool,
    pub set: String,
    pub listener: String,
    pub holder: Option<String>,
    pub owner_uid: Option<String>,
    pub transitions: i32,
    /// `renewTime` differs from `acquireTime`: the holder renewed after the assignment.
    pub renewed: bool,
    /// The `baton.dev/release-requested` annotation (the reason), if the holder is asked to go.
    pub release_requested: Option<String>,
}

/// One status of a ListenerSet.
#[derive(Clone, Debug)]
pub struct StatusRec {
    pub rv: u64,
    pub set: String,
    pub running: i64,
    /// Ready: (status, reason, message).
    pub ready: Option<(String, String, String)>,
}

/// One state of a pod.
#[derive(Clone, Debug)]
pub struct PodRec {
    pub rv: u64,
    pub deleted: bool,
    pub name: String,
    pub uid: String,
    pub terminating: bool,
}

#[derive(Default, Debug)]
pub struct NsHistory {
    pub leases: Vec<LeaseRec>,
    pub statuses: Vec<StatusRec>,
    pub pods: Vec<PodRec>,
}

/// The recorder: one OS thread reading the store's change feed.
#[derive(Default)]
pub struct History {
    by_ns: Mutex<HashMap<String, NsHistory>>,
    /// Changes the recorder missed (the feed overran it): the checks are then incomplete.
    pub lagged: AtomicU64,
    /// The newest resourceVersion seen.
    pub rv: AtomicU64,
    /// The newest resourceVersion of a Lease seen: every Lease change at or below it has been
    /// recorded (each resource has its own ordered feed on the real control plane, so a status
    /// may arrive before the Lease changes that precede it).
    pub lease_rv: AtomicU64,
    /// One ordered feed for every resource (the simulator's store).
    ordered: bool,
}

/// The resources the recorder follows on the real control plane.
pub const RESOURCES: &[super::real::feed::Resource] = &[
    ("coordination.k8s.io", "v1", "Lease", "leases"),
    ("baton.dev", "v1alpha1", "ListenerSet", "listenersets"),
    ("", "v1", "Pod", "pods"),
];

fn s(v: &Value, p: &str) -> Option<String> {
    v.pointer(p).and_then(Value::as_str).map(str::to_string)
}

impl History {
    /// Start recording what `feed` carries (subscribe before anything happens).
    pub fn start(mut feed: tokio::sync::broadcast::Receiver<Arc<Event>>) -> Arc<History> {
        let h = Arc::new(History {
            ordered: true,
            ..History::default()
        });
        let me = h.clone();
        std::thread::spawn(move || loop {
            match feed.blocking_recv() {
                Ok(ev) => me.record(&ev),
                Err(RecvError::Lagged(n)) => {
                    me.lagged.fetch_add(n, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => return,
            }
        });
        h
    }

    /// Start recording what the real control plane's watches carry.
    pub fn start_real(mut feed: tokio::sync::mpsc::UnboundedReceiver<Change>, lagged: Arc<AtomicU64>) -> Arc<History> {
        let h = Arc::new(History::default());
        let me = h.clone();
        std::thread::spawn(move || {
            while let Some(c) = feed.blocking_recv() {
                me.lagged.store(lagged.load(Ordering::Relaxed), Ordering::Relaxed);
                me.record_value(&c.group, &c.plural, &c.namespace, c.rv, c.deleted, &c.value);
            }
        });
        h
    }

    /// Record namespace `ns` from now on.
    pub fn watch_namespace(&self, ns: &str) {
        self.lock().entry(ns.to_string()).or_default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, NsHistory>> {
        self.by_ns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, ev: &Event) {
        let kind = (ev.key.group.as_str(), ev.key.plural.as_str());
        if !matches!(
            kind,
            ("coordination.k8s.io", "leases") | ("baton.dev", "listenersets") | ("", "pods")
        ) {
            self.rv.fetch_max(ev.rv, Ordering::Relaxed);
            return;
        }
        let v = ev.obj.value();
        let deleted = ev.kind == EventKind::Deleted;
        self.record_value(kind.0, kind.1, &ev.obj.namespace, ev.rv, deleted, &v);
    }

    fn record_value(&self, group: &str, plural: &str, ns: &str, rv: u64, deleted: bool, v: &Value) {
        self.rv.fetch_max(rv, Ordering::Relaxed);
        let kind = (group, plural);
        if kind.1 == "leases" {
            self.lease_rv.fetch_max(rv, Ordering::Relaxed);
        }
        let mut g = self.lock();
        let Some(h) = g.get_mut(ns) else {
            return;
        };
        match kind {
            ("coordination.k8s.io", "leases") => {
                let (Some(set), Some(listener)) = (
                    s(v, "/metadata/labels/baton.dev~1listenerset"),
                    s(v, "/metadata/labels/baton.dev~1listener"),
                ) else {
                    return;
                };
                let owner_uid = v
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .and_then(|os| os.iter().find(|o| o["kind"] == "Pod"))
                    .and_then(|o| o["uid"].as_str())
                    .map(str::to_string);
                let (acquired, renewed) = (s(v, "/spec/acquireTime"), s(v, "/spec/renewTime"));
                h.leases.push(LeaseRec {
                    rv,
                    deleted,
                    set,
                    listener,
                    holder: s(v, "/spec/holderIdentity").filter(|h| !h.is_empty()),
                    owner_uid,
                    transitions: v.pointer("/spec/leaseTransitions").and_then(Value::as_i64).unwrap_or(0) as i32,
                    renewed: renewed.is_some() && renewed != acquired,
                    release_requested: s(v, "/metadata/annotations/baton.dev~1release-requested"),
                });
            }
            ("baton.dev", "listenersets") => {
                let Some(st) = v.get("status").filter(|s| s.is_object()) else {
                    return;
                };
                let ready = st["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .map(|c| {
                        let f = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                        (f("status"), f("reason"), f("message"))
                    });
                h.statuses.push(StatusRec {
                    rv,
                    set: s(v, "/metadata/name").unwrap_or_default(),
                    running: st["running"].as_i64().unwrap_or(0),
                    ready,
                });
            }
            _ => h.pods.push(PodRec {
                rv,
                deleted,
                name: s(v, "/metadata/name").unwrap_or_default(),
                uid: s(v, "/metadata/uid").unwrap_or_default(),
                terminating: v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            }),
        }
    }

    /// Statuses at or below this resourceVersion can be checked against the Leases recorded.
    pub fn complete_up_to(&self) -> u64 {
        if self.ordered {
            u64::MAX
        } else {
            self.lease_rv.load(Ordering::Relaxed)
        }
    }

    /// Run `f` on what was recorded for `ns`.
    pub fn with<T>(&self, ns: &str, f: impl FnOnce(&NsHistory) -> T) -> T {
        let g = self.lock();
        let empty = NsHistory::default();
        f(g.get(ns).unwrap_or(&empty))
    }
}

/// A pod marked dead at a resourceVersion (its agent killed for good, or the pod force-deleted
/// while its containers may run on): nothing may be assigned to it after that.
#[derive(Clone, Debug)]
pub struct Dead {
    pub pod: String,
    pub uid: String,
    pub after_rv: u64,
}

/// Every way the recorded history breaks the rules (empty: none).
pub fn violations(h: &NsHistory, dead: &[Dead], check_starting: bool, complete_up_to: u64) -> Vec<String> {
    let mut out = Vec::new();
    // Fencing tokens never go back, across releases, deletions and recreations.
    let mut high: BTreeMap<(&str, &str), (i32, u64)> = BTreeMap::new();
    for l in &h.leases {
        let e = high.entry((&l.set, &l.listener)).or_insert((l.transitions, l.rv));
        if l.transitions < e.0 {
            out.push(format!(
                "token of {}/{} went back: {} at rv {} after {} at rv {}",
                l.set, l.listener, l.transitions, l.rv, e.0, e.1
            ));
        }
        if l.transitions >= e.0 {
            *e = (l.transitions, l.rv);
        }
    }
    // Nothing new for a dead pod: every (listener, token) it holds after its death it held before.
    for d in dead {
        let before: BTreeSet<(&str, &str, i32)> = h
            .leases
            .iter()
            .filter(|l| l.rv <= d.after_rv && l.holder.as_deref() == Some(&d.pod))
            .map(|l| (l.set.as_str(), l.listener.as_str(), l.transitions))
            .collect();
        for l in h.leases.iter().filter(|l| l.rv > d.after_rv && !l.deleted) {
            let on_dead = l.holder.as_deref() == Some(&d.pod) && l.owner_uid.as_deref() == Some(&d.uid);
            if on_dead && !before.contains(&(l.set.as_str(), l.listener.as_str(), l.transitions)) {
                out.push(format!(
                    "{}/{} assigned to dead pod {} (token {}, rv {})",
                    l.set, l.listener, d.pod, l.transitions, l.rv
                ));
            }
        }
    }
    if check_starting {
        out.extend(running_before_renewal(h, complete_up_to));
    }
    out
}

/// Status never counts more listeners as running than some state of the set's Leases before it
/// had acknowledged (held by a pod whose agent renewed the Lease after the assignment). The
/// controller decides a status from its Lease cache, which may lag behind the store — even behind
/// the controller's own previous status write, whose watch event can start the next reconcile
/// before the Lease events written before it arrive — so a status may count listeners whose
/// release it has not seen yet, and nothing in the store says which state it read. Counts alone
/// allow no more than this bound; that each listener counted running is in a tenure its holder
/// acknowledged is checked exactly, listener by listener, by the decision's property tests.
///
/// Statuses above `complete_up_to` are left out: the Lease changes before them may not have
/// arrived yet.
fn running_before_renewal(h: &NsHistory, complete_up_to: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_set: BTreeMap<&str, Vec<&LeaseRec>> = BTreeMap::new();
    for l in &h.leases {
        by_set.entry(l.set.as_str()).or_default().push(l);
    }
    let mut seen: BTreeMap<&str, Acknowledged> = BTreeMap::new();
    for st in h.statuses.iter().filter(|st| st.rv <= complete_up_to) {
        let acks = seen.entry(st.set.as_str()).or_default();
        let records = by_set.get(st.set.as_str()).map(Vec::as_slice).unwrap_or_default();
        for l in records.iter().skip(acks.applied).take_while(|l| l.rv < st.rv) {
            acks.apply(l);
        }
        if st.running > acks.most {
            out.push(format!(
                "status of {} at rv {} counts {} listeners running while no state of its Leases before it had more \
                 than {} acknowledged by their holder",
                st.set, st.rv, st.running, acks.most
            ));
        }
    }
    out
}

/// One set's Leases replayed up to a resourceVersion: the listeners acknowledged in that state,
/// and the most any state so far had.
#[derive(Default)]
struct Acknowledged<'a> {
    applied: usize,
    now: BTreeSet<&'a str>,
    most: i64,
}

impl<'a> Acknowledged<'a> {
    fn apply(&mut self, l: &'a LeaseRec) {
        if !l.deleted && l.holder.is_some() && l.renewed {
            self.now.insert(&l.listener);
        } else {
            self.now.remove(l.listener.as_str());
        }
        self.applied += 1;
        self.most = self.most.max(self.now.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(rv: u64, listener: &str, holder: Option<&str>, renewed: bool) -> LeaseRec {
        LeaseRec {
            rv,
            deleted: false,
            set: "s".into(),
            listener: listener.into(),
            holder: holder.map(str::to_string),
            owner_uid: None,
            transitions: 1,
            renewed,
            release_requested: None,
        }
    }

    fn status(rv: u64, running: i64) -> StatusRec {
        StatusRec {
            rv,
            set: "s".into(),
            running,
            ready: None,
        }
    }

    fn history(leases: Vec<LeaseRec>, statuses: Vec<StatusRec>) -> NsHistory {
        NsHistory {
            leases,
            statuses,
            pods: Vec::new(),
        }
    }

    #[test]
    fn a_status_read_from_a_cache_behind_the_status_before_it_is_explained() {
        // a acknowledged at 2, released at 4; the status at 5 was read at 3, and so was the one
        // at 6 (started by the watch event of the status at 5 before the release arrived).
        let h = history(
            vec![
                lease(1, "a", Some("p"), false),
                lease(2, "a", Some("p"), true),
                lease(4, "a", None, false),
            ],
            vec![status(5, 1), status(6, 1), status(8, 0)],
        );
        assert_eq!(running_before_renewal(&h, u64::MAX), Vec::<String>::new());
    }

    #[test]
    fn running_before_any_acknowledgement_is_reported() {
        let h = history(
            vec![lease(1, "a", Some("p"), false), lease(3, "a", Some("p"), true)],
            vec![status(2, 1), status(4, 1)],
        );
        let found = running_before_renewal(&h, u64::MAX);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("at rv 2 counts 1"), "{found:?}");
    }

    #[test]
    fn running_above_what_any_state_held_is_reported() {
        // a and b were acknowledged, never both at once.
        let h = history(
            vec![
                lease(1, "a", Some("p"), true),
                lease(2, "b", Some("q"), false),
                lease(3, "a", None, false),
                lease(4, "b", Some("q"), true),
            ],
            vec![status(5, 1), status(6, 1), status(7, 2)],
        );
        let found = running_before_renewal(&h, u64::MAX);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("at rv 7 counts 2"), "{found:?}");
    }
}
