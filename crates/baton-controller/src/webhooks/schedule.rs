//! Pure: the retry schedule of a message, and the digest its idempotency key ends with.
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Retry schedule: the wait after failed attempt `n` (1-based), `first` doubling up to `max`.
pub fn backoff(n: u32, first: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

/// After a failed attempt at `elapsed` since the message was queued, the wait before the next
/// attempt, or None when the bound `retry_for` is reached (the message is dropped).
pub fn next_attempt(
    n: u32,
    elapsed: Duration,
    retry_for: Duration,
    first: Duration,
    max: Duration,
) -> Option<Duration> {
    let left = retry_for.checked_sub(elapsed).filter(|l| !l.is_zero())?;
    Some(backoff(n, first, max).min(left))
}

/// 16 hex digits of (`key`, `event`): the same on every controller and every version of it
/// (FNV, not the standard library's seeded hash).
pub fn digest(key: &str, event: &str) -> String {
    let mut h = fnv::FnvHasher::default();
    (key, event).hash(&mut h);
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_one_second_to_a_minute_within_the_bound() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n, first, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(200, first, max), max, "no overflow");
        let bound = Duration::from_secs(600);
        assert_eq!(next_attempt(1, Duration::ZERO, bound, first, max), Some(first));
        assert_eq!(
            next_attempt(9, Duration::from_secs(590), bound, first, max),
            Some(Duration::from_secs(10)),
            "the last attempt is at the bound"
        );
        assert_eq!(next_attempt(10, Duration::from_secs(600), bound, first, max), None);
        assert_eq!(next_attempt(10, Duration::from_secs(700), bound, first, max), None);
    }

    #[test]
    fn digests_are_stable_and_tell_keys_apart() {
        // A fixed value: a new controller version must give the keys an older one gave.
        assert_eq!(digest("k", "Takeover"), "ab931fdda7ce09d3");
        assert_ne!(digest("k", "Takeover"), digest("k", "Handover"));
        assert_ne!(digest("a/1", "Takeover"), digest("a/2", "Takeover"));
        assert_eq!(digest("k", "e").len(), 16);
    }
}
