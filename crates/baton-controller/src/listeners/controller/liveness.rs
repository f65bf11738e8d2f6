//! The agents' liveness Leases as the controller sees them: one watch of every liveness Lease
//! (label [`LIVENESS_LABEL`]), each pod's registration, and when this controller last saw its
//! agent write it — on this process's monotonic clock, never comparing `renewTime` with a wall
//! clock. A renewal costs one map update here and wakes nothing; a set is woken only when a pod's
//! liveness *changes* (registered, fenced, created, deleted) or when a registered pod's renewals
//! stop arriving (a timer per pod, at its last renewal + its duration).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::listenerset::liveness::{self, LIVENESS_LABEL};
use crate::api::listenerset::DEFAULT_LEASE_DURATION_SECONDS;
use crate::cache::{api, SyncedTx};
use crate::listeners::decide::{LiveLease, LivenessFacts};

/// A timer fires this long after the renewal it waits for was due, so a renewal that is merely
/// late by scheduling does not wake anything.
const SLACK: Duration = Duration::from_millis(50);

/// (namespace, pod uid).
type PodKey = (String, String);

/// How long a refused creation of a pod's liveness Lease is not tried again.
pub const CREATE_RETRY: Duration = Duration::from_secs(30);

/// How long the last renewal of a pod whose liveness Lease was deleted is remembered: far longer
/// than any lease duration. Until a lease duration has passed since it, something that renewed
/// it may still run the listeners it covered (a force-deleted pod's agent, cut off).
const TOMBSTONE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
struct Entry {
    /// `None` once the Lease is deleted: the pod's last renewal is still remembered (see
    /// [`TOMBSTONE`]).
    lease: Option<LiveLease>,
    /// The owner pod's name.
    pod: String,
    record: u64,
    observed: Option<Instant>,
    duration: Duration,
    /// resourceVersion as a number, to ignore copies older than one of our own writes.
    rv: Option<u64>,
    /// When its Lease was seen deleted.
    gone_at: Option<Instant>,
    /// The registration the Lease records (its number and `acquireTime`), while registered.
    registration: Option<(i32, Option<i128>)>,
    /// When this controller first saw that registration.
    registration_seen: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    pods: HashMap<PodKey, Entry>,
    /// Pods whose liveness Lease could not be created (e.g. refused), and when: tried again
    /// after [`CREATE_RETRY`], not at every reconcile.
    refused: HashMap<PodKey, Instant>,
    /// Registered pods by when their next renewal is overdue.
    timers: BTreeMap<Instant, BTreeSet<PodKey>>,
    /// Names seen by the watch's current list.
    listing: Option<BTreeSet<PodKey>>,
}

/// A pod whose liveness changed (or whose renewals stopped): wake the sets that care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodWake {
    pub namespace: String,
    pub uid: String,
    /// The pod's name (from the liveness Lease's ownerReference).
    pub pod: String,
}

/// The liveness Leases, shared by the watch task and every reconcile.
#[derive(Default)]
pub struct LivenessTracker {
    inner: Mutex<Inner>,
    rearm: Notify,
}

fn record(l: &Lease) -> u64 {
    let spec = l.spec.as_ref();
    let mut h = fnv::FnvHasher::default();
    (
        spec.and_then(|s| s.holder_identity.as_deref()),
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0.as_nanosecond()),
        spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0.as_nanosecond()),
        spec.and_then(|s| s.lease_transitions),
    )
        .hash(&mut h);
    h.finish()
}

/// The registration `l` records for pod `pod` (its number and `acquireTime`), if registered: a
/// new registration changes both, even on a Lease made anew.
fn registration_of(l: &Lease, pod: &str) -> Option<(i32, Option<i128>)> {
    let number = liveness::registration(l, pod)?;
    let acquired = l
        .spec
        .as_ref()
        .and_then(|s| s.acquire_time.as_ref())
        .map(|t| t.0.as_nanosecond());
    Some((number, acquired))
}

fn key_of(l: &Lease) -> Option<PodKey> {
    Some((l.metadata.namespace.clone()?, liveness::pod_uid_of(l)?.to_string()))
}

impl Inner {
    /// Forget pods whose Lease went long ago.
    fn prune(&mut self) {
        let now = Instant::now();
        self.pods
            .retain(|_, e| e.gone_at.is_none_or(|at| now.saturating_duration_since(at) < TOMBSTONE));
    }
}

impl LivenessTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of a liveness Lease seen at `now` (from the watch, or answered to our own write:
    /// `ours`). Returns the pod to wake when its liveness changed.
    pub fn observe(&self, l: &Lease, ours: bool, now: Instant) -> Option<PodWake> {
        let key = key_of(l)?;
        let pod = liveness::owner_name(l)?.to_string();
        let rv = l
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        let mut inner = self.lock();
        if let Some(listing) = inner.listing.as_mut() {
            listing.insert(key.clone());
        }
        let old = inner.pods.get(&key).cloned();
        if let (Some(old_rv), Some(new_rv)) = (old.as_ref().and_then(|e| e.rv), rv) {
            let same = old
                .as_ref()
                .and_then(|e| e.lease.as_ref())
                .is_some_and(|o| Some(&o.name) == l.metadata.name.as_ref());
            if new_rv < old_rv && same {
                return None;
            }
        }
        let registration = registration_of(l, &pod);
        let registered = registration.is_some();
        let fenced = liveness::is_fenced(l);
        let leaving = liveness::is_leaving(l);
        let registration_seen = match old.as_ref() {
            Some(e) if registration.is_some() && e.registration == registration => e.registration_seen,
            _ => registration.map(|_| now),
        };
        let rec = record(l);
        let changed_record = old.as_ref().is_none_or(|e| e.record != rec);
        // An agent's write (not the controller's own) of a registered Lease is a sign of life.
        let first_seen = old.as_ref().is_some_and(|e| e.observed.is_none());
        let observed = if registered && !ours && (changed_record || first_seen) {
            Some(now)
        } else {
            old.as_ref()
                .and_then(|e| e.observed)
                .or((registered && !ours).then_some(now))
        };
        let lease = LiveLease {
            name: l.metadata.name.clone().unwrap_or_default(),
            resource_version: l.metadata.resource_version.clone().unwrap_or_default(),
            registered,
            fenced,
            leaving,
        };
        let entry = Entry {
            lease: Some(lease.clone()),
            pod: pod.clone(),
            record: rec,
            observed,
            duration: crate::api::listenerset::lease::duration_of(l, DEFAULT_LEASE_DURATION_SECONDS),
            rv,
            gone_at: None,
            registration,
            registration_seen,
        };
        // An agent writing again after a silence past its Lease's duration answers again: the
        // sets that select its pod may give it listeners now (a renewal wakes nothing else).
        let returned = registered
            && !ours
            && old
                .as_ref()
                .is_some_and(|e| e.observed.is_some_and(|o| now >= o + e.duration));
        let woke = returned
            || old.as_ref().is_none_or(|e| {
                e.lease.as_ref().is_none_or(|o| {
                    o.registered != registered || o.fenced != fenced || o.leaving != leaving || o.name != lease.name
                })
            });
        if registered {
            if let Some(at) = observed.map(|o| o + entry.duration + SLACK) {
                inner.timers.entry(at).or_default().insert(key.clone());
                drop(inner.pods.insert(key.clone(), entry));
                drop(inner);
                self.rearm.notify_one();
            } else {
                inner.pods.insert(key.clone(), entry);
            }
        } else {
            inner.pods.insert(key.clone(), entry);
        }
        woke.then_some(PodWake {
            namespace: key.0,
            uid: key.1,
            pod,
        })
    }

    /// A liveness Lease was deleted: its pod's last renewal is remembered.
    pub fn gone(&self, l: &Lease) -> Option<PodWake> {
        let key = key_of(l)?;
        let mut inner = self.lock();
        let entry = inner.pods.get_mut(&key)?;
        entry.lease = None;
        entry.registration = None;
        entry.registration_seen = None;
        entry.gone_at = Some(Instant::now());
        let pod = entry.pod.clone();
        inner.prune();
        Some(PodWake {
            namespace: key.0,
            uid: key.1,
            pod,
        })
    }

    /// What a decision reads of the pods of `uids` in `ns`: their liveness Lease and when their
    /// agent was last seen writing it.
    pub fn facts<'a>(&self, ns: &str, uids: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, LivenessFacts> {
        let inner = self.lock();
        uids.into_iter()
            .map(|uid| {
                let e = inner.pods.get(&(ns.to_string(), uid.to_string()));
                let facts = LivenessFacts {
                    lease: e.and_then(|e| e.lease.clone()),
                    observed: e.and_then(|e| e.observed),
                    wakes_after: e.map(|e| e.duration),
                    registration_seen: e.and_then(|e| e.registration_seen),
                };
                (uid.to_string(), facts)
            })
            .collect()
    }

    /// Creating the liveness Lease of the pod of `uid` in `ns` failed now.
    pub fn create_failed(&self, ns: &str, uid: &str) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner
            .refused
            .retain(|_, at| now.saturating_duration_since(*at) < CREATE_RETRY);
        inner.refused.insert((ns.to_string(), uid.to_string()), now);
    }

    /// Whether creating the liveness Lease of the pod of `uid` in `ns` failed less than
    /// [`CREATE_RETRY`] ago.
    pub fn recently_refused(&self, ns: &str, uid: &str) -> bool {
        self.lock()
            .refused
            .get(&(ns.to_string(), uid.to_string()))
            .is_some_and(|at| at.elapsed() < CREATE_RETRY)
    }

    /// Whether the pod of `uid` in `ns` is registered on its liveness Lease now.
    pub fn registered(&self, ns: &str, uid: &str) -> bool {
        self.lock()
            .pods
            .get(&(ns.to_string(), uid.to_string()))
            .is_some_and(|e| e.lease.as_ref().is_some_and(|l| l.registered))
    }

    /// A watch relist begins / ends: what the list did not show is gone.
    fn listing(&self, begin: bool) -> Vec<PodWake> {
        let mut inner = self.lock();
        if begin {
            inner.listing = Some(BTreeSet::new());
            return Vec::new();
        }
        let Some(seen) = inner.listing.take() else {
            return Vec::new();
        };
        let gone: Vec<PodKey> = inner
            .pods
            .iter()
            .filter(|(k, e)| !seen.contains(*k) && e.lease.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let now = Instant::now();
        gone.into_iter()
            .filter_map(|k| {
                let e = inner.pods.get_mut(&k)?;
                // Deleted while the watch was away: renewals may have landed before that, unseen.
                // The last one was before now, which is all that is known.
                if e.lease.as_ref().is_some_and(|l| l.registered) {
                    e.observed = Some(now);
                }
                e.lease = None;
                e.registration = None;
                e.registration_seen = None;
                e.gone_at = Some(now);
                Some(PodWake {
                    namespace: k.0,
                    uid: k.1,
                    pod: e.pod.clone(),
                })
            })
            .collect()
    }

    /// Registered pods whose renewal is overdue now, and when the next timer is due.
    fn overdue(&self, now: Instant) -> (Vec<PodWake>, Option<Instant>) {
        let mut inner = self.lock();
        let later = inner.timers.split_off(&now);
        let due = std::mem::replace(&mut inner.timers, later);
        let mut out = Vec::new();
        for key in due.into_values().flatten() {
            let Some(e) = inner.pods.get(&key) else { continue };
            let registered = e.lease.as_ref().is_some_and(|l| l.registered);
            let overdue = registered && e.observed.is_some_and(|o| o + e.duration + SLACK <= now);
            if overdue {
                out.push(PodWake {
                    namespace: key.0.clone(),
                    uid: key.1.clone(),
                    pod: e.pod.clone(),
                });
            }
        }
        (out, inner.timers.keys().next().copied())
    }

    /// Watch the liveness Leases of `namespace` (None: all) until the stream is dropped: the
    /// pods whose liveness changed or lapsed.
    pub fn run(
        self: Arc<Self>,
        client: &kube::Client,
        namespace: &Option<String>,
        synced: SyncedTx,
    ) -> impl Stream<Item = PodWake> + Send + 'static {
        let cfg = watcher::Config::default().labels(LIVENESS_LABEL);
        let tracker = self.clone();
        let watch = synced
            .track(watcher(api::<Lease>(client, namespace), cfg).default_backoff())
            .flat_map(move |ev| {
                let now = Instant::now();
                let wakes: Vec<PodWake> = match ev {
                    Ok(watcher::Event::Apply(l)) | Ok(watcher::Event::InitApply(l)) => {
                        tracker.observe(&l, false, now).into_iter().collect()
                    }
                    Ok(watcher::Event::Delete(l)) => tracker.gone(&l).into_iter().collect(),
                    Ok(watcher::Event::Init) => tracker.listing(true),
                    Ok(watcher::Event::InitDone) => tracker.listing(false),
                    Err(e) => {
                        tracing::debug!(error = %e, "liveness Lease watch");
                        Vec::new()
                    }
                };
                futures::stream::iter(wakes)
            });
        let timers = futures::stream::unfold(self, |tracker| async move {
            loop {
                let (wakes, next) = tracker.overdue(Instant::now());
                if !wakes.is_empty() {
                    return Some((futures::stream::iter(wakes), tracker));
                }
                let sleep =
                    tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)));
                tokio::select! {
                    _ = sleep => {}
                    _ = tracker.rearm.notified() => {}
                }
            }
        })
        .flatten();
        futures::stream::select(watch, timers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The liveness Lease of pod `p` registered by its agent (registration 1), renewed at `renew`
    /// (RFC 3339), resourceVersion `rv`.
    fn lease(renew: &str, rv: u64) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "baton-agent.uid-p", "namespace": "ns", "resourceVersion": rv.to_string(),
                "labels": {"baton.dev/liveness": "agent", "baton.dev/holder-uid": "uid-p"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "uid-p"}]},
            "spec": {"holderIdentity": "p", "leaseTransitions": 1, "leaseDurationSeconds": 15, "renewTime": renew}
        }))
        .expect("a liveness Lease")
    }

    #[test]
    fn a_renewal_wakes_nothing_unless_the_agent_was_silent_past_its_duration() {
        let t = LivenessTracker::default();
        let t0 = Instant::now();
        let first = lease("2026-01-01T00:00:00.000000Z", 1);
        assert!(
            liveness::registration(&first, "p").is_some(),
            "the test's Lease is registered"
        );
        assert!(t.observe(&first, false, t0).is_some(), "registration wakes");
        let renewed = lease("2026-01-01T00:00:03.000000Z", 2);
        assert!(
            t.observe(&renewed, false, t0 + Duration::from_secs(3)).is_none(),
            "a renewal does not"
        );
        let late = lease("2026-01-01T00:00:30.000000Z", 3);
        let back = t.observe(&late, false, t0 + Duration::from_secs(30));
        assert_eq!(
            back.map(|w| w.pod),
            Some("p".to_string()),
            "back after 27 s of silence (15 s Lease)"
        );
    }

    #[test]
    fn a_registration_is_dated_from_its_first_sight_and_a_new_one_anew() {
        let t = LivenessTracker::default();
        let t0 = Instant::now();
        let seen = |t: &LivenessTracker| t.facts("ns", ["uid-p"]).get("uid-p").and_then(|f| f.registration_seen);
        t.observe(&lease("2026-01-01T00:00:00.000000Z", 1), false, t0);
        t.observe(
            &lease("2026-01-01T00:00:03.000000Z", 2),
            false,
            t0 + Duration::from_secs(3),
        );
        assert_eq!(seen(&t), Some(t0), "a renewal is the same registration");
        // Fenced (holder cleared by the controller): not registered.
        let mut fenced = lease("2026-01-01T00:00:03.000000Z", 3);
        if let Some(spec) = fenced.spec.as_mut() {
            spec.holder_identity = None;
        }
        t.observe(&fenced, true, t0 + Duration::from_secs(20));
        assert_eq!(seen(&t), None);
        // Registered again (registration 2): a new registration, first seen now.
        let mut again = lease("2026-01-01T00:00:21.000000Z", 4);
        if let Some(spec) = again.spec.as_mut() {
            spec.lease_transitions = Some(2);
        }
        let at = t0 + Duration::from_secs(21);
        t.observe(&again, false, at);
        assert_eq!(seen(&t), Some(at));
    }
}
