//! When a held listener stays with its holder, when it is fenced, and when it moves: validity
//! (its own record, its holder's liveness), fences, unacknowledged assignments, stopped pods and
//! recovers.
use super::*;

#[test]
fn an_acknowledged_listener_stays_while_its_own_record_is_fresh() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p's liveness was last seen long ago (stale); only a's acknowledgement at t keeps it.
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", registered("p", t0))
        .live("q", registered("q", t + D))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    assert_eq!(d.requeue, wake(D), "looked at again when the record runs out");
    let d = scene.decide(t + D - MS, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    assert_eq!(d.requeue, wake(MS));
    // One duration after the acknowledgement: fenced (not moved).
    let d = scene.decide(t + D, &mut m);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(fences(&d), vec![fence_on("p")]);
}

#[test]
fn a_set_with_a_shorter_lease_than_the_liveness_lease_looks_again_when_its_own_lease_runs_out() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p registered with a 15 s liveness Lease and has not yet renewed it with the set's shorter
    // lease: the liveness tracker would look only 15 s after the registration.
    let long = LivenessFacts {
        wakes_after: Some(D * 5),
        ..registered("p", t)
    };
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", long)
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + MS, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    assert_eq!(d.requeue, wake(D - MS), "looked at again when the set's lease runs out");
    let d = scene.decide(t + D, &mut m);
    assert_eq!(fences(&d), vec![fence_on("p")], "not renewed within the set's lease");
    // Once the liveness Lease carries the set's duration, the tracker's wake is enough.
    let short = LivenessFacts {
        wakes_after: Some(D),
        ..registered("p", t)
    };
    let d = scene.clone().live("p", short).decide(t + MS, &mut Memory::default());
    assert_eq!(d.requeue, None, "no timer of the set's own: {d:?}");
}

#[test]
fn an_acknowledged_listener_stays_while_its_holder_renews_its_liveness() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let acked = vec![lease("a", Some("p"), 3, true, t)];
    let base = Scene::new(&["a"], &["p", "q"], t0).live("q", registered("q", t + secs(100)));
    let mut m = Memory::default();
    // The acknowledgement is old, the last renewal of p's liveness Lease 1 s ago.
    let renewing = base
        .clone()
        .live("p", registered("p", t + secs(8)))
        .leases(acked.clone());
    for at in [t + D, t + secs(8), t + secs(8) + D - MS] {
        let d = renewing.decide(at, &mut m);
        assert!(d.writes.is_empty() && d.fences.is_empty(), "at {:?}: {d:?}", at - t);
        assert_eq!(d.eligible, 2, "p answers");
    }
    let d = renewing.decide(t + secs(8) + D, &mut m);
    assert_eq!(fences(&d), vec![fence_on("p")]);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.eligible, 1, "p's registration is stale: it gets nothing new");
    // Liveness counts only while p is registered on it: an unregistered Lease renews nothing.
    let unregistered = LivenessFacts {
        wakes_after: None,
        registration_seen: None,
        lease: Some(live_lease("p", false, false)),
        observed: Some(t + secs(8)),
    };
    let d = base.live("p", unregistered).leases(acked).decide(t + secs(9), &mut m);
    assert_eq!(fences(&d), vec![fence_on("p")]);
}

#[test]
fn a_fresh_controller_counts_from_its_start() {
    let t0 = Instant::now();
    let started = t0 + secs(60);
    // First seen by this controller when it started; the last renewal it knows of is older.
    let scene = Scene::new(&["a", "b"], &["p", "q"], started)
        .live("p", registered("p", t0))
        .live("q", registered("q", started + secs(100)))
        .leases(vec![
            lease("a", Some("p"), 1, true, started),
            lease("b", Some("p"), 2, true, started),
        ]);
    let mut m = Memory::default();
    let d = scene.decide(started + D - MS, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    let d = scene.decide(started + D, &mut m);
    assert_eq!(fences(&d), vec![fence_on("p")], "one fence for both listeners");
    // Never seen writing its liveness Lease at all: the same.
    let mut unseen = scene.clone();
    unseen.liveness.insert(
        uid("p"),
        LivenessFacts {
            wakes_after: None,
            registration_seen: None,
            lease: Some(live_lease("p", true, false)),
            observed: None,
        },
    );
    unseen.leases.truncate(1);
    unseen.listeners.truncate(1);
    let d = unseen.decide(started + D - MS, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    let d = unseen.decide(started + D, &mut m);
    assert_eq!(fences(&d), vec![fence_on("p")]);
}

#[test]
fn an_acknowledged_listener_moves_only_once_its_silent_holder_is_fenced() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", registered("p", t))
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(
        d.fences,
        vec![Fence {
            pod: "p".into(),
            uid: uid("p"),
            lease: Some(("baton-agent.uid-p".into(), "lrv-p".into())),
        }]
    );
    let silent: Vec<(&str, Silence)> = d.silent.iter().map(|s| (s.pod.as_str(), s.why)).collect();
    assert_eq!(silent, vec![("p", Silence::Stopped)]);
    assert_eq!(d.eligible, 1);
    // Deciding again before the fence shows: the same fence, nothing else.
    let again = scene.decide(t + D + MS, &mut m);
    assert_eq!((again.fences, again.writes), (d.fences, d.writes));
    // The fence landed: a moves to q, conditional on a's Lease, one token up.
    let fenced_scene = scene.live("p", fenced("p", Some(t)));
    let d = fenced_scene.decide(t + D + MS, &mut m);
    assert!(d.fences.is_empty(), "fenced already: {:?}", d.fences);
    assert_eq!(
        write_of(&d, "a").change,
        Move::Assign {
            listener: "a".into(),
            pod: "q".into(),
            pod_uid: uid("q"),
            from_resource_version: Some("rv-a-3".into()),
            transitions: 4,
        }
    );
    assert!(takeover(&d, "a", "p", "fenced"), "{:?}", d.writes);
}

#[test]
fn a_fenced_holder_keeps_its_listener_until_what_it_renewed_ran_out() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // Fenced (by another set's controller, or a recover) 2 s after its last renewal was seen.
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", fenced("p", Some(t + secs(2))))
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    assert_eq!(d.requeue, wake(secs(2)));
    assert_eq!(d.eligible, 1, "a fenced pod gets nothing new");
    assert!(scene.decide(t + secs(2) + D - MS, &mut m).writes.is_empty());
    let d = scene.decide(t + secs(2) + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
}

#[test]
fn one_fence_per_pod_however_many_listeners_and_sets() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let held = |set: &str, ids: &[&str], holder: &str| -> Vec<LeaseFacts> {
        ids.iter()
            .map(|id| LeaseFacts {
                name: format!("{set}-{id}"),
                ..lease(id, Some(holder), 1, true, t)
            })
            .collect()
    };
    let mut leases = held("s1", &["a", "b", "c"], "p");
    leases.extend(held("s1", &["d", "e"], "q"));
    let scene = Scene::new(&["a", "b", "c", "d", "e"], &["p", "q", "r"], t0)
        .live("p", registered("p", t))
        .live("q", registered("q", t))
        .live("r", registered("r", t + secs(100)))
        .leases(leases);
    let d = scene.decide(t + D, &mut Memory::default());
    assert_eq!(fences(&d), vec![fence_on("p"), fence_on("q")]);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    // Another set with listeners on p: its own decision, one fence for p again.
    let other = Scene::new(&["x", "y"], &["p", "r"], t0)
        .live("p", registered("p", t))
        .live("r", registered("r", t + secs(100)))
        .leases(held("s2", &["x", "y"], "p"));
    let d = other.decide(t + D, &mut Memory::default());
    assert_eq!(fences(&d), vec![fence_on("p")]);
}

#[test]
fn a_pod_without_a_liveness_lease_is_fenced_by_creating_it() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // An agent of the per-listener protocol: it renewed a's Lease itself, never registered.
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D - MS, &mut m);
    assert!(d.fences.is_empty() && d.writes.is_empty(), "{d:?}");
    let d = scene.decide(t + D, &mut m);
    assert_eq!(
        d.fences,
        vec![Fence {
            pod: "p".into(),
            uid: uid("p"),
            lease: None,
        }]
    );
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert!(
        d.lapsed.contains(&uid("p")),
        "an agent of the per-listener protocol let it expire"
    );
    // Created fenced: a moves (the controller counts from its start, long ago).
    let d = scene.live("p", fenced("p", None)).decide(t + D + MS, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
}

#[test]
fn a_registered_pod_whose_liveness_lease_vanished_is_fenced_not_lapsed() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p speaks the liveness protocol (seen renewing at t); its liveness Lease was deleted by
    // hand. It must be fenced (its agent registers again on the fenced Lease), and must not be
    // remembered as a pod that does not serve the set.
    let gone = LivenessFacts {
        wakes_after: None,
        registration_seen: None,
        lease: None,
        observed: Some(t),
    };
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", gone)
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    assert_eq!(fences(&d), vec![("p".to_string(), None)]);
    assert!(!d.lapsed.contains(&uid("p")), "{:?}", d.lapsed);
    // Fenced: a moves to q.
    let fenced_scene = scene.clone().live("p", fenced("p", Some(t)));
    let d = fenced_scene.decide(t + D + MS, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert_eq!(d.eligible, 1, "fenced, p gets nothing new");
    // p's agent registers again: p is eligible at once, in this set too.
    let mut back = fenced_scene.live("p", registered("p", t + D + secs(1)));
    back.leases = vec![lease("a", Some("q"), 4, true, t + D)];
    back.listeners.push(wanted("c"));
    let d = back.decide(t + D + secs(1), &mut m);
    assert_eq!(d.eligible, 2);
    assert_eq!(assigns(&d), vec![to("c", "p", 0)]);
}

#[test]
fn a_pod_that_never_registered_is_unresponsive_until_it_registers() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let registered_in = |scene: &Scene, u: &str| {
        scene
            .liveness
            .get(u)
            .and_then(|l| l.lease.as_ref())
            .is_some_and(|l| l.registered)
    };
    // An agent of the per-listener protocol let a expire: unresponsive, in every set.
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    assert!(d.lapsed.contains(&uid("p")), "{:?}", d.lapsed);
    let mut unresponsive = Unresponsive::default();
    unresponsive.learn(&d, &scene.pods, |u| registered_in(&scene, u));
    assert!(unresponsive.contains(&scene.pods[0]));
    // Its agent registers (a moved to q meanwhile): from then on its liveness Lease is the judge,
    // so it answers at once, in this set too, before what was learnt of it is forgotten (the
    // registration wakes the sets that select it: no later pass may be coming).
    let mut back = scene.clone().live("p", registered("p", t + D + secs(1)));
    back.listeners.push(wanted("b"));
    back.leases = vec![lease("a", Some("q"), 4, true, t + D)];
    back.unresponsive = unresponsive.clone();
    let d = back.decide(t + D + secs(1), &mut m);
    assert_eq!(assigns(&d), vec![to("b", "p", 0)]);
    assert!(d.silent.is_empty(), "{:?}", d.silent);
    unresponsive.learn(&d, &back.pods, |u| registered_in(&back, u));
    assert!(!unresponsive.contains(&back.pods[0]));
}

#[test]
fn an_unacknowledged_assignment_is_taken_back_without_a_fence() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p is registered and renewing, but never acknowledged a (its agent does not serve the set).
    let scene = all_registered(Scene::new(&["a"], &["p", "q"], t0), t + secs(100)).leases(vec![lease(
        "a",
        Some("p"),
        3,
        false,
        t,
    )]);
    let mut m = Memory::default();
    let d = scene.decide(t + D - MS, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(
        d.summary.states[0].1,
        ListenerState::Starting {
            pod: "p".into(),
            uid: uid("p"),
            transitions: 3
        }
    );
    let d = scene.decide(t + D, &mut m);
    assert!(d.fences.is_empty(), "no fence: {:?}", d.fences);
    assert_eq!(
        write_of(&d, "a").change,
        Move::Assign {
            listener: "a".into(),
            pod: "q".into(),
            pod_uid: uid("q"),
            from_resource_version: Some("rv-a-3".into()),
            transitions: 4,
        }
    );
    assert!(takeover(&d, "a", "p", "did not acknowledge"), "{:?}", d.writes);
    assert!(d.lapsed.contains(&uid("p")));
    assert_eq!(d.eligible, 1);
    assert_eq!(d.silent.iter().map(|s| s.pod.as_str()).collect::<Vec<_>>(), vec!["p"]);
    // Remembered: p, emptier than q, gets nothing new in this set...
    let mut later = scene.clone();
    later.listeners.push(wanted("b"));
    later.leases = vec![lease("a", Some("q"), 4, true, t + D)];
    let d = later.decide(t + D + secs(1), &mut m);
    assert_eq!(assigns(&d), vec![to("b", "q", 0)]);
    // ...until it acknowledges a Lease of the set,
    let mut acks = later.clone();
    acks.listeners.push(wanted("x"));
    acks.leases.push(lease("x", Some("p"), 0, true, t + D + secs(1)));
    let mut m2 = m.clone();
    let d = acks.decide(t + D + secs(1), &mut m2);
    assert!(d.renewed.contains(&uid("p")));
    assert_eq!(assigns(&d), vec![to("b", "p", 0)]);
    // ...or its containers restart.
    later.pods[0].restarts = 1;
    let d = later.decide(t + D + secs(1), &mut m);
    assert_eq!(assigns(&d), vec![to("b", "p", 0)]);
}

#[test]
fn a_stopped_holder_frees_its_listeners_at_once() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p acknowledged a just now and renews: only the kubelet's word frees it.
    let mut scene =
        all_registered(Scene::new(&["a"], &["p", "q"], t0), t).leases(vec![lease("a", Some("p"), 3, true, t)]);
    scene.pods[0].eligible = false;
    scene.stopped.insert(uid("p"));
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(takeover(&d, "a", "p", "stopped"), "{:?}", d.writes);
    assert!(d.fences.is_empty(), "{:?}", d.fences);
    // Gone already: the same.
    scene.pods.remove(0);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(takeover(&d, "a", "p", "stopped"), "{:?}", d.writes);
}

#[test]
fn a_recover_frees_the_listeners_of_pods_not_live_and_fences_them() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = all_registered(Scene::new(&["a", "b", "c"], &["p", "q", "r"], t0), t).leases(vec![
        lease("a", Some("p"), 1, true, t),
        lease("b", Some("q"), 1, true, t),
        lease("c", Some("gone"), 5, true, t),
    ]);
    // p is not Ready (so not live).
    scene.pods[0].eligible = false;
    scene.recover = Some(["q".to_string(), "r".to_string()].into());
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(d.recovered, 2);
    // (r takes a; then q and r hold one each: c goes to q by name.)
    assert_eq!(assigns(&d), vec![to("a", "r", 2), to("c", "q", 6)]);
    assert!(takeover(&d, "a", "p", "recovered"), "{:?}", d.writes);
    assert_eq!(fences(&d), vec![fence_on("p")], "the gone pod has nothing to fence");
    // Without the recover nothing moves: p, not Ready, is asked to let a go (make-before-break);
    // c stays with its gone holder, which may run on.
    scene.recover = None;
    let d = scene.decide(t, &mut Memory::default());
    assert!(assigns(&d).is_empty() && d.fences.is_empty(), "{d:?}");
    assert!(matches!(
        &write_of(&d, "a").change,
        Move::RequestRelease {
            reason: ReleaseReason::HolderNotEligible,
            ..
        }
    ));
}
