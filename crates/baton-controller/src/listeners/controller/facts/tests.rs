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

/// The time held as evening out reads it, against the true one at wall time `now` of Leases
/// acquired at their resourceVersion (seconds): exact under `residence`, at least it above.
fn held_as_read(s: &SetLeases, now: u64, residence: u64) -> Result<(), String> {
    for f in s.facts() {
        let acquired: u64 = f.labelled_uid.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        let truly = Duration::from_secs(now - acquired);
        let read = f.view.held_for.ok_or("no time held")?;
        let ok = if truly < Duration::from_secs(residence) {
            read == truly
        } else {
            read >= Duration::from_secs(residence)
        };
        if !ok {
            return Err(format!("{}: read {read:?}, truly {truly:?}", f.name));
        }
    }
    Ok(())
}

#[test]
fn the_time_held_is_worked_out_again_only_where_evening_out_can_read_it() {
    let (made, now) = (Cell::new(0), Cell::new(100u64));
    let worked = Cell::new(0);
    let held = |l: &CachedLease| {
        worked.set(worked.get() + 1);
        let acquired: u64 = l.metadata.resource_version.as_deref()?.parse().ok()?;
        Some(Duration::from_secs(now.get() - acquired))
    };
    let mut s = SetLeases::default();
    s.set_residence(Duration::from_secs(30));
    // Held 100, 90, 80 and 5 s.
    let all = vec![
        lease("s-a", "0"),
        lease("s-b", "10"),
        lease("s-c", "20"),
        lease("s-d", "95"),
    ];
    s.update(stamp("u"), all, |l| make(l, &made, true), held);
    assert_eq!(worked.get(), 4);
    held_as_read(&s, 100, 30).unwrap();
    // An update at wall time `at` reading `reread` again: how many times held it worked out.
    let step = |s: &mut SetLeases, at: u64, reread: Vec<Reread>| {
        now.set(at);
        worked.set(0);
        s.update_some(reread, |l| make(l, &made, true), held);
        held_as_read(s, at, 30).unwrap();
        worked.get()
    };
    // 20 s later only d (held 5 s, young) is worked out again; then d (31 s) and b, changed.
    assert_eq!(step(&mut s, 120, vec![]), 1);
    let b = vec![("s-b".into(), Some(lease("s-b", "125")))];
    assert_eq!(step(&mut s, 126, b), 2, "the young d and the changed b");
    // d went past the residence (31 s at 126): it is not worked out again; b (held 5 s, then
    // 15 s) is.
    assert_eq!(step(&mut s, 130, vec![]), 1);
    assert_eq!(step(&mut s, 140, vec![]), 1);
    // A longer residence: every time held again.
    s.set_residence(Duration::from_secs(120));
    worked.set(0);
    s.update_some(vec![], |l| make(l, &made, true), held);
    assert_eq!(worked.get(), 4);
    held_as_read(&s, 140, 120).unwrap();
    // Without a residence set, every time held each update (the facts' own tests).
    let mut t = SetLeases::default();
    t.update(stamp("u"), vec![lease("s-a", "0")], |l| make(l, &made, true), held);
    worked.set(0);
    t.update_some(vec![], |l| make(l, &made, true), held);
    assert_eq!(worked.get(), 1);
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
    adopted(
        "s-a".into(),
        LeaseView {
            listener: "a".into(),
            holder: holder.map(String::from),
            holder_uid: holder.map(|h| format!("uid-{h}")),
            transitions: token,
            ..Default::default()
        },
    )
}

/// The facts of an adopted Lease `name` of the set's duration, seen now, with `view`.
fn adopted(name: String, view: LeaseView) -> LeaseFacts {
    LeaseFacts {
        name,
        view,
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

/// The kept facts brought up to the changed Leases alone are the facts brought up to every
/// Lease read: in any life of a few Leases (changes of version, listener, holder and
/// handover, facts not kept, Leases that come, go or are not the set's), after every pass.
mod only_the_changed {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::api::listenerset::lease::CachedOwner;

    /// One change of the world before a pass: Lease `slot` made again (`Some`: its listener,
    /// holder, token, handed over, facts kept) or deleted (`None`).
    type Change = (usize, Option<(u8, u8, i32, bool, bool)>);

    fn name(slot: usize) -> String {
        // The last slot is not the set's (its facts are never made).
        if slot == 5 {
            "x-5".into()
        } else {
            format!("s-{slot}")
        }
    }

    fn lease_of(
        slot: usize,
        rv: usize,
        (listener, holder, token, handed, keep): (u8, u8, i32, bool, bool),
    ) -> Arc<CachedLease> {
        let mut l = CachedLease::default();
        l.metadata.name = Some(name(slot));
        l.metadata.resource_version = Some(rv.to_string());
        l.labels = [("l".to_string(), format!("l{listener}"))].into_iter().collect();
        let mut annotations = vec![("keep", keep.to_string())];
        if holder > 0 {
            l.spec.holder_identity = Some(format!("p{holder}"));
            l.owner = Some(CachedOwner {
                name: format!("p{holder}"),
                uid: format!("u{holder}"),
            });
        }
        l.spec.lease_transitions = Some(token);
        if handed {
            annotations.push((HANDED_OVER_FROM_ANNOTATION, "p9".to_string()));
        }
        l.annotations = annotations.into_iter().collect();
        Arc::new(l)
    }

    fn make(l: &CachedLease) -> Option<Made> {
        let name = l.metadata.name.clone()?;
        name.strip_prefix("s-")?;
        let view = LeaseView {
            listener: l.labels.get("l")?.to_string(),
            holder: l.spec.holder_identity.clone(),
            holder_uid: l.owner.as_ref().map(|o| o.uid.clone()),
            transitions: l.spec.lease_transitions.unwrap_or(0),
            resource_version: l.metadata.resource_version.clone().unwrap_or_default(),
            ..Default::default()
        };
        let facts = adopted(name, view);
        Some((facts, l.annotations.get("keep") == Some("true")))
    }

    /// What a pass reads of the facts.
    fn seen(s: &SetLeases) -> impl PartialEq + std::fmt::Debug {
        let facts: Vec<_> = s.facts().iter().map(|f| (f.name.clone(), f.view.clone())).collect();
        let lookups: Vec<_> = (0..4)
            .map(|l| {
                s.get(&format!("l{l}"))
                    .and_then(|o| o.metadata.resource_version.clone())
            })
            .collect();
        let holders: Vec<String> = s.holders().map(str::to_string).collect();
        let unkept: Vec<String> = s.unkept().map(str::to_string).collect();
        (facts, lookups, s.len(), holders, unkept, s.handed().to_vec())
    }

    fn change() -> impl Strategy<Value = Change> {
        let made = (0u8..4, 0u8..3, 0i32..3, any::<bool>(), prop::bool::weighted(0.8));
        (0usize..6, prop::option::weighted(0.8, made))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn the_facts_of_the_changed_leases_are_the_facts_of_all(
            passes in prop::collection::vec(prop::collection::vec(change(), 0..4), 1..24),
        ) {
            let held = |l: &CachedLease| l.spec.lease_transitions.map(|t| Duration::from_secs(t as u64));
            let mut world: BTreeMap<String, Arc<CachedLease>> = BTreeMap::new();
            let (mut whole, mut some) = (SetLeases::default(), SetLeases::default());
            let mut rv = 0;
            let mut before: Option<(u64, u64, Vec<LeaseFacts>)> = None;
            for (pass, changes) in passes.into_iter().enumerate() {
                let mut marked = BTreeSet::new();
                for (slot, made) in changes {
                    rv += 1;
                    match made {
                        Some(m) => world.insert(name(slot), lease_of(slot, rv, m)),
                        None => world.remove(&name(slot)),
                    };
                    marked.insert(name(slot));
                }
                let all: Vec<_> = world.values().cloned().collect();
                let made_whole = whole.update(stamp("u"), all, make, held);
                let made_some = if pass == 0 {
                    some.update(stamp("u"), world.values().cloned().collect(), make, held)
                } else {
                    marked.extend(some.unkept().map(str::to_string));
                    let reread = marked.into_iter().map(|n| {
                        let l = world.get(&n).cloned();
                        (n, l)
                    });
                    some.update_some(reread.collect(), make, held)
                };
                let names = |v: Vec<Arc<CachedLease>>| v.iter().map(|l| l.metadata.name.clone()).collect::<Vec<_>>();
                prop_assert_eq!(names(made_some), names(made_whole), "pass {}: the Leases made", pass);
                prop_assert_eq!(seen(&some), seen(&whole), "pass {}", pass);
                // What the update tells the decision: it follows the last, and a shape kept means
                // the same Leases of the same listeners, changed at the places it names only.
                let d = some.delta(7);
                let (facts, last) = (some.facts(), &before);
                if let Some((shape, to, last)) = last {
                    prop_assert_eq!(d.from, *to, "pass {}: the update follows the last", pass);
                    if d.shape == *shape {
                        let same = |a: &LeaseFacts, b: &LeaseFacts| (&a.name, &a.view.listener) == (&b.name, &b.view.listener);
                        prop_assert!(facts.len() == last.len() && facts.iter().zip(last).all(|(a, b)| same(a, b)), "pass {}: same shape", pass);
                        for (i, (a, b)) in facts.iter().zip(last).enumerate() {
                            prop_assert!(a == b || d.changed.contains(&i), "pass {}: place {} changed unnamed", pass, i);
                        }
                    }
                }
                before = Some((d.shape, d.to, facts.to_vec()));
            }
        }
    }
}
