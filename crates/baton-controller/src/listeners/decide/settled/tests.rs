//! Settled listeners set aside: what a pass decides over, and that it decides what the full pass
//! does (every unit test's [`Scene::decide`] checks that too).
use super::super::tests::*;
use super::super::*;
use super::split;

/// `n` listeners `l0…` spread over pods `pods` in turn, each acknowledged at `t` by a registered
/// agent seen renewing at `t`.
fn at_rest(n: usize, pods: &[&str], t: Instant) -> Scene {
    let ids: Vec<String> = (0..n).map(|i| format!("l{i:03}")).collect();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut scene = Scene::new(&names, pods, t);
    for p in pods {
        scene = scene.live(p, registered(p, t));
    }
    let leases = names
        .iter()
        .enumerate()
        .map(|(i, l)| lease(l, Some(pods[i % pods.len()]), 1, true, t))
        .collect();
    scene.ceiling = Some(17);
    scene.leases(leases)
}

#[test]
fn a_set_at_rest_is_counted_not_decided_one_by_one() {
    let t = Instant::now();
    let scene = at_rest(30, &["p", "q", "r"], t);
    let input = scene.input(t + secs(1));
    let s = split(&input, &mut Memory::default()).map(|s| (s.listeners.len(), s.leases.len(), s.tallies.count));
    assert_eq!(s, Some((0, 0, 30)));
    let d = decide(&input, &mut Memory::default());
    assert!(d.writes.is_empty());
    assert!(d.summary.states.is_empty());
    assert_eq!((d.summary.running, d.summary.listeners), (30, 30));
    let on: Vec<(&str, i32)> = d.summary.settled.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    assert_eq!(on, vec![("p", 10), ("q", 10), ("r", 10)]);
    // And the full pass agrees (Scene::decide compares them).
    let full = scene.decide(t + secs(1), &mut Memory::default());
    assert_eq!(full.summary.states.len(), 30);
}

#[test]
fn a_drain_decides_over_the_drained_pods_listeners_only() {
    let t = Instant::now();
    let mut scene = at_rest(30, &["p", "q", "r"], t);
    scene.pods[0].eligible = false;
    let input = scene.input(t + secs(1));
    let s = split(&input, &mut Memory::default()).map(|s| (s.listeners.len(), s.leases.len(), s.tallies.count));
    assert_eq!(s, Some((10, 10, 20)));
    let d = scene.decide(t + secs(1), &mut Memory::default());
    let asked: Vec<&str> = d
        .writes
        .iter()
        .filter(|w| matches!(&w.change, Move::RequestRelease { holder, .. } if holder == "p"))
        .map(|w| w.change.listener())
        .collect();
    assert_eq!(asked.len(), 10, "{:?}", d.writes);
}

#[test]
fn what_would_move_settled_listeners_is_decided_in_full() {
    let t = Instant::now();
    // maxPerPod below what a pod holds: it sheds, picking among its listeners.
    let mut over = at_rest(12, &["p", "q"], t);
    over.max_per_pod = 4;
    let d = over.decide(t + secs(1), &mut Memory::default());
    assert!(d.writes.iter().any(|w| matches!(
        &w.change,
        Move::RequestRelease {
            reason: ReleaseReason::OverLimit,
            ..
        }
    )));
    // Evening out that would move listeners: a new pod joined, long settled.
    let later = t + secs(60);
    let mut uneven = at_rest(12, &["p", "q"], t);
    uneven.pods.push(pod("r"));
    for p in ["p", "q", "r"] {
        uneven = uneven.live(p, registered(p, later));
    }
    uneven.rebalance = Some(Rebalance {
        max_skew: 1,
        max_moves: 2,
        min_residence: Duration::ZERO,
    });
    let d = uneven.decide(later, &mut Memory::default());
    assert_eq!(d.balance.requested, 2, "{:?}", d.balance);
    // A holder whose agent stopped renewing: its listeners are judged one by one (fenced).
    let after = t + D + secs(1);
    let silent = at_rest(6, &["p", "q"], t)
        .live("p", registered("p", t - secs(60)))
        .live("q", registered("q", after));
    let d = silent.decide(after, &mut Memory::default());
    assert_eq!(d.fences.len(), 1, "{:?}", d.fences);
}

#[test]
fn a_listener_named_twice_or_with_two_leases_is_not_settled() {
    let t = Instant::now();
    let mut scene = at_rest(4, &["p", "q"], t);
    scene.listeners.push(wanted("l000"));
    let extra = lease("l001", Some("q"), 2, true, t);
    scene.leases.push(LeaseFacts {
        name: "set-l001-b".into(),
        ..extra
    });
    let input = scene.input(t + secs(1));
    let s = split(&input, &mut Memory::default()).map(|s| s.tallies.count);
    assert_eq!(s, Some(2));
    scene.decide(t + secs(1), &mut Memory::default());
}

#[test]
fn a_set_mostly_unsettled_is_decided_in_full() {
    let t = Instant::now();
    // One listener of eight settled, seven without a Lease yet (a set starting).
    let mut scene = at_rest(8, &["p", "q"], t);
    scene.leases.truncate(1);
    // (No token ceiling: a fresh controller holds nothing back.)
    scene.ceiling = None;
    let input = scene.input(t + secs(1));
    assert!(split(&input, &mut Memory::default()).is_none());
    let d = scene.decide(t + secs(1), &mut Memory::default());
    assert_eq!(assigns(&d).len(), 7);
    // Two of eight settled: a quarter, set aside.
    let mut scene = at_rest(8, &["p", "q"], t);
    scene.leases.truncate(2);
    let input = scene.input(t + secs(1));
    assert_eq!(split(&input, &mut Memory::default()).map(|s| s.tallies.count), Some(2));
}

#[test]
fn a_full_pass_leaves_the_fingerprint_a_split_pass_keeps() {
    let t = Instant::now();
    let input_scene = at_rest(30, &["p", "q", "r"], t);
    let input = input_scene.input(t + secs(1));
    let mut memory = Memory::default();
    decide_full(&input, &mut memory);
    let fingerprint = split(&input, &mut memory.clone()).map(|s| s.fingerprint);
    assert!(fingerprint.is_some());
    assert_eq!(
        memory.spec_fingerprint(),
        fingerprint,
        "the pass after a full one looks only at what it judges"
    );
}
