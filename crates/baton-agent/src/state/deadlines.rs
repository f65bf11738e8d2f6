//! Each running listener's safety deadline, and the map of them the sidecar publishes.

#[cfg(test)]
use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{Phase, State, Tracked};

impl State {
    /// When a listener stops unless something extends it (see the module doc).
    pub(super) fn deadline(&self, t: &Tracked) -> Option<Instant> {
        let covered = t.ack_reg != 0 && t.ack_reg == self.live.current();
        let base = t.ack_base.max(if covered { self.live.base } else { None })?;
        Some(base + t.duration.saturating_sub(self.cfg.margin(t.duration)))
    }

    /// Each running listener's safety deadline, `(set, listener)` → the instant at which the
    /// agent stops it unless something extends it first (what [`State::refresh_valid_until`]
    /// keeps, built anew).
    #[cfg(test)]
    pub(crate) fn valid_until(&self) -> BTreeMap<(String, String), Instant> {
        self.tracked
            .values()
            .filter(|t| t.phase == Phase::Running)
            .filter_map(|t| Some(((t.set.clone(), t.listener.clone()), self.deadline(t)?)))
            .collect()
    }

    /// Bring `into` (the map earlier calls brought up to date) to [`State::valid_until`]; true
    /// if it changed. Nothing is copied while the deadlines stay as they are (the shell asks
    /// after every batch of events): what `into` was made from, each running tracking and its
    /// deadline, is kept, and compared first without a listener's name.
    pub(crate) fn refresh_valid_until(&mut self, into: &mut crate::ValidUntil) -> bool {
        let made_from: Vec<(u64, Instant)> = self
            .tracked
            .values()
            .filter(|t| t.phase == Phase::Running)
            .filter_map(|t| Some((t.tracking, self.deadline(t)?)))
            .collect();
        // A tracking is of one Lease, so of one (set, listener), for all its life.
        if made_from == self.published && into.len() == self.published_len {
            return false;
        }
        let mut now: Vec<((&str, &str), Instant)> = self
            .tracked
            .values()
            .filter(|t| t.phase == Phase::Running)
            .filter_map(|t| Some(((t.set.as_str(), t.listener.as_str()), self.deadline(t)?)))
            .collect();
        // Stable, then the last of equal keys, as collecting into the map would keep.
        now.sort_by(|a, b| a.0.cmp(&b.0));
        now.reverse();
        now.dedup_by(|later, earlier| later.0 == earlier.0);
        now.reverse();
        let same = now.len() == into.len()
            && now
                .iter()
                .zip(into.iter())
                .all(|(((s, l), at), ((set, listener), was))| s == set && l == listener && at == was);
        if !same {
            *into = now
                .into_iter()
                .map(|((s, l), at)| ((s.to_string(), l.to_string()), at))
                .collect();
        }
        self.published = made_from;
        self.published_len = into.len();
        !same
    }
}
