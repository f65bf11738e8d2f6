//! Example-based tests of `assign`: spreading, stickiness, takeovers, releases, limits, fencing,
//! rolling deploys, the summary and a deleted set.
use super::*;

#[test]
fn new_listeners_spread_to_fewest_then_by_name() {
    let moves = assign(&[l("a"), l("b"), l("c")], &[pod("p2"), pod("p1")], &[], 0);
    assert_eq!(
        moves,
        vec![
            assign_to("a", "p1", None, 0),
            assign_to("b", "p2", None, 0),
            assign_to("c", "p1", None, 0),
        ]
    );
}

#[test]
fn existing_load_counts() {
    let moves = assign(
        &[l("a"), l("b"), l("c")],
        &[pod("p1"), pod("p2")],
        &[held("a", "p1"), held("b", "p1")],
        0,
    );
    assert_eq!(moves, vec![assign_to("c", "p2", None, 0)]);
}

#[test]
fn no_eligible_pod_means_nothing_assigned_and_pending() {
    let listeners = [l("a"), l("b")];
    let pods = [unfit("p1")];
    assert_eq!(assign(&listeners, &pods, &[], 0), vec![]);
    assert_eq!(assign(&listeners, &[], &[released("a")], 0), vec![]);
    let summary = summarize(&listeners, &pods, &[released("a")]);
    assert_eq!((summary.listeners, summary.pending), (2, 2));
}

#[test]
fn sticky_and_a_returning_pod_moves_nothing() {
    // p1 was deleted: its listeners went to p2; then p1 comes back.
    let listeners = [l("a"), l("b"), l("c")];
    let pods = [pod("p2")];
    let leases = [held("a", "p1"), held("b", "p1"), held("c", "p2")];
    let moves = assign(&listeners, &pods, &leases, 0);
    assert_eq!(
        moves,
        vec![
            assign_to("a", "p2", Some("rv-a"), 4),
            assign_to("b", "p2", Some("rv-b"), 4),
        ]
    );
    let leases = apply(&moves, &pods, &leases);
    let pods = [pod("p1"), pod("p2")];
    assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
}

#[test]
fn deleted_holder_is_taken_over_at_once() {
    let moves = assign(&[l("a")], &[pod("p2")], &[held("a", "p1")], 0);
    assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-a"), 4)]);
}

#[test]
fn same_name_new_uid_is_a_new_pod() {
    let mut reborn = pod("p1");
    reborn.uid = "uid-p1-new".into();
    let moves = assign(&[l("a")], std::slice::from_ref(&reborn), &[held("a", "p1")], 0);
    assert_eq!(
        moves,
        vec![Move::Assign {
            listener: "a".into(),
            pod: "p1".into(),
            pod_uid: "uid-p1-new".into(),
            from_resource_version: Some("rv-a".into()),
            transitions: 4,
        }]
    );
    // Without an ownerReference uid the Lease names no pod (no agent runs it, see
    // `api::listenerset::lease::Holder::is`): it is free, as the agent sees it.
    let mut no_uid = held("a", "p1");
    no_uid.holder_uid = None;
    assert_eq!(
        assign(&[l("a")], &[pod("p1")], &[no_uid], 0),
        vec![assign_to("a", "p1", Some("rv-a"), 4)]
    );
}

#[test]
fn expired_lease_is_free_and_prefers_another_pod_on_a_tie() {
    let mut lease = held("a", "p1");
    lease.expired = true;
    let moves = assign(&[l("a")], &[pod("p1"), pod("p2")], &[lease.clone()], 0);
    assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-a"), 4)]);
    // ...but load comes first.
    let moves = assign(&[l("a"), l("b")], &[pod("p1"), pod("p2")], &[lease, held("b", "p2")], 0);
    assert_eq!(moves, vec![assign_to("a", "p1", Some("rv-a"), 4)]);
}

#[test]
fn released_lease_is_assigned_and_annotation_cleared_by_assign() {
    let mut lease = released("a");
    lease.release_requested = true;
    let moves = assign(&[l("a")], &[pod("p1")], &[lease], 0);
    assert_eq!(moves, vec![assign_to("a", "p1", Some("rv-a"), 4)]);
}

#[test]
fn live_ineligible_holder_is_asked_to_release_never_overtaken() {
    let listeners = [l("a")];
    let pods = [unfit("p1"), pod("p2")];
    let leases = [held("a", "p1")];
    let moves = assign(&listeners, &pods, &leases, 0);
    assert_eq!(
        moves,
        vec![release_to("a", "p1", ReleaseReason::HolderNotEligible, "p2", 4)]
    );
    let leases = apply(&moves, &pods, &leases);
    assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
    // An agent that does not know the successor releases bare: the controller assigns.
    let mut bare = leases.clone();
    agents_release(&pods, &mut bare);
    let moves = assign(&listeners, &pods, &bare, 0);
    assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-arx"), 4)]);
    // One that does hands it over: nothing left to write.
    let mut handed = leases;
    agents_hand_over(&pods, &mut handed);
    assert_eq!(handed[0].holder.as_deref(), Some("p2"));
    assert_eq!(handed[0].transitions, 4);
    assert_eq!(assign(&listeners, &pods, &handed, 0), vec![]);
}

#[test]
fn ineligible_holder_keeps_running_when_nowhere_has_room() {
    let pods = [unfit("p1"), pod("p2")];
    // No eligible pod at all.
    assert_eq!(assign(&[l("a")], &pods[..1], &[held("a", "p1")], 0), vec![]);
    // p2 is full.
    let leases = [held("a", "p1"), held("b", "p1"), held("c", "p2")];
    assert_eq!(assign(&[l("a"), l("b"), l("c")], &pods, &leases, 1), vec![]);
    // p2 has room for one.
    let moves = assign(&[l("a"), l("b"), l("c")], &pods, &leases, 2);
    assert_eq!(
        moves,
        vec![release_to("a", "p1", ReleaseReason::HolderNotEligible, "p2", 4)]
    );
    // An outstanding request reserves that room, named or not.
    let mut leases = leases;
    leases[0].release_requested = true;
    assert_eq!(assign(&[l("a"), l("b"), l("c")], &pods, &leases, 2), vec![]);
    leases[0].successor = Some(("p2".into(), "uid-p2".into()));
    assert_eq!(assign(&[l("a"), l("b"), l("c")], &pods, &leases, 2), vec![]);
}

#[test]
fn a_named_successor_keeps_its_room_from_free_listeners() {
    let pods = [unfit("p1"), pod("p2"), pod("p3")];
    let listeners = [l("a"), l("b"), l("c")];
    let asked = on_its_way("a", "p1", "p2");
    // p2 and p3 may take one each; a is on its way to p2, so b goes to p3 and c waits.
    let moves = assign(&listeners, &pods, std::slice::from_ref(&asked), 1);
    assert_eq!(moves, vec![assign_to("b", "p3", None, 0)]);
    // A successor that is no longer that pod holds nothing for it: the free listeners fill
    // both pods, as they do with a request that names no successor.
    let mut elsewhere = asked;
    elsewhere.successor = Some(("p2".into(), "uid-other".into()));
    let moves = assign(&listeners, &pods, &[elsewhere], 1);
    assert_eq!(
        moves,
        vec![assign_to("b", "p2", None, 0), assign_to("c", "p3", None, 0)]
    );
}

/// A request's holder stopped before the cache showed its agent's handover: the listener, free
/// in the decision's eyes, goes to the successor its request named — where the handover, if it
/// was written, put it — not to whichever pod is least loaded, as long as the successor stays
/// within its share. Placed elsewhere, it would count there while landing on the successor, and
/// the pods would end uneven.
#[test]
fn a_listener_freed_on_its_way_goes_to_the_successor_its_request_named() {
    let pods = [pod("p2"), pod("p3"), pod("p4")];
    let listeners: Vec<ListenerView> = ["a", "b", "c", "d", "e", "f", "g"].into_iter().map(l).collect();
    let asked = on_its_way("a", "gone", "p2");
    // p2 holds 1, p3 none, p4 5: 7 listeners, a share of 2⅓ each.
    let mut leases = vec![asked.clone(), held("b", "p2")];
    leases.extend(["c", "d", "e", "f", "g"].into_iter().map(|id| held(id, "p4")));
    assert_eq!(
        assign(&listeners, &pods, &leases, 0),
        vec![assign_to("a", "p2", Some("rv-a"), 4)]
    );
    // A successor it would take beyond its share, or no longer that pod: the least loaded pod.
    let mut beyond = leases.clone();
    beyond[6] = held("g", "p2");
    assert_eq!(
        assign(&listeners, &pods, &beyond, 0),
        vec![assign_to("a", "p3", Some("rv-a"), 4)]
    );
    let mut elsewhere = leases;
    elsewhere[0].successor = Some(("p2".into(), "uid-other".into()));
    assert_eq!(
        assign(&listeners, &pods, &elsewhere, 0),
        vec![assign_to("a", "p3", Some("rv-a"), 4)]
    );
}

/// Listeners freed on their way to a named successor are placed before the other free ones:
/// placed after them, they could find the successor's share filled and be counted on another
/// pod while the handover (if it was written) put them on the successor, leaving the pods two
/// apart.
#[test]
fn listeners_on_their_way_to_a_successor_are_placed_before_the_other_free_ones() {
    let pods = [pod("p2"), pod("p3"), pod("p4")];
    let listeners: Vec<ListenerView> = ["a", "b", "c", "d", "e", "f", "g", "h", "z"]
        .into_iter()
        .map(l)
        .collect();
    let asked = on_its_way("z", "gone", "p2");
    // Each pod holds 2; a and b are new, z is on its way to p2: 9 listeners, a share of 3.
    let mut leases = vec![asked];
    for (id, p) in [
        ("c", "p2"),
        ("d", "p2"),
        ("e", "p3"),
        ("f", "p3"),
        ("g", "p4"),
        ("h", "p4"),
    ] {
        leases.push(held(id, p));
    }
    let moves = assign(&listeners, &pods, &leases, 0);
    let to = |id: &str| {
        moves.iter().find_map(|m| match m {
            Move::Assign { listener, pod, .. } if listener == id => Some(pod.clone()),
            _ => None,
        })
    };
    assert_eq!(to("z").as_deref(), Some("p2"), "{moves:?}");
    let mut new: Vec<String> = ["a", "b"].into_iter().filter_map(to).collect();
    new.sort();
    assert_eq!(new, ["p3", "p4"], "{moves:?}");
}

/// In a scale-in, a share is of every listener the eligible pods will hold, those still on pods
/// that are going included: a listener freed on its way to its named successor goes there while
/// the successor stays within that share, not within a share of the listeners not yet moving.
#[test]
fn a_successors_share_counts_the_listeners_still_on_pods_that_are_going() {
    let pods = [pod("p0"), pod("p1"), unfit("p5")];
    let listeners: Vec<ListenerView> = ["a", "b", "c", "d", "e", "f", "g", "z"].into_iter().map(l).collect();
    let asked = on_its_way("z", "gone", "p0");
    // p0 holds 3, p1 2, the going p5 2: with z, 8 listeners for two pods, a share of 4.
    let mut leases = vec![asked];
    for (id, p) in [
        ("a", "p0"),
        ("b", "p0"),
        ("c", "p0"),
        ("d", "p1"),
        ("e", "p1"),
        ("f", "p5"),
        ("g", "p5"),
    ] {
        leases.push(held(id, p));
    }
    let moves = assign(&listeners, &pods, &leases, 0);
    assert!(moves.contains(&assign_to("z", "p0", Some("rv-z"), 4)), "{moves:?}");
}

#[test]
fn listeners_that_go_back_are_placed_before_the_others() {
    let pods = [pod("p1"), pod("p2")];
    // a is new; z goes back to p1, which let it go. Each pod holds one: z to p1, then a to p2
    // (placed first, a would have gone to p1 too).
    let mut z = l("z");
    z.prefer = Some("p1".into());
    let listeners = vec![l("a"), l("b"), l("c"), z];
    let leases = [held("b", "p1"), held("c", "p2")];
    assert_eq!(
        assign(&listeners, &pods, &leases, 0),
        vec![assign_to("z", "p1", None, 0), assign_to("a", "p2", None, 0)]
    );
}

#[test]
fn suspended_listeners_are_released_and_never_assigned() {
    let pods = [pod("p1")];
    let moves = assign(&[suspended("a")], &pods, &[held("a", "p1")], 0);
    assert_eq!(moves, vec![release("a", "p1", ReleaseReason::Suspended)]);
    let mut asked = held("a", "p1");
    asked.release_requested = true;
    assert_eq!(assign(&[suspended("a")], &pods, &[asked], 0), vec![]);
    assert_eq!(assign(&[suspended("a")], &pods, &[released("a")], 0), vec![]);
    assert_eq!(assign(&[suspended("a")], &pods, &[], 0), vec![]);
    let mut expired = held("a", "p1");
    expired.expired = true;
    assert_eq!(assign(&[suspended("a")], &pods, &[expired], 0), vec![]);
}

#[test]
fn removed_listeners_are_released_then_deleted() {
    let pods = [pod("p1")];
    let moves = assign(&[], &pods, &[held("gone", "p1")], 0);
    assert_eq!(moves, vec![release("gone", "p1", ReleaseReason::Removed)]);
    let mut asked = held("gone", "p1");
    asked.release_requested = true;
    assert_eq!(assign(&[], &pods, &[asked], 0), vec![]);
    let delete = vec![Move::DeleteLease {
        listener: "gone".into(),
        resource_version: "rv-gone".into(),
    }];
    assert_eq!(assign(&[], &pods, &[released("gone")], 0), delete);
    assert_eq!(assign(&[], &[], &[held("gone", "p1")], 0), delete);
    let mut expired = held("gone", "p1");
    expired.expired = true;
    assert_eq!(assign(&[], &pods, &[expired], 0), delete);
}

#[test]
fn max_per_pod_limits_assignment() {
    let moves = assign(&[l("a"), l("b"), l("c")], &[pod("p1")], &[], 2);
    assert_eq!(
        moves,
        vec![assign_to("a", "p1", None, 0), assign_to("b", "p1", None, 0)]
    );
}

#[test]
fn over_limit_pods_shed_highest_ids() {
    let listeners = [l("a"), l("b"), l("c"), l("d")];
    let pods = [pod("p1"), pod("p2")];
    let leases = [held("a", "p1"), held("b", "p1"), held("c", "p1"), held("d", "p1")];
    let moves = assign(&listeners, &pods, &leases, 2);
    assert_eq!(
        moves,
        vec![
            release_to("c", "p1", ReleaseReason::OverLimit, "p2", 4),
            release_to("d", "p1", ReleaseReason::OverLimit, "p2", 4),
        ]
    );
    let mut leases = apply(&moves, &pods, &leases);
    assert_eq!(assign(&listeners, &pods, &leases, 2), vec![]);
    agents_release(&pods, &mut leases);
    let moves = assign(&listeners, &pods, &leases, 2);
    assert_eq!(assigned_pods(&moves), vec!["p2", "p2"]);
}

#[test]
fn over_limit_counts_listeners_already_leaving() {
    let listeners = [l("a"), l("b"), suspended("c")];
    let pods = [pod("p1"), pod("p2")];
    let mut asked = held("b", "p1");
    asked.release_requested = true;
    let leases = [held("a", "p1"), asked, held("c", "p1"), held("x", "p1")];
    // p1 holds 4 with max 1, but b, c and x are leaving anyway: a stays.
    let moves = assign(&listeners, &pods, &leases, 1);
    assert_eq!(
        moves,
        vec![
            release("c", "p1", ReleaseReason::Suspended),
            release("x", "p1", ReleaseReason::Removed),
        ]
    );
}

#[test]
fn fencing_token_continues_after_lease_recreation() {
    let listener = ListenerView {
        last_transitions: Some(7),
        ..l("a")
    };
    let moves = assign(std::slice::from_ref(&listener), &[pod("p1")], &[], 0);
    assert_eq!(moves, vec![assign_to("a", "p1", None, 8)]);
    let moves = assign(&[listener], &[pod("p1")], &[released("a")], 0);
    assert_eq!(moves, vec![assign_to("a", "p1", Some("rv-a"), 8)]);
}

#[test]
fn rolling_deploy_make_before_break() {
    // Two old pods, then a new pod appears and the old ones are drained one by one.
    let listeners: Vec<_> = ["a", "b", "c", "d"].into_iter().map(l).collect();
    let mut pods = vec![pod("old1"), pod("old2")];
    let mut leases = apply(&assign(&listeners, &pods, &[], 0), &pods, &[]);
    assert_eq!(loads(&pods, &leases).values().copied().collect::<Vec<_>>(), [2, 2]);
    pods.push(pod("new1"));
    assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
    pods[0].eligible = false; // drain old1
    for _ in 0..3 {
        let moves = assign(&listeners, &pods, &leases, 0);
        leases = apply(&moves, &pods, &leases);
        agents_release(&pods, &mut leases);
    }
    pods.remove(0);
    assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
    let load = loads(&pods, &leases);
    assert_eq!(load.values().sum::<usize>(), 4);
    assert_eq!(load.get("old2"), Some(&2));
    assert_eq!(load.get("new1"), Some(&2));
}

#[test]
fn summary_counts() {
    let listeners = [l("a"), l("b"), l("c"), l("d"), suspended("e"), suspended("f")];
    let mut expired = held("c", "p1");
    expired.expired = true;
    let leases = [
        held("a", "p1"),
        held("b", "gone"),
        expired,
        held("f", "p1"),
        held("removed", "p1"),
    ];
    let s = summarize(&listeners, &[pod("p1")], &leases);
    assert_eq!(
        (s.listeners, s.running, s.pending, s.orphaned, s.suspended),
        (6, 2, 1, 2, 1)
    );
    assert_eq!(
        s.states[0],
        (
            "a".to_string(),
            ListenerState::Running {
                pod: "p1".into(),
                uid: "uid-p1".into(),
                transitions: 3
            }
        )
    );
    assert_eq!(s.states[1].1, ListenerState::Orphaned { holder: "gone".into() });
    assert_eq!(s.states[3].1, ListenerState::Pending);
}

#[test]
fn a_deleted_set_releases_live_holders_deletes_free_leases_and_assigns_nothing() {
    let pods = [pod("p1"), pod("p2"), unfit("p3")];
    let mut asked = held("asked", "p2");
    asked.release_requested = true;
    let mut expired = held("expired", "p1");
    expired.expired = true;
    let leases = [
        held("a", "p1"),
        asked,
        held("c", "p3"),
        released("free"),
        held("orphan", "gone"),
        expired,
    ];
    let delete = |l: &str| Move::DeleteLease {
        listener: l.into(),
        resource_version: format!("rv-{l}"),
    };
    assert_eq!(
        finalize(&pods, &leases),
        vec![
            release("a", "p1", ReleaseReason::SetDeleted),
            release("c", "p3", ReleaseReason::SetDeleted),
            delete("expired"),
            delete("free"),
            delete("orphan"),
        ]
    );
    assert_eq!(finalize::<LeaseView>(&pods, &[]), vec![]);
}

#[test]
fn reasons_are_stable_strings() {
    let all = [
        ReleaseReason::HolderNotEligible,
        ReleaseReason::Suspended,
        ReleaseReason::Removed,
        ReleaseReason::OverLimit,
        ReleaseReason::SetDeleted,
    ];
    let names: BTreeSet<_> = all.iter().map(|r| r.as_str()).collect();
    assert_eq!(names.len(), all.len());
}

/// Sets that hold the same loads on the same pods (one listener per pod), each draining the
/// same pod: the successor each names is its own set's first among the equally loaded pods, so
/// together they spread, where ties by name sent every one of them to `p0`.
#[test]
fn equally_loaded_pods_are_ranked_in_each_sets_own_order() {
    let names = ["p0", "p1", "p2", "p3"];
    let listeners: Vec<ListenerView> = ["a", "b", "c", "d", "e"].map(l).to_vec();
    let leases: Vec<LeaseView> = vec![
        held("a", "p0"),
        held("b", "p1"),
        held("c", "p2"),
        held("d", "p3"),
        held("e", "drained"),
    ];
    let successor = |seed: u64| {
        let mut pods: Vec<PodView> = names
            .iter()
            .map(|n| PodView {
                rank: rank(seed, n),
                ..pod(n)
            })
            .collect();
        pods.push(unfit("drained"));
        assign(&listeners, &pods, &leases, 0).into_iter().find_map(|m| match m {
            Move::RequestRelease { listener, to, .. } if listener == "e" => to.map(|t| t.pod),
            _ => None,
        })
    };
    assert_eq!(successor(0).as_deref(), Some("p0"), "seed 0: ties by name");
    let mut chosen: BTreeMap<String, usize> = BTreeMap::new();
    for seed in 1..=40u64 {
        let to = successor(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        *chosen.entry(to.unwrap_or_default()).or_default() += 1;
    }
    assert!(
        chosen.len() == names.len() && chosen.values().all(|n| *n <= 20),
        "40 sets' successors: {chosen:?}"
    );
}
