//! Fencing tokens and the set's token ceiling; a fresh controller's hold of listeners without a
//! Lease.
use super::*;

#[test]
fn a_fresh_set_starts_at_zero_and_the_ceiling_is_raised_before_the_first_lease() {
    let t0 = Instant::now();
    // Its pods have stayed the same since the controller started (see `first_placement`).
    let t = t0 + PODS_SETTLE;
    let scene = all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 0), to("b", "q", 0)]);
    assert_eq!(d.ceiling, Some(CEILING_RESERVE));
    assert_eq!(
        d.summary.states[0].1,
        ListenerState::Pending,
        "the summary is the state before the writes"
    );
}

#[test]
fn no_ceiling_while_nothing_was_ever_handed_out() {
    let t0 = Instant::now();
    // No pod to take anything.
    let scene = Scene::new(&["a", "b"], &[], t0);
    let d = scene.decide(t0, &mut Memory::default());
    assert!(d.writes.is_empty());
    assert_eq!(d.ceiling, None);
    assert_eq!(d.summary.pending, 2);
    // Suspended listeners take nothing either.
    let mut suspended = all_registered(Scene::new(&["a"], &["p"], t0), t0);
    suspended.listeners[0].suspended = true;
    let d = suspended.decide(t0, &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.ceiling, None);
}

#[test]
fn a_listener_without_a_lease_starts_above_the_ceiling() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = all_registered(Scene::new(&["a"], &["p"], t0), t);
    scene.ceiling = Some(20);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 21)]);
    assert_eq!(
        d.ceiling,
        Some(21 + CEILING_RESERVE),
        "raised before the Lease carries 21"
    );
}

#[test]
fn the_ceiling_stays_while_no_token_exceeds_it() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut scene = all_registered(Scene::new(&["a", "b"], &["p", "q"], t0), t)
        .leases(vec![lease("a", None, 5, true, t), lease("b", Some("q"), 40, true, t)]);
    scene.ceiling = Some(40);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 6)]);
    assert_eq!(d.ceiling, Some(40));
    // The handover that would pass it raises it.
    scene.leases[1] = lease("b", None, 40, true, t);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 6), to("b", "q", 41)]);
    assert_eq!(d.ceiling, Some(41 + CEILING_RESERVE));
}

#[test]
fn a_ceiling_below_a_leases_token_is_raised_above_it() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // Written by a controller of the older protocol, which kept no ceiling.
    let mut scene = all_registered(Scene::new(&["a"], &["p"], t0), t).leases(vec![lease("a", Some("p"), 9, true, t)]);
    let d = scene.decide(t, &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.ceiling, Some(9 + CEILING_RESERVE));
    scene.ceiling = Some(3);
    assert_eq!(
        scene.decide(t, &mut Memory::default()).ceiling,
        Some(9 + CEILING_RESERVE)
    );
}

#[test]
fn a_handover_raises_the_token_by_one() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let scene = all_registered(Scene::new(&["a", "b"], &["p"], t0), t)
        .leases(vec![lease("a", None, 0, false, t), lease("b", None, 7, true, t)]);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 1), to("b", "p", 8)]);
    // Never held before: assigned; released by its holder: a handover.
    assert_eq!(write_of(&d, "a").kind, Some(HowAssigned::Assigned));
    assert_eq!(write_of(&d, "b").kind, Some(HowAssigned::Handover));
    assert!(d.tokens.is_empty(), "both are assigned: {:?}", d.tokens);
}

#[test]
fn a_fresh_controller_holds_listeners_without_a_lease_for_one_duration() {
    let t0 = Instant::now();
    let mut scene = all_registered(Scene::new(&["a", "b"], &["p"], t0), t0 + secs(100));
    scene.listeners[1].suspended = true;
    scene.ceiling = Some(7);
    let mut m = Memory::default();
    // A Lease whose finalizer was removed by hand may have gone while its holder runs a.
    let d = scene.decide(t0, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, wake(D));
    assert_eq!(d.summary.pending, 1);
    let d = scene.decide(t0 + D - MS, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, wake(MS));
    let d = scene.decide(t0 + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "p", 8)]);
    assert_eq!(d.requeue, None);
    // In a set that never handed out a token there is nothing to wait for but its pods'
    // settling, counted from the controller's start.
    scene.ceiling = None;
    let d = scene.decide(t0 + PODS_SETTLE, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 0)]);
    // Nor for a listener whose last Lease this controller saw being deleted.
    scene.ceiling = Some(7);
    let mut released = lease("a", None, 5, true, t0);
    released.terminating = true;
    released.labelled_uid = Some(uid("p"));
    let mut m = Memory::default();
    let d = scene.clone().leases(vec![released]).decide(t0, &mut m);
    assert!(matches!(&write_of(&d, "a").change, Move::RemoveFinalizer { .. }));
    let d = scene.decide(t0 + MS, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "p", 6)]);
    assert_eq!(write_of(&d, "a").kind, Some(HowAssigned::Recreated));
}

#[test]
fn the_status_gets_the_tokens_of_listeners_that_do_not_run() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // a released with no pod to take it; b held and valid; c's holder stopped.
    let mut scene = Scene::new(&["a", "b", "c"], &["p"], t0)
        .live("p", registered("p", t))
        .leases(vec![
            lease("a", None, 2, true, t),
            lease("b", Some("p"), 4, true, t),
            lease("c", Some("gone"), 6, true, t),
        ]);
    scene.pods[0].eligible = false;
    scene.stopped.insert(uid("gone"));
    let d = scene.decide(t, &mut Memory::default());
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(d.tokens, BTreeMap::from([("a".to_string(), 2), ("c".to_string(), 6)]));
}
