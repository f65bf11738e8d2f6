//! Unit tests of the kept Lease facts.
use std::cell::Cell;

use super::*;
use crate::listeners::assigner::LeaseView;

/// Lease `name` at resourceVersion `rv`; its listener is the name's part after `s-`.
fn lease(name: &str, rv: &str) -> Arc<CachedLease> {
    let mut l = CachedLease::default();
    l.metadata.name = Some(name.into());
    l.metadata.resource_version = Some(rv.into());
    Arc::new(l)
}

fn stamp(uid: &str) -> Stamp {
    Stamp {
        uid: uid.into(),
        default_duration: 15,
    }
}

/// Facts that say which version they were made from (in `labelled_uid`); Leases named `x-…`
/// are not the set's.
fn make(l: &CachedLease, made: &Cell<usize>, keep: bool) -> Option<Made> {
    made.set(made.get() + 1);
    let name = l.metadata.name.clone()?;
    let listener = name.strip_prefix("s-")?.to_string();
    let facts = LeaseFacts {
        name,
        view: LeaseView {
            listener,
            ..Default::default()
        },
        observed: tokio::time::Instant::now(),
        duration: Duration::from_secs(15),
        terminating: false,
        adopted: true,
        labelled_uid: l.metadata.resource_version.clone(),
    };
    Some((facts, keep))
}

fn versions(s: &SetLeases) -> Vec<(String, String)> {
    s.facts()
        .iter()
        .map(|f| (f.view.listener.clone(), f.labelled_uid.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn facts_are_made_only_for_leases_that_changed() {
    let made = Cell::new(0);
    let mut s = SetLeases::default();
    let held = |_: &CachedLease| Some(Duration::from_secs(1));
    let first = vec![
        lease("s-a", "1"),
        lease("s-b", "2"),
        lease("s-c", "3"),
        lease("x-d", "4"),
    ];
    s.update(stamp("u"), first, |l| make(l, &made, true), held);
    assert_eq!(made.get(), 4);
    assert_eq!(s.len(), 3);
    assert_eq!(s.facts()[0].view.held_for, Some(Duration::from_secs(1)));

    // The same versions (other copies): nothing is made; the time held is worked out anew.
    made.set(0);
    let again = vec![
        lease("s-a", "1"),
        lease("s-b", "2"),
        lease("s-c", "3"),
        lease("x-d", "4"),
    ];
    s.update(
        stamp("u"),
        again,
        |l| make(l, &made, true),
        |_| Some(Duration::from_secs(2)),
    );
    assert_eq!(made.get(), 1, "only the Lease that is not the set's is looked at again");
    assert!(s
        .facts()
        .iter()
        .all(|f| f.view.held_for == Some(Duration::from_secs(2))));

    // b changed, a went, e came: made are b and e (and x-d); lookups follow.
    made.set(0);
    let next = vec![
        lease("s-b", "5"),
        lease("s-c", "3"),
        lease("s-e", "6"),
        lease("x-d", "4"),
    ];
    let changed = s.update(stamp("u"), next.clone(), |l| make(l, &made, true), held);
    assert_eq!(made.get(), 3);
    let changed: Vec<_> = changed.iter().filter_map(|l| l.metadata.name.clone()).collect();
    assert_eq!(changed, ["s-b", "s-e"], "the changed Leases of the set");
    assert_eq!(
        versions(&s),
        [("b", "5"), ("c", "3"), ("e", "6")].map(|(l, v)| (l.to_string(), v.to_string()))
    );
    assert!(!s.contains_key("a"));
    assert!(s.get("e").is_some_and(|l| Arc::ptr_eq(l, &next[2])));
    assert!(s.get("b").is_some_and(|l| Arc::ptr_eq(l, &next[0])));
    assert_eq!(s.len(), 3);
}

#[test]
fn facts_counted_from_this_pass_are_made_again() {
    let made = Cell::new(0);
    let mut s = SetLeases::default();
    let held = |_: &CachedLease| None;
    s.update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, false), held);
    s.update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, true), held);
    assert_eq!(made.get(), 2);
    s.update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, true), held);
    assert_eq!(made.get(), 2);
}

#[test]
fn another_set_or_default_duration_makes_every_fact_anew() {
    let made = Cell::new(0);
    let mut s = SetLeases::default();
    let held = |_: &CachedLease| None;
    let leases = || vec![lease("s-a", "1"), lease("s-b", "2")];
    s.update(stamp("u"), leases(), |l| make(l, &made, true), held);
    s.update(stamp("v"), leases(), |l| make(l, &made, true), held);
    assert_eq!(made.get(), 4);
    let longer = Stamp {
        default_duration: 30,
        ..stamp("v")
    };
    s.update(longer, leases(), |l| make(l, &made, true), held);
    assert_eq!(made.get(), 6);
    assert_eq!(s.len(), 2);
}

#[test]
fn a_lease_that_names_another_listener_moves_its_lookup() {
    let made = Cell::new(0);
    let mut s = SetLeases::default();
    let held = |_: &CachedLease| None;
    s.update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, true), held);
    let renamed = |l: &CachedLease| {
        make(l, &made, true).map(|(mut f, k)| {
            f.view.listener = "z".into();
            (f, k)
        })
    };
    s.update(stamp("u"), vec![lease("s-a", "2")], renamed, held);
    assert!(!s.contains_key("a"));
    assert!(s.contains_key("z"));
}

#[test]
fn two_leases_of_one_listener_count_once_and_the_last_read_is_its_lease() {
    let made = Cell::new(0);
    let mut s = SetLeases::default();
    // Leases `s-b` and `s-c` both name listener `a`; `s-d` names `d`.
    let one = |l: &CachedLease| {
        make(l, &made, true).map(|(mut f, k)| {
            if f.name != "s-d" {
                f.view.listener = "a".into();
            }
            (f, k)
        })
    };
    let leases = vec![lease("s-b", "1"), lease("s-c", "2"), lease("s-d", "3")];
    s.update(stamp("u"), leases, one, |_| None);
    assert_eq!(s.len(), 2);
    let of_a = s.get("a").and_then(|l| l.metadata.name.clone());
    assert_eq!(of_a.as_deref(), Some("s-c"));
    assert!(s.contains_key("d") && !s.contains_key("b") && !s.contains_key(""));
    s.update(stamp("u"), Vec::new(), |l| make(l, &made, true), |_| None);
    assert!(s.is_empty() && s.get("a").is_none());
}

#[test]
fn a_pass_gives_its_sets_leases_back_and_a_set_without_leases_keeps_nothing() {
    let cache = Arc::new(LeaseFactsCache::default());
    let key: SetKey = ("ns".into(), "s".into());
    let made = Cell::new(0);
    {
        let mut taken = cache.take(key.clone());
        taken.update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, true), |_| None);
        assert_eq!(cache.kept(&key), None, "taken out while the pass runs");
    }
    assert_eq!(cache.kept(&key), Some(1));
    {
        let mut taken = cache.take(key.clone());
        taken.update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, true), |_| None);
        assert_eq!(made.get(), 1, "kept from the last pass");
        taken.update(stamp("u"), Vec::new(), |l| make(l, &made, true), |_| None);
    }
    assert_eq!(cache.kept(&key), None);
    drop(cache.take(key.clone()));
    cache
        .take(key.clone())
        .update(stamp("u"), vec![lease("s-a", "1")], |l| make(l, &made, true), |_| None);
    cache.forget(&key);
    assert_eq!(cache.kept(&key), None);
}

/// Facts of listener `a` held by `holder` (none: released) with token `token`.
fn held(holder: Option<&str>, token: i32) -> LeaseFacts {
    LeaseFacts {
        name: "s-a".into(),
        view: LeaseView {
            listener: "a".into(),
            holder: holder.map(String::from),
            holder_uid: holder.map(|h| format!("uid-{h}")),
            transitions: token,
            ..Default::default()
        },
        observed: tokio::time::Instant::now(),
        duration: Duration::from_secs(15),
        terminating: false,
        adopted: true,
        labelled_uid: None,
    }
}

/// A Lease whose last tenure was handed over by pod `from`'s agent, if any.
fn handed_from(from: Option<&str>) -> CachedLease {
    let mut l = k8s_openapi::api::coordination::v1::Lease::default();
    if let Some(f) = from {
        l.metadata.annotations = Some([(HANDED_OVER_FROM_ANNOTATION.to_string(), f.to_string())].into());
    }
    CachedLease::from(l)
}

#[test]
fn a_handover_written_by_the_holders_agent_is_told_from_the_lease() {
    let by_p1 = handed_from(Some("p1"));
    assert_eq!(
        Handed::between(&held(Some("p1"), 3), &held(Some("p2"), 4), &by_p1),
        Some(Handed {
            listener: "a".into(),
            from: "p1".into(),
            to: "p2".into(),
            token: 4,
            acknowledged_in: None,
        })
    );
    // Seen whatever the last pass saw before it (the request, or an older copy).
    assert!(Handed::between(&held(Some("p0"), 1), &held(Some("p2"), 4), &by_p1).is_some());
    // The same tenure seen again (its acknowledgement), a release, or the controller's own
    // assignment (which removes the mark): no handover to report.
    assert_eq!(
        Handed::between(&held(Some("p2"), 4), &held(Some("p2"), 4), &by_p1),
        None
    );
    assert_eq!(Handed::between(&held(Some("p2"), 4), &held(None, 4), &by_p1), None);
    assert_eq!(
        Handed::between(&held(Some("p1"), 3), &held(Some("p2"), 4), &handed_from(None)),
        None
    );
    // Seen only once acknowledged: the gap as the Lease's own times record it.
    let mut acked = k8s_openapi::api::coordination::v1::Lease::default();
    acked.metadata.annotations = Some([(HANDED_OVER_FROM_ANNOTATION.to_string(), "p1".to_string())].into());
    let at = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .ok()
            .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime)
    };
    acked.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
        acquire_time: at(1_000),
        renew_time: at(1_180),
        ..Default::default()
    });
    let mut running = held(Some("p2"), 4);
    running.view.renewed = true;
    let h = Handed::between(&held(Some("p1"), 3), &running, &CachedLease::from(acked));
    assert_eq!(h.and_then(|h| h.acknowledged_in), Some(Duration::from_millis(180)));
}
