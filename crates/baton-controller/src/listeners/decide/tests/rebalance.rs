//! Evening out as the decision makes it: it waits for a rollout, a pod that is not Ready, and the
//! pods to settle after a scale, and reports a burst once at its start and once at its end.
use super::*;

fn balanced() -> Option<Rebalance> {
    Some(Rebalance {
        max_skew: 1,
        max_moves: 4,
        min_residence: Duration::ZERO,
    })
}

/// Six listeners on p, none on q: both registered and answering, seen at `t`, by a controller
/// that started long enough before for the pods to have settled.
fn lopsided(t: Instant) -> Scene {
    let ids = ["a", "b", "c", "d", "e", "f"];
    let started = t.checked_sub(PODS_SETTLE).expect("a clock past the settle time");
    let mut scene =
        Scene::new(&ids, &["p", "q"], started).leases(ids.iter().map(|l| lease(l, Some("p"), 1, true, t)).collect());
    scene.rebalance = balanced();
    all_registered(scene, t)
}

fn rebalance_requests(d: &Decision) -> Vec<&str> {
    d.writes
        .iter()
        .filter(|w| {
            matches!(
                w.change,
                Move::RequestRelease {
                    reason: ReleaseReason::Rebalance,
                    ..
                }
            )
        })
        .map(|w| w.change.listener())
        .collect()
}

#[test]
fn a_sticky_set_does_not_even_out() {
    let t = Instant::now() + secs(60);
    let mut scene = lopsided(t);
    scene.rebalance = None;
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty());
    assert_eq!(d.balance.skew, 6);
}

#[test]
fn a_rollout_of_the_pods_or_a_pod_that_is_not_ready_holds_evening_out() {
    let t = Instant::now() + secs(60);
    let mut scene = lopsided(t);
    scene.pods[0].revision = Some(("Rollout web".into(), "v1".into()));
    scene.pods[1].revision = Some(("Rollout web".into(), "v2".into()));
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty(), "{:?}", d.writes);
    let why = d.balance.waiting.clone().unwrap_or_default();
    assert!(why.contains("Rollout web"), "{why}");
    assert_eq!(
        d.requeue,
        wake(ROLLOUT_RECHECK),
        "its status turning Healthy wakes nothing"
    );

    scene.pods[1].revision = Some(("Rollout web".into(), "v1".into()));
    // One revision, but the Rollout says it is scaling (its next pods do not exist yet).
    scene.under_way.insert("Rollout web".into());
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty());
    assert!(
        d.balance.waiting.clone().unwrap_or_default().contains("scaling"),
        "{:?}",
        d.balance
    );
    assert_eq!(d.requeue, wake(ROLLOUT_RECHECK));
    scene.under_way.clear();
    scene.pods.push(PodFacts {
        eligible: false,
        ..pod("r")
    });
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty());
    assert!(
        d.balance.waiting.clone().unwrap_or_default().contains("pod r"),
        "{:?}",
        d.balance
    );

    // A stopped pod is not waited for; with the rollout done, half of p's listeners go.
    scene.stopped.insert(uid("r"));
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(rebalance_requests(&d), ["d", "e", "f"]);
    assert_eq!((d.balance.requested, d.balance.in_progress), (3, 3));
}

#[test]
fn a_burst_is_reported_at_its_start_and_its_end_and_counted_for_a_minute() {
    let t = Instant::now() + secs(60);
    let mut memory = Memory::default();
    let mut scene = lopsided(t);
    let d = scene.decide(t, &mut memory);
    assert_eq!(d.burst, Some(Burst::Started { moves: 3, skew: 6 }));
    assert_eq!(d.moves_last_minute, 3);
    // The three are released and land on q; nothing more to do.
    for l in &mut scene.leases {
        if ["d", "e", "f"].contains(&l.view.listener.as_str()) {
            l.view.holder = Some("q".into());
            l.view.holder_uid = Some(uid("q"));
            l.labelled_uid = Some(uid("q"));
        }
    }
    let later = t + secs(2);
    let d = scene.decide(later, &mut memory);
    assert!(rebalance_requests(&d).is_empty());
    assert_eq!(
        d.burst,
        Some(Burst::Ended {
            moves: 3,
            took: secs(2),
            skew: 0
        })
    );
    assert_eq!(d.moves_last_minute, 3);
    assert_eq!(d.requeue, wake(secs(58)), "looks again when the count drops");
    let d = scene.decide(t + secs(61), &mut memory);
    assert_eq!((d.burst, d.moves_last_minute), (None, 0));
}

#[test]
fn evening_out_waits_for_the_pods_to_settle_and_asks_to_be_woken_then() {
    let t = Instant::now() + secs(60);
    let mut scene = lopsided(t);
    // A controller that has just started cannot know what changed before: it waits too.
    scene.started = t;
    let mut memory = Memory::default();
    let d = scene.decide(t, &mut memory);
    assert!(rebalance_requests(&d).is_empty(), "{:?}", d.writes);
    let why = d.balance.waiting.clone().unwrap_or_default();
    assert!(why.contains("changed less than 5 s ago"), "{why}");
    assert_eq!(d.requeue, wake(PODS_SETTLE), "nothing else wakes the set then");
    let d = scene.decide(t + secs(2), &mut memory);
    assert!(rebalance_requests(&d).is_empty());
    assert_eq!(d.requeue, wake(PODS_SETTLE - secs(2)));
    let scene = all_registered(scene, t + PODS_SETTLE);
    let d = scene.decide(t + PODS_SETTLE, &mut memory);
    assert_eq!(rebalance_requests(&d), ["d", "e", "f"]);
    assert_eq!(d.balance.waiting, None);

    // Balanced sets do not wait (nor wake) for anything.
    let mut even = lopsided(t);
    even.started = t;
    for l in even
        .leases
        .iter_mut()
        .filter(|l| ["d", "e", "f"].contains(&l.view.listener.as_str()))
    {
        l.view.holder = Some("q".into());
        l.view.holder_uid = Some(uid("q"));
    }
    let d = even.decide(t, &mut Memory::default());
    assert_eq!((d.balance.waiting.clone(), d.requeue), (None, None), "{:?}", d.balance);
}

/// `(4 + joined)` pods `w0`… with 12 listeners, 3 on each of `w0`…`w3`; `joined` more, the last
/// of them not Ready when `starting`; registered and seen at `now`.
fn scaling(joined: usize, starting: bool, started: Instant, now: Instant) -> Scene {
    let ids: Vec<String> = (0..12).map(|i| format!("l{i:02}")).collect();
    let names: Vec<String> = (0..4 + joined).map(|i| format!("w{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let leases = ids
        .iter()
        .enumerate()
        .map(|(i, l)| lease(l, Some(&format!("w{}", i / 3)), 1, true, started))
        .collect();
    let mut scene = Scene::new(&id_refs, &name_refs, started).leases(leases);
    scene.rebalance = Some(Rebalance {
        max_skew: 1,
        max_moves: 12,
        min_residence: Duration::ZERO,
    });
    if starting {
        if let Some(last) = scene.pods.last_mut() {
            last.eligible = false;
            last.ready = false;
        }
    }
    all_registered(scene, now)
}

#[test]
fn a_scale_out_one_pod_at_a_time_is_evened_out_once_over_the_final_pods() {
    let t0 = Instant::now();
    let mut memory = Memory::default();
    // 4 pods, settled and balanced.
    let t = t0 + secs(60);
    let d = scaling(0, false, t0, t).decide(t, &mut memory);
    assert_eq!((d.balance.skew, d.requeue), (0, None));
    // From 4 to 8, as a StatefulSet does it: each pod is created once the one before is Ready,
    // 1 s apart. Whenever no pod is starting, the newest joined less than the settle time ago;
    // without that wait, the first new pod would have been given 2 listeners at once.
    let mut at = t;
    for joined in 1..=4 {
        for starting in [true, false] {
            at += secs(1);
            let d = scaling(joined, starting, t0, at).decide(at, &mut memory);
            assert!(
                rebalance_requests(&d).is_empty(),
                "{joined} joined (starting: {starting}): {:?}",
                d.writes
            );
            // A starting pod takes no share yet: the others are balanced among themselves.
            let why = d.balance.waiting.clone().unwrap_or_default();
            assert!(starting || why.contains("changed less than"), "{joined} joined: {why}");
        }
    }
    // 8 pods for the settle time: 4 listeners move, one to each new pod, the fewest possible.
    let settled = at + PODS_SETTLE;
    let d = scaling(4, false, t0, settled).decide(settled, &mut memory);
    assert_eq!(rebalance_requests(&d).len(), 4, "{:?}", d.writes);
    assert_eq!(d.balance.requested, 4);
}

#[test]
fn listeners_between_pods_hold_evening_out_until_they_have_landed() {
    let t = Instant::now() + secs(60);
    // A scale-in from three pods to p and q: x left, and two of its listeners are still on its
    // Leases, which the garbage collector has not deleted yet. Counted without them, p (3) and
    // q (1) are uneven; with them on q they are not.
    let ids = ["a", "b", "c", "d", "e", "f"];
    let holders = ["p", "p", "p", "q", "x", "x"];
    let started = t.checked_sub(PODS_SETTLE).expect("a clock past the settle time");
    let leases = ids
        .iter()
        .zip(holders)
        .map(|(l, h)| lease(l, Some(h), 1, true, t))
        .collect();
    let mut scene = Scene::new(&ids, &["p", "q"], started).leases(leases);
    scene.rebalance = balanced();
    let mut scene = all_registered(scene, t);
    let mut memory = Memory::default();
    let d = scene.decide(t, &mut memory);
    assert!(rebalance_requests(&d).is_empty(), "{:?}", d.writes);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    let why = d.balance.waiting.clone().unwrap_or_default();
    assert!(why.contains("2 listener(s) are between pods"), "{why}");
    assert_eq!(d.balance.wake, None, "their changes wake the set");
    // The kubelet reported x stopped: e and f land on q, and nothing else moves.
    scene.stopped.insert(uid("x"));
    let d = scene.decide(t + MS, &mut memory);
    assert_eq!(assigns(&d), vec![to("e", "q", 2), to("f", "q", 2)]);
    assert!(rebalance_requests(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(
        (d.balance.waiting.clone(), d.balance.skew),
        (None, 0),
        "{:?}",
        d.balance
    );
}
