//! Stops for requested releases go out in step with the release writes: a drain of many
//! listeners stops each one shortly before its release, not all of them at once, unless the
//! application takes long to stop.
use super::*;
use crate::state::handover::{Pace, STOP_BATCH, STOP_WINDOW};

/// A registered machine running `n` listeners `h000`… (token 1), all acknowledged.
fn running(t0: Instant, n: usize) -> (State, Vec<String>) {
    let mut st = registered(t0);
    let names: Vec<String> = (0..n).map(|i| format!("h{i:03}")).collect();
    let mut in_flight = Vec::new();
    for l in &names {
        st.observe(&format!("sxt-{l}"), Some(mine_of(l, 1, SECS)), t0 + ms(10));
        in_flight.extend(sends(&st.take_actions()));
    }
    while let Some((name, kind)) = (!in_flight.is_empty()).then(|| in_flight.remove(0)) {
        let l = name.trim_start_matches("sxt-");
        st.on_op(&name, kind, Ok((Some(mine_of(l, 2, SECS)), None)), t0 + ms(20));
        in_flight.extend(sends(&st.take_actions()));
    }
    assert_eq!(st.valid_until().len(), n);
    (st, names)
}

/// The stops among `actions` that wait for the application: (Lease, epoch).
fn stops_acked(actions: &[Action]) -> Vec<(String, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { name, ack: Some(e), .. } => Some((name.clone(), *e)),
            _ => None,
        })
        .collect()
}

/// Listener `l`'s Lease with a release request (a drain naming no one yet).
fn asked(l: &str) -> Lease {
    with_release(mine_of(l, 3, SECS))
}

/// Ask for the release of every one of `names` at `now`; the actions that follow.
fn ask_all(st: &mut State, names: &[String], now: Instant) -> Vec<Action> {
    let mut actions = Vec::new();
    for l in names {
        st.observe(&format!("sxt-{l}"), Some(asked(l)), now);
        actions.extend(st.take_actions());
    }
    actions
}

/// The answer to `l`'s release: handed over to pod-b.
fn handed_over(l: &str) -> Lease {
    listener_lease(l, Some("pod-b"), "uid-b", 4, 1, SECS)
}

#[test]
fn a_drain_stops_each_listener_shortly_before_its_release_is_written() {
    let t0 = Instant::now();
    let n = 200;
    let (mut st, names) = running(t0, n);
    let mut now = t0 + ms(100);
    let mut stopped_at: BTreeMap<String, usize> = BTreeMap::new();
    let mut apps_to_ack = stops_acked(&ask_all(&mut st, &names, now));
    assert_eq!(
        apps_to_ack.len(),
        STOP_WINDOW,
        "a burst of release requests stops only the window"
    );
    // The application acknowledges each stop; each answered release is one step of time.
    let mut step = 0;
    let mut in_flight: Vec<(String, OpKind)> = Vec::new();
    let mut longest_wait = 0;
    let mut released = Vec::new();
    loop {
        for (name, epoch) in std::mem::take(&mut apps_to_ack) {
            assert!(stopped_at.insert(name.clone(), step).is_none(), "{name} stopped twice");
            st.on_ack(&name, epoch, now);
            in_flight.extend(sends(&st.take_actions()));
        }
        assert!(in_flight.len() <= MAX_OPS_IN_FLIGHT);
        let stopped_not_released = stopped_at.len() - released.len();
        assert!(
            stopped_not_released <= STOP_WINDOW,
            "{stopped_not_released} stopped at once"
        );
        let Some((name, kind)) = (!in_flight.is_empty()).then(|| in_flight.remove(0)) else {
            break;
        };
        assert_eq!(kind, OpKind::Release);
        longest_wait = longest_wait.max(step - stopped_at[&name]);
        now += ms(1);
        step += 1;
        let l = name.trim_start_matches("sxt-");
        st.on_op(&name, kind, Ok((Some(handed_over(l)), None)), now);
        // The shell ticks after every batch of events (what waited for a slot goes out then).
        st.tick(now);
        let a = st.take_actions();
        in_flight.extend(sends(&a));
        apps_to_ack.extend(stops_acked(&a));
        released.push(name);
    }
    assert_eq!(released.len(), n, "every listener released once");
    assert!(st.tracked.is_empty());
    assert!(
        longest_wait <= STOP_WINDOW,
        "a listener stayed stopped for {longest_wait} releases of others"
    );
    // Refilled in batches (one document for the application each), not one stop at a time.
    let mut batches: BTreeMap<usize, usize> = BTreeMap::new();
    for s in stopped_at.values() {
        *batches.entry(*s).or_default() += 1;
    }
    assert!(batches.values().all(|b| *b >= STOP_BATCH), "{batches:?}");
}

#[test]
fn a_waiting_listener_whose_request_is_withdrawn_runs_on() {
    let t0 = Instant::now();
    let (mut st, names) = running(t0, STOP_WINDOW + 1);
    let now = t0 + ms(100);
    let asked_stops = stops_acked(&ask_all(&mut st, &names, now));
    assert_eq!(asked_stops.len(), STOP_WINDOW);
    let last = names.last().cloned().unwrap_or_default();
    let last_lease = format!("sxt-{last}");
    assert!(asked_stops.iter().all(|(n, _)| *n != last_lease), "the last one waits");
    // The controller takes its request back (the drain was cancelled).
    st.observe(&last_lease, Some(mine_of(&last, 5, SECS)), now + ms(1));
    for (name, epoch) in asked_stops {
        st.on_ack(&name, epoch, now + ms(2));
        assert_eq!(sends(&st.take_actions()), vec![(name.clone(), OpKind::Release)]);
        let l = name.trim_start_matches("sxt-");
        st.on_op(&name, OpKind::Release, Ok((Some(handed_over(l)), None)), now + ms(3));
        st.tick(now + ms(3));
        let a = st.take_actions();
        assert!(stops(&a).is_empty(), "nothing more is stopped: {a:?}");
    }
    assert_eq!(st.tracked.len(), 1);
    assert_eq!(st.tracked[&last_lease].phase, Phase::Running);
    assert!(st.valid_until().contains_key(&key(&last)));
}

#[test]
fn a_shutdown_stops_the_waiting_listeners_at_once() {
    let t0 = Instant::now();
    let (mut st, names) = running(t0, STOP_WINDOW + 10);
    let now = t0 + ms(100);
    let first = stops(&ask_all(&mut st, &names, now)).len();
    assert_eq!(first, STOP_WINDOW);
    st.shutdown(now + ms(1));
    let a = st.take_actions();
    let rest: Vec<_> = stops(&a);
    assert_eq!(rest.len(), 10, "{a:?}");
    assert!(rest
        .iter()
        .all(|(why, ack)| *why == StopReason::Shutdown && ack.is_some()));
    assert!(st.valid_until().is_empty(), "nothing runs");
}

#[test]
fn an_application_slow_to_stop_gets_its_stops_together() {
    let t0 = Instant::now();
    let n = 300;
    let (mut st, names) = running(t0, n);
    let mut now = t0 + ms(100);
    let first = stops_acked(&ask_all(&mut st, &names, now));
    assert_eq!(first.len(), STOP_WINDOW);
    // The application takes its time to stop (or only reads the file): two seconds, while a
    // release is answered in 10 ms.
    now += secs(2);
    let mut in_flight = Vec::new();
    for (name, epoch) in first {
        st.on_ack(&name, epoch, now);
        in_flight.extend(sends(&st.take_actions()));
    }
    now += ms(10);
    let mut rest = Vec::new();
    for (name, kind) in in_flight {
        let l = name.trim_start_matches("sxt-").to_string();
        st.on_op(&name, kind, Ok((Some(handed_over(&l)), None)), now);
        st.tick(now);
        rest.extend(stops_acked(&st.take_actions()));
    }
    // The slots complete 3,200 a second when busy: every stop overlaps the first ones'.
    assert_eq!(rest.len(), n - STOP_WINDOW, "the slow stops overlap");
}

#[test]
fn the_window_covers_the_handovers_done_while_a_stop_is_acknowledged() {
    let t0 = Instant::now();
    let mut pace = Pace::default();
    assert_eq!(pace.window(), STOP_WINDOW, "nothing measured yet: the least window");
    // The application takes 300 ms per stop; the handovers complete one a millisecond, each
    // 32 ms after it was sent (32 in flight).
    pace.stopped(ms(300));
    let mut now = t0;
    for _ in 0..1_500 {
        now += ms(1);
        pace.released(now, ms(32));
    }
    // 1,000 handovers a second × 0.3 s: 300 more than the writes in flight.
    assert_eq!(pace.window(), MAX_OPS_IN_FLIGHT + 300);
}

/// A pace measured over `bursts` batches of 32 handovers completed together every `every`, each
/// `took` after it was sent, with the application taking `stop` to stop a listener.
fn bursts_of_handovers(stop: Duration, bursts: usize, every: Duration, took: Duration) -> Pace {
    let mut pace = Pace::default();
    pace.stopped(stop);
    let mut now = Instant::now();
    for _ in 0..bursts {
        now += every;
        for _ in 0..MAX_OPS_IN_FLIGHT {
            pace.released(now, took);
        }
    }
    pace
}

#[test]
fn the_pace_is_measured_across_bursts_of_answers() {
    // A busy API server answers the 32 writes in flight together, every 100 ms: 320 a second.
    let pace = bursts_of_handovers(ms(100), 20, ms(100), ms(100));
    // 320 a second × 0.1 s: 32 more than the writes in flight.
    assert_eq!(pace.window(), MAX_OPS_IN_FLIGHT + 32);
}

#[test]
fn the_pace_is_what_the_slots_complete_while_an_application_is_slow_to_stop() {
    // The application takes 500 ms to stop: the slots wait for it, and a batch of 32 handovers
    // completes every 600 ms, each 50 ms after it was sent.
    let pace = bursts_of_handovers(ms(500), 5, ms(600), ms(50));
    // Kept busy, the slots complete 640 a second: 320 during a stop, not the 27 of the 53 a
    // second seen.
    assert_eq!(pace.window(), MAX_OPS_IN_FLIGHT + 320);
}

/// Trackings looked at to drain `n` running listeners, the shell's way: each answered release
/// is followed by a tick and the publication of the deadlines.
fn looks_to_drain(n: usize) -> u64 {
    let t0 = Instant::now();
    let (mut st, names) = running(t0, n);
    let mut now = t0 + ms(100);
    let mut shown = crate::ValidUntil::new();
    st.refresh_valid_until(&mut shown);
    st.work.looked = 0;
    let mut apps_to_ack = stops_acked(&ask_all(&mut st, &names, now));
    let mut in_flight: Vec<(String, OpKind)> = Vec::new();
    loop {
        for (name, epoch) in std::mem::take(&mut apps_to_ack) {
            st.on_ack(&name, epoch, now);
            in_flight.extend(sends(&st.take_actions()));
        }
        let Some((name, kind)) = (!in_flight.is_empty()).then(|| in_flight.remove(0)) else {
            break;
        };
        now += ms(1);
        let l = name.trim_start_matches("sxt-");
        st.on_op(&name, kind, Ok((Some(handed_over(l)), None)), now);
        st.tick(now);
        st.refresh_valid_until(&mut shown);
        let a = st.take_actions();
        in_flight.extend(sends(&a));
        apps_to_ack.extend(stops_acked(&a));
    }
    assert!(st.tracked.is_empty(), "every listener released");
    assert!(shown.is_empty(), "no deadline published for what was released");
    st.work.looked
}

#[test]
fn a_drain_looks_at_each_listener_a_bounded_number_of_times() {
    let (small, large) = (looks_to_drain(100), looks_to_drain(400));
    let per = |looks: u64, n: u64| looks as f64 / n as f64;
    // Looking at every tracking on every event made this grow with the square of the
    // listeners: 400 cost ~16 times what 100 did, where they now cost ~4 times.
    assert!(
        per(large, 400) <= 1.25 * per(small, 100),
        "draining 400 looked at {large} trackings, 100 at {small}"
    );
    assert!(per(large, 400) <= 30.0, "{large} looks to drain 400");
}

#[test]
fn an_agent_that_holds_nothing_marks_its_pod_leaving_before_its_shutdown_is_done() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    st.shutdown(t0 + ms(10));
    assert!(!st.shut_down(), "nothing held, but the controller does not know yet");
    st.tick(t0 + ms(10));
    assert_eq!(live_sent(&st.take_actions()).map(|(k, ..)| k), Some(LiveOp::Renew));
    assert!(!st.shut_down(), "the mark is on its way");
    st.on_live_op(LiveOp::Renew, Ok(Some(live(3, Some(POD), 1))), t0 + ms(20));
    assert!(st.shut_down());
    // With no registration to mark, there is nothing to wait for.
    let mut bare = machine(t0);
    bare.shutdown(t0);
    assert!(bare.shut_down());
}
