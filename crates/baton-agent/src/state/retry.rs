//! Retries of failed requests: exponential from the retry period up to a ceiling, each wait
//! drawn at random in its upper half (decorrelated "equal jitter"), so agents that all failed at
//! once (an API server restart, a slow etcd) do not all come back at once either. The source of
//! randomness is seeded per Lease (a hash of its name), which keeps the state machine pure.

use std::time::Duration;

use baton_api::listenerset::lease::fnv1a64;

/// The backoff of one Lease's requests.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    base: Duration,
    max: Duration,
    failures: u32,
    seed: u64,
}

impl Retry {
    pub(crate) fn new(base: Duration, max: Duration, seed: &str) -> Self {
        Retry {
            base: base.max(Duration::from_millis(1)),
            max: max.max(base),
            failures: 0,
            seed: fnv1a64(seed.as_bytes()) | 1,
        }
    }

    /// The wait before the next attempt, after one more failure.
    pub(crate) fn next(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let cap = exp.min(self.max);
        // xorshift64: cheap, deterministic per Lease.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = cap / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(self.seed % spread)
    }

    /// Consecutive failures so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_ceiling_with_jitter_and_reset() {
        let mut r = Retry::new(Duration::from_millis(250), Duration::from_secs(5), "sxt-l1");
        let waits: Vec<Duration> = (0..10).map(|_| r.next()).collect();
        for (i, w) in waits.iter().enumerate() {
            let cap = Duration::from_millis(250 * (1 << i)).min(Duration::from_secs(5));
            assert!(
                *w >= cap / 2 && *w <= cap,
                "attempt {i}: {w:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
        assert!(waits[9] >= Duration::from_millis(2500), "{waits:?}");
        // Two Leases failing together do not retry in lockstep.
        let mut other = Retry::new(Duration::from_millis(250), Duration::from_secs(5), "sxt-l2");
        let theirs: Vec<Duration> = (0..10).map(|_| other.next()).collect();
        assert_ne!(waits, theirs);
        assert_eq!(r.failures(), 10);
        r.reset();
        assert!(r.next() <= Duration::from_millis(250));
    }
}
