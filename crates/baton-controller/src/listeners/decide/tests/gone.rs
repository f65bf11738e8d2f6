//! Holders that are gone, and Leases being deleted: nothing is let go while something may still
//! run its listener.
use super::*;

/// `l` being deleted (it keeps its finalizer until the controller removes it).
fn deleted(mut l: LeaseFacts) -> LeaseFacts {
    l.terminating = true;
    l
}

fn remove_finalizer(listener: &str, rv: &str) -> Move {
    Move::RemoveFinalizer {
        listener: listener.into(),
        resource_version: rv.into(),
    }
}

#[test]
fn a_gone_holder_still_registered_is_fenced_and_waited_out() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p was force-deleted; its containers may run on, renewing its liveness Lease (last seen
    // at t + 2 s), which the garbage collector has not deleted yet.
    let base = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let scene = base.clone().live("p", registered("p", t + secs(2)));
    let mut m = Memory::default();
    let d = scene.decide(t + D - MS, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    assert_eq!(d.summary.orphaned, 1, "{:?}", d.summary);
    // Its record ran out: fence it now, wait for what it renewed to run out.
    let d = scene.decide(t + D, &mut m);
    assert_eq!(fences(&d), vec![fence_on("p")]);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, wake(secs(2)));
    // Its renewals ran out but the fence has not landed: still nothing moves.
    let d = scene.decide(t + secs(2) + D, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(fences(&d), vec![fence_on("p")]);
    // Fenced: it moves once its renewals ran out.
    let fenced_scene = base.clone().live("p", fenced("p", Some(t + secs(2))));
    let d = fenced_scene.decide(t + secs(2) + D - MS, &mut m);
    assert!(d.writes.is_empty() && d.fences.is_empty(), "{d:?}");
    assert_eq!(d.requeue, wake(MS));
    let d = fenced_scene.decide(t + secs(2) + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(takeover(&d, "a", "p", "gone"), "{:?}", d.writes);
    // Or the garbage collector deleted the liveness Lease: nothing can renew it any more.
    let collected = base.live(
        "p",
        LivenessFacts {
            wakes_after: None,
            registration_seen: None,
            lease: None,
            observed: Some(t + secs(2)),
        },
    );
    assert!(collected.decide(t + secs(2) + D - MS, &mut m).writes.is_empty());
    let d = collected.decide(t + secs(2) + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(d.fences.is_empty(), "{:?}", d.fences);
}

#[test]
fn a_gone_holder_without_a_liveness_lease_is_free_one_duration_after_its_last_renewal() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // A force-deleted pod whose liveness Lease the garbage collector deleted: its last renewal,
    // seen at t + 3 s, is all that says when it stopped (losing it made a duplicate).
    let scene = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live(
            "p",
            LivenessFacts {
                wakes_after: None,
                registration_seen: None,
                lease: None,
                observed: Some(t + secs(3)),
            },
        )
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert!(d.fences.is_empty(), "nothing to fence: {:?}", d.fences);
    assert_eq!(d.requeue, wake(secs(3)));
    let d = scene.decide(t + secs(3) + D - MS, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    let d = scene.decide(t + secs(3) + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(takeover(&d, "a", "p", "gone"), "{:?}", d.writes);
    assert_eq!(d.requeue, None);
}

#[test]
fn a_fresh_controller_that_never_saw_a_gone_holder_renew_waits_from_its_start() {
    let t0 = Instant::now();
    let started = t0 + secs(60);
    let scene = Scene::new(&["a"], &["q"], started)
        .live("q", registered("q", started + secs(100)))
        .leases(vec![lease("a", Some("p"), 3, true, started)]);
    let mut m = Memory::default();
    let d = scene.decide(started + D - MS, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    let d = scene.decide(started + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
}

#[test]
fn a_gone_holders_unacknowledged_lease_is_free_once_its_record_is_old() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let scene = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live("p", registered("p", t + secs(4)))
        .leases(vec![lease("a", Some("p"), 3, false, t)]);
    let mut m = Memory::default();
    assert!(scene.decide(t + D - MS, &mut m).writes.is_empty());
    let d = scene.decide(t + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(d.fences.is_empty(), "{:?}", d.fences);
}

#[test]
fn a_deleted_lease_is_released_by_its_live_holder_then_recreated_for_it() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p holds a and b, q nothing: a free listener would go to q.
    let b = lease("b", Some("p"), 1, true, t);
    let scene = all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t + secs(100));
    let held = scene
        .clone()
        .leases(vec![deleted(lease("a", Some("p"), 3, true, t)), b.clone()]);
    let mut m = Memory::default();
    let d = held.decide(t, &mut m);
    assert_eq!(
        d.writes,
        vec![Write {
            change: Move::RequestRelease {
                listener: "a".into(),
                holder: "p".into(),
                resource_version: "rv-a-3".into(),
                reason: ReleaseReason::LeaseDeleted,
                to: None,
            },
            kind: None,
        }]
    );
    // Asked once.
    let mut asked = held.clone();
    asked.leases[0].view.release_requested = true;
    let d = asked.decide(t + secs(1), &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    // Released: let go, and not given to anyone while its Lease is still there.
    let mut released = deleted(lease("a", None, 3, true, t + secs(2)));
    released.view.resource_version = "rv-a-released".into();
    released.labelled_uid = Some(uid("p"));
    let d = scene
        .clone()
        .leases(vec![released, b.clone()])
        .decide(t + secs(2), &mut m);
    assert_eq!(d.writes.len(), 1, "{:?}", d.writes);
    assert_eq!(write_of(&d, "a").change, remove_finalizer("a", "rv-a-released"));
    // Gone: a new Lease for p, which let it go, one token up.
    let d = scene.leases(vec![b]).decide(t + secs(3), &mut m);
    assert_eq!(
        write_of(&d, "a").change,
        Move::Assign {
            listener: "a".into(),
            pod: "p".into(),
            pod_uid: uid("p"),
            from_resource_version: None,
            transitions: 4,
        }
    );
    assert_eq!(write_of(&d, "a").kind, Some(HowAssigned::Recreated));
}

#[test]
fn listeners_placed_while_leases_are_deleted_leave_room_for_those_that_come_back() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p runs a and b, whose Leases are being deleted (the garbage collector, after a handover
    // to p); q runs c, r runs d; e is new. a and b come back to p once their Leases are gone:
    // e goes to q or r, not to p (which would then run three).
    let held = |l: &str, pod: &str| lease(l, Some(pod), 1, true, t);
    let scene = all_registered(
        Scene::new(&["a", "b", "c", "d", "e"], &["p", "q", "r"], t0),
        t + secs(100),
    );
    let mut m = Memory::default();
    let deleting = scene.clone().leases(vec![
        deleted(held("a", "p")),
        deleted(held("b", "p")),
        held("c", "q"),
        held("d", "r"),
    ]);
    let d = deleting.decide(t, &mut m);
    let e = assigns(&d);
    assert_eq!(e.len(), 1, "{:?}", d.writes);
    assert_ne!(e[0].1, "p", "{:?}", d.writes);
    // Released by p (e on q or r meanwhile), then gone: back to p.
    let mut e_lease = held("e", &e[0].1);
    e_lease.view.transitions = e[0].2;
    let others = vec![held("c", "q"), held("d", "r"), e_lease];
    let released = |l: &str| {
        let mut r = deleted(lease(l, None, 1, true, t + secs(2)));
        r.labelled_uid = Some(uid("p"));
        r
    };
    let mut leases = others.clone();
    leases.extend([released("a"), released("b")]);
    let d = scene.clone().leases(leases).decide(t + secs(2), &mut m);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    let d = scene.leases(others).decide(t + secs(3), &mut m);
    let back: Vec<(String, String)> = assigns(&d).into_iter().map(|(l, p, _)| (l, p)).collect();
    assert_eq!(
        back,
        [("a", "p"), ("b", "p")].map(|(l, p)| (l.to_string(), p.to_string()))
    );
}

#[test]
fn a_lease_first_seen_released_while_deleted_goes_back_to_the_pod_its_label_names() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut released = deleted(lease("a", None, 3, true, t));
    released.labelled_uid = Some(uid("p"));
    // p holds b: the emptiest pod is q. The ceiling is far above a's token.
    let b = lease("b", Some("p"), 1, true, t);
    let mut scene = all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t + secs(100));
    scene.ceiling = Some(20);
    let mut m = Memory::default();
    let d = scene.clone().leases(vec![released, b.clone()]).decide(t, &mut m);
    assert_eq!(write_of(&d, "a").change, remove_finalizer("a", "rv-a-3"));
    let d = scene.leases(vec![b]).decide(t + MS, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "p", 4)], "no token skipped");
    assert_eq!(write_of(&d, "a").kind, Some(HowAssigned::Recreated));
}

#[test]
fn a_deleted_lease_of_a_gone_holder_is_let_go_only_once_nothing_runs_it() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p was force-deleted: the garbage collector deleted its liveness Lease (p last seen
    // renewing at t + 1 s) and marked its listener Lease deleted; the finalizer holds it.
    let scene = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live(
            "p",
            LivenessFacts {
                wakes_after: None,
                registration_seen: None,
                lease: None,
                observed: Some(t + secs(1)),
            },
        )
        .leases(vec![deleted(lease("a", Some("p"), 3, true, t))]);
    let mut m = Memory::default();
    // Neither let go nor asked (nobody can answer) before p's deadline.
    for at in [t, t + D, t + secs(1) + D - MS] {
        let d = scene.decide(at, &mut m);
        assert!(d.writes.is_empty(), "at {:?}: {:?}", at - t, d.writes);
        assert!(d.requeue.is_some());
    }
    let d = scene.decide(t + secs(1) + D, &mut m);
    assert_eq!(d.writes.len(), 1, "{:?}", d.writes);
    assert_eq!(write_of(&d, "a").change, remove_finalizer("a", "rv-a-3"));
    // Gone: to q, one token up.
    let d = scene.leases(Vec::new()).decide(t + secs(1) + D + MS, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 4)]);
    assert!(
        matches!(&write_of(&d, "a").kind, Some(HowAssigned::Takeover { from, .. }) if from == "p"),
        "{:?}",
        d.writes
    );
    // With its liveness Lease still registered: fenced, not let go.
    let registered_scene = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live("p", registered("p", t + secs(1)))
        .leases(vec![deleted(lease("a", Some("p"), 3, true, t))]);
    let d = registered_scene.decide(t + secs(1) + D, &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(fences(&d), vec![fence_on("p")]);
}

#[test]
fn a_deleted_lease_of_a_stopped_holder_is_let_go_at_once() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live("p", registered("p", t))
        .leases(vec![deleted(lease("a", Some("p"), 3, true, t))]);
    scene.stopped.insert(uid("p"));
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(d.writes.len(), 1, "{:?}", d.writes);
    assert_eq!(write_of(&d, "a").change, remove_finalizer("a", "rv-a-3"));
}

#[test]
fn a_deleted_lease_of_a_silent_holder_is_let_go_once_it_is_fenced() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live("p", registered("p", t))
        .leases(vec![deleted(lease("a", Some("p"), 3, true, t))]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    // Asked (its agent may answer yet) and fenced (it may not).
    assert!(matches!(
        &write_of(&d, "a").change,
        Move::RequestRelease {
            reason: ReleaseReason::LeaseDeleted,
            ..
        }
    ));
    assert_eq!(fences(&d), vec![fence_on("p")]);
    let d = scene.live("p", fenced("p", Some(t))).decide(t + D + MS, &mut m);
    assert_eq!(write_of(&d, "a").change, remove_finalizer("a", "rv-a-3"));
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
}

#[test]
fn a_gone_holders_lease_not_yet_collected_is_left_alone_until_it_is_free() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p was force-deleted a moment ago: the pod cache shows it gone, the garbage collector has not
    // marked its Lease deleted yet, and its containers may run on. (The assigner alone takes a
    // missing holder for a free Lease.)
    let mut scene = Scene::new(&["a"], &["q"], t0)
        .live("q", registered("q", t + secs(100)))
        .live("p", registered("p", t))
        .leases(vec![lease("a", Some("p"), 3, true, t)]);
    let d = scene.decide(t + secs(1), &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.summary.orphaned, 1);
    // A pod of the same name with another uid is not its holder either.
    scene.pods.push(PodFacts {
        uid: "uid-p2".into(),
        ..pod("p")
    });
    let d = scene.decide(t + secs(1), &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    // Nor does a set being deleted delete it (its finalizer would go with it).
    scene.deleting = true;
    let d = scene.decide(t + secs(1), &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    // Once free, it is.
    let d = scene
        .live("p", fenced("p", Some(t)))
        .decide(t + D, &mut Memory::default());
    assert!(
        matches!(&write_of(&d, "a").change, Move::DeleteLease { listener, .. } if listener == "a"),
        "{:?}",
        d.writes
    );
}
