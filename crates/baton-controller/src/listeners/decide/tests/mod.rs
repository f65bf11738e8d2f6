//! Unit tests of [`decide`](super::decide), and the fixtures the property tests share: a
//! [`Scene`] is everything one decision reads, owned, so a test changes one fact and decides
//! again.
use super::*;
pub(super) use crate::listeners::assigner::{ListenerState, ReleaseReason, Successor};

mod eligibility;
mod first;
mod gone;
mod properties;
mod rebalance;
mod registration;
mod tokens;
mod validity;

/// The set's lease duration in the unit tests.
pub(super) const D: Duration = Duration::from_secs(5);
/// One millisecond: "just before" a deadline.
pub(super) const MS: Duration = Duration::from_millis(1);

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn uid(pod: &str) -> String {
    format!("uid-{pod}")
}

/// A selected, eligible pod of uid `uid-<name>`.
pub(super) fn pod(name: &str) -> PodFacts {
    PodFacts {
        revision: None,
        weight: 1,
        name: name.into(),
        uid: uid(name),
        selected: true,
        eligible: true,
        ready: true,
        restarts: 0,
    }
}

pub(super) fn wanted(id: &str) -> Wanted {
    Wanted {
        id: id.into(),
        ..Default::default()
    }
}

/// The Lease of `listener` held by `holder` (None: released) at `token`, acknowledged or not,
/// whose holder record this controller first saw at `observed`; adopted, not being deleted.
pub(super) fn lease(listener: &str, holder: Option<&str>, token: i32, acked: bool, observed: Instant) -> LeaseFacts {
    LeaseFacts {
        name: format!("set-{listener}"),
        view: LeaseView {
            held_for: None,
            successor: None,
            rebalancing: false,
            listener: listener.into(),
            holder: holder.map(String::from),
            holder_uid: holder.map(uid),
            expired: false,
            transitions: token,
            resource_version: format!("rv-{listener}-{token}"),
            release_requested: false,
            renewed: acked,
        },
        observed,
        duration: D,
        terminating: false,
        adopted: true,
        labelled_uid: holder.map(uid),
    }
}

/// `pod`'s liveness Lease: registered or not, fenced or not.
pub(super) fn live_lease(pod: &str, registered: bool, fenced: bool) -> LiveLease {
    LiveLease {
        name: format!("baton-agent.{}", uid(pod)),
        resource_version: format!("lrv-{pod}"),
        registered,
        fenced,
        leaving: false,
    }
}

/// `pod`'s agent registered and last seen writing its liveness Lease at `observed`.
pub(super) fn registered(pod: &str, observed: Instant) -> LivenessFacts {
    LivenessFacts {
        wakes_after: None,
        registration_seen: None,
        lease: Some(live_lease(pod, true, false)),
        observed: Some(observed),
    }
}

/// `pod`'s liveness Lease fenced; its agent last seen writing it at `observed`.
pub(super) fn fenced(pod: &str, observed: Option<Instant>) -> LivenessFacts {
    LivenessFacts {
        wakes_after: None,
        registration_seen: None,
        lease: Some(live_lease(pod, false, true)),
        observed,
    }
}

/// Everything one decision reads, owned.
#[derive(Clone, Debug)]
pub(super) struct Scene {
    pub listeners: Vec<Wanted>,
    pub pods: Vec<PodFacts>,
    pub leases: Vec<LeaseFacts>,
    pub liveness: BTreeMap<String, LivenessFacts>,
    pub ceiling: Option<i32>,
    pub stopped: BTreeSet<String>,
    pub recover: Option<BTreeSet<String>>,
    pub unresponsive: Unresponsive,
    pub deleting: bool,
    pub keep_unknown: bool,
    pub max_per_pod: u32,
    pub rebalance: Option<Rebalance>,
    pub under_way: BTreeSet<String>,
    pub started: Instant,
}

impl Scene {
    /// Listeners `listeners` (no Leases), pods `pods` (no liveness Lease known), no ceiling; the
    /// controller started at `started`.
    pub fn new(listeners: &[&str], pods: &[&str], started: Instant) -> Scene {
        Scene {
            listeners: listeners.iter().map(|l| wanted(l)).collect(),
            pods: pods.iter().map(|p| pod(p)).collect(),
            leases: Vec::new(),
            liveness: BTreeMap::new(),
            ceiling: None,
            stopped: BTreeSet::new(),
            recover: None,
            unresponsive: Unresponsive::default(),
            deleting: false,
            keep_unknown: false,
            max_per_pod: 0,
            rebalance: None,
            under_way: BTreeSet::new(),
            started,
        }
    }

    /// With `facts` as `pod`'s liveness.
    pub fn live(mut self, pod: &str, facts: LivenessFacts) -> Scene {
        self.liveness.insert(uid(pod), facts);
        self
    }

    /// With `leases` as the set's Leases.
    pub fn leases(mut self, leases: Vec<LeaseFacts>) -> Scene {
        self.leases = leases;
        self
    }

    pub fn input(&self, now: Instant) -> Input<'_> {
        Input {
            rebalance: self.rebalance.as_ref(),
            under_way: &self.under_way,
            deleting: self.deleting,
            listeners: &self.listeners,
            keep_unknown: self.keep_unknown,
            max_per_pod: self.max_per_pod,
            pods: &self.pods,
            leases: &self.leases,
            liveness: &self.liveness,
            ceiling: self.ceiling,
            recover: self.recover.as_ref(),
            unresponsive: &self.unresponsive,
            stopped: &self.stopped,
            lease_duration: D,
            seed: 0,
            started: self.started,
            now,
            delta: None,
        }
    }

    /// [`decide`] at `now`, checked to decide what [`decide_full`] does (the full pass's decision
    /// is returned: its summary lists every listener).
    pub fn decide(&self, now: Instant, memory: &mut Memory) -> Decision {
        let input = self.input(now);
        let mut full_memory = memory.clone();
        let split = decide(&input, memory);
        let full = decide_full(&input, &mut full_memory);
        if let Err(e) = same_decision(&split, &full) {
            panic!("decide and decide_full differ: {e}");
        }
        assert_eq!(*memory, full_memory, "decide and decide_full learnt differently");
        full
    }
}

/// Whether `split` (made by [`decide`]) decides what `full` (made by [`decide_full`]) does: the
/// same writes, status and everything else, the settled listeners counted on the pods where
/// `full` lists them running.
pub(super) fn same_decision(split: &Decision, full: &Decision) -> Result<(), String> {
    let listed: BTreeSet<&str> = split.summary.states.iter().map(|(id, _)| id.as_str()).collect();
    let mut counted: BTreeMap<String, i32> = BTreeMap::new();
    let mut kept = Vec::new();
    for (id, state) in &full.summary.states {
        if listed.contains(id.as_str()) {
            kept.push((id.clone(), state.clone()));
            continue;
        }
        match state {
            ListenerState::Running { pod, .. } => *counted.entry(pod.clone()).or_default() += 1,
            other => return Err(format!("{id} ({other:?}) is not in the summary of decide")),
        }
    }
    if kept != split.summary.states {
        return Err(format!("states {:?} != {kept:?}", split.summary.states));
    }
    if counted != split.summary.settled {
        return Err(format!(
            "settled {:?} != running unlisted {counted:?}",
            split.summary.settled
        ));
    }
    let strip = |d: &Decision| {
        let mut d = d.clone();
        d.summary.states.clear();
        d.summary.settled.clear();
        d
    };
    let (a, b) = (strip(split), strip(full));
    if a != b {
        return Err(format!("{a:#?}\n!=\n{b:#?}"));
    }
    Ok(())
}

/// The requeue of a decision whose first change by time alone is `after` from now.
pub(super) fn wake(after: Duration) -> Option<Duration> {
    Some((after + EXPIRY_SLACK).max(REQUEUE_FLOOR))
}

/// The assignments of `d`: (listener, pod, token).
pub(super) fn assigns(d: &Decision) -> Vec<(String, String, i32)> {
    d.writes
        .iter()
        .filter_map(|w| match &w.change {
            Move::Assign {
                listener,
                pod,
                transitions,
                ..
            } => Some((listener.clone(), pod.clone(), *transitions)),
            _ => None,
        })
        .collect()
}

/// (listener, pod, token) for test expectations.
pub(super) fn to(listener: &str, pod: &str, token: i32) -> (String, String, i32) {
    (listener.into(), pod.into(), token)
}

/// The write of `listener` in `d` (the test expects exactly one).
pub(super) fn write_of<'d>(d: &'d Decision, listener: &str) -> &'d Write {
    let found: Vec<&Write> = d.writes.iter().filter(|w| w.change.listener() == listener).collect();
    assert_eq!(found.len(), 1, "one write of {listener}: {:?}", d.writes);
    found[0]
}

/// The fences of `d`: (pod, the liveness Lease's (name, resourceVersion) written on).
pub(super) fn fences(d: &Decision) -> Vec<(String, Option<(String, String)>)> {
    d.fences.iter().map(|f| (f.pod.clone(), f.lease.clone())).collect()
}

/// The fence of a pod whose liveness Lease is `live_lease(pod, ..)`.
pub(super) fn fence_on(pod: &str) -> (String, Option<(String, String)>) {
    let l = live_lease(pod, true, false);
    (pod.into(), Some((l.name, l.resource_version)))
}

/// Whether `d` says the held Lease of `listener` moves because of `why`.
pub(super) fn takeover(d: &Decision, listener: &str, from: &str, why: &str) -> bool {
    matches!(&write_of(d, listener).kind, Some(HowAssigned::Takeover { from: f, why: w }) if f == from && w.contains(why))
}

/// Liveness facts for every pod of `scene`: registered, last seen at `at`.
pub(super) fn all_registered(mut scene: Scene, at: Instant) -> Scene {
    let names: Vec<String> = scene.pods.iter().map(|p| p.name.clone()).collect();
    for name in names {
        scene = scene.live(&name, registered(&name, at));
    }
    scene
}

/// The confirmation of assignments against the API server's pods ([`confirm`]).
mod confirm {
    use super::*;

    #[test]
    fn a_recreated_lease_is_written_only_for_a_pod_the_api_server_still_has() {
        let t0 = Instant::now();
        let t = t0 + secs(60);
        // p held a, q held b; a's Lease was deleted (p's pod force-deleted: the garbage
        // collector deleted what p owned), p's agent, still running, released it.
        let mut released = lease("a", None, 3, true, t);
        released.terminating = true;
        released.labelled_uid = Some(uid("p"));
        let b = lease("b", Some("q"), 1, true, t);
        let scene = all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t).leases(vec![released, b.clone()]);
        let mut m = Memory::default();
        let d = scene.decide(t, &mut m);
        assert!(
            matches!(&write_of(&d, "a").change, Move::RemoveFinalizer { .. }),
            "{:?}",
            d.writes
        );
        // Gone now; the pod cache still shows p, so the decision gives a back to p.
        let scene = scene.leases(vec![b]);
        let d = scene.decide(t + MS, &mut m);
        assert_eq!(assigns(&d), vec![to("a", "p", 4)]);
        assert_eq!(write_of(&d, "a").kind, Some(HowAssigned::Recreated));
        let targets = to_confirm(&d.writes);
        assert_eq!(targets, BTreeSet::from([("p".to_string(), uid("p"))]));
        // The API server no longer has p: nothing is written for it.
        let live = BTreeSet::from([("q".to_string(), uid("q"))]);
        let (go, held_back) = confirmed(&d.writes, &live);
        assert!(go.is_empty(), "{go:?}");
        assert_eq!(held_back.len(), 1);
        // A pod of that name but another uid is not p either.
        let other = BTreeSet::from([("p".to_string(), "uid-p2".to_string())]);
        assert!(confirmed(&d.writes, &other).0.is_empty());
        // Once the cache shows p gone, a goes to q (p released it: it runs nowhere).
        let mut gone = scene.clone();
        gone.pods.retain(|p| p.name != "p");
        let d = gone.decide(t + MS * 2, &mut m);
        assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
        let (go, _) = confirmed(&d.writes, &live);
        assert_eq!(go.len(), 1);
        // Release requests and finalizer removals need no confirmation.
        let others = vec![
            Write {
                change: Move::RequestRelease {
                    listener: "b".into(),
                    holder: "q".into(),
                    resource_version: "1".into(),
                    reason: ReleaseReason::Suspended,
                    to: None,
                },
                kind: None,
            },
            Write {
                change: Move::RemoveFinalizer {
                    listener: "c".into(),
                    resource_version: "2".into(),
                },
                kind: None,
            },
        ];
        assert!(to_confirm(&others).is_empty());
        assert_eq!(confirmed(&others, &BTreeSet::new()).0, others);
        // A successor a request names is confirmed too; not found, the request names none.
        let handing = |pod: &str, uid: &str| Write {
            change: Move::RequestRelease {
                listener: "d".into(),
                holder: "q".into(),
                resource_version: "3".into(),
                reason: ReleaseReason::HolderNotEligible,
                to: Some(Successor {
                    pod: pod.into(),
                    uid: uid.into(),
                    token: 5,
                }),
            },
            kind: None,
        };
        let named = vec![handing("p", &uid("p"))];
        assert_eq!(to_confirm(&named), BTreeSet::from([("p".to_string(), uid("p"))]));
        let here = BTreeSet::from([("p".to_string(), uid("p"))]);
        assert_eq!(confirmed(&named, &here), (named.clone(), vec![]));
        let (go, held_back) = confirmed(&named, &other);
        assert!(held_back.is_empty());
        assert!(
            matches!(
                &go[..],
                [Write {
                    change: Move::RequestRelease { to: None, .. },
                    ..
                }]
            ),
            "{go:?}"
        );
    }
}
