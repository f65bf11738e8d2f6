//! Expectations: what a reconcile wrote and the watch caches must show before the next plan of
//! the same Rollout, as kube-controller-manager's `ControllerExpectations` do.
//!
//! A plan made from a cache that does not show the last reconcile's writes would repeat them or
//! act on a stale picture: count a deleted pod as still serving and take one more down, start
//! the same batch again from the status before. Instead of a worker polling its cache after each
//! write, the reconcile records what it wrote ([`Expectations::expect`]); the next reconcile of
//! that Rollout first asks [`Expectations::satisfied`], and when the caches do not show it all
//! yet it plans nothing and is requeued — the watch event that brings the write triggers it
//! again. An expectation not met within [`EXPECTATION_TIMEOUT`] is given up (the next plan
//! goes ahead), so a write that is undone before the watch shows it cannot stall a Rollout.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::rollout::RolloutStatus;

/// How long a reconcile's writes are waited for before planning goes ahead anyway.
pub const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

/// One write of a reconcile, as the caches will show it.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// Pod `name` was created: the pod cache has it (or the pod watch showed it).
    PodCreated(String),
    /// Pod `name` was deleted: the pod cache no longer has it, or shows it terminating.
    PodDeleted(String),
    /// ControllerRevision `name` was created: the revision cache has it.
    RevisionCreated(String),
    /// Job `name` was created: the Job cache has it (not terminating).
    JobCreated(String),
    /// Job `name` was deleted: the Job cache no longer has it, or shows it terminating.
    JobDeleted(String),
    /// `status` was written to Rollout `uid`, giving it `resource_version`: the Rollout cache
    /// shows that version, or a newer object with that status.
    Status {
        uid: String,
        resource_version: String,
        status: Box<RolloutStatus>,
    },
}

#[derive(Debug)]
struct Pending {
    items: Vec<Expected>,
    deadline: Instant,
}

/// Pending writes per Rollout (by uid).
#[derive(Debug)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
    timeout: Duration,
    next_sweep: Mutex<Instant>,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::new(EXPECTATION_TIMEOUT, Instant::now())
    }
}

impl Expectations {
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Expectations {
            pending: Mutex::default(),
            timeout,
            next_sweep: Mutex::new(now + timeout),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rollout `uid` wrote `items` (at `now`): its next plan waits until the caches show them.
    pub fn expect(&self, uid: &str, items: Vec<Expected>, now: Instant) {
        if items.is_empty() {
            return;
        }
        let mut pending = self.lock();
        let entry = pending.entry(uid.to_string()).or_insert_with(|| Pending {
            items: Vec::new(),
            deadline: now,
        });
        // A status write supersedes the earlier ones (one writer, in order): a cache that shows
        // it has shown them. Without this, a refused plan's status, overwritten by the report of
        // the refusal within the same reconcile, would be waited for until the timeout.
        if items.iter().any(|e| matches!(e, Expected::Status { .. })) {
            entry.items.retain(|e| !matches!(e, Expected::Status { .. }));
        }
        entry.items.extend(items);
        entry.deadline = now + self.timeout;
        // Entries of Rollouts deleted before their next reconcile are dropped once expired.
        let mut next_sweep = self.next_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if now >= *next_sweep {
            pending.retain(|_, p| p.deadline > now);
            *next_sweep = now + self.timeout;
        }
    }

    /// The pod watch showed pod `name` of Rollout `uid` (created, changed or deleted).
    pub fn observe_pod(&self, uid: &str, name: &str) {
        let mut pending = self.lock();
        if let Some(p) = pending.get_mut(uid) {
            p.items.retain(|e| !matches!(e, Expected::PodCreated(n) if n == name));
        }
    }

    /// Are the writes of Rollout `uid` all shown (`seen` tells for one), or given up? If not,
    /// how long (from `now`) until they are given up. Items seen are forgotten.
    pub fn satisfied(&self, uid: &str, now: Instant, seen: impl Fn(&Expected) -> bool) -> Result<(), Duration> {
        let mut pending = self.lock();
        let Some(p) = pending.get_mut(uid) else { return Ok(()) };
        p.items.retain(|e| !seen(e));
        if p.items.is_empty() || now >= p.deadline {
            pending.remove(uid);
            return Ok(());
        }
        Err(p.deadline - now)
    }

    /// Forget Rollout `uid` (deleted).
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Rollouts with writes not yet shown (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    fn created(n: &str) -> Expected {
        Expected::PodCreated(n.into())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn satisfied_once_everything_is_seen() {
        let t0 = Instant::now();
        let e = Expectations::new(T, t0);
        assert_eq!(
            e.satisfied("r", t0, |_| false),
            Ok(()),
            "nothing written, nothing to wait for"
        );
        e.expect("r", vec![created("a"), Expected::PodDeleted("b".into())], t0);
        assert_eq!(e.satisfied("r", t0, |_| false), Err(T));
        // Only the deletion shows: still waiting, for the creation alone.
        let deleted = |x: &Expected| matches!(x, Expected::PodDeleted(_));
        assert!(e.satisfied("r", t0, deleted).is_err());
        assert!(e.satisfied("r", t0, |_| false).is_err());
        assert_eq!(e.satisfied("r", t0, |x| *x == created("a")), Ok(()));
        assert!(e.is_empty());
        e.expect("r", vec![created("c")], t0);
        assert_eq!(e.satisfied("other", t0, |_| false), Ok(()), "per Rollout");
        assert!(e.satisfied("r", t0, |_| false).is_err());
    }

    #[test]
    fn a_created_pod_the_watch_showed_counts_even_if_gone_since() {
        let t0 = Instant::now();
        let e = Expectations::new(T, t0);
        e.expect("r", vec![created("a"), created("b")], t0);
        e.observe_pod("r", "a");
        e.observe_pod("other", "b");
        assert!(e.satisfied("r", t0, |_| false).is_err(), "b was not shown for r");
        e.observe_pod("r", "b");
        assert_eq!(e.satisfied("r", t0, |_| false), Ok(()));
    }

    #[test]
    fn writes_never_shown_are_given_up_after_the_timeout() {
        let t0 = Instant::now();
        let e = Expectations::new(T, t0);
        e.expect("r", vec![created("a")], t0);
        assert_eq!(e.satisfied("r", t0 + secs(20), |_| false), Err(secs(10)));
        // A later write extends the wait.
        e.expect("r", vec![created("b")], t0 + secs(20));
        assert_eq!(e.satisfied("r", t0 + secs(40), |_| false), Err(secs(10)));
        assert_eq!(e.satisfied("r", t0 + secs(50), |_| false), Ok(()));
        assert!(e.is_empty());
    }

    fn status(rv: &str) -> Expected {
        Expected::Status {
            uid: "r".into(),
            resource_version: rv.into(),
            status: Box::default(),
        }
    }

    #[test]
    fn a_later_status_write_supersedes_an_earlier_one() {
        let t0 = Instant::now();
        let e = Expectations::new(T, t0);
        // A plan refused by the API server wrote its status (rv 7); the report of the refusal
        // overwrote it (rv 8) in the same reconcile: the cache will only ever show rv 8.
        e.expect("r", vec![status("7"), created("a")], t0);
        e.expect("r", vec![status("8")], t0);
        let shown = |x: &Expected| *x == status("8") || *x == created("a");
        assert_eq!(e.satisfied("r", t0, shown), Ok(()));
    }

    #[test]
    fn entries_of_rollouts_never_reconciled_again_are_swept() {
        let t0 = Instant::now();
        let e = Expectations::new(T, t0);
        e.expect("gone", vec![created("a")], t0);
        e.expect("r", vec![created("b")], t0 + secs(31));
        assert_eq!(e.len(), 1);
        e.forget("r");
        assert!(e.is_empty());
    }
}
