//! Stopping listeners for their release: a listener whose release is requested is stopped only
//! when its release can be written soon, so the time it runs nowhere is one handover, not its
//! place in a queue.
//!
//! A drain asks a pod for all its listeners at once, and the releases go out
//! [`MAX_OPS_IN_FLIGHT`] at a time. Stopping all of them at once would leave the last of 500
//! stopped for as long as the writes of the 468 before it take. So only a window of listeners
//! is stopping or releasing at once; the rest run on, still this pod's, until releases make room
//! ([`State::stop_deferred`]). The window is the writes in flight, plus the handovers the agent
//! completes while its application acknowledges a stop (Little's law, from what it measured
//! lately: [`Pace`]), and at least a batch more ([`STOP_WINDOW`]); so a write slot that frees
//! finds a stopped listener ready, and an application that takes long to stop has its stops
//! overlap rather than take its stop time once per batch. One whose acknowledgement takes
//! [`SLOW_STOP`] or more (as one that only reads the file, each stop waiting `ack_timeout`) gets
//! every stop at once, as without a window.
//!
//! Nothing about safety changes: a listener that waits runs under the same deadline as any
//! other, and the controller gives it to no one until it is released. A shutting-down agent
//! stops everything at once: its application is being stopped anyway.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::{release_reason, Action, Phase, State, StopReason, LEAVING_WAIT, MAX_OPS_IN_FLIGHT};

/// The fewest stops sent together once listeners wait (one document for the application).
pub(super) const STOP_BATCH: usize = MAX_OPS_IN_FLIGHT / 4;
/// Listeners stopping or releasing at once for an application that stops at once (the least
/// window).
pub(super) const STOP_WINDOW: usize = MAX_OPS_IN_FLIGHT + STOP_BATCH;
/// An application whose acknowledgement of a stop takes this long (on average) gets all its stops
/// at once.
pub(super) const SLOW_STOP: Duration = Duration::from_secs(1);

/// Handovers whose completion times measure the agent's pace.
const PACE_SAMPLES: usize = 64;

/// What the window is sized from: how long the application took to acknowledge a stop lately (a
/// moving average, weight 1/8 for the newest), and when the last [`PACE_SAMPLES`] releases
/// completed.
#[derive(Debug, Default)]
pub(super) struct Pace {
    stop: Option<Duration>,
    released: VecDeque<Instant>,
}

impl Pace {
    /// The application acknowledged a stop `took` after it was emitted.
    pub(super) fn stopped(&mut self, took: Duration) {
        self.stop = Some(self.stop.map_or(took, |a| (a * 7 + took) / 8));
    }

    /// A release (or handover) completed at `now`.
    pub(super) fn released(&mut self, now: Instant) {
        if self.released.len() == PACE_SAMPLES {
            self.released.pop_front();
        }
        self.released.push_back(now);
    }

    /// Releases completed per second lately, once a batch of them was measured.
    fn per_second(&self) -> Option<f64> {
        let (first, last) = (self.released.front()?, self.released.back()?);
        let span = last.saturating_duration_since(*first).as_secs_f64();
        (self.released.len() > STOP_BATCH && span > 0.0).then(|| (self.released.len() - 1) as f64 / span)
    }

    /// Listeners to have stopping or releasing at once.
    pub(super) fn window(&self) -> usize {
        let Some(stop) = self.stop else { return STOP_WINDOW };
        if stop >= SLOW_STOP {
            return usize::MAX;
        }
        let overlap = self.per_second().map_or(0.0, |r| (r * stop.as_secs_f64()).ceil());
        // `as` saturates; the window is bounded by the listeners there are anyway.
        MAX_OPS_IN_FLIGHT + (overlap as usize).max(STOP_BATCH)
    }
}

impl State {
    pub(super) fn emit_stop(&mut self, name: &str, reason: StopReason, want_ack: bool) {
        let Some(t) = self.tracked.get(name) else { return };
        info!(set = %t.set, listener = %t.listener, ?reason, "stop");
        self.out.push(Action::Stop {
            name: name.to_string(),
            set: t.set.clone(),
            listener: t.listener.clone(),
            reason,
            ack: want_ack.then_some(t.epoch),
        });
    }

    /// Begin a graceful shutdown: stop every listener and release every Lease.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.leaving_since.get_or_insert(now);
        self.live.leave(now);
        let names: Vec<String> = self.tracked.keys().cloned().collect();
        for name in names {
            self.evaluate(&name, now);
        }
    }

    /// Releases may be sent: the agent is not shutting down, its registration is marked leaving
    /// (or there is none to mark, or marking it fails), or it waited [`LEAVING_WAIT`] for that.
    pub(super) fn may_release(&self, now: Instant) -> bool {
        self.leaving_since
            .is_none_or(|since| self.live.left() || now >= since + LEAVING_WAIT)
    }

    /// Listeners stopped or being stopped whose Lease is not released yet.
    fn handing_over(&self) -> usize {
        self.tracked
            .values()
            .filter(|t| matches!(t.phase, Phase::Stopping | Phase::Releasing))
            .count()
    }

    /// Stop running listener `name` for its release (`why`), now if the window has room and
    /// none waits before it, else once releases make room.
    pub(super) fn stop_for_release(&mut self, name: &str, why: StopReason, now: Instant) {
        if !self.shutting_down && (self.stops_deferred || self.handing_over() >= self.pace.window()) {
            self.stops_deferred = true;
            return;
        }
        self.stop_now(name, why, now);
    }

    fn stop_now(&mut self, name: &str, why: StopReason, now: Instant) {
        self.emit_stop(name, why, true);
        if let Some(t) = self.tracked.get_mut(name) {
            t.phase = Phase::Stopping;
            t.stop_sent = Some(now);
        }
    }

    /// Stop listeners that wait for room in the window, once there is room for a batch of them
    /// ([`STOP_BATCH`]): what waits goes out a few at a time, not one by one.
    pub(super) fn stop_deferred(&mut self, now: Instant) {
        if !self.stops_deferred {
            return;
        }
        let busy = self.handing_over();
        let room = self.pace.window().saturating_sub(busy);
        if room < STOP_BATCH && !self.shutting_down {
            return;
        }
        let waiting: Vec<(String, String)> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.phase == Phase::Running && t.in_flight.is_none())
            .filter_map(|(n, t)| Some((n.clone(), release_reason(&t.lease)?)))
            .collect();
        self.stops_deferred = waiting.len() > room;
        for (name, reason) in waiting.into_iter().take(room) {
            self.stop_now(&name, StopReason::ReleaseRequested(reason), now);
        }
    }
}
