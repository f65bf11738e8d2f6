//! What the controller remembers of a set between reconciles. Nothing here is needed for safety
//! (that lives in the Leases); it makes the next decision better: how a listener whose Lease
//! went was let go (the Event of its next assignment, and the pod to prefer when it was not that
//! pod's doing), and which pods left a Lease of this set unacknowledged (they get nothing new
//! here until they acknowledge one, restart, their agent registers anew, or a minute (at least ten
//! lease durations) has passed), and since when the pods that may take listeners are the ones they
//! are (evening out waits for them to settle).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::BuildHasher;
use std::time::Duration;

use fnv::FnvHashMap as HashMap;

use tokio::time::Instant;

use super::judge::{why_expired, Judged};
use super::{Burst, HowAssigned, Input, PodFacts};
use crate::listeners::assigner::{Balance, PodView};

/// How a listener's last tenure ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ended {
    kind: HowAssigned,
    /// Give it back to `pod` when it can take it (its Lease was deleted under it).
    prefer: Option<String>,
}

/// What the controller remembers of one set between reconciles.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// Listener → how its last tenure ended, while it has no Lease held.
    ended: BTreeMap<String, Ended>,
    /// Listener → the holder of its Lease while that Lease is being deleted (the release clears
    /// the holder).
    leaving: BTreeMap<String, String>,
    /// Pod uid → its restart count when it left a Lease of this set unacknowledged, when this
    /// was learnt, and when the latest such assignment lapsed.
    lapsed: BTreeMap<String, (i32, Instant, Instant)>,
    /// Listener → the highest fencing token seen on its Lease: a Lease made anew (after the one
    /// before was deleted) continues at the next one (no token is skipped, none given twice).
    last_tokens: HashMap<String, i32>,
    /// When evening-out moves were asked in the last [`MOVES_WINDOW`], and how many each time.
    moves: VecDeque<(Instant, u32)>,
    /// The burst of evening-out moves under way: when it started and how many moves it made.
    burst: Option<(Instant, u32)>,
    /// The pods that may take listeners (by uid), and since when they are these: evening out
    /// waits until they have stayed the same for [`super::PODS_SETTLE`].
    pods: Option<(BTreeSet<String>, Instant)>,
    /// Since when a new set waits for its pods to settle before placing its first listeners
    /// ([`super::wait::first_placement`]); `None` while it does not.
    first_wait: Option<Instant>,
    /// A fingerprint of the spec's listeners when a pass last forgot the listeners the spec
    /// does not have ([`Forget`]); `None` before the first pass.
    spec: Option<u64>,
    /// The last pass's split, kept for the next ([`super::settled::kept`]).
    kept: super::settled::kept::Kept,
}

impl Memory {
    /// The spec's fingerprint when a pass last forgot listeners.
    #[cfg(test)]
    pub(super) fn spec_fingerprint(&self) -> Option<u64> {
        self.spec
    }

    /// The last pass's split, kept for the next.
    pub(super) fn kept_mut(&mut self) -> &mut super::settled::kept::Kept {
        &mut self.kept
    }
}

/// What the memory remembers, its caches (the spec's fingerprint, the kept split) aside.
impl PartialEq for Memory {
    fn eq(&self, other: &Self) -> bool {
        self.ended == other.ended
            && self.leaving == other.leaving
            && self.lapsed == other.lapsed
            && self.last_tokens == other.last_tokens
            && self.moves == other.moves
            && self.burst == other.burst
            && self.pods == other.pods
            && self.first_wait == other.first_wait
    }
}

/// Which listeners the spec has, and which of the memory's it must look at to forget the others.
pub(super) struct Forget<'a> {
    pub(super) wanted: &'a dyn Fn(&str) -> bool,
    /// The spec's [`Fingerprint`]. While it stays the same, only the listeners judged in a pass
    /// can be ones the spec does not have: the others were looked at when it last changed.
    pub(super) fingerprint: u64,
}

/// A fingerprint of the spec's listener ids, summed one by one: the same listeners in any order
/// give the same.
#[derive(Default)]
pub(super) struct Fingerprint(u64);

impl Fingerprint {
    pub(super) fn add(&mut self, id: &str) {
        self.0 = self.0.wrapping_add(fnv::FnvBuildHasher::default().hash_one(id));
    }

    /// The fingerprint of the `listeners` ids added.
    pub(super) fn of(&self, listeners: usize) -> u64 {
        self.0.wrapping_add(listeners as u64)
    }

    /// The fingerprint of `ids`.
    pub(super) fn of_all<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> u64 {
        let n = ids.len();
        let mut f = Fingerprint::default();
        ids.for_each(|id| f.add(id));
        f.of(n)
    }
}

/// The window of `status.rebalance.movesLastMinute`.
pub const MOVES_WINDOW: Duration = Duration::from_secs(60);

/// How long a pod that left an assignment of this set unacknowledged gets nothing more here (its
/// agent may not serve the set; or it was restarting): then it is offered listeners again.
const LAPSE_FOR: Duration = Duration::from_secs(60);

impl Memory {
    /// Learn from what was judged now; forget the listeners the spec does not have.
    pub(super) fn learn(
        &mut self,
        input: &Input,
        judged: &Judged,
        released_by: &BTreeMap<String, String>,
        forget: &Forget,
    ) {
        for (i, v) in judged.views.iter().enumerate() {
            let terminating = judged.terminating.contains(&v.listener);
            match self.last_tokens.get_mut(&v.listener) {
                Some(t) => *t = (*t).max(v.transitions),
                None => {
                    self.last_tokens.insert(v.listener.clone(), v.transitions);
                }
            }
            match (&v.holder, v.expired) {
                (Some(h), false) => {
                    self.ended.remove(&v.listener);
                    if terminating {
                        self.leaving.insert(v.listener.clone(), h.clone());
                    }
                }
                (Some(h), true) => {
                    let kind = HowAssigned::Takeover {
                        from: h.clone(),
                        why: why_expired(input, judged, i),
                    };
                    self.ended.insert(v.listener.clone(), Ended { kind, prefer: None });
                }
                (None, _) => {
                    let by = released_by.get(&v.listener).cloned();
                    if let Some(h) = self.leaving.remove(&v.listener).or(by) {
                        let ended = Ended {
                            kind: HowAssigned::Recreated,
                            prefer: Some(h),
                        };
                        self.ended.insert(v.listener.clone(), ended);
                    }
                }
            }
        }
        let wanted = forget.wanted;
        if self.spec == Some(forget.fingerprint) {
            for v in judged.views.iter().filter(|v| !wanted(&v.listener)) {
                self.ended.remove(&v.listener);
                self.last_tokens.remove(&v.listener);
            }
        } else {
            self.ended.retain(|l, _| wanted(l));
            self.last_tokens.retain(|l, _| wanted(l));
            self.spec = Some(forget.fingerprint);
        }
        self.leaving.retain(|l, _| judged.terminating.contains(l));
        for pod in input.pods {
            if judged.renewed.contains(&pod.uid) {
                self.lapsed.remove(&pod.uid);
            } else if let Some(lapsed_at) = judged.unacknowledged.get(&pod.uid) {
                let e = self
                    .lapsed
                    .entry(pod.uid.clone())
                    .or_insert((pod.restarts, input.now, *lapsed_at));
                *e = (pod.restarts, input.now, e.2.max(*lapsed_at));
            }
        }
        let exists = |uid: &String| input.pods.iter().any(|p| &p.uid == uid);
        let forget_before = input.now.checked_sub(LAPSE_FOR.max(10 * input.lease_duration));
        self.lapsed.retain(|uid, (_, at, lapsed_at)| {
            exists(uid) && forget_before.is_none_or(|f| *at > f) && !new_chance(input, uid, *lapsed_at)
        });
    }

    /// Learn of a settled listener (its Lease held, acknowledged, valid) what [`Memory::learn`]
    /// would: its highest token, and that its last tenure did not end.
    pub(super) fn settle(&mut self, listener: &str, token: i32) {
        match self.last_tokens.get_mut(listener) {
            Some(t) => *t = (*t).max(token),
            None => {
                self.last_tokens.insert(listener.to_string(), token);
            }
        }
        if !self.ended.is_empty() {
            self.ended.remove(listener);
        }
    }

    /// Note the pods that may take listeners now (the eligible of `pods`): a change starts their
    /// settling anew. Seen for the first time, they count from the controller's start.
    pub(super) fn note_pods(&mut self, input: &Input, pods: &[PodView]) {
        let now: BTreeSet<String> = pods.iter().filter(|p| p.eligible).map(|p| p.uid.clone()).collect();
        match &self.pods {
            Some((seen, _)) if *seen == now => {}
            Some(_) => self.pods = Some((now, input.now)),
            None => self.pods = Some((now, input.started)),
        }
    }

    /// Since when a new set waits for its pods to settle, if it does.
    pub(super) fn first_wait(&self) -> Option<Instant> {
        self.first_wait
    }

    /// Note whether a new set waits for its pods to settle now (`waits`), at `now`.
    pub(super) fn note_first_wait(&mut self, waits: bool, now: Instant) {
        self.first_wait = waits.then(|| self.first_wait.unwrap_or(now));
    }

    /// Since when the pods that may take listeners are the ones they are now.
    pub(super) fn pods_since(&self) -> Option<Instant> {
        self.pods.as_ref().map(|(_, since)| *since)
    }

    /// Whether `pod` left a Lease of this set unacknowledged recently and has not restarted since.
    pub(super) fn lapsed(&self, pod: &PodFacts) -> bool {
        self.lapsed.get(&pod.uid).is_some_and(|(r, _, _)| pod.restarts <= *r)
    }

    /// The highest token seen on `listener`'s Lease.
    pub(super) fn last_token(&self, listener: &str) -> Option<i32> {
        self.last_tokens.get(listener).copied()
    }

    /// The pod a listener without a Lease should go back to, if any.
    pub(super) fn preferred(&self, listener: &str) -> Option<String> {
        self.ended.get(listener)?.prefer.clone()
    }

    /// The pods the listeners of `terminating` (their Leases being deleted) go back to once
    /// their Leases are gone (the holder, or the pod that let them go), counted per pod.
    pub(super) fn returning(&self, terminating: &BTreeSet<String>) -> BTreeMap<&str, usize> {
        let mut n: BTreeMap<&str, usize> = BTreeMap::new();
        for l in terminating {
            let back = self.leaving.get(l).or_else(|| self.ended.get(l)?.prefer.as_ref());
            if let Some(pod) = back {
                *n.entry(pod.as_str()).or_default() += 1;
            }
        }
        n
    }

    /// How a listener without a Lease comes to its next holder.
    pub(super) fn ended_kind(&self, listener: &str) -> HowAssigned {
        self.ended
            .get(listener)
            .map_or(HowAssigned::Assigned, |e| e.kind.clone())
    }

    /// When the oldest move counted in the last minute leaves the count (the status shows it).
    pub(super) fn moves_expire_at(&self) -> Option<Instant> {
        self.moves.front().map(|(at, _)| *at + MOVES_WINDOW)
    }

    /// Count this decision's evening-out moves: the moves of the last minute, and the start or
    /// end of a burst (`max_skew`: the set is `Balanced`).
    pub(super) fn note_balance(
        &mut self,
        now: Instant,
        balance: &Balance,
        max_skew: Option<u32>,
    ) -> (u32, Option<Burst>) {
        if balance.requested > 0 {
            self.moves.push_back((now, balance.requested));
        }
        while self
            .moves
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= MOVES_WINDOW)
        {
            self.moves.pop_front();
        }
        let last_minute = self.moves.iter().map(|(_, n)| *n).sum();
        let burst = match (self.burst.as_mut(), balance.requested) {
            (None, 0) => None,
            (None, moves) => {
                self.burst = Some((now, moves));
                Some(Burst::Started {
                    moves,
                    skew: balance.skew,
                })
            }
            (Some((_, made)), moves) => {
                *made = made.saturating_add(moves);
                let settled = balance.in_progress == 0 && max_skew.is_none_or(|m| balance.skew <= m);
                self.burst.take_if(|_| settled).map(|(since, moves)| Burst::Ended {
                    moves,
                    took: now.saturating_duration_since(since),
                    skew: balance.skew,
                })
            }
        };
        (last_minute, burst)
    }
}

/// Whether the pod of `uid`, which left an assignment of this set unacknowledged that lapsed at
/// `lapsed_at`, gets another chance here: its agent registered after that (a sidecar started or
/// restarted since: the lapse was not its doing), or a recover is pending and its agent renews
/// its registration (the operator's word to try it again).
pub(super) fn new_chance(input: &Input, uid: &str, lapsed_at: Instant) -> bool {
    let Some(live) = input.liveness.get(uid) else {
        return false;
    };
    let registered_since = live.registration_seen.is_some_and(|seen| seen > lapsed_at);
    let renewing = live.registered() && !live.silent(input.now, input.started, input.lease_duration);
    registered_since || (input.recover.is_some() && renewing)
}
