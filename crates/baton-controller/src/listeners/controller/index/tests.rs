//! Unit tests of the listener Lease index: which pods hold which sets' Leases.
use super::*;
use crate::api::listenerset::lease::CachedOwner;

/// Lease `name` of set `set` in namespace `ns`, held by pod `holder` (`(name, uid)`) or free.
fn lease(name: &str, set: Option<&str>, holder: Option<(&str, &str)>) -> CachedLease {
    let mut l = CachedLease::default();
    l.metadata.namespace = Some("ns".into());
    l.metadata.name = Some(name.into());
    if let Some(set) = set {
        l.labels = [(LISTENERSET_LABEL, set.to_string())].into_iter().collect();
    }
    if let Some((pod, uid)) = holder {
        l.spec.holder_identity = Some(pod.into());
        l.owner = Some(CachedOwner {
            name: pod.into(),
            uid: uid.into(),
        });
    }
    l
}

fn held(index: &LeaseIndex, uid: &str) -> Vec<String> {
    let mut sets = index.sets_held_by("ns", uid);
    sets.sort();
    sets
}

#[test]
fn a_pod_holds_the_sets_of_its_leases_until_they_move_or_go() {
    let (index, now) = (LeaseIndex::default(), Instant::now());
    let woke = index.observe(&lease("a-1", Some("a"), Some(("p", "u1"))), false, now);
    assert_eq!(woke, Some(("ns".to_string(), "a".to_string())));
    index.observe(&lease("a-2", Some("a"), Some(("p", "u1"))), false, now);
    index.observe(&lease("b-1", Some("b"), Some(("p", "u1"))), false, now);
    assert_eq!(held(&index, "u1"), ["a", "b"]);
    assert_eq!(index.leases_of("ns", "a"), ["a-1", "a-2"]);

    // A handover: b-1 moves to u2; a-1 is released.
    index.observe(&lease("b-1", Some("b"), Some(("q", "u2"))), false, now);
    index.observe(&lease("a-1", Some("a"), None), false, now);
    assert_eq!(held(&index, "u1"), ["a"]);
    assert_eq!(held(&index, "u2"), ["b"]);

    // The same record again wakes nothing and counts nothing twice.
    assert_eq!(
        index.observe(&lease("a-2", Some("a"), Some(("p", "u1"))), false, now),
        None
    );
    index.observe(&lease("a-2", Some("a"), Some(("p", "u1"))), true, now);
    assert!(!index.holds_any("ns", "u1"));
    assert!(index.holds_any("ns", "u2"));
}

#[test]
fn a_lease_that_loses_its_set_label_or_its_set_counts_for_nobody() {
    let (index, now) = (LeaseIndex::default(), Instant::now());
    index.observe(&lease("a-1", Some("a"), Some(("p", "u1"))), false, now);
    index.observe(&lease("b-1", Some("b"), Some(("p", "u1"))), false, now);
    // Its label taken off: no longer the set's, and the set is told.
    let woke = index.observe(&lease("a-1", None, Some(("p", "u1"))), false, now);
    assert_eq!(woke, Some(("ns".to_string(), "a".to_string())));
    assert_eq!(held(&index, "u1"), ["b"]);
    assert!(index.leases_of("ns", "a").is_empty());
    index.forget_set("ns", "b");
    assert!(!index.holds_any("ns", "u1"));
    assert!(index.leases_of("ns", "b").is_empty());
}

#[test]
fn a_relist_forgets_the_leases_it_does_not_show() {
    use kube::runtime::watcher::Event;
    let (index, now) = (LeaseIndex::default(), Instant::now());
    index.apply(&Event::Apply(Arc::new(lease("a-1", Some("a"), Some(("p", "u1"))))), now);
    index.apply(&Event::Apply(Arc::new(lease("a-2", Some("a"), Some(("q", "u2"))))), now);
    index.apply(&Event::Init, now);
    index.apply(
        &Event::InitApply(Arc::new(lease("a-2", Some("a"), Some(("q", "u2"))))),
        now,
    );
    index.apply(&Event::InitDone, now);
    assert!(!index.holds_any("ns", "u1"));
    assert_eq!(held(&index, "u2"), ["a"]);
    assert_eq!(index.leases_of("ns", "a"), ["a-2"]);
}

#[test]
fn a_pass_reads_again_the_leases_changed_since_the_last_one() {
    use kube::runtime::watcher::Event;
    let (index, now) = (LeaseIndex::default(), Instant::now());
    let some = |names: &[&str]| Changes::Some {
        epoch: 0,
        names: names.iter().map(|n| n.to_string()).collect(),
    };
    index.observe(&lease("a-1", Some("a"), Some(("p", "u1"))), false, now);
    index.observe(&lease("a-2", Some("a"), Some(("p", "u1"))), false, now);
    index.observe(&lease("b-1", Some("b"), None), false, now);
    // A pass that kept nothing reads the set whole; the marks are taken.
    assert_eq!(index.take_changes("ns", "a", None), Changes::All { epoch: 0 });
    assert_eq!(index.take_changes("ns", "a", Some(0)), some(&[]));

    // Every change is marked, a renewal that wakes nothing too (the pass keeps the Lease as
    // read); a Lease that moves to another set is marked in both.
    let renewed = lease("a-2", Some("a"), Some(("p", "u1")));
    assert_eq!(index.observe(&renewed, false, now), None);
    index.observe(&lease("a-1", Some("b"), Some(("p", "u1"))), false, now);
    assert_eq!(index.take_changes("ns", "a", Some(0)), some(&["a-1", "a-2"]));
    assert_eq!(index.take_changes("ns", "b", Some(0)), some(&["a-1", "b-1"]));
    index.observe(&lease("b-1", Some("b"), None), true, now);
    assert_eq!(index.take_changes("ns", "b", Some(0)), some(&["b-1"]));

    // After a relist the store is another: every set is read whole once.
    index.apply(&Event::Init, now);
    index.apply(&Event::InitApply(Arc::new(lease("a-2", Some("a"), None))), now);
    assert_eq!(index.take_changes("ns", "a", Some(0)), some(&["a-2"]));
    index.apply(&Event::InitDone, now);
    assert_eq!(index.take_changes("ns", "a", Some(0)), Changes::All { epoch: 1 });
    assert_eq!(
        index.take_changes("ns", "b", Some(1)),
        Changes::Some {
            epoch: 1,
            names: vec![]
        }
    );

    // Too many to name (past 16 in a small set, past a quarter of a large one): the set is
    // read whole.
    for i in 0..17 {
        index.observe(&lease(&format!("a-{i}"), Some("a"), None), false, now);
    }
    assert_eq!(index.take_changes("ns", "a", Some(1)), Changes::All { epoch: 1 });
    for i in 0..400 {
        index.observe(&lease(&format!("c-{i}"), Some("c"), None), false, now);
    }
    assert_eq!(index.take_changes("ns", "c", Some(1)), Changes::All { epoch: 1 });
    let renew = |range: std::ops::Range<usize>| {
        for i in range {
            index.observe(&lease(&format!("c-{i}"), Some("c"), None), false, now);
        }
    };
    renew(0..100);
    assert!(matches!(index.take_changes("ns", "c", Some(1)), Changes::Some { names, .. } if names.len() == 100));
    renew(0..101);
    assert_eq!(index.take_changes("ns", "c", Some(1)), Changes::All { epoch: 1 });
}

#[test]
fn a_pod_is_seen_letting_a_lease_go_when_it_no_longer_holds_it() {
    let index = LeaseIndex::default();
    let t0 = Instant::now();
    let at = |ms| t0 + std::time::Duration::from_millis(ms);
    index.observe(&lease("a-1", Some("a"), Some(("p", "u1"))), false, at(0));
    index.observe(&lease("a-2", Some("a"), Some(("p", "u1"))), false, at(0));
    assert_eq!(index.let_go_at("ns", "u1"), None, "given Leases, let none go");
    // The holder acknowledges (a new record, the same holder): nothing let go.
    let mut acked = lease("a-1", Some("a"), Some(("p", "u1")));
    acked.spec.lease_transitions = Some(1);
    index.observe(&acked, false, at(1));
    assert_eq!(index.let_go_at("ns", "u1"), None);
    // Handed over to u2: u1 let it go; u2 did not.
    index.observe(&lease("a-1", Some("a"), Some(("q", "u2"))), false, at(2));
    assert_eq!(index.let_go_at("ns", "u1"), Some(at(2)));
    assert_eq!(index.let_go_at("ns", "u2"), None);
    // Released by u2; deleted while u1 held it.
    index.observe(&lease("a-1", Some("a"), None), false, at(3));
    assert_eq!(index.let_go_at("ns", "u2"), Some(at(3)));
    index.observe(&lease("a-2", Some("a"), Some(("p", "u1"))), true, at(4));
    assert_eq!(index.let_go_at("ns", "u1"), Some(at(4)));
    assert_eq!(index.let_go_at("other", "u1"), None, "another namespace");
}

#[test]
fn one_copy_of_each_name_is_kept_while_an_entry_uses_it() {
    let mut names = Names::default();
    let (a, b) = (names.of("pod-uid"), names.of("pod-uid"));
    assert!(Arc::ptr_eq(&a, &b));
    drop((a, b));
    let held: Vec<Arc<str>> = (0..200).map(|i| names.of(&format!("u{i}"))).collect();
    // The copies doubled past the last count: those no entry uses went.
    assert!(!names.kept.contains("pod-uid"));
    assert_eq!(names.kept.len(), 200);
    assert!(held
        .iter()
        .all(|h| names.kept.get(&**h).is_some_and(|k| Arc::ptr_eq(k, h))));
}
