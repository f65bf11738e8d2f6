//! The loop the workload controllers share: reconcile the objects the store's events concern,
//! each once per burst of events, and again when a reconcile asked to be looked at later (what
//! kube's work queues do with `AddAfter`: a pod becoming available after `minReadySeconds`, a
//! progress deadline passing, a write that lost a race).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::handlers::Core;
use crate::store::Event;

/// An object's namespace and name.
pub(crate) type Key = (String, String);

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Done until an event says otherwise.
    Idle,
    /// Look again after this long (a time-driven change is due).
    After(Duration),
    /// A write failed: try again, sooner after a lost race, later after repeated failures
    /// (kube's rate-limited requeue: exponential, from 5 ms).
    Retry,
}

/// The longest wait between retries of a key that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one controller does: which objects an event concerns, which exist (after missed
/// events), and the reconcile of one.
pub(crate) trait Controller {
    fn keys_of(&self, core: &Core, ev: &Event) -> Vec<Key>;
    fn all(&self, core: &Core) -> Vec<Key>;
    fn reconcile(&self, core: &Core, key: &Key) -> Next;
}

/// Keys due for another reconcile, each at its earliest requested time, and how many times
/// in a row each failed.
#[derive(Default)]
struct Timers {
    due: BTreeMap<Key, Instant>,
    failures: BTreeMap<Key, u32>,
}

impl Timers {
    fn add(&mut self, key: Key, at: Instant) {
        let e = self.due.entry(key).or_insert(at);
        if at < *e {
            *e = at;
        }
    }

    fn next(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    fn take_due(&mut self, now: Instant) -> Vec<Key> {
        let keys: Vec<Key> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            self.due.remove(k);
        }
        keys
    }
}

/// Run `c` until shutdown: every existing object first, then as events and timers say.
pub(crate) async fn run(core: &Core, c: &impl Controller, mut shutdown: watch::Receiver<bool>) {
    let mut rx = core.store.subscribe();
    let mut timers = Timers::default();
    reconcile_all(core, c, c.all(core), &mut timers);
    loop {
        let wake = timers.next();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let keys = tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => drain(core, c, &mut rx, c.keys_of(core, &ev)),
                Err(broadcast::error::RecvError::Lagged(_)) => c.all(core).into_iter().collect(),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = sleep => timers.take_due(Instant::now()).into_iter().collect(),
            _ = shutdown.changed() => return,
        };
        reconcile_all(core, c, keys, &mut timers);
    }
}

/// The keys of `first` and of every event already waiting: a burst of events about one object
/// (its pods starting one after another) costs one reconcile.
fn drain(
    core: &Core,
    c: &impl Controller,
    rx: &mut broadcast::Receiver<std::sync::Arc<Event>>,
    first: Vec<Key>,
) -> BTreeSet<Key> {
    let mut keys: BTreeSet<Key> = first.into_iter().collect();
    loop {
        match rx.try_recv() {
            Ok(ev) => keys.extend(c.keys_of(core, &ev)),
            Err(broadcast::error::TryRecvError::Lagged(_)) => keys.extend(c.all(core)),
            Err(_) => return keys,
        }
    }
}

/// The wait before retrying a key that failed `n` times in a row.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(5).saturating_mul(1 << n.min(20)).min(MAX_BACKOFF)
}

fn reconcile_all(core: &Core, c: &impl Controller, keys: impl IntoIterator<Item = Key>, timers: &mut Timers) {
    for key in keys {
        let after = match c.reconcile(core, &key) {
            Next::Retry => {
                let n = timers.failures.entry(key.clone()).or_default();
                *n += 1;
                Some(backoff(*n - 1))
            }
            Next::After(d) => {
                timers.failures.remove(&key);
                Some(d)
            }
            Next::Idle => {
                timers.failures.remove(&key);
                None
            }
        };
        if let Some(after) = after {
            timers.add(key, Instant::now() + after);
        }
    }
}
