//! How closely one set's passes may follow each other. A pass decides over what changed, but
//! evening out still walks every settled listener: at 10,000 listeners one decision takes tens of
//! milliseconds, and a set whose Leases change without pause (a wave of handovers) would be
//! decided back to back, taking the CPU its agents need. After a decision that took `t`, the
//! set's next pass starts no sooner than [`SPACING`] × `t` later (at most [`MAX_WAIT`]); the
//! changes that arrive meanwhile are decided together. A decision of a few milliseconds (a
//! drain, a takeover, any set of 1,000) waits a few times that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::context::SetKey;

/// The next pass waits this many times the last decision's time.
pub(super) const SPACING: u32 = 4;
/// ... and never longer than this.
pub(super) const MAX_WAIT: Duration = Duration::from_millis(250);

/// When each set may be decided again.
#[derive(Default)]
pub(super) struct Pacing(Mutex<HashMap<SetKey, Instant>>);

impl Pacing {
    /// How long set `key` must wait before its next pass, if at all.
    pub(super) fn wait(&self, key: &SetKey, now: Instant) -> Option<Duration> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(key)
            .map(|at| at.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Set `key` was decided at `now`, in `took`.
    pub(super) fn decided(&self, key: &SetKey, now: Instant, took: Duration) {
        let next = now + (took * SPACING).min(MAX_WAIT);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), next);
    }

    /// Forget a deleted set.
    pub(super) fn forget(&self, key: &SetKey) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SetKey {
        ("ns".into(), "sxt".into())
    }

    #[test]
    fn the_next_pass_waits_a_multiple_of_the_last_decision_bounded() {
        let pacing = Pacing::default();
        let now = Instant::now();
        assert_eq!(pacing.wait(&key(), now), None, "a set never decided waits for nothing");
        pacing.decided(&key(), now, Duration::from_millis(30));
        assert_eq!(pacing.wait(&key(), now), Some(Duration::from_millis(120)));
        let later = now + Duration::from_millis(100);
        assert_eq!(pacing.wait(&key(), later), Some(Duration::from_millis(20)));
        assert_eq!(pacing.wait(&key(), now + Duration::from_millis(120)), None);
        pacing.decided(&key(), now, Duration::from_secs(2));
        assert_eq!(pacing.wait(&key(), now), Some(MAX_WAIT));
        pacing.forget(&key());
        assert_eq!(pacing.wait(&key(), now), None);
    }
}
