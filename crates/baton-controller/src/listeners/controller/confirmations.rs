//! The pods the API server confirmed for assignments, shared by every set's passes.
//!
//! An assignment, or a release request naming a successor, goes only to a pod the API server
//! has with the uid the cache shows and whose agent is not leaving (see
//! [`crate::listeners::decide::confirm`]): two GETs. Asked by each pass of each set, that was
//! one pair of GETs per pod a pass gives listeners to: with one set per service, a drain or a
//! takeover asked for the same pods once per set (2,000 GETs in a drain of 1,000 listeners over
//! 200 sets), each GET taking its turn at the ListenerSet client's rate limit before the pass's
//! writes could go.
//!
//! An answer is kept and used by any pass until something could have made it wrong:
//!
//! * the pod watch shows the pod changed or gone, or the liveness watch shows its agent's Lease
//!   changed (registered, fenced, leaving, gone) — [`Confirmations::touch`];
//! * the pod let a listener Lease go (released it, handed it over, or the Lease was deleted while
//!   it held it), seen by the Lease index ([`super::index::LeaseIndex::let_go_at`]): a SIGTERMed
//!   agent marks its pod leaving before it releases anything, and the garbage collector deletes a
//!   force-deleted pod's Leases, so an answer asked before such a sight may be stale;
//! * a watch (of Leases, liveness Leases, pods, Secrets or sets) listed anew: what its gap hid
//!   is not known ([`Confirmations::forget_all`]);
//! * [`KEPT`] has passed since it was asked (a watch that stalls without an error).
//!
//! An answer asked before the latest such sight of its pod is never kept, even if it arrives
//! after it. So an assignment made on a kept answer is exposed to what a fresh GET answered
//! just before it is exposed to: the pod deleted, or its agent marking itself leaving, after
//! the answer and before the write, while no watch has shown it yet. Neither costs safety (a
//! listener is still held by one pod: an assignment to a pod that turns out gone is held until
//! it must have stopped, a leaving pod releases what it is given); each costs a listener a
//! delay.
//!
//! Only pods found live are kept: a pod not confirmed is asked again by the next pass that
//! names it (by then the caches have usually caught up and the pass names another).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long an answer is used at most without a new one, should no watch show its pod change.
/// Long enough to serve a takeover or a drain over hundreds of sets (at 100,000 listeners in 200
/// sets, 10–15 s), short against a stalled watch (kube-apiserver ends a watch within minutes).
pub const KEPT: Duration = Duration::from_secs(30);

/// (namespace, pod uid).
type Key = (String, String);

#[derive(Debug, Default)]
struct Slot {
    /// The latest sight of the pod that could make an answer wrong.
    touched: Option<Instant>,
    /// The pod's name and when the GETs that found it live were sent.
    live: Option<(String, Instant)>,
}

/// The answers kept, by pod.
#[derive(Debug, Default)]
pub struct Confirmations {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    /// When a watch last listed anew: answers asked before are not kept.
    forgot: Option<Instant>,
    /// When the slots with nothing recent are dropped.
    prune: PruneBound,
}

impl Inner {
    fn prune(&mut self, now: Instant) {
        let recent = |t: &Instant| now.saturating_duration_since(*t) < KEPT;
        self.prune.retain(&mut self.slots, |_, s| {
            s.live.as_ref().is_some_and(|(_, a)| recent(a)) || s.touched.as_ref().is_some_and(recent)
        });
    }
}

/// A size past which a map's entries that no longer matter are dropped. It doubles with what
/// stays, so the dropping costs O(1) amortized per insert.
#[derive(Debug, Default)]
pub struct PruneBound(usize);

impl PruneBound {
    /// Keep only the entries of `map` for which `keep` holds, once `map` reached the bound.
    pub fn retain<K, V>(&mut self, map: &mut HashMap<K, V>, keep: impl FnMut(&K, &mut V) -> bool) {
        if map.len() < self.0 {
            return;
        }
        map.retain(keep);
        self.0 = 2 * map.len() + 64;
    }
}

impl Confirmations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch showed the pod of uid `uid` in `ns` (or its agent's Lease) change at `now`:
    /// answers asked before are no longer used.
    pub fn touch(&self, ns: &str, uid: &str, now: Instant) {
        // Remembered even with no answer kept: GETs of the pod may be on their way.
        let mut inner = self.lock();
        inner.prune(now);
        let slot = inner.slots.entry((ns.to_string(), uid.to_string())).or_default();
        slot.touched = Some(now);
        slot.live = None;
    }

    /// A watch listed anew at `now`: no answer is used again.
    pub fn forget_all(&self, now: Instant) {
        let mut inner = self.lock();
        for slot in inner.slots.values_mut() {
            slot.live = None;
        }
        inner.forgot = Some(now);
    }

    /// Whether pod `name` of uid `uid` in `ns` was found live by GETs sent after `let_go` (when
    /// the Lease index last saw it let a Lease go) and after any [`touch`](Self::touch), at most
    /// [`KEPT`] before `now`.
    pub fn live(&self, ns: &str, name: &str, uid: &str, let_go: Option<Instant>, now: Instant) -> bool {
        let inner = self.lock();
        let Some(slot) = inner.slots.get(&(ns.to_string(), uid.to_string())) else {
            return false;
        };
        slot.live.as_ref().is_some_and(|(n, asked)| {
            n == name
                && now.saturating_duration_since(*asked) < KEPT
                && slot.touched.is_none_or(|t| *asked > t)
                && let_go.is_none_or(|t| *asked > t)
        })
    }

    /// GETs sent at `asked` found pod `name` of uid `uid` in `ns` live: keep the answer, unless
    /// a sight since has made it stale.
    pub fn found_live(&self, ns: &str, name: &str, uid: &str, asked: Instant, now: Instant) {
        let mut inner = self.lock();
        inner.prune(now);
        if inner.forgot.is_some_and(|t| asked <= t) {
            return;
        }
        let slot = inner.slots.entry((ns.to_string(), uid.to_string())).or_default();
        if slot.touched.is_none_or(|t| asked > t) {
            slot.live = Some((name.to_string(), asked));
        }
    }

    /// How many pods' answers or sights are kept (for the tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_serves_every_pass_until_a_sight_of_its_pod_or_its_age() {
        let c = Confirmations::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(!c.live("ns", "p", "u", None, t0), "nothing asked yet");
        c.found_live("ns", "p", "u", ms(1), ms(3));
        assert!(c.live("ns", "p", "u", None, ms(4)));
        assert!(
            c.live("ns", "p", "u", Some(ms(0)), ms(4)),
            "let a Lease go before the GET"
        );
        assert!(
            !c.live("ns", "p", "u", Some(ms(2)), ms(4)),
            "let a Lease go after the GET"
        );
        assert!(!c.live("ns", "q", "u", None, ms(4)), "another name");
        assert!(!c.live("ns", "p", "v", None, ms(4)), "another uid");
        assert!(!c.live("other", "p", "u", None, ms(4)), "another namespace");
        assert!(c.live("ns", "p", "u", None, ms(1) + KEPT - Duration::from_millis(1)));
        assert!(!c.live("ns", "p", "u", None, ms(1) + KEPT), "too old");
        c.touch("ns", "u", ms(5));
        assert!(!c.live("ns", "p", "u", None, ms(6)), "the pod changed since");
        c.found_live("ns", "p", "u", ms(7), ms(8));
        assert!(c.live("ns", "p", "u", None, ms(9)), "asked again after the change");
    }

    #[test]
    fn an_answer_asked_before_a_sight_is_not_kept_even_if_it_arrives_after() {
        let c = Confirmations::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        c.found_live("ns", "other", "o", ms(0), ms(0));
        // GETs sent at 10 ms; the pod watch shows the pod change at 12; the answer comes at 15.
        c.touch("ns", "u", ms(12));
        c.found_live("ns", "p", "u", ms(10), ms(15));
        assert!(!c.live("ns", "p", "u", None, ms(16)));
        c.found_live("ns", "p", "u", ms(13), ms(17));
        assert!(c.live("ns", "p", "u", None, ms(18)));
    }

    #[test]
    fn a_watch_listed_anew_forgets_every_answer_and_those_on_their_way() {
        let c = Confirmations::default();
        let t0 = Instant::now();
        c.found_live("ns", "p", "u", t0, t0);
        assert!(c.live("ns", "p", "u", None, t0));
        let after = t0 + Duration::from_millis(1);
        c.forget_all(after);
        assert!(!c.live("ns", "p", "u", None, after));
        c.found_live("ns", "q", "v", t0, after);
        assert!(!c.live("ns", "q", "v", None, after), "asked before the relist");
        let later = after + Duration::from_millis(1);
        c.found_live("ns", "q", "v", later, later);
        assert!(c.live("ns", "q", "v", None, later));
    }

    #[test]
    fn old_answers_and_sights_are_dropped() {
        let c = Confirmations::default();
        let t0 = Instant::now();
        for i in 0..100 {
            c.found_live("ns", &format!("p{i}"), &format!("u{i}"), t0, t0);
            c.touch("ns", &format!("x{i}"), t0);
        }
        assert_eq!(c.len(), 200, "all recent: kept");
        let later = t0 + KEPT;
        for i in 0..300 {
            c.found_live("ns", &format!("q{i}"), &format!("v{i}"), later, later);
        }
        assert!(c.len() < 500, "the old answers and sights are dropped: {}", c.len());
        assert!(c.live("ns", "q0", "v0", None, later), "the new ones are kept");
        for i in 0..1000 {
            c.touch("ns", &format!("y{i}"), later + KEPT * i);
        }
        assert!(c.len() < 200, "sights past their use are dropped: {}", c.len());
    }
}
