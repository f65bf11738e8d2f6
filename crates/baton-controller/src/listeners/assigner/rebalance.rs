//! Evening out (`spec.rebalance.policy: Balanced`): which listeners to ask to move so that the
//! eligible pods' loads differ by at most `maxSkew` listeners, each load measured against the
//! pod's share (its part of the listeners in proportion to its weight).
//!
//! Cooperative and sticky, as Kafka's cooperative-sticky assignor: nothing stops the world;
//! only the excess of the most loaded pods moves, each listener by one ordinary graceful handover
//! (a release request; the freed listener is then placed on the least loaded pod). At most
//! `maxConcurrentMoves` listeners are on the move at once, counting every handover under way
//! (a release asked, or an assignment not yet acknowledged), not only these. Nothing moves while
//! other handovers are under way (a drain, listeners waiting for a pod, a `maxPerPod` shed) or
//! while the caller says to wait (a rollout of the pods, a pod that is not Ready, pods that joined
//! or left moments ago); nor does a
//! listener that came to its pod less than `minResidenceSeconds` ago, so none moves twice in a
//! burst and a flapping pod cannot make listeners ping-pong.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{request_to, Index, Keyed, LeaseView, Load, Move, ReleaseReason};

/// What evening out may do (the pure form of `spec.rebalance`; `None` for `Sticky`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balancing {
    /// Largest allowed difference between the most and least loaded pods (at least 1).
    pub max_skew: u32,
    /// Listeners that may be on the move at once (at least 1).
    pub max_moves: u32,
    /// A listener that came to its pod less recently than this may be moved.
    pub min_residence: Duration,
    /// Why not now, as the caller judges it (a rollout of the pods under way, a pod starting, pods
    /// that have not settled after a scale).
    pub wait: Option<String>,
}

/// How balanced the set is, and what evening out did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Difference between the most and least loaded eligible pods, in listeners beyond each
    /// pod's share (its weight's part of the listeners), rounded up.
    pub skew: u32,
    /// Listeners on the move (release asked, or assigned and not acknowledged), the moves of
    /// this decision included.
    pub in_progress: u32,
    /// Listeners this decision asks to move to even out loads.
    pub requested: u32,
    /// Why the set is not evened out although it is not balanced, if so.
    pub waiting: Option<String>,
    /// Moves are needed but every listener that could go arrived too recently: look again then.
    pub wake: Option<Duration>,
}

/// Handovers of this decision other than evening out.
pub(super) struct Churn {
    /// Free listeners assigned now.
    pub assigned: usize,
    /// Free listeners that found no pod.
    pub unplaced: usize,
    /// Release requests made now (stranded, suspended, removed, over the limit).
    pub released: usize,
    /// Listeners on live pods that may not keep them, not yet asked to leave.
    pub stranded: usize,
}

/// Waiting reason: handovers other than evening out are under way.
pub const WAIT_HANDOVERS: &str = "other handovers are under way";
/// Waiting reason: the listeners that could move arrived too recently.
pub const WAIT_RESIDENCE: &str = "the listeners that could move arrived less than minResidenceSeconds ago";

/// The handovers under way, as evening out counts them.
struct UnderWay<'a> {
    /// Listeners on the move: release asked, or assigned and not acknowledged (this decision's
    /// other handovers included).
    in_progress: usize,
    /// Handovers other than evening out (this decision's included): evening out waits for them.
    others: usize,
    /// Evening-out moves asked and not yet let go, by the pod they leave.
    moving: BTreeMap<&'a str, usize>,
    /// Of those, the ones whose request names where they go, by receiver.
    bound: BTreeMap<&'a str, usize>,
}

impl<'a> UnderWay<'a> {
    fn of(index: &Index<'a>, leases: &Keyed<'a, LeaseView>, churn: &Churn) -> UnderWay<'a> {
        let mut w = UnderWay {
            in_progress: churn.assigned + churn.released,
            others: churn.unplaced + churn.released + churn.stranded,
            moving: BTreeMap::new(),
            bound: BTreeMap::new(),
        };
        for lease in leases.values() {
            let Some(pod) = index.live_holder(lease) else { continue };
            if lease.release_requested {
                w.in_progress += 1;
                if lease.rebalancing && pod.eligible {
                    *w.moving.entry(pod.name.as_str()).or_default() += 1;
                    if let Some(to) = index.successor_pod(lease) {
                        *w.bound.entry(to.name.as_str()).or_default() += 1;
                    }
                } else {
                    w.others += 1;
                }
            } else if !lease.renewed {
                w.in_progress += 1;
            }
        }
        w
    }
}

/// The release requests that even out the loads (see the module doc), and how balanced it is;
/// `None` if it would pick among settled listeners (counted in `load`, not in `sticky`).
pub(super) fn plan<'a>(
    index: &Index<'a>,
    load: &Load<'a>,
    sticky: &BTreeMap<&'a str, Vec<&'a LeaseView>>,
    leases: &Keyed<'a, LeaseView>,
    churn: &Churn,
    limit: usize,
    balancing: Option<&Balancing>,
) -> Option<(Vec<Move>, Balance)> {
    let UnderWay {
        in_progress,
        others,
        moving,
        bound,
    } = UnderWay::of(index, leases, churn);
    let total: usize = load.held.values().sum();
    let shares = Shares::of(index, &load.held, total);
    let mut balance = Balance {
        skew: shares.skew(&load.held),
        in_progress: u32::try_from(in_progress).unwrap_or(u32::MAX),
        ..Default::default()
    };
    let Some(b) = balancing else {
        return Some((Vec::new(), balance));
    };
    if balance.skew <= b.max_skew {
        return Some((Vec::new(), balance));
    }
    balance.waiting = b
        .wait
        .clone()
        .or_else(|| (others > 0).then(|| WAIT_HANDOVERS.to_string()));
    if balance.waiting.is_some() {
        return Some((Vec::new(), balance));
    }
    if !load.settled.is_empty() {
        // The listeners that could move are settled ones: the full pass picks them.
        return None;
    }
    // The listeners already asked to move have left their pods: for the pods their requests
    // name, or else the least loaded ones.
    let mut eff: BTreeMap<&str, usize> = load
        .held
        .iter()
        .map(|(p, held)| (*p, held.saturating_sub(moving.get(p).copied().unwrap_or(0))))
        .collect();
    for (to, n) in &bound {
        *eff.entry(to).or_default() += n;
    }
    let unbound = moving.values().sum::<usize>().saturating_sub(bound.values().sum());
    for _ in 0..unbound {
        if let Some(r) = shares.least(&eff, limit) {
            *eff.entry(r).or_default() += 1;
        }
    }
    let (mut candidates, soonest) = candidates(sticky, b.min_residence);
    let budget = usize::try_from(b.max_moves)
        .unwrap_or(usize::MAX)
        .saturating_sub(in_progress);
    let excess = |eff: &BTreeMap<&str, usize>, p: &str| shares.excess(p, eff.get(p).copied().unwrap_or(0));
    let mut moves = Vec::new();
    let mut by_budget = false;
    loop {
        let donor = eff
            .keys()
            .filter(|p| candidates.get(*p).is_some_and(|c| !c.is_empty()))
            .max_by(|a, b| excess(&eff, a).total_cmp(&excess(&eff, b)).then(shares.order(b, a)))
            .copied();
        let (Some(donor), Some(receiver)) = (donor, shares.least(&eff, limit)) else {
            break;
        };
        if donor == receiver || excess(&eff, donor) - excess(&eff, receiver) <= f64::from(b.max_skew) {
            break;
        }
        if moves.len() >= budget {
            by_budget = true;
            break;
        }
        let (Some(lease), Some(holder)) = (candidates.get_mut(donor).and_then(Vec::pop), index.pods.get(donor)) else {
            break;
        };
        moves.push(request_to(
            lease,
            holder,
            ReleaseReason::Rebalance,
            index.pods.get(receiver),
        ));
        *eff.entry(donor).or_default() -= 1;
        *eff.entry(receiver).or_default() += 1;
    }
    balance.requested = u32::try_from(moves.len()).unwrap_or(u32::MAX);
    balance.in_progress = balance.in_progress.saturating_add(balance.requested);
    if !by_budget && shares.skew(&eff) > b.max_skew && soonest.is_some() {
        balance.waiting = Some(WAIT_RESIDENCE.to_string());
        balance.wake = soonest;
    }
    Some((moves, balance))
}

/// Per pod, the listeners that may move (acknowledged, not asked to leave, resident long
/// enough), highest ids last so they are taken first; and how soon the next one may.
fn candidates<'a>(
    sticky: &BTreeMap<&'a str, Vec<&'a LeaseView>>,
    min_residence: Duration,
) -> (BTreeMap<&'a str, Vec<&'a LeaseView>>, Option<Duration>) {
    let mut soonest: Option<Duration> = None;
    let mut out = BTreeMap::new();
    for (pod, leases) in sticky {
        let mut movable = Vec::new();
        for lease in leases.iter().filter(|l| l.renewed && !l.release_requested) {
            match lease.held_for {
                Some(held) if held < min_residence => {
                    let left = min_residence - held;
                    soonest = Some(soonest.map_or(left, |s| s.min(left)));
                }
                _ => movable.push(*lease),
            }
        }
        out.insert(*pod, movable);
    }
    (out, soonest)
}

/// Each eligible pod's share of `total` listeners: its weight's part; and the pods' ranks.
pub(super) struct Shares<'a> {
    // Hashed: a placement looks up every pod's share and rank.
    share: fnv::FnvHashMap<&'a str, f64>,
    rank: fnv::FnvHashMap<&'a str, u64>,
}

impl<'a> Shares<'a> {
    pub(super) fn of(index: &Index<'a>, pods: &BTreeMap<&'a str, usize>, total: usize) -> Shares<'a> {
        let weight = |p: &str| f64::from(index.pods.get(p).map_or(1, |p| p.weight.max(1)));
        let sum: f64 = pods.keys().map(|p| weight(p)).sum();
        let share = pods
            .keys()
            .map(|p| (*p, if sum > 0.0 { total as f64 * weight(p) / sum } else { 0.0 }))
            .collect();
        let rank = pods
            .keys()
            .map(|p| (*p, index.pods.get(p).map_or(0, |p| p.rank)))
            .collect();
        Shares { share, rank }
    }

    /// Pod `p`'s rank (see [`Shares::order`]).
    pub(super) fn rank(&self, p: &str) -> u64 {
        self.rank.get(p).copied().unwrap_or(0)
    }

    /// Pods `a` before `b` when they are equally placed: by rank, then name (see
    /// [`PodView::rank`](super::PodView::rank)).
    pub(super) fn order(&self, a: &str, b: &str) -> std::cmp::Ordering {
        let rank = |p: &str| self.rank.get(p).copied().unwrap_or(0);
        rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
    }

    /// Listeners `p` holds beyond its share (negative: below it).
    pub(super) fn excess(&self, p: &str, held: usize) -> f64 {
        held as f64 - self.share.get(p).copied().unwrap_or(0.0)
    }

    /// The pod furthest below its share that has room, ties in [`Shares::order`].
    pub(super) fn least(&self, eff: &BTreeMap<&'a str, usize>, limit: usize) -> Option<&'a str> {
        eff.iter()
            .filter(|(_, n)| **n < limit)
            .min_by(|(a, n), (b, m)| {
                self.excess(a, **n)
                    .total_cmp(&self.excess(b, **m))
                    .then(self.order(a, b))
            })
            .map(|(p, _)| *p)
    }

    /// Difference between the most and least loaded pods, in listeners beyond each pod's share,
    /// rounded up (0 with fewer than two pods).
    fn skew(&self, loads: &BTreeMap<&str, usize>) -> u32 {
        if loads.len() < 2 {
            return 0;
        }
        let (lo, hi) = loads
            .iter()
            .map(|(p, n)| self.excess(p, *n))
            .fold((f64::MAX, f64::MIN), |(lo, hi), e| (lo.min(e), hi.max(e)));
        let spread = ((hi - lo) - 1e-9).ceil().max(0.0);
        if spread >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            spread as u32
        }
    }
}
