//! A new set places its first listeners once the pods that may take them have settled.
use super::*;

/// How many of `d`'s assignments go to each pod.
fn per_pod(d: &Decision) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, pod, _) in assigns(d) {
        *out.entry(pod).or_insert(0) += 1;
    }
    out
}

/// Pod `i` of `scene` turned Ready (or not), its agent seen registered at `at`.
fn ready(mut scene: Scene, i: usize, is: bool, at: Instant) -> Scene {
    scene.pods[i].eligible = is;
    scene.pods[i].ready = is;
    let name = scene.pods[i].name.clone();
    scene.live(&name, registered(&name, at))
}

#[test]
fn a_new_set_waits_for_its_pods_to_settle_and_then_spreads_its_listeners() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut memory = Memory::default();
    // Created with its workload: no pod may take listeners yet.
    let mut scene = Scene::new(&["a", "b", "c", "d"], &["p", "q"], t0);
    for i in 0..2 {
        scene = ready(scene, i, false, t);
    }
    let d = scene.decide(t, &mut memory);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, None, "the pods' changes wake the set");
    // p turns Ready: placing now would give it all four.
    let scene = ready(scene, 0, true, t + secs(1));
    let d = scene.decide(t + secs(1), &mut memory);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, wake(PODS_SETTLE), "nothing else wakes the set then");
    assert_eq!(d.ceiling, None, "no token is handed out while it waits");
    assert_eq!(d.summary.pending, 4);
    // q two seconds later: the wait starts again.
    let scene = ready(scene, 1, true, t + secs(3));
    let d = scene.decide(t + secs(3), &mut memory);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, wake(PODS_SETTLE));
    // Their agents renew meanwhile.
    let at = t + secs(3) + PODS_SETTLE;
    let scene = all_registered(scene, at - MS);
    let d = scene.decide(at - MS, &mut memory);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    // Settled: each pod takes its share.
    let d = scene.decide(at, &mut memory);
    assert_eq!(per_pod(&d), BTreeMap::from([("p".into(), 2), ("q".into(), 2)]));
    assert!(d.ceiling.is_some());
}

#[test]
fn a_set_that_runs_listeners_or_handed_out_tokens_places_at_once() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // q just joined; p runs a: the new listener b is placed at once, on q.
    let mut memory = Memory::default();
    let scene = ready(all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t), 1, false, t).leases(vec![lease(
        "a",
        Some("p"),
        0,
        true,
        t,
    )]);
    scene.decide(t, &mut memory);
    let scene = ready(scene, 1, true, t + secs(1));
    let d = scene.decide(t + secs(1), &mut memory);
    assert_eq!(assigns(&d), vec![to("b", "q", 0)]);
    // A set whose listeners all stopped, with tokens handed out before, does not wait either.
    let mut scene = all_registered(Scene::new(&["a"], &["p"], t0), t);
    scene.ceiling = Some(9);
    let mut memory = Memory::default();
    let d = scene.decide(t, &mut memory);
    assert_eq!(assigns(&d), vec![to("a", "p", 10)]);
    // Nor does a new set whose pods have long been what they are.
    let scene = all_registered(Scene::new(&["a"], &["p"], t0), t);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 0)]);
}

#[test]
fn pods_that_keep_changing_hold_a_new_set_back_no_longer_than_its_longest_wait() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut memory = Memory::default();
    let mut scene = Scene::new(&["a", "b"], &["p", "q"], t0);
    for i in 0..2 {
        scene = ready(scene, i, false, t);
    }
    assert!(scene.decide(t, &mut memory).writes.is_empty());
    // p turns Ready; q turns Ready and back every 4 s (a workload rolling out, one pod after
    // another).
    scene = ready(scene, 0, true, t + secs(1));
    let mut now = t + secs(1);
    let mut up = false;
    while now < t + secs(1) + FIRST_PLACEMENT_MAX {
        scene = ready(all_registered(scene, now), 1, up, now);
        let d = scene.decide(now, &mut memory);
        assert!(assigns(&d).is_empty(), "at {:?}: {:?}", now - t, d.writes);
        up = !up;
        now += secs(4);
    }
    // 32 s after the first pass that waited: its longest wait (30 s) is over.
    let scene = ready(all_registered(scene, now), 1, up, now);
    let d = scene.decide(now, &mut memory);
    assert_eq!(assigns(&d).len(), 2, "{:?}", d.writes);
}
