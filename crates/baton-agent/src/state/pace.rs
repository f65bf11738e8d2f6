//! Moves paced: a running listener asked to move stops only when its handover can follow at
//! once. Stopping every one of a drained pod's listeners at once would queue their handovers
//! behind each other for the free request slots, and each listener's gap (stopped here, not
//! yet started on its successor) would be that queue's length; paced, the gap is its own stop
//! and write, and the rest run on here meanwhile.

use tokio::time::Instant;

use super::{Phase, State, MAX_OPS_IN_FLIGHT};

/// Listeners stopping or waiting for their release at once: twice the request slots, so a
/// write slot never waits for an application to stop.
pub(super) const MOVES_AT_ONCE: usize = 2 * MAX_OPS_IN_FLIGHT;

impl State {
    /// Listeners stopping, or stopped and waiting for their release or handover.
    fn moving(&self) -> usize {
        self.tracked
            .values()
            .filter(|t| matches!(t.phase, Phase::Stopping | Phase::Releasing))
            .count()
    }

    /// Whether a running listener asked to move may stop now (a shutdown stops everything).
    pub(super) fn may_stop_to_move(&self) -> bool {
        self.shutting_down || self.moving() < MOVES_AT_ONCE
    }

    /// Stop the running listeners asked to move that waited for room, in name order.
    pub(super) fn stop_paced(&mut self, now: Instant) {
        let room = MOVES_AT_ONCE.saturating_sub(self.moving());
        if room == 0 {
            return;
        }
        let waiting: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.phase == Phase::Running && super::release_reason(&t.lease).is_some())
            .map(|(n, _)| n.clone())
            .take(room)
            .collect();
        for name in waiting {
            self.evaluate(&name, now);
        }
    }
}
