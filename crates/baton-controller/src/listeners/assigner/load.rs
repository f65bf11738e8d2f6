//! What each eligible pod holds and is about to receive, and the placements made from it: the
//! free listeners' pods, the successors release requests name, the excess over `maxPerPod`.

use std::collections::{BTreeMap, BTreeSet};

use super::{rebalance, request, Index, Keyed, LeaseView, ListenerView, Move, ReleaseReason, Successor};

/// Live Leases per eligible pod (whatever the listener's fate), and those that are or will be
/// asked to leave it anyway (release outstanding, listener suspended or removed).
pub(super) struct Load<'a> {
    pub(super) held: BTreeMap<&'a str, usize>,
    /// Of `held`, the settled listeners (counted, not in the Leases given).
    pub(super) settled: BTreeMap<&'a str, usize>,
    /// Of `held`, the listeners whose Leases are being deleted that come back to the pod (not
    /// in the Leases given either, and never asked to leave it).
    returning: BTreeMap<&'a str, usize>,
    pub(super) releasing: BTreeMap<&'a str, usize>,
    /// Listeners an outstanding release request hands to each eligible pod (they land there).
    incoming: BTreeMap<&'a str, usize>,
    /// Listeners on live pods that may not keep them (not eligible), bound for an eligible pod
    /// (named or not): not counted in `held`, but in the shares, which are of every listener
    /// the eligible pods will hold. (Left out, in a scale-in a share would be of the listeners
    /// not yet moving, and every successor above it.)
    unheld: usize,
}

impl<'a> Load<'a> {
    /// `settled` and `returning`: listeners each eligible pod holds besides `leases` (see
    /// [`super::assign_settled`]).
    pub(super) fn of(
        index: &Index<'a>,
        spec: &Keyed<'_, ListenerView>,
        leases: &Keyed<'a, LeaseView>,
        settled: &BTreeMap<&str, usize>,
        returning: &BTreeMap<&str, usize>,
    ) -> Load<'a> {
        let mut held: BTreeMap<&str, usize> = BTreeMap::new();
        let mut releasing: BTreeMap<&str, usize> = BTreeMap::new();
        let mut counted = BTreeMap::new();
        let mut back = BTreeMap::new();
        for pod in index.pods.values().filter(|p| p.eligible) {
            let name = pod.name.as_str();
            let n = settled.get(name).copied().unwrap_or(0);
            let r = returning.get(name).copied().unwrap_or(0);
            held.insert(name, n + r);
            if n > 0 {
                counted.insert(name, n);
            }
            if r > 0 {
                back.insert(name, r);
            }
        }
        let mut incoming: BTreeMap<&str, usize> = BTreeMap::new();
        let mut unheld = 0;
        for lease in leases.values() {
            let Some(pod) = index.live_holder(lease) else { continue };
            let wanted = || spec.get(lease.listener.as_str()).is_some_and(|l| !l.suspended);
            let named = index.successor_pod(lease);
            if let Some(to) = named {
                *incoming.entry(to.name.as_str()).or_default() += 1;
            }
            if !pod.eligible && (named.is_some() || wanted()) {
                unheld += 1;
            }
            if pod.eligible {
                *held.entry(pod.name.as_str()).or_default() += 1;
                let leaving = lease.release_requested || spec.get(lease.listener.as_str()).is_none_or(|l| l.suspended);
                if leaving {
                    *releasing.entry(pod.name.as_str()).or_default() += 1;
                }
            }
        }
        Load {
            held,
            settled: counted,
            returning: back,
            releasing,
            incoming,
            unheld,
        }
    }

    /// What eligible pod `pod` holds and is about to receive.
    pub(super) fn load(&self, pod: &str, held: usize) -> usize {
        held + self.incoming.get(pod).copied().unwrap_or(0)
    }

    /// The shares of the pods, with `free` listeners still to place.
    pub(super) fn shares(&self, index: &Index<'a>, free: usize) -> rebalance::Shares<'a> {
        let total = self.held.values().sum::<usize>() + self.unheld + free;
        rebalance::Shares::of(index, &self.held, total)
    }

    /// The eligible pod with room (within `limit`) furthest below its share, never `except`; on
    /// a tie away from `avoid`, then in the set's order ([`rebalance::Shares::order`]). `queue`:
    /// the pods in that order (O(log pods) a pick where no pod is full).
    pub(super) fn least(
        &self,
        queue: &Queue<'a>,
        limit: usize,
        except: Option<&str>,
        avoid: Option<&str>,
    ) -> Option<&'a str> {
        let room = |name: &str| self.held.get(name).is_some_and(|h| self.load(name, *h) < limit);
        let mut open = queue.order.iter().filter(|k| Some(k.2) != except && room(k.2));
        let first = open.next()?;
        let pick = match open.next() {
            Some(next) if avoid == Some(first.2) && next.0 == first.0 => next.2,
            _ => first.2,
        };
        #[cfg(test)]
        assert_eq!(Some(pick), self.least_walk(&queue.shares, limit, except, avoid));
        Some(pick)
    }

    /// [`Self::least`] by looking at every pod (what it must pick, in tests).
    #[cfg(test)]
    fn least_walk(
        &self,
        shares: &rebalance::Shares<'a>,
        limit: usize,
        except: Option<&str>,
        avoid: Option<&str>,
    ) -> Option<&'a str> {
        self.held
            .iter()
            .map(|(name, held)| (*name, self.load(name, *held)))
            .filter(|(name, load)| *load < limit && Some(*name) != except)
            .min_by(|(a, n), (b, m)| {
                let (ea, eb) = (shares.excess(a, *n), shares.excess(b, *m));
                ea.total_cmp(&eb)
                    .then((avoid == Some(*a)).cmp(&(avoid == Some(*b))))
                    .then(shares.order(a, b))
            })
            .map(|(name, _)| name)
    }

    /// The eligible pods in the order [`Self::least`] picks them.
    fn queue(&self, shares: rebalance::Shares<'a>) -> Queue<'a> {
        let mut q = Queue {
            order: BTreeSet::new(),
            keys: fnv::FnvHashMap::default(),
            shares,
        };
        for (name, held) in &self.held {
            q.set(name, self.load(name, *held));
        }
        q
    }

    /// Name the successor of each release request that moves a listener to another pod (its
    /// holder may not keep it, or holds more than `limit`): the pod it would be placed on were it
    /// free now, counted as incoming there. A request with nowhere to go names none.
    pub(super) fn name_successors(
        &mut self,
        index: &Index<'a>,
        leases: &Keyed<'a, LeaseView>,
        limit: usize,
        releases: &mut [Move],
    ) {
        let mut queue = self.queue(self.shares(index, 0));
        for m in releases.iter_mut() {
            let Move::RequestRelease {
                listener,
                holder,
                reason: ReleaseReason::HolderNotEligible | ReleaseReason::OverLimit,
                to: to @ None,
                ..
            } = m
            else {
                continue;
            };
            let Some(lease) = leases.get(listener.as_str()) else {
                continue;
            };
            let Some(pod) = self
                .least(&queue, limit, Some(holder.as_str()), None)
                .and_then(|n| index.pods.get(n))
            else {
                continue;
            };
            let name = pod.name.as_str();
            *self.incoming.entry(name).or_default() += 1;
            if let Some(held) = self.held.get(name) {
                queue.set(name, self.load(name, *held));
            }
            *to = Some(Successor {
                pod: pod.name.clone(),
                uid: pod.uid.clone(),
                token: lease.transitions.saturating_add(1),
            });
        }
    }

    /// maxPerPod: ask over-full pods to shed their excess, highest ids first; how many. `None`
    /// if a pod holding settled listeners would shed (they are not in `sticky`).
    pub(super) fn shed_excess(
        &self,
        index: &Index<'a>,
        sticky: &BTreeMap<&str, Vec<&LeaseView>>,
        limit: usize,
        releases: &mut Vec<Move>,
    ) -> Option<usize> {
        let mut shed = 0usize;
        for (pod, held) in &self.held {
            let pending = self.releasing.get(pod).copied().unwrap_or(0);
            let back = self.returning.get(pod).copied().unwrap_or(0);
            let excess = held.saturating_sub(back).saturating_sub(limit).saturating_sub(pending);
            if excess == 0 {
                continue;
            }
            if self.settled.contains_key(pod) {
                return None;
            }
            if let (Some(kept), Some(holder)) = (sticky.get(pod), index.pods.get(pod)) {
                for lease in kept.iter().rev().take(excess) {
                    releases.push(request(lease, holder, ReleaseReason::OverLimit));
                    shed += 1;
                }
            }
        }
        Some(shed)
    }

    /// Free listeners: each to the pod it prefers or the successor its request named (see
    /// below), else to the eligible pod with the fewest live Leases beyond its share (its
    /// weight's part of all the listeners) first, then name (away from a pod whose Lease of it
    /// expired, on a tie); never beyond `limit`.
    pub(super) fn place(
        &mut self,
        index: &Index<'a>,
        free: &[(&ListenerView, Option<&LeaseView>)],
        limit: usize,
    ) -> Vec<Move> {
        let mut assigns = Vec::new();
        let mut queue = self.queue(self.shares(index, free.len()));
        // Those that go back first, then those on their way to a named successor: the others
        // are placed around them (placed first, they could fill a successor's share, and a
        // listener already handed over to it would count on another pod).
        let named = |lease: Option<&LeaseView>| lease.and_then(|l| index.successor_pod(l)).is_some();
        let back = free.iter().filter(|(l, _)| l.prefer.is_some());
        let on_way = free.iter().filter(|(l, lease)| l.prefer.is_none() && named(*lease));
        let rest = free.iter().filter(|(l, lease)| l.prefer.is_none() && !named(*lease));
        for (listener, lease) in back.chain(on_way).chain(rest) {
            let previous = lease
                .filter(|l| l.expired)
                .and_then(|l| index.holder_pod(l))
                .map(|p| p.name.as_str());
            // Back to the pod that let it go for a reason not its own (it ran there: the
            // distribution is the one it was), if it may take it. Else to the successor its
            // release request named (its holder stopped before the cache showed the handover),
            // if that pod may take it within its share: the handover may have been written
            // already, and placed elsewhere the listener would count on a pod it never reaches.
            let takes = |p: &str, within_share: bool| {
                self.held.get(p).is_some_and(|h| {
                    let load = self.load(p, *h);
                    load < limit && (!within_share || queue.shares.excess(p, load + 1) <= 0.0)
                })
            };
            let named = lease.and_then(|l| index.successor_pod(l)).map(|p| p.name.as_str());
            let preferred = match listener.prefer.as_deref().filter(|p| takes(p, false)) {
                Some(p) => Some(p),
                None => named.filter(|p| takes(p, true)),
            };
            let target = preferred.or_else(|| self.least(&queue, limit, None, previous));
            let Some(pod) = target.and_then(|name| index.pods.get(name)) else {
                continue;
            };
            let name = pod.name.as_str();
            if let Some(held) = self.held.get_mut(name) {
                *held += 1;
                let held = *held;
                queue.set(name, self.load(name, held));
            }
            let last = listener.last_transitions;
            let (from_resource_version, transitions) = match lease {
                Some(l) => (
                    Some(l.resource_version.clone()),
                    l.transitions.max(last.unwrap_or(0)).saturating_add(1),
                ),
                None => (None, last.map_or(0, |t| t.saturating_add(1))),
            };
            assigns.push(Move::Assign {
                listener: listener.id.clone(),
                pod: pod.name.clone(),
                pod_uid: pod.uid.clone(),
                from_resource_version,
                transitions,
            });
        }
        assigns
    }

    /// Free places on eligible pods (after the placements).
    pub(super) fn room(&self, limit: usize, max_per_pod: u32) -> usize {
        if self.held.is_empty() {
            0
        } else if max_per_pod == 0 {
            usize::MAX
        } else {
            self.held
                .iter()
                .map(|(pod, held)| limit.saturating_sub(self.load(pod, *held)))
                .sum()
        }
    }
}

/// A pod's load beyond its share, ordered as `f64::total_cmp` orders it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Excess(f64);

impl PartialEq for Excess {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Excess {}
impl PartialOrd for Excess {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Excess {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The eligible pods by load beyond their share, then in the set's order (rank, name): the pod
/// a placement picks is the first with room. Kept as placements land.
pub(super) struct Queue<'a> {
    order: BTreeSet<(Excess, u64, &'a str)>,
    keys: fnv::FnvHashMap<&'a str, (Excess, u64)>,
    shares: rebalance::Shares<'a>,
}

impl<'a> Queue<'a> {
    /// Pod `name` holds and receives `load` now.
    fn set(&mut self, name: &'a str, load: usize) {
        if let Some((e, r)) = self.keys.remove(name) {
            self.order.remove(&(e, r, name));
        }
        let key = (Excess(self.shares.excess(name, load)), self.shares.rank(name));
        self.order.insert((key.0, key.1, name));
        self.keys.insert(name, key);
    }
}
