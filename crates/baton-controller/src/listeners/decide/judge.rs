//! Judging each listener Lease of a set: may its listener be running on its holder (valid), is it
//! free for another pod (expired, in the assigner's words), does its holder need a fence first,
//! and when will that change.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use fnv::{FnvHashMap as HashMap, FnvHashSet as HashSet};

use tokio::time::Instant;

use super::{Fence, Input, LiveLease, LivenessFacts, Memory, PodFacts};
use crate::listeners::assigner::LeaseView;

/// The set's Leases as judged now.
pub(in crate::listeners) struct Judged<'a> {
    /// Every Lease's view, `expired` meaning "free for another pod" (in the order of
    /// `Input::leases`): the input's own where it says so already, a copy where it does not.
    pub(super) views: Vec<Cow<'a, LeaseView>>,
    /// The pod holding each Lease of `views`, if it exists (with the Lease's uid).
    pub(super) holders: Vec<Option<&'a PodFacts>>,
    /// Each listener's first Lease: its place in `views` and `Input::leases`.
    pub(super) by_listener: HashMap<&'a str, usize>,
    /// When the first judgement may change by time alone.
    pub(super) next_expiry: Option<Instant>,
    /// How many a recover freed.
    pub(super) recovered: usize,
    /// Uids of holders seen acknowledging (or renewing) a Lease of this set.
    pub(super) renewed: BTreeSet<String>,
    /// Uids of existing holders that left a Lease of this set unacknowledged past its duration,
    /// or, never registered, let an acknowledged one expire.
    pub(super) lapsed: BTreeSet<String>,
    /// Of those, the ones that left a Lease of this set unacknowledged (remembered in this set),
    /// with when the latest such assignment lapsed (its holder record's first sight + duration).
    pub(super) unacknowledged: BTreeMap<String, Instant>,
    /// Liveness fences to write (one per pod).
    pub(super) fences: Vec<Fence>,
    /// Listeners whose Lease is being deleted.
    pub(super) terminating: BTreeSet<String>,
}

impl Judged<'_> {
    /// Whether the pod of `uid`, never registered, let an acknowledged Lease of this set expire
    /// (an agent of the per-listener protocol that stopped renewing), as opposed to leaving an
    /// assignment unacknowledged.
    pub(super) fn let_expire(&self, uid: &str) -> bool {
        self.lapsed.contains(uid) && !self.unacknowledged.contains_key(uid)
    }

    /// Whether the pod of `uid` lapsed in this set now: it let an acknowledged Lease expire, or
    /// left an assignment unacknowledged and gets no new chance (`memory::new_chance`).
    pub(super) fn lapsed_now(&self, input: &Input, uid: &str) -> bool {
        self.let_expire(uid)
            || self
                .unacknowledged
                .get(uid)
                .is_some_and(|at| !super::memory::new_chance(input, uid, *at))
    }
}

/// What the holder of a Lease is, now.
pub(super) enum Holder<'a> {
    /// No holder (released).
    None,
    /// The holder pod exists with the Lease's uid.
    Exists(&'a PodFacts),
    /// No pod of that name and uid.
    Gone,
}

/// The namespace's pods by name, built once a pass (names are unique at any one time; all are
/// kept, in order, so a lookup finds what a scan would).
pub(super) type PodsByName<'a> = HashMap<&'a str, Vec<&'a PodFacts>>;

pub(super) fn pods_by_name<'a>(input: &Input<'a>) -> PodsByName<'a> {
    let mut map: PodsByName<'a> = HashMap::with_capacity_and_hasher(input.pods.len(), Default::default());
    for p in input.pods {
        map.entry(p.name.as_str()).or_default().push(p);
    }
    map
}

pub(super) fn holder<'a>(pods: &PodsByName<'a>, lease: &LeaseView) -> Holder<'a> {
    let Some(name) = lease.holder.as_deref().filter(|h| !h.is_empty()) else {
        return Holder::None;
    };
    match pods
        .get(name)
        .and_then(|named| named.iter().find(|p| lease.held_by(&p.name, &p.uid)))
    {
        Some(p) => Holder::Exists(p),
        None => Holder::Gone,
    }
}

fn earliest(next: &mut Option<Instant>, at: Instant) {
    *next = Some(next.map_or(at, |n| n.min(at)));
}

/// Judge every Lease of the set.
pub(super) fn leases<'a>(input: &'a Input<'a>, _memory: &Memory) -> Judged<'a> {
    let now = input.now;
    let pods = pods_by_name(input);
    let mut out = Judged {
        views: Vec::with_capacity(input.leases.len()),
        holders: Vec::with_capacity(input.leases.len()),
        by_listener: HashMap::with_capacity_and_hasher(input.leases.len(), Default::default()),
        next_expiry: None,
        recovered: 0,
        renewed: BTreeSet::new(),
        lapsed: BTreeSet::new(),
        unacknowledged: BTreeMap::new(),
        fences: Vec::new(),
        terminating: BTreeSet::new(),
    };
    let mut fenced_pods: BTreeSet<&str> = BTreeSet::new();
    // Hashed once a pass: every held Lease looks its holder up in both.
    let liveness: HashMap<&str, &LivenessFacts> = input.liveness.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut renewed: HashSet<&str> = HashSet::default();
    let leases: &'a [super::LeaseFacts] = input.leases;
    for (i, lease) in leases.iter().enumerate() {
        if lease.terminating {
            out.terminating.insert(lease.view.listener.clone());
        }
        let view = &lease.view;
        out.by_listener.entry(view.listener.as_str()).or_insert(i);
        let uid = view.holder_uid.as_deref().unwrap_or_default();
        let who = holder(&pods, view);
        out.holders.push(match who {
            Holder::Exists(p) => Some(p),
            Holder::None | Holder::Gone => None,
        });
        if matches!(who, Holder::None) {
            out.views.push(judged(view, false));
            continue;
        }
        if view.renewed && lease.observed + lease.duration > now {
            renewed.insert(uid);
        }
        let live = liveness.get(uid).copied();
        let expired = judge_one(input, lease, &who, live, &mut out, &mut fenced_pods);
        out.views.push(judged(view, expired));
    }
    out.renewed = renewed.into_iter().map(str::to_string).collect();
    out
}

/// `view` judged free for another pod or not: itself if it says so already (no copy per Lease
/// and pass), else a copy that does.
fn judged(view: &LeaseView, expired: bool) -> Cow<'_, LeaseView> {
    match view.expired == expired {
        true => Cow::Borrowed(view),
        false => Cow::Owned(LeaseView {
            expired,
            ..view.clone()
        }),
    }
}

/// Whether the listener of `view` is free for another pod whatever the times say: its holder
/// stopped, a recover names it not live (fenced, if it acknowledged), or it never acknowledged
/// and its agent leaves.
fn free_at_once<'a>(
    input: &'a Input,
    view: &LeaseView,
    who: &Holder<'a>,
    live: Option<&LivenessFacts>,
    out: &mut Judged<'a>,
    fenced_pods: &mut BTreeSet<&'a str>,
) -> bool {
    let uid = view.holder_uid.as_deref().unwrap_or_default();
    // The kubelet says its containers are gone: nothing of it runs the listener.
    if input.stopped.contains(uid) {
        return true;
    }
    // A recover is the operator's word that pods not live run nothing.
    if let (Some(live_pods), Some(name)) = (input.recover, view.holder.as_deref()) {
        if !live_pods.contains(name) {
            out.recovered += 1;
            // (An unacknowledged assignment needs no fence: the takeover is conditional.)
            if let (Holder::Exists(p), true) = (who, view.renewed) {
                fence(out, fenced_pods, p, live);
            }
            return true;
        }
    }
    // Never acknowledged, and its holder's agent shuts down: such an agent acknowledges and
    // starts nothing more (it releases what it is given), so nobody runs the listener. It frees
    // a handover that reached a pod whose agent had begun to leave, which would otherwise wait
    // out its duration. The takeover is conditional on this copy, which an acknowledgement
    // (by a restarted agent) would change.
    !view.renewed && matches!(who, Holder::Exists(_)) && live.is_some_and(LivenessFacts::leaving)
}

/// Whether the listener of `lease` is free for another pod; records fences, lapses and when to
/// look again.
fn judge_one<'a>(
    input: &'a Input,
    lease: &'a super::LeaseFacts,
    who: &Holder<'a>,
    live: Option<&LivenessFacts>,
    out: &mut Judged<'a>,
    fenced_pods: &mut BTreeSet<&'a str>,
) -> bool {
    if free_at_once(input, &lease.view, who, live, out, fenced_pods) {
        return true;
    }
    let (now, view, duration) = (input.now, &lease.view, lease.duration);
    let own_until = lease.observed + duration;
    if view.renewed && matches!(who, Holder::Exists(_)) && alive(input, live, duration) {
        // Acknowledged, and its holder renews its registration: valid for as long as that
        // lasts, which the liveness tracker watches (no timer per listener here) — unless the
        // tracker would look later than this set's lease runs out.
        if let Some(l) = live.filter(|l| l.wakes_after.is_some_and(|w| w > duration)) {
            earliest(&mut out.next_expiry, seen_at(input, l) + duration);
        }
        return false;
    }
    if now < own_until {
        earliest(&mut out.next_expiry, own_until);
        return false;
    }
    if !view.renewed {
        // Never acknowledged: the agent did not start it and cannot without a write that the
        // takeover would conflict with. Its pod does not serve this set.
        if let Holder::Exists(p) = who {
            out.lapsed.insert(p.uid.clone());
            let lapsed_at = out.unacknowledged.entry(p.uid.clone()).or_insert(own_until);
            *lapsed_at = (*lapsed_at).max(own_until);
        }
        return true;
    }
    let lp = live.and_then(|l| l.lease.as_ref());
    let registered = lp.is_some_and(|l| l.registered);
    // Renewals count from when this controller saw them, and never from before it started.
    let renewed_until = live
        .and_then(|l| l.observed)
        .map_or(input.started, |o| o.max(input.started))
        + duration;
    let gone = matches!(who, Holder::Gone);
    if gone && registered {
        // Whatever still renews a gone pod's liveness Lease must stop: fence it now, and let
        // its listeners go once what it renewed before has run out.
        fence_lease(out, fenced_pods, view, lp);
    }
    if registered && now < renewed_until {
        if gone {
            earliest(&mut out.next_expiry, renewed_until);
        }
        // Alive: the liveness tracker wakes the set if the pod stops renewing.
        return false;
    }
    match (who, lp) {
        (_, Some(l)) if l.fenced || gone => {
            if now >= renewed_until && l.fenced {
                return true;
            }
            fence_lease(out, fenced_pods, view, lp);
            earliest(&mut out.next_expiry, renewed_until);
            false
        }
        (Holder::Gone, None) => {
            // Gone with its liveness Lease: nothing can renew, wait out what was renewed.
            if now >= renewed_until {
                return true;
            }
            earliest(&mut out.next_expiry, renewed_until);
            false
        }
        (Holder::Exists(p), _) => {
            if !registered && live.and_then(|l| l.observed).is_none() {
                // An agent of the per-listener protocol let it expire. (One seen registering
                // speaks the liveness protocol: the fence sends it to register again.)
                out.lapsed.insert(p.uid.clone());
            }
            fence_lease(out, fenced_pods, view, lp);
            false
        }
        (Holder::Gone, Some(_)) | (Holder::None, _) => true,
    }
}

/// Whether the pod of `live` is registered on its liveness Lease and was seen renewing it less
/// than `duration` ago (never counting from before this controller started).
fn alive(input: &Input, live: Option<&LivenessFacts>, duration: std::time::Duration) -> bool {
    let registered = live.and_then(|l| l.lease.as_ref()).is_some_and(|l| l.registered);
    registered && live.is_some_and(|l| input.now < seen_at(input, l) + duration)
}

/// When the pod of `live` was last seen renewing, never counting from before this controller
/// started.
fn seen_at(input: &Input, live: &LivenessFacts) -> Instant {
    live.observed.map_or(input.started, |o| o.max(input.started))
}

/// Fence the holder of `view` (once per decision) unless its liveness Lease is already fenced.
fn fence_lease<'a>(
    out: &mut Judged<'_>,
    fenced_pods: &mut BTreeSet<&'a str>,
    view: &'a LeaseView,
    lp: Option<&LiveLease>,
) {
    let uid = view.holder_uid.as_deref().unwrap_or_default();
    if lp.is_some_and(|l| l.fenced) || !fenced_pods.insert(uid) {
        return;
    }
    out.fences.push(Fence {
        pod: view.holder.clone().unwrap_or_default(),
        uid: uid.to_string(),
        lease: lp.map(|l| (l.name.clone(), l.resource_version.clone())),
    });
}

/// Fence pod `p` (once per decision) unless its liveness Lease is already fenced.
fn fence<'a>(out: &mut Judged<'_>, fenced_pods: &mut BTreeSet<&'a str>, p: &'a PodFacts, live: Option<&LivenessFacts>) {
    let lease = live.and_then(|l| l.lease.as_ref());
    if lease.is_some_and(|l| l.fenced) || !fenced_pods.insert(p.uid.as_str()) {
        return;
    }
    out.fences.push(Fence {
        pod: p.name.clone(),
        uid: p.uid.clone(),
        lease: lease.map(|l| (l.name.clone(), l.resource_version.clone())),
    });
}

/// Why the held Lease at `i` of `judged`, judged free, is no longer its holder's. One wording
/// however often, or when, the decision ran in between.
pub(super) fn why_expired(input: &Input, judged: &Judged, i: usize) -> String {
    let Some(lease) = judged.views.get(i) else {
        return String::new();
    };
    let holder_name = lease.holder.as_deref().unwrap_or_default();
    let uid = lease.holder_uid.as_deref().unwrap_or_default();
    let secs = judged
        .by_listener
        .get(lease.listener.as_str())
        .and_then(|first| input.leases.get(*first))
        .map_or(input.lease_duration.as_secs(), |l| l.duration.as_secs());
    if input.stopped.contains(uid) {
        return why_stopped(holder_name);
    }
    let exists = judged.holders.get(i).is_some_and(Option::is_some);
    match exists {
        true if input.recover.is_some_and(|live| !live.contains(holder_name)) => why_recovered(holder_name),
        true if !lease.renewed && input.liveness.get(uid).is_some_and(LivenessFacts::leaving) => {
            format!("holder pod {holder_name} is shutting down (its agent marked it leaving) and never acknowledged it")
        }
        true if !lease.renewed => {
            format!("holder pod {holder_name} did not acknowledge it within {secs}s")
        }
        true => {
            format!("holder pod {holder_name} stopped renewing ({secs}s without renewal) and was fenced")
        }
        false => {
            format!("holder pod {holder_name} is gone and renewed nothing for {secs}s")
        }
    }
}

/// Why a listener of holder pod `pod`, which the kubelet reported stopped, moved.
pub(super) fn why_stopped(pod: &str) -> String {
    format!("holder pod {pod} stopped (the kubelet reported its containers terminated)")
}

/// Why a listener of holder pod `pod`, not live at a recover, moved.
pub(super) fn why_recovered(pod: &str) -> String {
    format!("recovered from holder pod {pod}, which is not live")
}
