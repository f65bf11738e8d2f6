//! Per-object exponential backoff for failing reconciles (both controllers).
//!
//! kube-runtime's `error_policy` decides when a failed object is tried again. Here each
//! object's consecutive failures are counted: the delay doubles from a base (short for a
//! conflict or a cache that has not caught up yet, longer for anything else) up to
//! [`MAX_DELAY`], and a success resets it. One log line per failed attempt, with the attempt
//! number and the delay, so a permanently failing object logs ever more rarely; the number of
//! objects backing off is a gauge (`baton_reconcile_backoff_objects`).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::Resource;
use prometheus_client::metrics::gauge::Gauge;
use tracing::warn;

use crate::error::Error;
pub use crate::error::Retry;

/// First retry after a conflict (someone else wrote first) or a cache lag.
pub const FAST_BASE: Duration = Duration::from_millis(100);
/// First retry after any other error.
pub const BASE: Duration = Duration::from_secs(1);
/// Longest delay between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// The delay before attempt `failures + 1` after `failures` consecutive failures (≥ 1).
pub fn delay(retry: Retry, failures: u32) -> Duration {
    let base = match retry {
        Retry::Soon => FAST_BASE,
        Retry::Later => BASE,
    };
    let doublings = failures.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(MAX_DELAY)
}

/// Consecutive failures per object of one controller.
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
    /// Delays of failures already counted and logged inside their reconcile's span
    /// ([`record_failure`](Self::record_failure)), for the error policy to return.
    decided: Mutex<HashMap<String, Duration>>,
    /// Objects with at least one failure since their last success.
    gauge: Gauge,
}

impl Backoff {
    pub fn new(gauge: Gauge) -> Self {
        Backoff {
            failures: Mutex::new(HashMap::new()),
            decided: Mutex::new(HashMap::new()),
            gauge,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, u32>) -> R) -> R {
        let mut g = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut g);
        self.gauge.set(i64::try_from(g.len()).unwrap_or(i64::MAX));
        r
    }

    /// Count a failure of `key`: (consecutive failures so far, delay before the next attempt).
    pub fn failed(&self, key: &str, retry: Retry) -> (u32, Duration) {
        let n = self.with(|m| {
            let n = m.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        });
        (n, delay(retry, n))
    }

    /// Count a failure of `obj` and log it (kind, namespace, name, attempt, delay, error) where
    /// it happened: inside the reconcile's span. The error policy then requeues it after that
    /// delay without counting it again.
    pub fn record_failure<K: Resource<DynamicType = ()>>(&self, obj: &K, err: &Error) {
        let key = key_of(obj);
        let (attempt, delay) = self.failed(&key, err.retry());
        log_failure(obj, err, attempt, delay);
        self.decided
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, delay);
    }

    /// The error policy of every controller: requeue a failed `obj` after its own delay (counted
    /// and logged by [`record_failure`](Self::record_failure), or here when it was not).
    pub fn on_error<K: Resource<DynamicType = ()>>(&self, obj: &K, err: &Error) -> Action {
        let key = key_of(obj);
        let decided = self.decided.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        if let Some(delay) = decided {
            return Action::requeue(delay);
        }
        let (attempt, delay) = self.failed(&key, err.retry());
        log_failure(obj, err, attempt, delay);
        Action::requeue(delay)
    }

    /// `obj` reconciled: its next failure starts from the base again.
    pub fn on_success<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        self.succeeded(&key_of(obj));
    }

    /// `key` reconciled: its next failure starts from the base again.
    pub fn succeeded(&self, key: &str) {
        let known = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key);
        if known {
            self.with(|m| m.remove(key));
        }
    }
}

fn log_failure<K: Resource<DynamicType = ()>>(obj: &K, err: &Error, attempt: u32, delay: Duration) {
    let meta = obj.meta();
    warn!(
        kind = %K::kind(&()),
        namespace = meta.namespace.as_deref().unwrap_or(""),
        name = meta.name.as_deref().unwrap_or(""),
        attempt,
        retry_in = ?delay,
        error = %err,
        "reconcile failed"
    );
}

/// `namespace/name` of an object: the backoff key.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        assert_eq!(delay(Retry::Soon, 1), Duration::from_millis(100));
        assert_eq!(delay(Retry::Soon, 2), Duration::from_millis(200));
        assert_eq!(delay(Retry::Later, 1), Duration::from_secs(1));
        assert_eq!(delay(Retry::Later, 4), Duration::from_secs(8));
        assert_eq!(delay(Retry::Later, 9), Duration::from_secs(256));
        assert_eq!(delay(Retry::Later, 10), MAX_DELAY);
        assert_eq!(delay(Retry::Later, u32::MAX), MAX_DELAY);
        assert_eq!(delay(Retry::Soon, 0), FAST_BASE);
    }

    #[test]
    fn failures_are_counted_per_object_and_reset_by_a_success() {
        let b = Backoff::new(Gauge::default());
        assert_eq!(b.failed("ns/a", Retry::Later), (1, Duration::from_secs(1)));
        assert_eq!(b.failed("ns/a", Retry::Later), (2, Duration::from_secs(2)));
        assert_eq!(b.failed("ns/b", Retry::Soon), (1, FAST_BASE));
        assert_eq!(b.gauge.get(), 2);
        b.succeeded("ns/a");
        assert_eq!(b.gauge.get(), 1);
        assert_eq!(b.failed("ns/a", Retry::Later), (1, Duration::from_secs(1)));
        b.succeeded("ns/unknown");
        assert_eq!(b.gauge.get(), 2);
    }
}
