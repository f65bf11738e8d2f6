//! Which pods get new listeners, which are named silent, which get a liveness Lease; adoption
//! of Leases of the older protocol; the spec's other rules (config, suspension, deletion).
use super::*;

#[test]
fn pods_that_do_not_answer_get_nothing_new() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let fresh = t + secs(100);
    // l left x unacknowledged: lapsed in this set.
    let mut m = Memory::default();
    let first =
        all_registered(Scene::new(&["x"], &["l", "ok"], t0), fresh).leases(vec![lease("x", Some("l"), 0, false, t)]);
    let d = first.decide(t + D, &mut m);
    assert_eq!(assigns(&d), vec![to("x", "ok", 1)]);
    // u, which never registered, let a Lease of another set expire: unresponsive everywhere.
    let other = Scene::new(&["y"], &["u", "ok"], t0)
        .live("ok", registered("ok", fresh))
        .leases(vec![lease("y", Some("u"), 0, true, t)]);
    let d = other.decide(t + D, &mut Memory::default());
    assert!(d.lapsed.contains(&uid("u")), "{:?}", d.lapsed);
    let mut unresponsive = Unresponsive::default();
    unresponsive.learn(&d, &other.pods, |_| false);
    // f is fenced, s registered but silent for a lease duration.
    let mut scene = Scene::new(&["x", "a", "b"], &["f", "s", "l", "u", "ok"], t0)
        .live("f", fenced("f", Some(t)))
        .live("s", registered("s", t))
        .live("l", registered("l", fresh))
        .live("ok", registered("ok", fresh))
        .leases(vec![lease("x", Some("ok"), 1, true, t + D)]);
    scene.unresponsive = unresponsive;
    let d = scene.decide(t + D + secs(1), &mut m);
    assert_eq!(d.eligible, 1);
    assert_eq!(assigns(&d), vec![to("a", "ok", 0), to("b", "ok", 0)]);
    let silent: Vec<(&str, Silence)> = d.silent.iter().map(|s| (s.pod.as_str(), s.why)).collect();
    // l renews its registration: it is said not to serve the set, never to have stopped.
    assert_eq!(
        silent,
        vec![
            ("f", Silence::Stopped),
            ("s", Silence::Stopped),
            ("l", Silence::NotServing),
            ("u", Silence::NeverRenewed)
        ]
    );
    assert_eq!(d.liveness_creates, vec![("u".to_string(), uid("u"))]);
}

#[test]
fn a_silent_pod_keeps_what_it_holds_a_pod_not_ready_is_asked_to_let_go() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p's registration is stale (a fence is coming), but a's acknowledgement is fresh: a stays
    // on p, nobody asks p for anything (one write per listener to an agent that may not listen).
    let scene = Scene::new(&["a", "b"], &["p", "q"], t0)
        .live("p", registered("p", t0))
        .live("q", registered("q", t + secs(100)))
        .leases(vec![lease("a", Some("p"), 1, true, t)]);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(d.writes.len(), 1, "{:?}", d.writes);
    assert_eq!(assigns(&d), vec![to("b", "q", 0)], "p gets nothing new");
    // Not Ready (draining, say): asked to let a go, make-before-break.
    let mut draining = scene.clone();
    draining.pods[0].eligible = false;
    draining.liveness.insert(uid("p"), registered("p", t + secs(100)));
    let d = draining.decide(t, &mut Memory::default());
    assert!(matches!(
        &write_of(&d, "a").change,
        Move::RequestRelease {
            reason: ReleaseReason::HolderNotEligible,
            ..
        }
    ));
}

#[test]
fn a_pod_is_not_silent_before_its_assignment_could_lapse() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let scene = all_registered(Scene::new(&["a"], &["p"], t0), t).leases(vec![lease("a", Some("p"), 1, false, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t, &mut m);
    assert!(d.silent.is_empty(), "{:?}", d.silent);
    assert_eq!((d.summary.running, d.summary.starting), (0, 1));
    // Acknowledged: running.
    let d = scene
        .leases(vec![lease("a", Some("p"), 1, true, t + secs(1))])
        .decide(t + secs(1), &mut m);
    assert_eq!((d.summary.running, d.summary.starting), (1, 0));
    assert!(d.renewed.contains(&uid("p")));
}

#[test]
fn liveness_leases_are_made_for_selected_pods_without_one() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = Scene::new(&["a"], &["has", "new", "lost", "other", "stopped"], t0)
        .live("has", registered("has", t))
        .live(
            "lost",
            LivenessFacts {
                wakes_after: None,
                registration_seen: None,
                lease: None,
                observed: Some(t),
            },
        );
    scene.pods[3].selected = false;
    scene.stopped.insert(uid("stopped"));
    scene.pods[4].eligible = false;
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(
        d.liveness_creates,
        vec![("new".to_string(), uid("new")), ("lost".to_string(), uid("lost"))]
    );
    // A new pod may take listeners before its agent registers.
    let only_new = Scene::new(&["a"], &["new"], t0);
    assert_eq!(
        assigns(&only_new.decide(t, &mut Memory::default())),
        vec![to("a", "new", 0)]
    );
    // Not for a set being deleted.
    scene.deleting = true;
    assert!(scene.decide(t, &mut Memory::default()).liveness_creates.is_empty());
}

#[test]
fn leases_of_the_older_protocol_are_adopted_unless_another_write_is_planned() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let old = |mut l: LeaseFacts| {
        l.adopted = false;
        l
    };
    let mut deleted = old(lease("c", Some("p"), 1, true, t));
    deleted.terminating = true;
    let mut scene = all_registered(Scene::new(&["a", "b", "c", "d", "e"], &["p", "q"], t0), t).leases(vec![
        old(lease("a", Some("p"), 1, true, t)),
        old(lease("b", None, 2, true, t)),
        deleted,
        old(lease("d", None, 4, true, t)),
        old(lease("e", Some("p"), 5, true, t)),
    ]);
    scene.listeners[3].suspended = true;
    scene.listeners[4].suspended = true;
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(d.writes.len(), 5, "{:?}", d.writes);
    assert_eq!(
        write_of(&d, "a").change,
        Move::Adopt {
            listener: "a".into(),
            resource_version: "rv-a-1".into(),
            holder_uid: Some(uid("p")),
        }
    );
    assert!(matches!(&write_of(&d, "b").change, Move::Assign { pod, .. } if pod == "q"));
    assert!(matches!(
        &write_of(&d, "c").change,
        Move::RequestRelease {
            reason: ReleaseReason::LeaseDeleted,
            ..
        }
    ));
    assert_eq!(
        write_of(&d, "d").change,
        Move::Adopt {
            listener: "d".into(),
            resource_version: "rv-d-4".into(),
            holder_uid: None,
        }
    );
    assert!(matches!(
        &write_of(&d, "e").change,
        Move::RequestRelease {
            reason: ReleaseReason::Suspended,
            ..
        }
    ));
    // Adopted Leases are left alone.
    for l in &mut scene.leases {
        l.adopted = true;
    }
    let d = scene.decide(t, &mut Memory::default());
    assert!(
        !d.writes.iter().any(|w| matches!(w.change, Move::Adopt { .. })),
        "{:?}",
        d.writes
    );
}

#[test]
fn listeners_without_config_are_not_started_and_suspended_ones_released() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene =
        all_registered(Scene::new(&["a", "b", "c"], &["p"], t0), t).leases(vec![lease("b", Some("p"), 1, true, t)]);
    scene.listeners[0].no_config = true;
    scene.listeners[1].suspended = true;
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("c", "p", 0)]);
    assert!(matches!(
        &write_of(&d, "b").change,
        Move::RequestRelease {
            reason: ReleaseReason::Suspended,
            ..
        }
    ));
    assert_eq!(d.summary.running, 1, "b runs until released");
    assert_eq!(d.summary.pending, 2, "c is being assigned, a waits");
}

#[test]
fn a_deleted_set_is_wound_down_and_counts_its_leases() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = all_registered(Scene::new(&[], &["p"], t0), t)
        .leases(vec![lease("a", Some("p"), 1, true, t), lease("b", None, 2, true, t)]);
    scene.deleting = true;
    let d = scene.decide(t, &mut Memory::default());
    let moves: Vec<&Move> = d.writes.iter().map(|w| &w.change).collect();
    assert!(matches!(
        moves[0],
        Move::RequestRelease {
            reason: ReleaseReason::SetDeleted,
            ..
        }
    ));
    assert!(matches!(moves[1], Move::DeleteLease { listener, .. } if listener == "b"));
    assert_eq!(moves.len(), 2);
    assert_eq!(d.summary.listeners, 2);
}

#[test]
fn keep_unknown_keeps_leases_the_spec_cannot_name() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = all_registered(Scene::new(&[], &["p"], t0), t)
        .leases(vec![lease("x", Some("p"), 1, true, t), lease("y", None, 1, true, t)]);
    scene.keep_unknown = true;
    let d = scene.decide(t, &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    scene.keep_unknown = false;
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(d.writes.len(), 2, "released and deleted: {:?}", d.writes);
}

#[test]
fn unselected_holders_are_never_eligible() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene =
        all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t).leases(vec![lease("a", Some("p"), 1, true, t)]);
    scene.pods[0].selected = false;
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(d.eligible, 1);
    assert_eq!(assigns(&d), vec![to("b", "q", 0)]);
    assert!(matches!(
        &write_of(&d, "a").change,
        Move::RequestRelease {
            reason: ReleaseReason::HolderNotEligible,
            ..
        }
    ));
}

#[test]
fn a_pod_holding_nothing_is_judged_by_its_own_liveness_lease_not_the_sets_shorter_one() {
    // The agent of q holds nothing of this set: it renews at a quarter of its liveness Lease's
    // 15 s (3.75 s), longer than this set's lease D. Between renewals it still answers.
    let t0 = Instant::now();
    let seen = t0 + secs(60);
    let facts = LivenessFacts {
        wakes_after: Some(secs(15)),
        ..registered("q", seen)
    };
    let scene = Scene::new(&["a"], &["q"], t0).live("q", facts.clone());
    let d = scene.decide(seen + D + secs(1), &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "q", 0)]);
    assert!(d.silent.is_empty(), "{:?}", d.silent);
    // Silent past its own promise: nothing new, and named silent.
    let d = scene.decide(seen + secs(15), &mut Memory::default());
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(d.silent.len(), 1);
}

#[test]
fn a_pod_whose_agent_is_leaving_gets_nothing_new_and_is_asked_for_nothing() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let fresh = t + secs(100);
    let leaving = |pod: &str| {
        let mut l = registered(pod, fresh);
        if let Some(lease) = l.lease.as_mut() {
            lease.leaving = true;
        }
        l
    };
    // p's agent shuts down holding a; q holds b and c. p has the fewest, yet takes nothing new.
    let scene = Scene::new(&["a", "b", "c", "d"], &["p", "q"], t0)
        .live("p", leaving("p"))
        .live("q", registered("q", fresh))
        .leases(vec![
            lease("a", Some("p"), 1, true, t),
            lease("b", Some("q"), 1, true, t),
            lease("c", Some("q"), 1, true, t),
        ]);
    let d = scene.decide(t + secs(1), &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("d", "q", 0)]);
    assert_eq!(d.writes.len(), 1, "p releases a itself: {:?}", d.writes);
    // Released: a goes to q, not back to p.
    let released = scene.leases(vec![
        lease("a", None, 1, true, t),
        lease("b", Some("q"), 1, true, t),
        lease("c", Some("q"), 1, true, t),
    ]);
    let d = released.decide(t + secs(2), &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "q", 2), to("d", "q", 0)]);
}

/// A pod on its way out (terminating, draining or not Ready) whose agent marked it leaving and
/// exited is not said to be silent once its registration goes stale: its agent left as asked,
/// and nothing needs a person (the set says no pod may take its listeners, if none may). An
/// agent that stops on a pod that stays, or stops unmarked, is.
#[test]
fn an_agent_that_left_a_pod_on_its_way_out_is_not_silent() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut left = registered("a", t);
    if let Some(l) = left.lease.as_mut() {
        l.leaving = true;
    }
    let mut going = Scene::new(&["x"], &["a"], t0).live("a", left.clone());
    going.pods[0].eligible = false;
    let d = going.decide(t + D + secs(5), &mut Memory::default());
    assert!(d.silent.is_empty(), "{:?}", d.silent);
    assert!(
        matches!(d.blocked, Some(Blocked::NoEligiblePod { .. })),
        "{:?}",
        d.blocked
    );
    // Its pod stays eligible: the agent is gone from a pod that should run listeners.
    let staying = Scene::new(&["x"], &["a"], t0).live("a", left);
    let d = staying.decide(t + D + secs(5), &mut Memory::default());
    let silent: Vec<(&str, Silence)> = d.silent.iter().map(|s| (s.pod.as_str(), s.why)).collect();
    assert_eq!(silent, vec![("a", Silence::Stopped)]);
    // Not marked leaving (killed, hung): said to have stopped, on its way out or not.
    let mut killed = Scene::new(&["x"], &["a"], t0).live("a", registered("a", t));
    killed.pods[0].eligible = false;
    let d = killed.decide(t + D + secs(5), &mut Memory::default());
    let silent: Vec<(&str, Silence)> = d.silent.iter().map(|s| (s.pod.as_str(), s.why)).collect();
    assert_eq!(silent, vec![("a", Silence::Stopped)]);
}
