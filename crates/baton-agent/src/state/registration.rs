//! What the pod's liveness Lease means for the listeners the agent runs: acknowledging them
//! again under a new registration, the deadlines a registration that ended leaves them, how
//! often to renew, and when the per-set watch of the per-listener protocol can go.
use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::{Action, LiveChange, LiveOp, LivePhase, LiveResult, State};
use baton_api::listenerset::DEFAULT_LEASE_DURATION_SECONDS;

impl State {
    /// What a liveness change means for the listeners.
    pub(crate) fn live_changed(&mut self, change: LiveChange, now: Instant) {
        match change {
            LiveChange::Nothing => {}
            // Listeners acknowledged under the registration that ended keep its last renewal
            // as their own base: nothing will extend it.
            LiveChange::Ended => {
                let (ended, base) = (self.live.registration, self.live.base);
                for t in self.tracked.values_mut().filter(|t| t.ack_reg == ended) {
                    t.ack_base = t.ack_base.max(base);
                    t.ack_reg = 0;
                    t.due = now;
                }
                self.work.touch_all();
            }
            // Acknowledge every running listener under the new registration.
            LiveChange::Registered => {
                for t in self.tracked.values_mut() {
                    t.due = now;
                }
                self.work.touch_all();
            }
        }
        let names: Vec<String> = self.tracked.keys().cloned().collect();
        for name in names {
            self.evaluate(&name, now);
        }
    }

    /// Whether the watch of every Lease of the served sets (opened for a controller of the
    /// per-listener protocol) can go: the agent is registered on its liveness Lease, so the
    /// controller labels every Lease it assigns with this pod's uid, and the pod's own watch
    /// (`shown`) already shows every Lease the agent tracks. The per-set watch costs an event
    /// for every change of every listener of the sets, whichever pod holds it.
    pub(crate) fn sets_watch_needless(&self, shown: &HashSet<String>) -> bool {
        self.watching_sets && self.live.current() != 0 && self.tracked.keys().all(|n| shown.contains(n))
    }

    /// A liveness request ended.
    pub(crate) fn on_live_op(&mut self, kind: LiveOp, result: LiveResult, now: Instant) {
        let every = self.cfg.renew_every(self.shortest());
        let change = self.live.on_op(kind, result, now, every);
        if let Some(lease) = self.live.reading() {
            self.out.push(Action::SendLive {
                kind: LiveOp::Read,
                lease: Box::new(lease),
                duration_seconds: self.shortest_seconds(),
                leaving: self.live.leaving,
            });
        }
        self.live_changed(change, now);
    }

    /// The shortest lease duration of the listeners held (the default with none): the liveness
    /// Lease is renewed often enough for it.
    pub(crate) fn shortest(&self) -> Duration {
        self.work
            .shortest()
            .unwrap_or(baton_api::listenerset::lease::DEFAULT_DURATION)
    }

    pub(crate) fn shortest_seconds(&self) -> i32 {
        i32::try_from(self.shortest().as_secs())
            .unwrap_or(DEFAULT_LEASE_DURATION_SECONDS)
            .max(1)
    }

    pub(crate) fn tick_live(&mut self, now: Instant, at: &mut impl FnMut(Instant)) {
        let every = self.cfg.renew_every(self.shortest());
        if let Some((kind, lease)) = self.live.issue(now, every) {
            self.out.push(Action::SendLive {
                kind,
                lease: Box::new(lease),
                duration_seconds: self.shortest_seconds(),
                leaving: self.live.leaving,
            });
        }
        if self.live.in_flight.is_none() && self.live.phase != LivePhase::Absent {
            at(self.live.next_due(every));
        }
    }
}
