//! The liveness Lease: registering, renewing for the shortest lease held, the per-listener
//! fallback, a fence, and the deadlines all of that gives the listeners.
use super::*;

/// Answer every liveness request with `ok` (the copy the server returns) until `until`, ticking
/// at the wakes the machine asks for; returns the listener requests sent meanwhile.
fn renew_live_until(st: &mut State, mut now: Instant, until: Instant, mut rv: u64, registration: i32) -> Vec<Action> {
    let mut listener_sends = Vec::new();
    for _ in 0..10_000 {
        let wake = st.tick(now);
        let a = st.take_actions();
        listener_sends.extend(a.iter().filter(|a| matches!(a, Action::Send { .. })).cloned());
        if let Some((kind, ..)) = live_sent(&a) {
            assert_eq!(kind, LiveOp::Renew);
            rv += 1;
            st.on_live_op(kind, Ok(Some(live(rv, Some(POD), registration))), now + ms(5));
            now += ms(5);
            continue;
        }
        match wake {
            Some(w) if w <= until => now = w.max(now + ms(1)),
            _ => return listener_sends,
        }
    }
    panic!("the machine never settles");
}

/// Tick from `now` through the wakes the machine asks for until it sends a liveness request;
/// returns when, and the request (kind, duration_seconds, the copy's rv).
fn next_live(st: &mut State, mut now: Instant) -> (Instant, (LiveOp, i32, String)) {
    for _ in 0..100 {
        let wake = st.tick(now);
        let a = st.take_actions();
        if let Some(op) = live_sent(&a) {
            return (now, op);
        }
        now = wake.expect("a wake");
    }
    panic!("no liveness request");
}

#[test]
fn registers_on_its_liveness_lease_and_renews_for_the_shortest_lease_held() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    assert_eq!(st.live.name, format!("baton-agent.{UID}"));
    // A liveness Lease of another protocol (no annotation) is not one to register on.
    let mut old = live(1, None, 0);
    old.metadata.annotations = None;
    st.observe(&live_name(), Some(old), t0);
    st.tick(t0 + ms(1));
    assert!(live_sent(&st.take_actions()).is_none());
    assert!(!st.live.seen);
    // The controller's: registered on that very copy.
    st.observe(&live_name(), Some(live(2, None, 0)), t0 + ms(2));
    st.tick(t0 + ms(3));
    let a = st.take_actions();
    assert_eq!(
        live_sent(&a),
        Some((LiveOp::Register, 15, "2".into())),
        "no listener: 15 s"
    );
    assert_eq!(st.live.phase, LivePhase::Unregistered);
    // Nothing more while it is in flight.
    st.tick(t0 + ms(8));
    assert!(st.take_actions().is_empty());
    st.on_live_op(LiveOp::Register, Ok(Some(live(3, Some(POD), 1))), t0 + ms(10));
    assert_eq!((st.live.phase, st.live.current()), (LivePhase::Registered, 1));
    // Renewed a quarter of 15 s after the registration was sent, on the copy it answered.
    let due = t0 + ms(3) + ms(3750);
    assert_eq!(st.tick(t0 + ms(10)), Some(due));
    st.tick(due);
    assert_eq!(live_sent(&st.take_actions()), Some((LiveOp::Renew, 15, "3".into())));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(4, Some(POD), 1))), due + ms(5));
    // With listeners of 10 s and 4 s: every second, for 4 s.
    for (l, s) in [("l1", 10), ("l2", 4)] {
        st.observe(&format!("sxt-{l}"), Some(mine_of(l, 1, s)), due + ms(10));
        let a = st.take_actions();
        assert_eq!(sent(&a), Some(OpKind::Ack));
        st.on_op(
            &format!("sxt-{l}"),
            OpKind::Ack,
            Ok((Some(mine_of(l, 2, s)), None)),
            due + ms(20),
        );
        assert_eq!(starts(&st.take_actions()), vec![1]);
    }
    let next = due + secs(1);
    assert_eq!(next_live(&mut st, due + ms(20)), (next, (LiveOp::Renew, 4, "4".into())));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(5, Some(POD), 1))), next + ms(5));
    assert_eq!(next_live(&mut st, next + ms(5)).0, next + secs(1));
    assert!(!st.watching_sets, "a liveness Lease was seen: no per-set watch");
}

#[test]
fn a_shorter_lease_arriving_after_registration_pulls_the_next_renewal_in() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    assert_eq!(st.tick(t0 + ms(5)), Some(t0 + ms(3750)));
    st.observe("sxt-l3", Some(mine_of("l3", 1, 3)), t0 + ms(500));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Ack));
    st.on_op(
        "sxt-l3",
        OpKind::Ack,
        Ok((Some(mine_of("l3", 2, 3)), None)),
        t0 + ms(510),
    );
    assert_eq!(starts(&st.take_actions()), vec![1]);
    // A quarter of 3 s after the registration was sent, not a quarter of 15 s.
    let (at, (kind, dur, _)) = next_live(&mut st, t0 + ms(510));
    assert_eq!((at, kind, dur), (t0 + ms(750), LiveOp::Renew, 3));
    let mut shown = crate::ValidUntil::new();
    assert!(st.refresh_valid_until(&mut shown));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(3, Some(POD), 1))), t0 + ms(760));
    // Runs until that renewal's send + 3 s - 600 ms.
    assert_eq!(st.valid_until().get(&key("l3")), Some(&(t0 + ms(750) + ms(2400))));
    assert!(st.refresh_valid_until(&mut shown), "the renewal moved a deadline");
    assert_eq!(shown, st.valid_until());
    assert_eq!(next_live(&mut st, t0 + ms(760)).0, t0 + ms(1500));
}

#[test]
fn acks_wait_for_a_registration_under_way() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    st.observe(&live_name(), Some(live(1, None, 0)), t0);
    st.tick(t0);
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Register));
    st.observe(NAME, Some(mine(1, 3)), t0 + ms(100));
    assert!(st.take_actions().is_empty(), "the ack waits for the registration");
    st.tick(t0 + secs(3));
    assert!(
        st.take_actions().is_empty(),
        "even past the wait: {:?}",
        st.take_actions()
    );
    st.on_live_op(LiveOp::Register, Ok(Some(live(2, Some(POD), 1))), t0 + secs(3));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Ack));
    st.on_op(NAME, OpKind::Ack, Ok((Some(mine(2, 3)), None)), t0 + secs(3) + ms(10));
    assert_eq!(starts(&st.take_actions()), vec![3]);
    assert_eq!(st.tracked.get(NAME).map(|t| t.ack_reg), Some(1));
    // Acked at t0 + 3 s, under a registration renewed last at t0.
    assert_eq!(st.valid_until().get(&key("l1")), Some(&(t0 + secs(3) + D - MARGIN)));
}

#[test]
fn registering_that_keeps_failing_does_not_hold_acks_back() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    st.observe(&live_name(), Some(live(1, None, 0)), t0);
    st.observe(NAME, Some(mine(1, 3)), t0);
    let mut now = t0;
    st.tick(now);
    let mut a = st.take_actions();
    for failure in 1..=3 {
        assert_eq!(live_sent(&a).map(|(k, ..)| k), Some(LiveOp::Register));
        st.on_live_op(LiveOp::Register, Err(OpError::Other("boom".into())), now);
        let b = st.take_actions();
        if failure == 3 {
            assert_eq!(
                sent(&b),
                Some(OpKind::Ack),
                "third failure: no registration is coming soon"
            );
            break;
        }
        assert!(sent(&b).is_none(), "failure {failure}: the ack still waits");
        now = st.tick(now).expect("a retry is scheduled");
        assert!(st.take_actions().is_empty());
        st.tick(now);
        a = st.take_actions();
    }
    st.on_op(NAME, OpKind::Ack, Ok((Some(mine(2, 3)), None)), now + ms(10));
    assert_eq!(starts(&st.take_actions()), vec![3]);
    assert_eq!(st.tracked.get(NAME).map(|t| t.ack_reg), Some(0));
}

#[test]
fn without_a_liveness_lease_acks_go_after_the_wait_and_the_sets_are_watched_once() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    st.observe(NAME, Some(mine(1, 3)), t0);
    assert!(st.take_actions().is_empty());
    assert_eq!(st.tick(t0 + secs(1)), Some(t0 + LIVENESS_WAIT));
    assert!(st.take_actions().is_empty());
    st.tick(t0 + LIVENESS_WAIT);
    let a = st.take_actions();
    assert_eq!(a.iter().filter(|a| **a == Action::WatchSets).count(), 1);
    assert_eq!(sent(&a), Some(OpKind::Ack));
    st.on_op(
        NAME,
        OpKind::Ack,
        Ok((Some(mine(2, 3)), None)),
        t0 + LIVENESS_WAIT + ms(10),
    );
    assert_eq!(starts(&st.take_actions()), vec![3]);
    for s in 3..30 {
        st.tick(t0 + secs(s));
        assert!(
            !st.take_actions().contains(&Action::WatchSets),
            "the per-set watch is opened once"
        );
    }
}

#[test]
fn a_liveness_lease_seen_then_deleted_does_not_open_the_set_watch() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    st.observe(&live_name(), None, t0 + secs(1));
    assert_eq!(st.live.phase, LivePhase::Absent);
    // The registration ended: l1 keeps its deadline and is renewed on its own Lease as soon as
    // acks may go (the wait after start), not at its deadline.
    let deadline = t0 + ms(10) + D - MARGIN;
    assert_eq!(st.valid_until().get(&key("l1")), Some(&deadline));
    let wake = st.tick(t0 + secs(1)).expect("a wake");
    assert!(wake <= t0 + LIVENESS_WAIT, "{:?} after start", wake - t0);
    let mut all = st.take_actions();
    st.tick(t0 + LIVENESS_WAIT);
    all.extend(st.take_actions());
    assert_eq!(sends(&all), vec![(NAME.to_string(), OpKind::Renew)]);
    for s in 3..30 {
        st.tick(t0 + secs(s));
        all.extend(st.take_actions());
    }
    assert!(!all.contains(&Action::WatchSets), "{all:?}");
    assert!(!st.watching_sets);
}

#[test]
fn a_covered_listener_stops_exactly_at_its_deadline_when_renewals_fail() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    // Acked at t0 + 10 ms under a registration sent at t0.
    assert_eq!(st.valid_until().get(&key("l1")), Some(&(t0 + ms(10) + D - MARGIN)));
    assert_eq!(st.tick(t0 + ms(20)), Some(t0 + EVERY));
    st.tick(t0 + EVERY);
    assert_eq!(
        live_sent(&st.take_actions()).map(|(k, s, _)| (k, s)),
        Some((LiveOp::Renew, SECS))
    );
    st.on_live_op(LiveOp::Renew, Ok(Some(live(3, Some(POD), 1))), t0 + EVERY + ms(100));
    let deadline = t0 + EVERY + D - MARGIN;
    assert_eq!(st.valid_until().get(&key("l1")), Some(&deadline));
    // From now on every renewal fails.
    let mut now = t0 + EVERY + ms(100);
    let mut renewals = 0;
    for _ in 0..1000 {
        let wake = st.tick(now);
        let a = st.take_actions();
        if !stops(&a).is_empty() {
            assert_eq!(now, deadline, "stopped at the deadline, not later");
            assert_eq!(stops(&a), vec![(StopReason::RenewFailed, None)]);
            break;
        }
        assert!(sends(&a).is_empty(), "a covered listener's Lease is not written: {a:?}");
        if let Some((kind, ..)) = live_sent(&a) {
            assert_eq!(kind, LiveOp::Renew);
            renewals += 1;
            st.on_live_op(kind, Err(OpError::Other("etcd is slow".into())), now);
            continue;
        }
        let wake = wake.expect("the deadline is ahead");
        assert!(wake <= deadline, "woken {:?} after the deadline", wake - deadline);
        assert_eq!(st.valid_until().get(&key("l1")), Some(&deadline));
        now = wake;
    }
    assert_eq!(now, deadline);
    assert!(renewals >= 3, "{renewals}");
    assert!(st.valid_until().is_empty());
    assert_eq!(st.tracked.get(NAME).map(|t| t.phase), Some(Phase::Lost));
}

#[test]
fn a_fence_ends_the_registration_and_covered_listeners_are_acknowledged_again() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    st.tick(t0 + EVERY);
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Renew));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(3, Some(POD), 1))), t0 + EVERY + ms(10));
    let deadline = t0 + EVERY + D - MARGIN;
    assert_eq!(st.valid_until().get(&key("l1")), Some(&deadline));
    // The controller fenced: the next renewal answers 409, the read shows no holder.
    st.tick(t0 + EVERY * 2);
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Renew));
    st.on_live_op(LiveOp::Renew, Err(OpError::Conflict), t0 + EVERY * 2 + ms(10));
    assert_eq!(live_sent(&st.take_actions()), Some((LiveOp::Read, SECS, "3".into())));
    let t1 = t0 + EVERY * 2 + ms(20);
    st.on_live_op(LiveOp::Read, Ok(Some(fenced(4, 1))), t1);
    assert_eq!((st.live.phase, st.live.current()), (LivePhase::Unregistered, 0));
    assert_eq!(
        st.tracked.get(NAME).map(|t| (t.phase, t.ack_reg)),
        Some((Phase::Running, 0))
    );
    assert_eq!(st.valid_until().get(&key("l1")), Some(&deadline), "keeps its deadline");
    assert!(
        sends(&st.take_actions()).is_empty(),
        "re-acknowledged under the next registration"
    );
    // Registers again on the fenced copy (the shell writes leaseTransitions + 1).
    let wake = st.tick(t1).expect("a wake");
    assert!(wake <= deadline);
    assert_eq!(
        live_sent(&st.take_actions()),
        Some((LiveOp::Register, SECS, "4".into()))
    );
    let t2 = t1 + ms(10);
    st.on_live_op(LiveOp::Register, Ok(Some(live(5, Some(POD), 2))), t2);
    assert_eq!(st.live.current(), 2);
    let a = st.take_actions();
    assert_eq!(
        sent(&a),
        Some(OpKind::Renew),
        "re-acknowledged under the new registration"
    );
    assert!(starts(&a).is_empty() && stops(&a).is_empty());
    // The new registration's renewals do not extend it before that write succeeds.
    st.tick(t1 + EVERY);
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Renew));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(6, Some(POD), 2))), t1 + EVERY + ms(10));
    assert_eq!(st.valid_until().get(&key("l1")), Some(&deadline));
    st.on_op(NAME, OpKind::Renew, Ok((Some(mine(9, 3)), None)), t1 + EVERY + ms(20));
    let a = st.take_actions();
    assert!(starts(&a).is_empty() && stops(&a).is_empty(), "it ran on: {a:?}");
    assert_eq!(st.tracked.get(NAME).map(|t| t.ack_reg), Some(2));
    // Covered again: the last renewal (sent at t1 + EVERY) is its base.
    assert_eq!(st.valid_until().get(&key("l1")), Some(&(t1 + EVERY + D - MARGIN)));
    let written = renew_live_until(&mut st, t1 + EVERY + ms(20), t1 + secs(60), 6, 2);
    assert!(written.is_empty(), "not written again: {written:?}");
}

#[test]
fn a_fenced_listener_not_acknowledged_again_in_time_stops_at_its_old_deadline() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    let deadline = t0 + ms(10) + D - MARGIN;
    // Fenced before any renewal succeeded; registering again works, the listener's write hangs.
    st.observe(&live_name(), Some(fenced(3, 1)), t0 + secs(1));
    assert_eq!(st.live.current(), 0);
    // The watch showed the fence: registered again at once, not at the next renewal's time.
    st.tick(t0 + secs(1));
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Register));
    st.on_live_op(LiveOp::Register, Ok(Some(live(4, Some(POD), 2))), t0 + secs(1));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    let mut now = t0 + secs(1);
    for _ in 0..100 {
        let wake = st.tick(now);
        let a = st.take_actions();
        if !stops(&a).is_empty() {
            assert_eq!(stops(&a), vec![(StopReason::RenewFailed, None)]);
            break;
        }
        if let Some((kind, ..)) = live_sent(&a) {
            st.on_live_op(kind, Ok(Some(live(5, Some(POD), 2))), now);
            continue;
        }
        let wake = wake.expect("the deadline is ahead");
        assert!(wake <= deadline);
        now = wake;
    }
    assert_eq!(now, deadline);
}

#[test]
fn a_conflict_with_the_registration_intact_renews_again() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    st.tick(t0 + EVERY);
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Renew));
    st.on_live_op(LiveOp::Renew, Err(OpError::Conflict), t0 + EVERY + ms(10));
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Read));
    // Someone else touched it (a label, say): still our registration 1.
    st.on_live_op(LiveOp::Read, Ok(Some(live(7, Some(POD), 1))), t0 + EVERY + ms(20));
    assert_eq!(st.live.current(), 1);
    assert!(st.take_actions().is_empty(), "nothing re-acknowledged");
    st.tick(t0 + EVERY + ms(20));
    assert_eq!(live_sent(&st.take_actions()), Some((LiveOp::Renew, SECS, "7".into())));
    st.on_live_op(LiveOp::Renew, Ok(Some(live(8, Some(POD), 1))), t0 + EVERY + ms(30));
    assert_eq!(st.tracked.get(NAME).map(|t| t.ack_reg), Some(1));
    assert_eq!(
        st.valid_until().get(&key("l1")),
        Some(&(t0 + EVERY + ms(20) + D - MARGIN))
    );
}

#[test]
fn liveness_reports_the_end_of_a_fenced_registration() {
    let t0 = Instant::now();
    let new = || Liveness::new(live_name(), POD.into(), t0, Retry::new(ms(250), secs(5), UID));
    let register = |lv: &mut Liveness| {
        assert_eq!(lv.observe(Some(live(1, None, 0)), t0), LiveChange::Nothing);
        assert_eq!(lv.issue(t0, EVERY).map(|(k, _)| k), Some(LiveOp::Register));
        let change = lv.on_op(LiveOp::Register, Ok(Some(live(2, Some(POD), 1))), t0, EVERY);
        assert_eq!(change, LiveChange::Registered);
    };
    // A 409, then the read shows the fence.
    let mut lv = new();
    register(&mut lv);
    assert_eq!(lv.issue(t0 + EVERY, EVERY).map(|(k, _)| k), Some(LiveOp::Renew));
    let c = lv.on_op(LiveOp::Renew, Err(OpError::Conflict), t0 + EVERY, EVERY);
    assert_eq!(c, LiveChange::Nothing);
    assert!(lv.reading().is_some());
    let c = lv.on_op(LiveOp::Read, Ok(Some(fenced(3, 1))), t0 + EVERY, EVERY);
    assert_eq!(c, LiveChange::Ended);
    assert_eq!(lv.issue(t0 + EVERY, EVERY).map(|(k, _)| k), Some(LiveOp::Register));
    // The watch shows the fence first.
    let mut lv = new();
    register(&mut lv);
    assert_eq!(lv.observe(Some(fenced(3, 1)), t0 + ms(1)), LiveChange::Ended);
    // Deleted.
    let mut lv = new();
    register(&mut lv);
    assert_eq!(lv.observe(None, t0 + ms(1)), LiveChange::Ended);
    assert_eq!(lv.phase, LivePhase::Absent);
}

#[test]
fn a_listener_acknowledged_before_the_registration_is_renewed_until_acknowledged_under_it() {
    let t0 = Instant::now();
    let mut st = fallback_running(t0);
    let ta = t0 + LIVENESS_WAIT;
    assert_eq!(st.tracked.get(NAME).map(|t| t.ack_reg), Some(0));
    assert_eq!(st.valid_until().get(&key("l1")), Some(&(ta + D - MARGIN)));
    // Renewed on its own Lease every quarter of its duration.
    for k in 1..=3u32 {
        let due = ta + EVERY * k;
        assert_eq!(st.tick(due - EVERY + ms(20)), Some(due));
        st.tick(due);
        assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
        st.on_op(
            NAME,
            OpKind::Renew,
            Ok((Some(mine(2 + u64::from(k), 3)), None)),
            due + ms(10),
        );
        assert_eq!(st.valid_until().get(&key("l1")), Some(&(due + D - MARGIN)));
    }
    // The controller now speaks the liveness protocol: registered, the listener acknowledged
    // under the registration, and its Lease no longer renewed.
    let tl = ta + EVERY * 3 + ms(100);
    st.observe(&live_name(), Some(live(1, None, 0)), tl);
    st.tick(tl);
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Register));
    st.on_live_op(LiveOp::Register, Ok(Some(live(2, Some(POD), 1))), tl + ms(5));
    assert_eq!(sent(&st.take_actions()), Some(OpKind::Renew));
    st.on_op(NAME, OpKind::Renew, Ok((Some(mine(9, 3)), None)), tl + ms(15));
    assert_eq!(st.tracked.get(NAME).map(|t| t.ack_reg), Some(1));
    let written = renew_live_until(&mut st, tl + ms(15), tl + secs(60), 2, 1);
    assert!(written.is_empty(), "its own Lease is not written any more: {written:?}");
    let valid = st.valid_until().get(&key("l1")).copied().expect("still running");
    assert!(valid > tl + secs(55), "kept alive by the liveness renewals");
}

#[test]
fn the_set_watch_is_needless_once_registered_and_every_tracked_lease_is_labelled() {
    let t0 = Instant::now();
    let mut st = machine(t0);
    st.observe(NAME, Some(mine(1, 3)), t0);
    st.tick(t0 + LIVENESS_WAIT);
    assert!(st.take_actions().contains(&Action::WatchSets));
    let mut shown = std::collections::HashSet::new();
    assert!(
        !st.sets_watch_needless(&shown),
        "no liveness Lease: the per-listener protocol"
    );
    // The controller is upgraded: it creates the liveness Lease; the agent registers.
    st.observe(&live_name(), Some(live(5, None, 0)), t0 + secs(3));
    st.tick(t0 + secs(3));
    let a = st.take_actions();
    assert_eq!(live_sent(&a).map(|(k, ..)| k), Some(LiveOp::Register));
    st.on_live_op(LiveOp::Register, Ok(Some(live(6, Some(POD), 1))), t0 + secs(3) + ms(5));
    assert_ne!(st.live.current(), 0);
    assert!(
        !st.sets_watch_needless(&shown),
        "l1 is not labelled with the pod's uid yet"
    );
    shown.insert(NAME.to_string());
    assert!(st.sets_watch_needless(&shown));
}

/// Whether the one liveness request among `actions` marks the registration leaving.
fn live_leaving(actions: &[Action]) -> Option<bool> {
    actions.iter().find_map(|a| match a {
        Action::SendLive { leaving, .. } => Some(*leaving),
        _ => None,
    })
}

#[test]
fn a_shutdown_marks_the_registration_leaving_at_once_and_a_restart_registers_unmarked() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    st.observe("sxt-l1", Some(mine_of("l1", 1, SECS)), t0 + ms(10));
    st.take_actions();
    // Renewed long before its next renewal is due, marked leaving, before any release.
    st.shutdown(t0 + ms(20));
    st.tick(t0 + ms(20));
    let a = st.take_actions();
    assert_eq!(live_sent(&a).map(|(k, ..)| k), Some(LiveOp::Renew), "{a:?}");
    assert_eq!(live_leaving(&a), Some(true));
    // A failed mark is retried, still marked.
    st.on_live_op(LiveOp::Renew, Err(OpError::Other("500".into())), t0 + ms(30));
    let (_, (kind, ..)) = next_live(&mut st, t0 + ms(30));
    assert_eq!(kind, LiveOp::Renew);
    // A new incarnation registers without the mark.
    let mut fresh = machine(t0);
    fresh.observe(&live_name(), Some(live(2, None, 0)), t0);
    fresh.tick(t0 + ms(1));
    let a = fresh.take_actions();
    assert_eq!(live_sent(&a).map(|(k, ..)| k), Some(LiveOp::Register));
    assert_eq!(live_leaving(&a), Some(false));
}

#[test]
fn releases_wait_for_the_leaving_mark_even_behind_a_renewal_sent_unmarked() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    // A renewal without the mark is in flight when the shutdown begins.
    let (at, (kind, ..)) = next_live(&mut st, t0 + ms(30));
    assert_eq!(kind, LiveOp::Renew);
    st.shutdown(at + ms(1));
    let epoch = match st.take_actions().as_slice() {
        [Action::Stop { ack: Some(epoch), .. }] => *epoch,
        a => panic!("one stop to acknowledge: {a:?}"),
    };
    st.on_ack(NAME, epoch, at + ms(2));
    st.tick(at + ms(2));
    assert!(
        st.take_actions().is_empty(),
        "nothing is released, nor sent beside the renewal"
    );
    // It answers: the mark goes at once, not at the next renewal's time; still no release.
    st.on_live_op(LiveOp::Renew, Ok(Some(live(3, Some(POD), 1))), at + ms(3));
    st.tick(at + ms(3));
    let a = st.take_actions();
    assert_eq!(live_sent(&a).map(|(k, ..)| k), Some(LiveOp::Renew), "{a:?}");
    assert_eq!(live_leaving(&a), Some(true));
    assert!(sends(&a).is_empty(), "{a:?}");
    // Marked: the release goes.
    st.on_live_op(LiveOp::Renew, Ok(Some(live(4, Some(POD), 1))), at + ms(4));
    st.tick(at + ms(4));
    assert_eq!(sends(&st.take_actions()), vec![(NAME.to_string(), OpKind::Release)]);
}

#[test]
fn a_mark_that_does_not_land_holds_releases_back_no_longer_than_the_leaving_wait() {
    let t0 = Instant::now();
    let mut st = registered_running(t0);
    st.shutdown(t0 + ms(30));
    let epoch = match st.take_actions().as_slice() {
        [Action::Stop { ack: Some(epoch), .. }] => *epoch,
        a => panic!("one stop to acknowledge: {a:?}"),
    };
    st.on_ack(NAME, epoch, t0 + ms(31));
    let wake = st.tick(t0 + ms(31));
    let a = st.take_actions();
    assert_eq!(live_leaving(&a), Some(true), "{a:?}");
    assert!(sends(&a).is_empty(), "{a:?}");
    // The mark hangs: the machine wakes when the wait is over, and releases then.
    let until = t0 + ms(30) + LEAVING_WAIT;
    assert!(wake.is_some_and(|w| w <= until), "{wake:?}");
    st.tick(until - ms(1));
    assert!(sends(&st.take_actions()).is_empty());
    st.tick(until);
    assert_eq!(sends(&st.take_actions()), vec![(NAME.to_string(), OpKind::Release)]);
}
