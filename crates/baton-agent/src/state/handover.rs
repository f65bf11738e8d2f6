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
//! overlap rather than take its stop time once per batch (one that only reads the file, each
//! stop waiting `ack_timeout`, has in practice every stop at once).
//!
//! What the writes complete is measured over the releases of the last [`PACE_SPAN`], per
//! second that a release was in flight: a busy API server answers in bursts, and a rate read
//! over a few dozen answers could be several times the true one (the window then stopped
//! several times too many listeners, which stood stopped waiting for a slot); and while an
//! application is slow to stop, the slots wait for it, so the releases per second of the wall
//! clock understate what the slots can do (the window then stays too narrow to keep them busy,
//! and widens by no more than the slots per stop).
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

/// How far back completed releases count toward the agent's pace: long enough to span many
/// bursts of answers from a busy API server.
const PACE_SPAN: Duration = Duration::from_secs(1);
/// The most releases kept (more than [`PACE_SPAN`] holds at any pace seen).
const PACE_SAMPLES: usize = 4096;

/// What the window is sized from: how long the application took to acknowledge a stop lately (a
/// moving average, weight 1/8 for the newest), and the releases completed within [`PACE_SPAN`]
/// of the last one, with the time the slots were busy with them.
#[derive(Debug, Default)]
pub(super) struct Pace {
    stop: Option<Duration>,
    /// When each release completed, and the time it added to the slots' busy time: since it was
    /// sent or since the release before it completed, whichever is later.
    released: VecDeque<(Instant, Duration)>,
    /// The sum of their busy times.
    busy: Duration,
}

impl Pace {
    /// The application acknowledged a stop `took` after it was emitted.
    pub(super) fn stopped(&mut self, took: Duration) {
        self.stop = Some(self.stop.map_or(took, |a| (a * 7 + took) / 8));
    }

    /// A release (or handover) sent `took` ago completed at `now`.
    pub(super) fn released(&mut self, now: Instant, took: Duration) {
        let sent = now.checked_sub(took).unwrap_or(now);
        let busy_from = self.released.back().map_or(sent, |(last, _)| sent.max(*last));
        while let Some((at, b)) = self.released.front().copied() {
            if self.released.len() < PACE_SAMPLES && now.saturating_duration_since(at) <= PACE_SPAN {
                break;
            }
            self.released.pop_front();
            self.busy = self.busy.saturating_sub(b);
        }
        let busy = now.saturating_duration_since(busy_from);
        self.released.push_back((now, busy));
        self.busy += busy;
    }

    /// Releases completed per second of the slots' busy time, once a batch of them was measured.
    fn per_second(&self) -> Option<f64> {
        let count = self.released.len();
        let busy = self.busy.as_secs_f64().max(1e-3);
        (count > STOP_BATCH).then(|| count as f64 / busy)
    }

    /// Listeners to have stopping or releasing at once.
    pub(super) fn window(&self) -> usize {
        let Some(stop) = self.stop else { return STOP_WINDOW };
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

    /// A shutdown is done: nothing is held any more, and the controller can know the pod leaves
    /// (its registration is marked leaving, there is none to mark, or marking it fails). An agent
    /// that held nothing still marks its pod: a handover already on its way there then moves on
    /// at once, and nothing new is handed to it.
    pub(crate) fn shut_down(&self) -> bool {
        self.shutting_down && self.tracked.is_empty() && self.live.left()
    }

    /// Releases may be sent: the agent is not shutting down, its registration is marked leaving
    /// (or there is none to mark, or marking it fails), or it waited [`LEAVING_WAIT`] for that.
    pub(super) fn may_release(&self, now: Instant) -> bool {
        self.leaving_since
            .is_none_or(|since| self.live.left() || now >= since + LEAVING_WAIT)
    }

    /// Listeners stopped or being stopped whose Lease is not released yet.
    fn handing_over(&self) -> usize {
        self.work.handing_over
    }

    /// Stop running listener `name` for its release (`why`), now if the window has room and
    /// none waits before it, else once releases make room.
    pub(super) fn stop_for_release(&mut self, name: &str, why: StopReason, now: Instant) {
        if !self.shutting_down && (self.stops_deferred || self.handing_over() >= self.pace.window()) {
            self.stops_deferred = true;
            if !self.work.deferred.contains(name) {
                self.work.deferred.insert(name.to_string());
            }
            return;
        }
        self.stop_now(name, why, now);
    }

    fn stop_now(&mut self, name: &str, why: StopReason, now: Instant) {
        self.emit_stop(name, why, true);
        if let Some(t) = self.tracked.get_mut(name) {
            self.work.phase(Some(t.phase), Some(Phase::Stopping));
            t.phase = Phase::Stopping;
            t.stop_sent = Some(now);
            self.work.touch(name);
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
        // The first `room` that still wait, in name order; what no longer waits (stopped,
        // released, its release no longer asked for, or a write in flight, whose answer looks
        // again) leaves the list.
        let (mut chosen, mut gone) = (Vec::new(), Vec::new());
        let mut more = false;
        for name in &self.work.deferred {
            self.work.looked += 1;
            let waits = self
                .tracked
                .get(name)
                .filter(|t| t.phase == Phase::Running && t.in_flight.is_none());
            match waits.and_then(|t| release_reason(&t.lease)) {
                None => gone.push(name.clone()),
                Some(reason) if chosen.len() < room => chosen.push((name.clone(), reason)),
                Some(_) => {
                    more = true;
                    break;
                }
            }
        }
        self.stops_deferred = more;
        for name in gone {
            self.work.deferred.remove(&name);
        }
        for (name, reason) in chosen {
            self.work.deferred.remove(&name);
            self.stop_now(&name, StopReason::ReleaseRequested(reason), now);
        }
    }
}
