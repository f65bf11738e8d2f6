//! Each running listener's safety deadline, and the map of them the sidecar publishes.

#[cfg(test)]
use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{Phase, State, Tracked};

impl State {
    /// When a listener stops unless something extends it (see the module doc).
    pub(super) fn deadline(&self, t: &Tracked) -> Option<Instant> {
        deadline_of(t, self.live.current(), self.live.base, &self.cfg)
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
    /// if it changed. The shell asks after every batch of events, so the cost is of what moved:
    /// each tracking keeps the deadline `into` holds for it, only the trackings changed since
    /// the last call are looked at, and only one whose deadline moved, or that stopped running,
    /// touches the map (a renewal of the liveness Lease moves every deadline it covers: all are
    /// looked at, once per renewal). Should the map and the trackings disagree (two Leases of one
    /// listener, or a map these calls did not keep), it is built anew.
    pub(crate) fn refresh_valid_until(&mut self, into: &mut crate::ValidUntil) -> bool {
        let changed = self.refresh_changed(into);
        #[cfg(test)]
        assert_eq!(
            *into,
            self.valid_until(),
            "the published deadlines are every running listener's"
        );
        changed
    }

    fn refresh_changed(&mut self, into: &mut crate::ValidUntil) -> bool {
        // Each edit and what it replaced, to give `into` back as it was should it be built anew.
        let mut undo: Vec<((String, String), Option<Instant>)> = Vec::new();
        for (key, at) in self.shown_forgotten.drain(..) {
            if into.get(&key) == Some(&at) {
                into.remove(&key);
                undo.push((key, Some(at)));
            }
        }
        let (current, base) = (self.live.current(), self.live.base);
        let all = std::mem::take(&mut self.work.shown_all) || self.work.shown_view != Some((current, base));
        self.work.shown_view = Some((current, base));
        let dirty = self.work.take_shown_dirty();
        let cfg = &self.cfg;
        let shown = &mut self.work.shown_count;
        let looked = &mut self.work.looked;
        let mut look = |t: &mut Tracked| {
            *looked += 1;
            let want = shown_deadline(t, current, base, cfg);
            if want == t.shown {
                return;
            }
            *shown = *shown + usize::from(want.is_some()) - usize::from(t.shown.is_some());
            t.shown = want;
            let key = (t.set.clone(), t.listener.clone());
            let was = match want {
                Some(at) => into.insert(key.clone(), at),
                None => into.remove(&key),
            };
            undo.push((key, was));
        };
        if all {
            self.tracked.values_mut().for_each(&mut look);
        } else {
            for name in &dirty {
                if let Some(t) = self.tracked.get_mut(name) {
                    look(t);
                }
            }
        }
        if self.work.shown_count == into.len() {
            return undo.iter().any(|(key, was)| into.get(key) != was.as_ref());
        }
        for (key, was) in undo.into_iter().rev() {
            match was {
                Some(at) => into.insert(key, at),
                None => into.remove(&key),
            };
        }
        let before = std::mem::take(into);
        self.rebuild_valid_until(into);
        *into != before
    }

    /// [`State::refresh_valid_until`] from nothing: the map of every running listener's
    /// deadline, the last tracking of a listener winning, as collecting into the map would keep.
    fn rebuild_valid_until(&mut self, into: &mut crate::ValidUntil) {
        let (current, base) = (self.live.current(), self.live.base);
        let cfg = &self.cfg;
        self.work.shown_count = 0;
        for t in self.tracked.values_mut() {
            t.shown = shown_deadline(t, current, base, cfg);
            if let Some(at) = t.shown {
                self.work.shown_count += 1;
                into.insert((t.set.clone(), t.listener.clone()), at);
            }
        }
    }
}

/// The deadline the published map is to hold for `t`: its deadline while it runs.
fn shown_deadline(t: &Tracked, current: u64, base: Option<Instant>, cfg: &crate::AgentConfig) -> Option<Instant> {
    (t.phase == Phase::Running)
        .then(|| deadline_of(t, current, base, cfg))
        .flatten()
}

/// [`State::deadline`] of `t`, given the registration current now and its base.
fn deadline_of(t: &Tracked, current: u64, base: Option<Instant>, cfg: &crate::AgentConfig) -> Option<Instant> {
    let covered = t.ack_reg != 0 && t.ack_reg == current;
    let base = t.ack_base.max(if covered { base } else { None })?;
    Some(base + t.duration.saturating_sub(cfg.margin(t.duration)))
}
