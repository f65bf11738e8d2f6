//! The handover gap of each listener, as the controller observes its Lease: from the first
//! time it sees the Lease released (no holder) or handed over by its holder's agent (a new
//! holder not yet acknowledged, under `baton.dev/handed-over-from`: the release and the
//! assignment were one write) to the first time it sees the next holder renew it after the
//! assignment (`renewTime` ≠ `acquireTime`: the holder's agent took the listener up). Takeovers
//! (a Lease that expired, never released) are not handovers and give no sample.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::listenerset::lease::{listener_of, CachedLease, Holder, LeaseFields};
use crate::api::listenerset::HANDED_OVER_FROM_ANNOTATION;

/// How long a released listener whose Lease is gone is remembered.
const KEEP_ABSENT: Duration = Duration::from_secs(300);

/// What one observation of a Lease says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// No holder.
    Released,
    /// A holder that has not renewed since it was assigned.
    Starting,
    /// A holder that has not renewed since the holder before handed the Lease over to it.
    HandedOver,
    /// A holder that renewed after its assignment.
    Running,
}

/// How the Lease `l` reads.
pub fn seen(l: &CachedLease) -> Seen {
    if Holder::of(l).is_none() {
        Seen::Released
    } else if crate::api::listenerset::lease::acknowledged(l) {
        Seen::Running
    } else if l.annotation(HANDED_OVER_FROM_ANNOTATION).is_some() {
        Seen::HandedOver
    } else {
        Seen::Starting
    }
}

/// One step of a listener's gap: `released_at` is when its release was first seen, if it is
/// waiting for a new holder to run it. Returns the new state and a finished gap.
pub fn step(released_at: Option<Instant>, seen: Seen, now: Instant) -> (Option<Instant>, Option<Duration>) {
    match seen {
        Seen::Released | Seen::HandedOver => (released_at.or(Some(now)), None),
        Seen::Starting => (released_at, None),
        Seen::Running => (None, released_at.map(|t| now.duration_since(t))),
    }
}

/// The gap state of every listener, per ListenerSet.
#[derive(Default)]
pub struct Gaps {
    /// (namespace, set) → listener → when its release was first seen.
    sets: Mutex<HashMap<(String, String), HashMap<String, Instant>>>,
}

impl Gaps {
    /// Observe the Leases of set `ns/set` that changed since its last observation (every one,
    /// the first time) at `now`; `present` tells whether a listener of the set has a Lease now.
    /// Returns the gaps that ended. A Lease that did not change reads as it did: it would take
    /// no step.
    pub fn observe(
        &self,
        ns: &str,
        set: &str,
        changed: &[std::sync::Arc<CachedLease>],
        present: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Vec<Duration> {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let state = sets.entry((ns.to_string(), set.to_string())).or_default();
        let mut ended = Vec::new();
        for l in changed {
            let Some((_, listener)) = listener_of(l) else { continue };
            let (next, gap) = step(state.get(listener).copied(), seen(l), now);
            match next {
                Some(t) => state.insert(listener.to_string(), t),
                None => state.remove(listener),
            };
            ended.extend(gap);
        }
        // A released Lease may be deleted (its pod's garbage collection) and made anew for the
        // next holder: the gap runs on for a while.
        state.retain(|listener, released| present(listener) || now.duration_since(*released) < KEEP_ABSENT);
        ended
    }

    /// Forget the sets not in `keep`.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(ns, set), _| keep(ns, set));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_runs_from_the_release_to_the_new_holders_first_renewal() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let (s, g) = step(None, Seen::Running, at(0));
        assert_eq!((s, g), (None, None));
        let (s, _) = step(s, Seen::Released, at(10));
        let (s, _) = step(s, Seen::Released, at(20));
        assert_eq!(s, Some(at(10)), "from the first sight of the release");
        let (s, g) = step(s, Seen::Starting, at(30));
        assert_eq!((s, g), (Some(at(10)), None));
        let (s, g) = step(s, Seen::Running, at(110));
        assert_eq!((s, g), (None, Some(Duration::from_millis(100))));
        // A handover by the holder's agent: from its first sight to the new holder's renewal.
        let (s, g) = step(None, Seen::HandedOver, at(120));
        assert_eq!((s, g), (Some(at(120)), None));
        let (s, g) = step(s, Seen::Running, at(170));
        assert_eq!((s, g), (None, Some(Duration::from_millis(50))));
        // A takeover: a holder replaced without a release gives no sample.
        let (s, g) = step(None, Seen::Starting, at(200));
        let (_, g2) = step(s, Seen::Running, at(300));
        assert_eq!((g, g2), (None, None));
    }

    /// Listener `a`'s Lease: released (`None`), assigned (`Some(false)`), or acknowledged.
    fn lease(holder: Option<bool>) -> std::sync::Arc<CachedLease> {
        use crate::api::listenerset::{LISTENERSET_LABEL, LISTENER_LABEL};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let mut l = CachedLease {
            labels: [(LISTENERSET_LABEL, "s"), (LISTENER_LABEL, "a")].into_iter().collect(),
            ..Default::default()
        };
        let t = |s: i64| jiff::Timestamp::from_second(s).ok().map(MicroTime);
        if let Some(acknowledged) = holder {
            l.spec.holder_identity = Some("pod".into());
            l.spec.acquire_time = t(1);
            l.spec.renew_time = t(if acknowledged { 2 } else { 1 });
        }
        std::sync::Arc::new(l)
    }

    #[test]
    fn a_lease_handed_over_by_its_holders_agent_starts_the_gap() {
        let mut handed = (*lease(Some(false))).clone();
        handed.annotations = [(HANDED_OVER_FROM_ANNOTATION, "old-pod")].into_iter().collect();
        assert_eq!(seen(&handed), Seen::HandedOver);
        assert_eq!(seen(&lease(Some(false))), Seen::Starting);
        let gaps = Gaps::default();
        let t0 = Instant::now();
        let observe = |l: CachedLease, ms: u64| {
            gaps.observe(
                "ns",
                "s",
                &[std::sync::Arc::new(l)],
                |_| true,
                t0 + Duration::from_millis(ms),
            )
        };
        assert!(observe(handed.clone(), 0).is_empty());
        let mut running = handed;
        running.spec.renew_time = lease(Some(true)).spec.renew_time.clone();
        assert_eq!(observe(running, 80), [Duration::from_millis(80)]);
    }

    #[test]
    fn only_changed_leases_are_observed_and_an_absent_listener_is_kept_a_while() {
        let gaps = Gaps::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let observe = |changed: &[std::sync::Arc<CachedLease>], present: bool, now| {
            gaps.observe("ns", "s", changed, |l| present && l == "a", now)
        };
        assert!(observe(&[lease(None)], true, at(0)).is_empty());
        // Passes that see no change of the Lease: the gap runs on from the release.
        assert!(observe(&[], true, at(100)).is_empty());
        assert!(observe(&[lease(Some(false))], true, at(200)).is_empty());
        assert_eq!(
            observe(&[lease(Some(true))], true, at(300)),
            [Duration::from_millis(300)]
        );
        assert!(observe(&[], true, at(400)).is_empty(), "a gap ends once");
        // Released, then its Lease deleted (the pod's garbage collection) and made anew.
        assert!(observe(&[lease(None)], true, at(500)).is_empty());
        assert!(observe(&[], false, at(600)).is_empty());
        assert_eq!(
            observe(&[lease(Some(true))], true, at(900)),
            [Duration::from_millis(400)]
        );
        // Absent for longer than it is kept: forgotten.
        assert!(observe(&[lease(None)], true, at(1000)).is_empty());
        let later = at(1000) + KEEP_ABSENT;
        assert!(observe(&[], false, later).is_empty());
        assert!(observe(&[lease(Some(true))], true, later).is_empty());
    }
}
