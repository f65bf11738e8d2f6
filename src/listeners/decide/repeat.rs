//! A decision gives the same answer however often, and at whichever moments, it runs for the
//! same observed state and clock: an extra reconcile (a relist, a renewal of another Lease, a
//! refused write retried) changes neither when a listener moves, nor the reason its Event gives,
//! nor its fencing token.
use super::tests::{assigns, input, lease, pod, status_of, wanted, SECS};
use super::*;

/// The one assignment of `d`: (listener, pod, token) and its kind.
fn only_assignment(d: &Decision) -> ((String, String, i32), Kind) {
    let a = assigns(d);
    assert_eq!(a.len(), 1, "{:?}", d.writes);
    let kind = d.writes.iter().find_map(|w| w.kind.clone());
    (a[0].clone(), kind.unwrap_or_else(|| panic!("no kind: {:?}", d.writes)))
}

/// p (holding `a` at token 0) was deleted gracefully; the kubelet reported its containers
/// terminated; the garbage collector then deleted its Lease. One reconcile may see the pod
/// stopped while its Lease is still cached, and assign over the Lease; that write is refused
/// (404: the Lease went meanwhile) and the retry finds the Lease gone. Its takeover must say what
/// a reconcile that only ran once the Lease was gone says: the kubelet's confirmed stop, with
/// the next token (1), not "the Lease expired" with token 2.
#[test]
fn a_reconcile_between_the_stop_and_the_lease_going_changes_neither_reason_nor_token() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let (both, q_only) = ([pod("p"), pod("q")], [pod("q")]);
    let held = [lease("a", Some("p"), 0, 1)];
    let stopped: BTreeSet<String> = ["uid-p".to_string()].into();
    let mut m = Memory::default();
    let d = decide(&input(&ls, &both, &held, t0), &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    let seen = status_of(&d);
    let mut once = m.clone();

    // Once: the next reconcile runs when the Lease is already gone.
    let t2 = t0 + Duration::from_millis(200);
    let mut i = input(&ls, &q_only, &[], t2);
    (i.stopped, i.status) = (&stopped, &seen);
    let expected = only_assignment(&decide(&i, &mut once));
    assert_eq!(expected.0, ("a".into(), "q".into(), 1));
    assert!(
        matches!(&expected.1, Kind::Takeover { from, why } if from == "p" && why.contains("kubelet reported")),
        "{:?}",
        expected.1
    );

    // Twice: a reconcile in between sees p stopped with its Lease still cached.
    let t1 = t0 + Duration::from_millis(100);
    let mut i = input(&ls, &q_only, &held, t1);
    (i.stopped, i.status) = (&stopped, &seen);
    let d = decide(&i, &mut m);
    assert_eq!(only_assignment(&d), expected, "with the Lease still there");
    // The update is answered 404: the garbage collector deleted the Lease first.
    m.refused(&d.writes[0].change);
    let reserved = status_of(&d);
    let mut i = input(&ls, &q_only, &[], t2);
    (i.stopped, i.status) = (&stopped, &reserved);
    let d = decide(&i, &mut m);
    assert_eq!(only_assignment(&d), expected, "the retry, with the Lease gone");
}

/// A force-deleted holder's Lease expires: the takeover says "gone and its Lease expired"
/// whether the Lease was still there when the listener moved or was collected in between (the
/// first assignment refused).
#[test]
fn a_gone_holders_expired_lease_gives_one_reason_whenever_it_is_collected() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let q_only = [pod("q")];
    let held = [lease("a", Some("p"), 3, 1)];
    let mut m = Memory::default();
    let d = decide(&input(&ls, &q_only, &held, t0), &mut m);
    assert!(d.writes.is_empty(), "a gone holder may run on: {:?}", d.writes);
    let d = decide(&input(&ls, &q_only, &held, t0 + SECS), &mut m);
    let first = only_assignment(&d);
    assert_eq!(first.0, ("a".into(), "q".into(), 4));
    assert!(
        matches!(&first.1, Kind::Takeover { why, .. } if why.contains("gone") && why.contains("expired")),
        "{:?}",
        first.1
    );
    m.refused(&d.writes[0].change);
    let mut i = input(&ls, &q_only, &[], t0 + SECS + Duration::from_millis(50));
    let reserved = status_of(&d);
    i.status = &reserved;
    assert_eq!(only_assignment(&decide(&i, &mut m)), first);
}

/// Inside a Lease's duration, reconciles at any moments change nothing: the listener moves at
/// the same instant (one duration after the holder last renewed, as first seen), with the same
/// reason and token, as when the decision runs only at the start and at expiry.
#[test]
fn reconciles_inside_the_lease_duration_do_not_move_the_takeover() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("p"), pod("q")];
    let held = [lease("a", Some("p"), 2, 1)];
    let step = Duration::from_millis(250);
    let mut sparse = Memory::default();
    assert!(decide(&input(&ls, &pods, &held, t0), &mut sparse).writes.is_empty());
    let expected = only_assignment(&decide(&input(&ls, &pods, &held, t0 + SECS), &mut sparse));
    assert_eq!(expected.0, ("a".into(), "q".into(), 3));
    let mut dense = Memory::default();
    let mut at = t0;
    while at < t0 + SECS {
        let d = decide(&input(&ls, &pods, &held, at), &mut dense);
        assert!(d.writes.is_empty(), "at {:?}: {:?}", at - t0, d.writes);
        // Twice at the same moment: the same answer.
        assert_eq!(decide(&input(&ls, &pods, &held, at), &mut dense).writes, d.writes);
        at += step;
    }
    let d = decide(&input(&ls, &pods, &held, t0 + SECS), &mut dense);
    assert_eq!(only_assignment(&d), expected);
}

/// A refused assignment's token is not skipped, whatever the next assignment is (another pod),
/// and a token a Lease carried is never given again.
#[test]
fn a_refused_assignments_token_goes_to_the_next_one_only() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("q"), pod("r")];
    let released = [lease("a", None, 4, 1)];
    let mut m = Memory::default();
    let d = decide(&input(&ls, &pods, &released, t0), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 5)]);
    assert_eq!(d.tokens.get("a"), Some(&5), "reserved in the status first");
    // 409: the Lease changed under the write (q's pod went too, so r is next).
    m.refused(&d.writes[0].change);
    let status = status_of(&d);
    let mut i = input(&ls, &pods[1..], &released, t0 + Duration::from_millis(10));
    i.status = &status;
    let d = decide(&i, &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "r".into(), 5)]);
    m.written(&d.writes[0].change, t0 + Duration::from_millis(10));
    // The Lease carries 5 now: released again, the next tenure is 6.
    let again = [lease("a", None, 5, 1)];
    let mut m2 = m.clone();
    let d = decide(&input(&ls, &pods, &again, t0 + Duration::from_millis(20)), &mut m);
    assert_eq!(assigns(&d)[0].2, 6);
    // A late refusal of a token a Lease carried reserves nothing again.
    m2.refused(&Move::Assign {
        listener: "a".into(),
        pod: "q".into(),
        pod_uid: "uid-q".into(),
        from_resource_version: None,
        transitions: 5,
    });
    let d = decide(&input(&ls, &pods, &again, t0 + Duration::from_millis(30)), &mut m2);
    assert_eq!(assigns(&d)[0].2, 6);
}
