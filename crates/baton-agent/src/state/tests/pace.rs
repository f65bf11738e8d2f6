//! A drained pod's listeners stop a window at a time, each handed over right after it stops.
use super::*;
use crate::state::pace::MOVES_AT_ONCE;

/// The listeners asked to move stop at most [`MOVES_AT_ONCE`] at a time; the others run on
/// until a move ahead of them is done; every one is released in the end.
#[test]
fn a_drain_stops_listeners_a_window_at_a_time() {
    let t0 = Instant::now();
    let mut st = registered(t0);
    let n = MOVES_AT_ONCE + 40;
    let names: Vec<String> = (0..n).map(|i| format!("m{i:03}")).collect();
    let mut now = t0 + ms(10);
    // All acknowledged and running.
    let mut pending: Vec<(String, OpKind)> = Vec::new();
    for l in &names {
        st.observe(&format!("sxt-{l}"), Some(mine_of(l, 1, SECS)), now);
        pending.extend(sends(&st.take_actions()));
    }
    while let Some((name, kind)) = pending.pop() {
        let l = name.trim_start_matches("sxt-");
        st.on_op(&name, kind, Ok((Some(mine_of(l, 2, SECS)), None)), now);
        pending.extend(sends(&st.take_actions()));
    }
    assert_eq!(st.valid_until().len(), n, "all running");
    // Every one is asked to move at once.
    now += ms(10);
    let mut stopping: Vec<(String, u64)> = Vec::new();
    for l in &names {
        st.observe(&format!("sxt-{l}"), Some(with_release(mine_of(l, 3, SECS))), now);
        stopping.extend(stopped(&st.take_actions()));
    }
    assert_eq!(stopping.len(), MOVES_AT_ONCE, "a window stops, the rest run on");
    assert_eq!(st.valid_until().len(), n - MOVES_AT_ONCE);
    let mut released = 0;
    let mut in_flight: Vec<String> = Vec::new();
    while released < n {
        now += ms(1);
        // The applications acknowledge the stops; their releases go out as slots free.
        for (name, epoch) in stopping.drain(..) {
            st.on_ack(&name, epoch, now);
            in_flight.extend(releases(&st.take_actions()));
        }
        let name = in_flight
            .pop()
            .unwrap_or_else(|| panic!("a release in flight ({released} of {n} done)"));
        let l = name.trim_start_matches("sxt-").to_string();
        let mut answer = mine_of(&l, 4, SECS);
        if let Some(spec) = answer.spec.as_mut() {
            spec.holder_identity = None;
        }
        st.on_op(&name, OpKind::Release, Ok((Some(answer), None)), now);
        released += 1;
        st.tick(now);
        let a = st.take_actions();
        in_flight.extend(releases(&a));
        stopping.extend(stopped(&a));
        let moving = n - released - st.valid_until().len();
        assert!(moving <= MOVES_AT_ONCE, "{moving} stopped or stopping at once");
    }
    assert!(st.tracked.is_empty(), "every one released");
}

/// The listeners a batch of actions stops, each with the epoch its acknowledgement names.
fn stopped(actions: &[Action]) -> Vec<(String, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { name, ack: Some(e), .. } => Some((name.clone(), *e)),
            _ => None,
        })
        .collect()
}

/// The Leases a batch of actions releases.
fn releases(actions: &[Action]) -> Vec<String> {
    sends(actions)
        .into_iter()
        .filter(|(_, k)| *k == OpKind::Release)
        .map(|(n, _)| n)
        .collect()
}
