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

/// A delta numbered `(spec, shape, from, to)` naming `changed`.
fn delta(numbers: (u64, u64, u64, u64), changed: &[usize]) -> Delta<'_> {
    let (spec, shape, from, to) = numbers;
    Delta {
        spec,
        shape,
        from,
        to,
        changed,
    }
}

#[test]
fn a_pass_that_follows_the_last_reads_only_the_changed_leases() {
    let t = Instant::now();
    let mut scene = at_rest(30, &["p", "q", "r"], t);
    let mut memory = Memory::default();
    let pass = |scene: &Scene, memory: &mut Memory, d: Delta, now: Instant| {
        let input = Input {
            delta: Some(d),
            ..scene.input(now)
        };
        // (Every kept split is checked against the whole one as it is made.)
        let split = split(&input, memory).map(|s| (s.listeners.len(), s.leases.len(), s.tallies.count));
        (split, memory.kept_mut().builds())
    };
    assert_eq!(
        pass(&scene, &mut memory, delta((1, 1, 0, 1), &[]), t + secs(1)),
        (Some((0, 0, 30)), 1)
    );
    // Pod p's Lease of l000 asked to move: it alone is decided, from what was kept.
    scene.leases[0].view.release_requested = true;
    assert_eq!(
        pass(&scene, &mut memory, delta((1, 1, 1, 2), &[0]), t + secs(1)),
        (Some((1, 1, 29)), 1)
    );
    // Pod q drains: its ten are decided too, nothing read again.
    scene.pods[1].eligible = false;
    assert_eq!(
        pass(&scene, &mut memory, delta((1, 1, 2, 3), &[]), t + secs(1)),
        (Some((11, 11, 19)), 1)
    );
    // An update the memory did not see (from 4, not 3), another shape, other listeners: read whole.
    assert_eq!(pass(&scene, &mut memory, delta((1, 1, 4, 5), &[]), t + secs(1)).1, 2);
    assert_eq!(pass(&scene, &mut memory, delta((1, 2, 5, 6), &[]), t + secs(1)).1, 3);
    assert_eq!(pass(&scene, &mut memory, delta((2, 2, 6, 7), &[]), t + secs(1)).1, 4);
    assert_eq!(pass(&scene, &mut memory, delta((2, 2, 7, 8), &[]), t + secs(1)).1, 4);
    // A set being deleted is decided in full; the pass after it reads the set whole.
    scene.deleting = true;
    assert_eq!(
        pass(&scene, &mut memory, delta((2, 2, 8, 9), &[]), t + secs(1)),
        (None, 0)
    );
    scene.deleting = false;
    assert_eq!(pass(&scene, &mut memory, delta((2, 2, 9, 10), &[]), t + secs(1)).1, 1);
}

#[test]
fn a_kept_split_sees_holders_stop_renewing_and_acknowledgements_age() {
    let t = Instant::now();
    let scene = at_rest(12, &["p", "q"], t);
    let mut memory = Memory::default();
    // Passes with nothing changed as time goes by: the holders' liveness records (seen at t)
    // age past the lease, and the split follows (each is checked against the whole one).
    for (at, s) in [1, 2, 4, 5, 6, 8].into_iter().enumerate() {
        let at = at as u64;
        let input = Input {
            delta: Some(delta((1, 1, at, at + 1), &[])),
            ..scene.input(t + secs(s))
        };
        let counted = split(&input, &mut memory).map(|s| s.tallies.count);
        assert_eq!(counted, if t + secs(s) < t + D { Some(12) } else { None }, "at {s} s");
    }
    assert_eq!(memory.kept_mut().builds(), 1);
}
