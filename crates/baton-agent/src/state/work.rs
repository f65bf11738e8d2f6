//! What the state machine keeps between looks so that a look costs what changed, not the
//! listeners the pod holds. A drain hands over hundreds of listeners, one event at a time, and
//! each event used to walk every tracked Lease several times (to find what expired, what to send,
//! when to wake, which stops wait, the shortest lease, the deadlines to publish).
//!
//! * Every change of a tracking *touches* its name ([`Work::touch`]); a change that concerns them
//!   all (a registration begun or ended, the gates of [`op_due`] opening) touches everything.
//! * *Writes*: a touched tracking is a candidate ([`Work::pending`]); a candidate not due yet
//!   waits in a timer queue until its time; one due while every slot is busy stays a candidate.
//!   Candidates are looked at in name order, as the walk over every tracking looked at them.
//! * *Expiry*: the earliest deadline of a running listener is kept as a floor no deadline is
//!   below ([`Expiry`]): a touched running listener can only lower it; a registration renewed
//!   moves every deadline it covers, and the floor is then found anew, once per renewal, as it is
//!   when the clock reaches it.
//! * *Published deadlines*, *stops waiting for room* and *the shortest lease* keep what they
//!   need: the names touched since the last publication, the names whose stop waits, a count of
//!   each lease duration and of the listeners handing over.
//!
//! Nothing here decides: a candidate, a floor or a waiting name is only where the state machine
//! looks; what it does there is what it did when it looked everywhere. The tests check the
//! bookkeeping against a look at everything after every step.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use tokio::time::Instant;

use tracing::warn;

use super::due::{op_due, Gates};
use super::{Phase, State, StopReason, MAX_OPS_IN_FLIGHT};

/// What every deadline of a running listener depends on beside its own tracking: the current
/// registration and the send time of its last successful renewal.
pub(super) type View = (u64, Option<Instant>);

/// The earliest deadline of a running listener, or a floor below it.
#[derive(Debug, Default)]
pub(super) struct Expiry {
    /// Found by a look at every running listener under `view` (false: look again).
    pub(super) known: bool,
    pub(super) view: Option<View>,
    /// No running listener's deadline is earlier (none: none runs).
    pub(super) floor: Option<Instant>,
}

impl Expiry {
    /// A running listener's deadline is `at` (none: it has none, and must be looked at).
    pub(super) fn lower(&mut self, at: Option<Instant>) {
        match at {
            Some(at) => self.floor = Some(self.floor.map_or(at, |f| f.min(at))),
            None => self.known = false,
        }
    }

    /// Whether the next look must walk every running listener.
    pub(super) fn must_walk(&self, view: View, now: Instant) -> bool {
        !self.known || self.view != Some(view) || self.floor.is_some_and(|f| now >= f)
    }
}

#[derive(Debug, Default)]
pub(super) struct Work {
    /// Trackings changed since the last look for writes and deadlines.
    due_dirty: BTreeSet<String>,
    /// Trackings changed since the deadlines were last published.
    shown_dirty: BTreeSet<String>,
    /// Every tracking is to be published again.
    pub(super) shown_all: bool,
    /// The registration the deadlines were last published under.
    pub(super) shown_view: Option<View>,
    /// Trackings the published map holds a deadline for.
    pub(super) shown_count: usize,
    /// Trackings that may have a write to send, in name order.
    pub(super) pending: BTreeSet<String>,
    /// Every tracking is a candidate (the gates changed, or everything was touched).
    pub(super) pending_all: bool,
    /// Trackings whose write falls due later, by when (stale entries are looked at and dropped).
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    /// The gates the candidates were last looked at under.
    pub(super) gates: Option<Gates>,
    pub(super) expiry: Expiry,
    /// Running listeners whose release is asked for and whose stop waits for room.
    pub(super) deferred: BTreeSet<String>,
    /// Trackings stopping or releasing.
    pub(super) handing_over: usize,
    /// How many trackings have each lease duration.
    durations: BTreeMap<Duration, usize>,
    /// Trackings looked at so far, by every look (what a look costs, for the tests).
    pub(super) looked: u64,
}

impl Work {
    /// Tracking `name` changed (or began, or ended).
    pub(super) fn touch(&mut self, name: &str) {
        if !self.due_dirty.contains(name) {
            self.due_dirty.insert(name.to_string());
        }
        if !self.shown_dirty.contains(name) {
            self.shown_dirty.insert(name.to_string());
        }
    }

    /// Every tracking changed.
    pub(super) fn touch_all(&mut self) {
        self.pending_all = true;
        self.shown_all = true;
        self.expiry.known = false;
    }

    /// The names changed since the last look for writes and deadlines.
    pub(super) fn take_due_dirty(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.due_dirty)
    }

    /// The names changed since the deadlines were last published.
    pub(super) fn take_shown_dirty(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.shown_dirty)
    }

    /// Tracking `name` has a write due at `at`: it is a candidate again then.
    pub(super) fn wake_at(&mut self, at: Instant, name: &str) {
        self.timers.push(Reverse((at, name.to_string())));
    }

    /// Candidates whose time came; the earliest time still to come.
    pub(super) fn fire_timers(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                return Some(*at);
            }
            if let Some(Reverse((_, name))) = self.timers.pop() {
                self.pending.insert(name);
            }
        }
        None
    }

    /// A tracking's phase went from `was` (none: it began) to `now` (none: it ended).
    pub(super) fn phase(&mut self, was: Option<Phase>, now: Option<Phase>) {
        let handing = |p: Option<Phase>| matches!(p, Some(Phase::Stopping | Phase::Releasing));
        if handing(was) {
            self.handing_over = self.handing_over.saturating_sub(1);
        }
        if handing(now) {
            self.handing_over += 1;
        }
    }

    /// A tracking's lease duration went from `was` (none: it began) to `now` (none: it ended).
    pub(super) fn duration(&mut self, was: Option<Duration>, now: Option<Duration>) {
        if was == now {
            return;
        }
        if let Some(d) = was {
            if let Some(n) = self.durations.get_mut(&d) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.durations.remove(&d);
                }
            }
        }
        if let Some(d) = now {
            *self.durations.entry(d).or_default() += 1;
        }
    }

    /// The shortest lease duration of the trackings.
    pub(super) fn shortest(&self) -> Option<Duration> {
        self.durations.keys().next().copied()
    }
}

impl Work {
    /// When the earliest write waiting for its time falls due (an earlier wake is a wasted look).
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }
}

impl State {
    /// Take in what changed since the last look: each changed tracking is a candidate for a
    /// write, and a running one may lower the earliest deadline.
    fn absorb(&mut self) {
        for name in self.work.take_due_dirty() {
            self.work.looked += 1;
            if let Some(t) = self.tracked.get(&name).filter(|t| t.phase == Phase::Running) {
                let at = self.deadline(t);
                self.work.expiry.lower(at);
            }
            self.work.pending.insert(name);
        }
    }

    /// Stop the running listeners whose deadline passed (nothing renewed them in time); `at` is
    /// given the earliest deadline still to come, or a floor below it.
    pub(super) fn expire(&mut self, now: Instant, at: &mut impl FnMut(Instant)) {
        self.absorb();
        let view = (self.live.current(), self.live.base);
        if !self.work.expiry.must_walk(view, now) {
            if let Some(floor) = self.work.expiry.floor {
                at(floor);
            }
            return;
        }
        // One walk finds what expired and the next deadline of what did not.
        self.work.looked += self.tracked.len() as u64;
        let mut expired: Vec<String> = Vec::new();
        let mut floor: Option<Instant> = None;
        for (name, t) in self.tracked.iter().filter(|(_, t)| t.phase == Phase::Running) {
            match self.deadline(t).filter(|d| now < *d) {
                Some(d) => floor = Some(floor.map_or(d, |f| f.min(d))),
                None => expired.push(name.clone()),
            }
        }
        self.work.expiry = Expiry {
            known: true,
            view: Some(view),
            floor,
        };
        if let Some(floor) = floor {
            at(floor);
        }
        for name in expired {
            if let Some(t) = self.tracked.get(&name) {
                warn!(set = %t.set, listener = %t.listener, "nothing renewed it in time; stopping before the controller can give it to another pod");
            }
            self.emit_stop(&name, StopReason::RenewFailed, false);
            if let Some(t) = self.tracked.get_mut(&name) {
                self.work.phase(Some(t.phase), Some(Phase::Lost));
                t.phase = Phase::Lost;
                t.epoch = 0;
                t.due = now;
                self.work.touch(&name);
            }
        }
    }

    /// Send what is due among the candidates, in name order, while slots are free.
    pub(super) fn issue_waiting(&mut self, now: Instant) {
        self.absorb();
        self.work.fire_timers(now);
        let gates = self.gates(now);
        if self.work.gates != Some(gates) {
            self.work.gates = Some(gates);
            self.work.pending_all = true;
        }
        if std::mem::take(&mut self.work.pending_all) {
            self.work.looked += self.tracked.len() as u64;
            self.work.pending.extend(self.tracked.keys().cloned());
        }
        while self.ops_in_flight < MAX_OPS_IN_FLIGHT {
            let Some(name) = self.work.pending.pop_first() else {
                break;
            };
            self.work.looked += 1;
            let Some(t) = self.tracked.get(&name) else { continue };
            if t.in_flight.is_some() {
                // Its answer makes it a candidate again.
                continue;
            }
            if now < t.due {
                self.work.wake_at(t.due, &name);
                continue;
            }
            if op_due(t, now, gates).is_some() {
                self.issue(&name, now);
            }
        }
        #[cfg(test)]
        self.check_issued(now);
    }
}

/// The bookkeeping against a look at everything, after every step of the tests.
#[cfg(test)]
impl State {
    pub(super) fn check_work(&self, now: Instant) {
        let handing = self
            .tracked
            .values()
            .filter(|t| matches!(t.phase, Phase::Stopping | Phase::Releasing))
            .count();
        assert_eq!(self.work.handing_over, handing, "listeners handing over");
        let shortest = self.tracked.values().map(|t| t.duration).min();
        assert_eq!(self.work.shortest(), shortest, "the shortest lease");
        for (name, t) in &self.tracked {
            let waits = t.phase == Phase::Running && t.in_flight.is_none() && super::release_reason(&t.lease).is_some();
            assert!(
                !waits || self.work.deferred.contains(name),
                "{name} waits for its stop but is not listed"
            );
        }
        let view = (self.live.current(), self.live.base);
        if self.work.expiry.known && self.work.expiry.view == Some(view) {
            for (name, t) in self.tracked.iter().filter(|(_, t)| t.phase == Phase::Running) {
                if self.work.due_dirty.contains(name) {
                    continue;
                }
                let at = self.deadline(t);
                assert!(
                    at.is_some_and(|at| self.work.expiry.floor.is_some_and(|f| f <= at)),
                    "{name}'s deadline {at:?} is below the floor {:?} (now {now:?})",
                    self.work.expiry.floor
                );
            }
        }
    }

    /// After a look for writes with a slot left, nothing due is left unsent.
    pub(super) fn check_issued(&self, now: Instant) {
        if self.ops_in_flight >= MAX_OPS_IN_FLIGHT {
            return;
        }
        let gates = self.gates(now);
        for (name, t) in &self.tracked {
            assert!(
                op_due(t, now, gates).is_none(),
                "{name} is due ({:?}) but was not sent",
                t.phase
            );
            if t.in_flight.is_none() && now < t.due {
                let woken = self.work.pending.contains(name)
                    || self
                        .work
                        .timers
                        .iter()
                        .any(|std::cmp::Reverse((at, n))| n == name && *at <= t.due);
                assert!(woken, "{name} falls due at {:?} but nothing wakes it", t.due);
            }
        }
    }
}
