//! The published deadlines kept between calls ([`State::refresh_valid_until`]) against the map
//! built anew ([`State::valid_until`]), after every step of random lives of a few listeners.
use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Step {
    /// The controller assigns listener `i` to this pod (again: a newer copy).
    Assign(usize),
    /// A second Lease of listener `i` (a hand-made copy): two trackings of one listener.
    Copy(usize),
    /// The holder is asked to release listener `i`.
    Release(usize),
    /// Listener `i`'s Lease is gone.
    Gone(usize),
    /// The oldest listener write in flight is answered, well or not.
    Answer(bool),
    /// The application acknowledges every stop asked of it so far.
    AckStops,
    /// The liveness write in flight is answered.
    LiveAnswer,
    /// Time passes.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..6usize).prop_map(Step::Assign),
        1 => (0..6usize).prop_map(Step::Copy),
        2 => (0..6usize).prop_map(Step::Release),
        2 => (0..6usize).prop_map(Step::Gone),
        6 => any::<bool>().prop_map(Step::Answer),
        2 => Just(Step::AckStops),
        2 => Just(Step::LiveAnswer),
        3 => (1..4_000u64).prop_map(Step::Wait),
    ]
}

/// What the shell would still owe the machine: writes in flight, stops to acknowledge.
#[derive(Default)]
struct Owed {
    sends: Vec<(String, OpKind, Lease)>,
    live: Option<LiveOp>,
    stops: Vec<(String, u64)>,
}

impl Owed {
    fn take(&mut self, st: &mut State) {
        for a in st.take_actions() {
            match a {
                Action::Send { name, kind, lease, .. } => self.sends.push((name, kind, *lease)),
                Action::SendLive { kind, .. } => self.live = Some(kind),
                Action::Stop {
                    name, ack: Some(epoch), ..
                } => self.stops.push((name, epoch)),
                _ => {}
            }
        }
    }
}

fn apply(st: &mut State, owed: &mut Owed, s: &Step, rv: &mut u64, now: &mut Instant) {
    *rv += 1;
    let listener = |i: &usize| format!("l{i}");
    match s {
        Step::Assign(i) => st.observe(
            &format!("sxt-{}", listener(i)),
            Some(mine_of(&listener(i), *rv, SECS)),
            *now,
        ),
        Step::Copy(i) => st.observe(
            &format!("copy-{}", listener(i)),
            Some(mine_of(&listener(i), *rv, SECS)),
            *now,
        ),
        Step::Release(i) => st.observe(
            &format!("sxt-{}", listener(i)),
            Some(with_release(mine_of(&listener(i), *rv, SECS))),
            *now,
        ),
        Step::Gone(i) => st.observe(&format!("sxt-{}", listener(i)), None, *now),
        Step::Answer(ok) => {
            if let Some((name, kind, mut lease)) = (!owed.sends.is_empty()).then(|| owed.sends.remove(0)) {
                lease.metadata.resource_version = Some(rv.to_string());
                let result = if *ok {
                    Ok((Some(lease), None))
                } else {
                    Err(OpError::Other("refused".into()))
                };
                st.on_op(&name, kind, result, *now);
            }
        }
        Step::AckStops => {
            for (name, epoch) in std::mem::take(&mut owed.stops) {
                st.on_ack(&name, epoch, *now);
            }
        }
        Step::LiveAnswer => {
            if let Some(kind) = owed.live.take() {
                st.on_live_op(kind, Ok(Some(live(*rv, Some(POD), 1))), *now);
            }
        }
        Step::Wait(ms_) => {
            *now += ms(*ms_);
            st.tick(*now);
        }
    }
    owed.take(st);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_kept_map_is_the_map_built_anew(steps in proptest::collection::vec(step(), 1..80)) {
        let mut now = Instant::now();
        let mut st = registered(now);
        let (mut owed, mut rv, mut shown) = (Owed::default(), 100u64, crate::ValidUntil::new());
        for s in &steps {
            apply(&mut st, &mut owed, s, &mut rv, &mut now);
            let before = shown.clone();
            let changed = st.refresh_valid_until(&mut shown);
            prop_assert_eq!(&shown, &st.valid_until(), "after {:?}", s);
            prop_assert_eq!(changed, shown != before, "what it says changed, after {:?}", s);
        }
    }
}
