//! Unit tests of [`decide`](super::decide): fixtures shared with the property tests.
use super::*;
use crate::listeners::assigner::{ListenerState, ReleaseReason};

pub(super) const SECS: Duration = Duration::from_secs(5);

pub(super) fn pod(name: &str) -> PodFacts {
    PodFacts {
        name: name.into(),
        uid: format!("uid-{name}"),
        selected: true,
        eligible: true,
        restarts: 0,
    }
}

pub(super) fn wanted(id: &str) -> Wanted {
    Wanted {
        id: id.into(),
        ..Default::default()
    }
}

/// A Lease of `listener` held by `holder` (None: released), renewed `renewals` times.
pub(super) fn lease(listener: &str, holder: Option<&str>, token: i32, renewals: u32) -> LeaseFacts {
    LeaseFacts {
        name: format!("set-{listener}"),
        view: LeaseView {
            listener: listener.into(),
            holder: holder.map(String::from),
            holder_uid: holder.map(|h| format!("uid-{h}")),
            expired: false,
            transitions: token,
            resource_version: format!("rv-{listener}-{token}-{renewals}"),
            release_requested: false,
            renewed: renewals > 0,
        },
        record: format!("{holder:?}|{token}|{renewals}"),
        duration: SECS,
    }
}

pub(super) fn input<'a>(
    listeners: &'a [Wanted],
    pods: &'a [PodFacts],
    leases: &'a [LeaseFacts],
    now: Instant,
) -> Input<'a> {
    Input {
        deleting: false,
        listeners,
        keep_unknown: false,
        max_per_pod: 0,
        pods,
        leases,
        status: Box::leak(Box::default()),
        recover: None,
        unresponsive: Box::leak(Box::default()),
        stopped: Box::leak(Box::default()),
        lease_duration: SECS,
        now,
    }
}

pub(super) fn assigns(d: &Decision) -> Vec<(String, String, i32)> {
    d.writes
        .iter()
        .filter_map(|w| match &w.change {
            Move::Assign {
                listener,
                pod,
                transitions,
                ..
            } => Some((listener.clone(), pod.clone(), *transitions)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lease_expires_one_duration_after_its_holder_record_last_changed() {
    let t0 = Instant::now();
    let (ls, pods) = ([wanted("a")], [pod("p"), pod("q")]);
    let held = [lease("a", Some("p"), 1, 0)];
    let mut m = Memory::default();
    let d = decide(&input(&ls, &pods, &held, t0), &mut m);
    assert!(d.writes.is_empty());
    assert_eq!(d.requeue, Some(SECS + EXPIRY_SLACK));
    // A renewal seen at t0+4s restarts the count.
    let renewed = [lease("a", Some("p"), 1, 1)];
    let d = decide(&input(&ls, &pods, &renewed, t0 + Duration::from_secs(4)), &mut m);
    assert!(d.writes.is_empty());
    let d = decide(&input(&ls, &pods, &renewed, t0 + Duration::from_secs(8)), &mut m);
    assert!(
        d.writes.is_empty(),
        "8 s after t0 but 4 s after the renewal: not expired"
    );
    let d = decide(&input(&ls, &pods, &renewed, t0 + Duration::from_secs(9)), &mut m);
    // Expired on p, which still exists: p is unresponsive and gets nothing; q takes it over.
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 2)]);
    assert!(matches!(&d.writes[0].kind, Some(Kind::Takeover { why, .. }) if why.contains("expired")));
    assert_eq!(d.requeue, None);
}

#[test]
fn a_fresh_controller_waits_a_full_duration() {
    let t0 = Instant::now();
    let (ls, pods) = ([wanted("a")], [pod("p"), pod("q")]);
    // A live holder's Lease, however old its renewTime, is judged from now.
    let old = [lease("a", Some("p"), 4, 9)];
    let mut m = Memory::default();
    assert!(decide(&input(&ls, &pods, &old, t0), &mut m).writes.is_empty());
    // So is one whose holder pod is gone: its containers may run on (force delete).
    let mut m = Memory::default();
    let d = decide(&input(&ls, &pods[1..], &old, t0), &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.summary.orphaned, 1);
    assert_eq!(d.requeue, Some(SECS + EXPIRY_SLACK));
    let d = decide(&input(&ls, &pods[1..], &old, t0 + SECS), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 5)]);
    assert!(
        matches!(&d.writes[0].kind, Some(Kind::Takeover { why, .. }) if why.contains("gone") && why.contains("expired"))
    );
}

#[test]
fn a_gone_holder_reported_stopped_is_taken_over_at_once() {
    let t0 = Instant::now();
    let (ls, pods) = ([wanted("a")], [pod("q")]);
    let held = [lease("a", Some("p"), 4, 9)];
    let stopped: BTreeSet<String> = ["uid-p".to_string()].into();
    let mut i = input(&ls, &pods, &held, t0);
    i.stopped = &stopped;
    let d = decide(&i, &mut Memory::default());
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 5)]);
    assert!(matches!(&d.writes[0].kind, Some(Kind::Takeover { why, .. }) if why.contains("stopped")));
    // Also while the stopped pod still exists (phase Failed: not eligible, never releases).
    let pods = [
        PodFacts {
            eligible: false,
            ..pod("p")
        },
        pod("q"),
    ];
    let mut i = input(&ls, &pods, &held, t0);
    i.stopped = &stopped;
    let d = decide(&i, &mut Memory::default());
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 5)]);
}

#[test]
fn a_lease_gone_with_its_pod_is_held_one_duration_unless_the_pod_was_seen_stopped() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let (both, q_only) = ([pod("p"), pod("q")], [pod("q")]);
    let held = [lease("a", Some("p"), 2, 1)];
    let mut m = Memory::default();
    decide(&input(&ls, &both, &held, t0), &mut m);
    let mut confirmed = m.clone();
    // p force-deleted: the garbage collector deletes its Lease. Held for one duration from when
    // the Lease was seen gone.
    let t1 = t0 + Duration::from_secs(3);
    let d = decide(&input(&ls, &q_only, &[], t1), &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.summary.orphaned, 1, "{:?}", d.summary);
    assert_eq!(d.requeue, Some(SECS + EXPIRY_SLACK));
    let d = decide(&input(&ls, &q_only, &[], t1 + SECS - Duration::from_millis(1)), &mut m);
    assert!(d.writes.is_empty());
    let d = decide(&input(&ls, &q_only, &[], t1 + SECS), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 3)]);
    // p deleted gracefully and seen stopped: free at once.
    let stopped: BTreeSet<String> = ["uid-p".to_string()].into();
    let mut i = input(&ls, &q_only, &[], t1);
    i.stopped = &stopped;
    let d = decide(&i, &mut confirmed);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 3)]);
}

#[test]
fn a_lease_deleted_while_its_holder_is_unresponsive_is_held_not_recreated() {
    let t0 = Instant::now();
    let ls = [wanted("a"), wanted("b")];
    let pods = [pod("p"), pod("q")];
    let mut m = Memory::default();
    let mut unresponsive = Unresponsive::default();
    // p let b expire (it is unresponsive) but a is still its, not expired (seen later).
    decide(&input(&ls, &pods, &[lease("b", Some("p"), 1, 0)], t0), &mut m);
    let t1 = t0 + SECS;
    let leases = [lease("a", Some("p"), 1, 0), lease("b", Some("p"), 1, 0)];
    let d = decide(&input(&ls, &pods, &leases, t1), &mut m);
    unresponsive.learn(&d, &pods);
    assert!(unresponsive.contains(&pods[0]));
    // a's Lease is deleted by hand: not recreated for p, not given to q before one duration.
    let b_moved = [lease("b", Some("q"), 2, 0)];
    let mut i = input(&ls, &pods, &b_moved, t1);
    i.unresponsive = &unresponsive;
    let d = decide(&i, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    let b_renewed = [lease("b", Some("q"), 2, 1)];
    let mut i = input(&ls, &pods, &b_renewed, t1 + SECS);
    i.unresponsive = &unresponsive;
    let d = decide(&i, &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 2)]);
}

#[test]
fn recover_expires_only_leases_of_holders_not_live() {
    let t0 = Instant::now();
    let ls = [wanted("a"), wanted("b")];
    let pods = [pod("p"), pod("q"), pod("r")];
    let leases = [lease("a", Some("p"), 1, 0), lease("b", Some("q"), 1, 0)];
    let live: BTreeSet<String> = ["q".to_string(), "r".to_string()].into();
    let mut i = input(&ls, &pods, &leases, t0);
    i.recover = Some(&live);
    let d = decide(&i, &mut Memory::default());
    assert_eq!(d.recovered, 1);
    assert_eq!(assigns(&d), vec![("a".into(), "r".into(), 2)]);
    assert!(matches!(&d.writes[0].kind, Some(Kind::Takeover { why, .. }) if why.contains("recovered")));
}

#[test]
fn tokens_continue_from_the_highest_seen() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("q")];
    let mut m = Memory::default();
    // The status recorded token 7 for a and no holder; its Lease is gone (garbage-collected
    // with its pod): wherever it ran may still run it, so a fresh controller holds it for one
    // lease duration, then continues above the token.
    let status = ListenerSetStatus {
        fencing_tokens: [("a".to_string(), 7)].into(),
        ..Default::default()
    };
    let mut i = input(&ls, &pods, &[], t0);
    i.status = &status;
    let d = decide(&i, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, Some(SECS + EXPIRY_SLACK));
    let t1 = t0 + SECS;
    let mut i = input(&ls, &pods, &[], t1);
    i.status = &status;
    let d = decide(&i, &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 8)]);
    assert!(matches!(&d.writes[0].kind, Some(Kind::Takeover { why, .. }) if why.contains("unknown")));
    assert_eq!(
        d.summary.states,
        vec![(
            "a".into(),
            ListenerState::Starting {
                pod: "q".into(),
                uid: "uid-q".into(),
                transitions: 8
            }
        )],
        "the status shows the assignment before the Lease is written"
    );
    m.written(&d.writes[0].change, t1);
    // The write is remembered even before its Lease is seen, and without the status: a Lease
    // not in the cache yet is waited for (one lease duration), then recreated for q.
    let d = decide(&input(&ls, &pods, &[], t1), &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.requeue, Some(SECS + EXPIRY_SLACK));
    let d = decide(&input(&ls, &pods, &[], t1 + SECS), &mut m);
    assert_eq!(recreated(&d), vec![("a".into(), "q".into(), 9)]);
    m.written(&d.writes[0].change, t0);
    // A released Lease with a lower token than memory: memory wins.
    let released = [lease("a", None, 3, 0)];
    let d = decide(&input(&ls, &pods, &released, t0), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 10)]);
    assert_eq!(d.writes[0].kind, Some(Kind::Handover));
}

#[test]
fn listeners_without_config_are_not_started_and_suspended_ones_released() {
    let t0 = Instant::now();
    let ls = [
        Wanted {
            no_config: true,
            ..wanted("a")
        },
        Wanted {
            suspended: true,
            ..wanted("b")
        },
        wanted("c"),
    ];
    let pods = [pod("p")];
    let leases = [lease("b", Some("p"), 1, 1)];
    let d = decide(&input(&ls, &pods, &leases, t0), &mut Memory::default());
    assert_eq!(assigns(&d), vec![("c".into(), "p".into(), 0)]);
    assert!(d.writes.iter().any(|w| matches!(
        &w.change,
        Move::RequestRelease { listener, reason: ReleaseReason::Suspended, .. } if listener == "b"
    )));
    assert_eq!(d.summary.running, 1);
    assert_eq!(
        (d.summary.starting, d.summary.pending),
        (1, 1),
        "c is being assigned, a waits"
    );
}

#[test]
fn a_deleted_set_is_wound_down_and_counts_its_leases() {
    let t0 = Instant::now();
    let pods = [pod("p")];
    let leases = [lease("a", Some("p"), 1, 1), lease("b", None, 2, 0)];
    let mut i = input(&[], &pods, &leases, t0);
    i.deleting = true;
    let d = decide(&i, &mut Memory::default());
    let kinds: Vec<&Move> = d.writes.iter().map(|w| &w.change).collect();
    assert!(matches!(
        kinds[0],
        Move::RequestRelease {
            reason: ReleaseReason::SetDeleted,
            ..
        }
    ));
    assert!(matches!(kinds[1], Move::DeleteLease { listener, .. } if listener == "b"));
    assert_eq!(d.summary.listeners, 2);
    assert!(matches!(d.summary.states[0].1, ListenerState::Running { .. }));
}

#[test]
fn keep_unknown_keeps_leases_the_spec_cannot_name() {
    let t0 = Instant::now();
    let pods = [pod("p")];
    let leases = [lease("x", Some("p"), 1, 0), lease("y", None, 1, 0)];
    let mut i = input(&[], &pods, &leases, t0);
    i.keep_unknown = true;
    let d = decide(&i, &mut Memory::default());
    assert!(d.writes.is_empty(), "{:?}", d.writes);
}

#[test]
fn unselected_holders_are_never_eligible() {
    let t0 = Instant::now();
    let ls = [wanted("a"), wanted("b")];
    let pods = [
        PodFacts {
            selected: false,
            ..pod("p")
        },
        pod("q"),
    ];
    let leases = [lease("a", Some("p"), 1, 0)];
    let d = decide(&input(&ls, &pods, &leases, t0), &mut Memory::default());
    assert_eq!(d.eligible, 1);
    assert_eq!(assigns(&d), vec![("b".into(), "q".into(), 0)]);
    assert!(d.writes.iter().any(|w| matches!(
        &w.change,
        Move::RequestRelease {
            reason: ReleaseReason::HolderNotEligible,
            ..
        }
    )));
}

fn recreated(d: &Decision) -> Vec<(String, String, i32)> {
    d.writes
        .iter()
        .filter(|w| w.kind == Some(Kind::Recreated))
        .filter_map(|w| match &w.change {
            Move::Assign {
                listener,
                pod,
                transitions,
                from_resource_version: None,
                ..
            } => Some((listener.clone(), pod.clone(), *transitions)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_hand_deleted_lease_is_recreated_for_its_live_holder() {
    let t0 = Instant::now();
    let ls = [wanted("a"), wanted("b")];
    // q is emptier than p: a free listener would go there.
    let pods = [pod("p"), pod("q")];
    let mut m = Memory::default();
    let held = [lease("a", Some("p"), 3, 0), lease("b", Some("p"), 1, 0)];
    assert!(decide(&input(&ls, &pods, &held, t0), &mut m).writes.is_empty());
    // Both Leases deleted by hand.
    let d = decide(&input(&ls, &pods, &[], t0), &mut m);
    assert_eq!(
        recreated(&d),
        vec![("a".into(), "p".into(), 4), ("b".into(), "p".into(), 2)]
    );
    assert_eq!(d.writes.len(), 2, "nothing else: {:?}", d.writes);
    assert_eq!(
        d.tokens.get("a"),
        Some(&4),
        "the status gets the token before the Lease"
    );
    // The holder's pod is replaced by one of the same name (new uid): the old one is gone, its
    // containers may run on: nothing is recreated for the new pod, and nobody gets the
    // listeners for one lease duration.
    let mut m2 = m.clone();
    let replaced = [
        PodFacts {
            uid: "uid-p2".into(),
            ..pod("p")
        },
        pod("q"),
    ];
    let d = decide(&input(&ls, &replaced, &[], t0), &mut m2);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    let d = decide(&input(&ls, &replaced, &[], t0 + SECS), &mut m2);
    assert!(recreated(&d).is_empty());
    assert_eq!(assigns(&d).len(), 2);
    // The holder's pod is gone and was seen stopped: the listeners are free.
    let stopped: BTreeSet<String> = ["uid-p".to_string()].into();
    let mut i = input(&ls, &pods[1..], &[], t0);
    i.stopped = &stopped;
    let d = decide(&i, &mut m);
    assert!(recreated(&d).is_empty());
    assert_eq!(
        assigns(&d),
        vec![("a".into(), "q".into(), 5), ("b".into(), "q".into(), 3)]
    );
}

#[test]
fn an_assignment_is_remembered_with_its_uid_before_its_lease_is_seen() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("p")];
    let mut m = Memory::default();
    let d = decide(&input(&ls, &pods, &[], t0), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "p".into(), 0)]);
    m.written(&d.writes[0].change, t0);
    // Not in the cache yet: nobody else gets it while the cache may lag.
    let more = [pod("p"), pod("q")];
    let d = decide(&input(&ls, &more, &[], t0 + Duration::from_secs(1)), &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    // The Lease was deleted before this controller ever saw it: p may run it.
    let d = decide(&input(&ls, &more, &[], t0 + SECS), &mut m);
    assert_eq!(recreated(&d), vec![("a".into(), "p".into(), 1)]);
}

#[test]
fn an_expired_or_released_holder_is_forgotten() {
    let t0 = Instant::now();
    let ls = [wanted("a"), wanted("b")];
    let pods = [pod("p"), pod("q")];
    let mut m = Memory::default();
    let held = [lease("a", Some("p"), 1, 0), lease("b", Some("q"), 1, 0)];
    decide(&input(&ls, &pods, &held, t0), &mut m);
    let later = t0 + SECS;
    let d = decide(
        &input(&ls, &pods, &[held[0].clone(), lease("b", None, 1, 1)], later),
        &mut m,
    );
    assert_eq!(assigns(&d).len(), 2, "a expired, b released: {:?}", d.writes);
    // Both Leases are gone now: neither old holder can still run its listener.
    let d = decide(&input(&ls, &pods, &[], later), &mut m);
    assert!(recreated(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(assigns(&d).len(), 2);
    // The takeover of a did not happen (say its write lost to the garbage collector): the move
    // is still a takeover from p, whose Lease expired; b was released.
    let kind = |l: &str| {
        d.writes
            .iter()
            .find(|w| w.change.listener() == l)
            .and_then(|w| w.kind.clone())
    };
    assert!(
        matches!(kind("a"), Some(Kind::Takeover { from, .. }) if from == "p"),
        "{:?}",
        d.writes
    );
    assert_eq!(kind("b"), Some(Kind::Assigned));
}

#[test]
fn a_restarted_controller_restores_from_the_status() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("p"), pod("q")];
    let status = ListenerSetStatus {
        assignments: vec![crate::api::listenerset::Assignment {
            listener: "a".into(),
            pod: "p".into(),
            pod_uid: Some("uid-p".into()),
            since: None,
            transitions: 3,
            starting: false,
        }],
        fencing_tokens: [("a".to_string(), 6)].into(),
        ..Default::default()
    };
    let mut i = input(&ls, &pods, &[], t0);
    i.status = &status;
    let d = decide(&i, &mut Memory::default());
    assert_eq!(recreated(&d), vec![("a".into(), "p".into(), 7)]);
    // p was replaced by a pod of the same name (a new uid), or the status does not say which p
    // it was: the old p may still run a, so nobody gets it for one lease duration.
    let replaced = [
        PodFacts {
            uid: "uid-p2".into(),
            ..pod("p")
        },
        pod("q"),
    ];
    let mut no_uid = status.clone();
    no_uid.assignments[0].pod_uid = None;
    for (pods, status) in [(&replaced[..], &status), (&pods[..], &no_uid)] {
        let mut m = Memory::default();
        let mut i = input(&ls, pods, &[], t0);
        i.status = status;
        let d = decide(&i, &mut m);
        assert!(d.writes.is_empty(), "{:?}", d.writes);
        let mut i = input(&ls, pods, &[], t0 + SECS);
        i.status = status;
        let d = decide(&i, &mut m);
        assert_eq!(assigns(&d).len(), 1, "{:?}", d.writes);
        assert!(recreated(&d).is_empty());
    }
}

#[test]
fn an_unresponsive_pod_gets_nothing_in_any_set_until_it_renews_or_restarts() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("p"), pod("q")];
    let mut m = Memory::default();
    let mut unresponsive = Unresponsive::default();
    let held = [lease("a", Some("p"), 1, 0)];
    decide(&input(&ls, &pods, &held, t0), &mut m);
    let d = decide(&input(&ls, &pods, &held, t0 + SECS), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "q".into(), 2)]);
    assert!(d.lapsed.contains("uid-p"));
    unresponsive.learn(&d, &pods);
    assert!(unresponsive.contains(&pods[0]));
    // Another set (fresh memory, no Lease on p): p is the emptiest pod, yet gets nothing.
    let other = [wanted("x"), wanted("y")];
    let leases = [lease("x", Some("q"), 0, 0)];
    let mut i = input(&other, &pods, &leases, t0 + SECS);
    i.unresponsive = &unresponsive;
    let d = decide(&i, &mut Memory::default());
    assert_eq!(assigns(&d), vec![("y".into(), "q".into(), 0)]);
    unresponsive.learn(&d, &pods);
    assert!(unresponsive.contains(&pods[0]), "still unresponsive");
    // p renews a Lease it still holds somewhere: it is back.
    let mut seen = Memory::default();
    let on_p = [lease("z", Some("p"), 0, 0)];
    decide(&input(&[wanted("z")], &pods, &on_p, t0), &mut seen);
    let renewed = [lease("z", Some("p"), 0, 1)];
    let d = decide(&input(&[wanted("z")], &pods, &renewed, t0), &mut seen);
    assert!(d.renewed.contains("uid-p"));
    let mut u2 = unresponsive.clone();
    u2.learn(&d, &pods);
    assert!(!u2.contains(&pods[0]));
    // Or its containers restart.
    let restarted = PodFacts {
        restarts: 1,
        ..pod("p")
    };
    assert!(!unresponsive.contains(&restarted));
    unresponsive.retain(|uid| uid != "uid-p");
    assert!(!unresponsive.contains(&pods[0]));
}

#[test]
fn a_listener_is_starting_until_its_holder_renewed_after_the_assignment() {
    let t0 = Instant::now();
    let ls = [wanted("a")];
    let pods = [pod("p")];
    let mut m = Memory::default();
    // Assigned (acquireTime = renewTime): starting.
    let d = decide(&input(&ls, &pods, &[lease("a", Some("p"), 1, 0)], t0), &mut m);
    assert_eq!(
        d.summary.states,
        vec![(
            "a".into(),
            ListenerState::Starting {
                pod: "p".into(),
                uid: "uid-p".into(),
                transitions: 1
            }
        )]
    );
    assert_eq!((d.summary.running, d.summary.starting), (0, 1));
    assert!(d.silent.is_empty(), "not silent before the Lease could expire");
    // Renewed: running.
    let d = decide(&input(&ls, &pods, &[lease("a", Some("p"), 1, 1)], t0), &mut m);
    assert_eq!((d.summary.running, d.summary.starting), (1, 0));
}

#[test]
fn a_pod_that_never_renewed_is_named_silent_and_one_that_stopped_too() {
    let t0 = Instant::now();
    let ls = [wanted("a"), wanted("b")];
    let pods = [pod("p"), pod("q"), pod("r")];
    let mut m = Memory::default();
    let mut unresponsive = Unresponsive::default();
    // p was assigned a and never renewed; q renewed b once, then stopped.
    let held = [lease("a", Some("p"), 0, 0), lease("b", Some("q"), 0, 0)];
    let d = decide(&input(&ls, &pods, &held, t0), &mut m);
    unresponsive.learn(&d, &pods);
    let renewed = [lease("a", Some("p"), 0, 0), lease("b", Some("q"), 0, 1)];
    let d = decide(&input(&ls, &pods, &renewed, t0 + SECS / 2), &mut m);
    unresponsive.learn(&d, &pods);
    let mut i = input(&ls, &pods, &renewed, t0 + SECS * 2);
    i.unresponsive = &unresponsive;
    let d = decide(&i, &mut m);
    let silent: Vec<(&str, bool)> = d.silent.iter().map(|s| (s.pod.as_str(), s.never_renewed)).collect();
    assert_eq!(silent, vec![("p", true), ("q", false)]);
    // Both taken over by r, the one pod left.
    assert_eq!(
        assigns(&d),
        vec![("a".into(), "r".into(), 1), ("b".into(), "r".into(), 1)]
    );
}

/// The status a decision's shell writes (its tokens and assignments).
pub(super) fn status_of(d: &Decision) -> ListenerSetStatus {
    let assignments =
        d.summary
            .states
            .iter()
            .filter_map(|(id, s)| match s {
                ListenerState::Running { pod, uid, transitions }
                | ListenerState::Starting { pod, uid, transitions } => Some(crate::api::listenerset::Assignment {
                    listener: id.clone(),
                    pod: pod.clone(),
                    pod_uid: Some(uid.clone()),
                    since: None,
                    transitions: *transitions,
                    starting: matches!(s, ListenerState::Starting { .. }),
                }),
                _ => None,
            })
            .collect();
    ListenerSetStatus {
        fencing_tokens: d.tokens.clone(),
        assignments,
        ..Default::default()
    }
}

#[test]
fn a_create_the_cache_has_not_shown_keeps_its_token_and_the_next_handover_steps_by_one() {
    let t0 = Instant::now();
    let (ls, pods) = ([wanted("a")], [pod("p"), pod("q")]);
    let mut m = Memory::default();
    let d = decide(&input(&ls, &pods, &[], t0), &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "p".into(), 0)]);
    m.written(&d.writes[0].change, t0);
    let mut status = status_of(&d);
    // The next reconcile runs before the cache shows the new Lease: the listener is shown as
    // starting on p with the token written (0), and the status written from it says so. (It
    // showed the next token, 1; the status reserved it, and the first handover gave 2.)
    let mut i = input(&ls, &pods, &[], t0 + Duration::from_millis(5));
    i.status = &status;
    let d = decide(&i, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.tokens.get("a"), Some(&0));
    let starting = ListenerState::Starting {
        pod: "p".into(),
        uid: "uid-p".into(),
        transitions: 0,
    };
    assert_eq!(d.summary.states, vec![("a".into(), starting)]);
    status = status_of(&d);
    // p runs it, then releases it: q gets token 1.
    let mut i = input(&ls, &pods, &[], t0 + Duration::from_millis(10));
    let held = [lease("a", Some("p"), 0, 1)];
    i.leases = &held;
    i.status = &status;
    let d = decide(&i, &mut m);
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    status = status_of(&d);
    let released = [lease("a", None, 0, 1)];
    let mut i = input(&ls, &pods, &released, t0 + Duration::from_millis(20));
    i.status = &status;
    let d = decide(&i, &mut m);
    assert_eq!(assigns(&d), vec![("a".into(), "p".into(), 1)]);
}
