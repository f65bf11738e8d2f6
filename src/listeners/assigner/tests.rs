//! Unit tests of the parent module.
use super::*;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn l(id: &str) -> ListenerView {
    ListenerView {
        id: id.into(),
        ..Default::default()
    }
}
fn suspended(id: &str) -> ListenerView {
    ListenerView {
        id: id.into(),
        suspended: true,
        last_transitions: None,
    }
}
fn pod(name: &str) -> PodView {
    PodView {
        name: name.into(),
        uid: format!("uid-{name}"),
        eligible: true,
    }
}
fn unfit(name: &str) -> PodView {
    PodView {
        eligible: false,
        ..pod(name)
    }
}
fn held(listener: &str, holder: &str) -> LeaseView {
    LeaseView {
        listener: listener.into(),
        holder: Some(holder.into()),
        holder_uid: Some(format!("uid-{holder}")),
        expired: false,
        transitions: 3,
        resource_version: format!("rv-{listener}"),
        release_requested: false,
    }
}
fn released(listener: &str) -> LeaseView {
    LeaseView {
        holder: None,
        holder_uid: None,
        ..held(listener, "x")
    }
}
fn assign_to(listener: &str, pod: &str, rv: Option<&str>, transitions: i32) -> Move {
    Move::Assign {
        listener: listener.into(),
        pod: pod.into(),
        pod_uid: format!("uid-{pod}"),
        from_resource_version: rv.map(String::from),
        transitions,
    }
}
fn release(listener: &str, holder: &str, reason: ReleaseReason) -> Move {
    Move::RequestRelease {
        listener: listener.into(),
        holder: holder.into(),
        resource_version: format!("rv-{listener}"),
        reason,
    }
}

/// Apply moves the way the controller would (each write succeeds).
fn apply(moves: &[Move], pods: &[PodView], leases: &[LeaseView]) -> Vec<LeaseView> {
    let mut map: BTreeMap<String, LeaseView> = leases.iter().map(|l| (l.listener.clone(), l.clone())).collect();
    for m in moves {
        match m {
            Move::Assign {
                listener,
                pod,
                pod_uid,
                from_resource_version,
                transitions,
            } => {
                assert_eq!(
                    map.get(listener).map(|l| l.resource_version.clone()),
                    from_resource_version.clone()
                );
                assert!(pods.iter().any(|p| &p.name == pod && &p.uid == pod_uid));
                map.insert(
                    listener.clone(),
                    LeaseView {
                        listener: listener.clone(),
                        holder: Some(pod.clone()),
                        holder_uid: Some(pod_uid.clone()),
                        expired: false,
                        transitions: *transitions,
                        resource_version: format!("rv-{listener}-{transitions}"),
                        release_requested: false,
                    },
                );
            }
            Move::RequestRelease { listener, .. } => {
                if let Some(lease) = map.get_mut(listener) {
                    lease.release_requested = true;
                    lease.resource_version.push('r');
                }
            }
            Move::DeleteLease { listener, .. } => {
                map.remove(listener);
            }
        }
    }
    map.into_values().collect()
}

/// Agents of live pods act on release requests.
fn agents_release(pods: &[PodView], leases: &mut [LeaseView]) {
    for lease in leases.iter_mut() {
        let live = Index::new(pods).live_holder(lease).is_some();
        if live && lease.release_requested {
            lease.holder = None;
            lease.resource_version.push('x');
        }
    }
}

fn loads(pods: &[PodView], leases: &[LeaseView]) -> BTreeMap<String, usize> {
    let index = Index::new(pods);
    let mut load: BTreeMap<String, usize> = pods
        .iter()
        .filter(|p| p.eligible)
        .map(|p| (p.name.clone(), 0))
        .collect();
    for lease in leases {
        if let Some(p) = index.live_holder(lease).filter(|p| p.eligible) {
            *load.entry(p.name.clone()).or_default() += 1;
        }
    }
    load
}

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
    // Without an ownerReference uid the name alone identifies the holder.
    let mut no_uid = held("a", "p1");
    no_uid.holder_uid = None;
    assert_eq!(assign(&[l("a")], &[reborn], &[no_uid], 0), vec![]);
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
    assert_eq!(moves, vec![release("a", "p1", ReleaseReason::HolderNotEligible)]);
    let mut leases = apply(&moves, &pods, &leases);
    assert_eq!(assign(&listeners, &pods, &leases, 0), vec![]);
    agents_release(&pods, &mut leases);
    let moves = assign(&listeners, &pods, &leases, 0);
    assert_eq!(moves, vec![assign_to("a", "p2", Some("rv-arx"), 4)]);
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
    assert_eq!(moves, vec![release("a", "p1", ReleaseReason::HolderNotEligible)]);
    // An outstanding request reserves that room.
    let mut leases = leases;
    leases[0].release_requested = true;
    assert_eq!(assign(&[l("a"), l("b"), l("c")], &pods, &leases, 2), vec![]);
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
            release("c", "p1", ReleaseReason::OverLimit),
            release("d", "p1", ReleaseReason::OverLimit),
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

fn assigned_pods(moves: &[Move]) -> Vec<&str> {
    moves
        .iter()
        .filter_map(|m| match m {
            Move::Assign { pod, .. } => Some(pod.as_str()),
            _ => None,
        })
        .collect()
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
                transitions: 3
            }
        )
    );
    assert_eq!(s.states[1].1, ListenerState::Orphaned { holder: "gone".into() });
    assert_eq!(s.states[3].1, ListenerState::Pending);
}

fn k8s_pod(ready: bool, annotations: &[(&str, &str)], terminating: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("p1".into()),
            uid: Some("u1".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            deletion_timestamp: terminating.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        },
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn pod_views() {
    let view = pod_view(&k8s_pod(true, &[], false), true);
    assert_eq!(
        view,
        Some(PodView {
            name: "p1".into(),
            uid: "u1".into(),
            eligible: true
        })
    );
    assert_eq!(
        pod_view(&k8s_pod(true, &[], false), false).map(|p| p.eligible),
        Some(false)
    );
    assert!(!pod_is_eligible(&k8s_pod(false, &[], false)));
    assert!(!pod_is_eligible(&k8s_pod(true, &[], true)));
    assert!(!pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "true")], false)));
    assert!(!pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "")], false)));
    assert!(pod_is_eligible(&k8s_pod(true, &[(DRAIN_ANNOTATION, "false")], false)));
    assert_eq!(pod_view(&Pod::default(), true), None);
}

#[test]
fn lease_views() {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("sxt-a".into()),
            resource_version: Some("42".into()),
            labels: Some(
                [
                    (LISTENERSET_LABEL.to_string(), "sxt".to_string()),
                    (LISTENER_LABEL.to_string(), "a".to_string()),
                ]
                .into(),
            ),
            annotations: Some([(RELEASE_REQUESTED_ANNOTATION.to_string(), "suspended".to_string())].into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: "p1".into(),
                uid: "u1".into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("p1".into()),
            lease_transitions: Some(5),
            ..Default::default()
        }),
    };
    assert_eq!(
        lease_view(&lease, "sxt", true),
        Some(LeaseView {
            listener: "a".into(),
            holder: Some("p1".into()),
            holder_uid: Some("u1".into()),
            expired: true,
            transitions: 5,
            resource_version: "42".into(),
            release_requested: true,
        })
    );
    assert_eq!(lease_view(&lease, "other", false), None);
    let mut empty = lease.clone();
    empty.spec = Some(LeaseSpec {
        holder_identity: Some(String::new()),
        ..Default::default()
    });
    assert_eq!(lease_view(&empty, "sxt", false).and_then(|v| v.holder), None);
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
    assert_eq!(finalize(&pods, &[]), vec![]);
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

// ---- property tests ----

const LISTENER_POOL: usize = 10;
const POD_POOL: usize = 5;

#[derive(Clone, Debug)]
struct World {
    listeners: Vec<ListenerView>,
    pods: Vec<PodView>,
    leases: Vec<LeaseView>,
    max: u32,
}

fn world(all_free: bool) -> impl Strategy<Value = World> {
    let listeners = prop::collection::vec(
        (any::<bool>(), any::<bool>(), prop::option::of(0i32..10)),
        LISTENER_POOL,
    );
    let pods = prop::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), POD_POOL);
    // holder: index into pods pool plus 2 names that never exist; uid: 0 none, 1 right, 2 wrong.
    let leases = prop::collection::vec(
        (
            any::<bool>(),
            prop::option::of(0..POD_POOL + 2),
            0u8..3,
            any::<bool>(),
            0i32..6,
            any::<bool>(),
        ),
        LISTENER_POOL + 3,
    );
    (listeners, pods, leases, 0u32..4).prop_map(move |(ls, ps, les, max)| {
        let listeners = ls
            .iter()
            .enumerate()
            .filter(|(_, (present, _, _))| *present)
            .map(|(i, (_, suspended, last))| ListenerView {
                id: format!("l{i}"),
                suspended: *suspended,
                last_transitions: *last,
            })
            .collect();
        let pods = ps
            .iter()
            .enumerate()
            .filter(|(_, (exists, _, _))| *exists)
            .map(|(i, (_, eligible, _))| PodView {
                name: format!("p{i}"),
                uid: format!("uid-p{i}"),
                eligible: *eligible,
            })
            .collect();
        let leases = les
            .iter()
            .enumerate()
            .filter(|(_, (exists, ..))| *exists)
            .map(|(i, (_, holder, uid, expired, transitions, requested))| {
                let holder = holder.map(|h| format!("p{h}"));
                let holder_uid = match (uid, &holder) {
                    (1, Some(h)) => Some(format!("uid-{h}")),
                    (2, Some(_)) => Some("uid-stale".to_string()),
                    _ => None,
                };
                LeaseView {
                    listener: format!("l{i}"),
                    holder,
                    holder_uid,
                    expired: *expired || all_free,
                    transitions: *transitions,
                    resource_version: format!("rv{i}"),
                    release_requested: *requested,
                }
            })
            .collect();
        World {
            listeners,
            pods,
            leases,
            max,
        }
    })
}

fn run(w: &World) -> Vec<Move> {
    assign(&w.listeners, &w.pods, &w.leases, w.max)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_assigns_a_live_lease_and_only_to_eligible_pods(w in world(false)) {
        let moves = run(&w);
        let index = Index::new(&w.pods);
        let mut seen = BTreeSet::new();
        for m in &moves {
            let kind = match m { Move::Assign { .. } => 0, Move::RequestRelease { .. } => 1, Move::DeleteLease { .. } => 2 };
            prop_assert!(seen.insert((m.listener().to_string(), kind)),
                "two moves of one kind for a listener: {:?}", moves);
            if let Move::Assign { listener, pod, pod_uid, from_resource_version, .. } = m {
                let lease = w.leases.iter().find(|l| &l.listener == listener);
                // (a) the lease is free
                prop_assert!(lease.is_none_or(|l| index.live_holder(l).is_none()));
                prop_assert_eq!(from_resource_version.clone(), lease.map(|l| l.resource_version.clone()));
                // (b) eligible target
                let target = w.pods.iter().find(|p| &p.name == pod);
                prop_assert!(target.is_some_and(|p| p.eligible && &p.uid == pod_uid));
                // suspended and removed listeners are never assigned
                prop_assert!(w.listeners.iter().any(|l| &l.id == listener && !l.suspended));
            }
            if let Move::RequestRelease { listener, holder, .. } = m {
                let lease = w.leases.iter().find(|l| &l.listener == listener);
                let live = lease.and_then(|l| index.live_holder(l));
                prop_assert!(live.is_some_and(|p| &p.name == holder));
                prop_assert!(lease.is_some_and(|l| !l.release_requested));
            }
            if let Move::DeleteLease { listener, .. } = m {
                prop_assert!(!w.listeners.iter().any(|l| &l.id == listener));
                let lease = w.leases.iter().find(|l| &l.listener == listener);
                prop_assert!(lease.is_some_and(|l| index.live_holder(l).is_none()));
            }
        }
    }

    #[test]
    fn max_per_pod_is_respected(w in world(false)) {
        prop_assume!(w.max > 0);
        let moves = run(&w);
        let before = loads(&w.pods, &w.leases);
        let after = loads(&w.pods, &apply(&moves, &w.pods, &w.leases));
        let max = w.max as usize;
        for pod in assigned_pods(&moves) {
            // (c) a pod that received listeners is within the limit, counting what it held
            prop_assert!(after[pod] <= max, "{} holds {} > {}", pod, after[pod], max);
            prop_assert!(before[pod] < max);
        }
    }

    #[test]
    fn sticky_listeners_get_no_moves(w in world(false)) {
        let moves = run(&w);
        let index = Index::new(&w.pods);
        let load = loads(&w.pods, &w.leases);
        let max = if w.max == 0 { usize::MAX } else { w.max as usize };
        for listener in w.listeners.iter().filter(|l| !l.suspended) {
            let Some(lease) = w.leases.iter().find(|l| l.listener == listener.id) else { continue };
            let Some(holder) = index.live_holder(lease) else { continue };
            // (d) on an eligible pod within limits: nothing happens to it
            if holder.eligible && load[holder.name.as_str()] <= max {
                prop_assert!(moves.iter().all(|m| m.listener() != listener.id), "{:?}", moves);
            }
        }
    }

    #[test]
    fn all_free_start_is_balanced(w in world(true)) {
        let moves = run(&w);
        let leases = apply(&moves, &w.pods, &w.leases);
        let load = loads(&w.pods, &leases);
        // (e) spread across eligible pods is at most 1
        if let (Some(min), Some(max)) = (load.values().min(), load.values().max()) {
            prop_assert!(max - min <= 1, "{:?}", load);
        }
        // and every listener that could be placed was placed
        let wanted = w.listeners.iter().filter(|l| !l.suspended).count();
        let capacity = if load.is_empty() {
            0
        } else if w.max == 0 {
            usize::MAX
        } else {
            w.max as usize * load.len()
        };
        prop_assert_eq!(load.values().sum::<usize>(), wanted.min(capacity));
    }

    #[test]
    fn over_limit_sheds_exactly_the_excess(w in world(false)) {
        prop_assume!(w.max > 0);
        let max = w.max as usize;
        let staying = |leases: &[LeaseView]| {
            let index = Index::new(&w.pods);
            let mut count: BTreeMap<String, usize> = BTreeMap::new();
            for lease in leases {
                let in_spec = w.listeners.iter().any(|l| l.id == lease.listener && !l.suspended);
                if let Some(p) = index.live_holder(lease).filter(|p| p.eligible) {
                    if in_spec && !lease.release_requested {
                        *count.entry(p.name.clone()).or_default() += 1;
                    }
                }
            }
            count
        };
        let before_load = loads(&w.pods, &w.leases);
        let before = staying(&w.leases);
        let after = staying(&apply(&run(&w), &w.pods, &w.leases));
        for (pod, load) in before_load {
            if load > max {
                let was = before.get(&pod).copied().unwrap_or(0);
                let now = after.get(&pod).copied().unwrap_or(0);
                prop_assert_eq!(now, was.min(max), "pod {}", pod);
            }
        }
    }

    #[test]
    fn idempotent(w in world(false)) {
        let moves = run(&w);
        let leases = apply(&moves, &w.pods, &w.leases);
        // (f) nothing more to do until an agent acts
        let again = assign(&w.listeners, &w.pods, &leases, w.max);
        prop_assert_eq!(again, vec![]);
    }

    #[test]
    fn deterministic_and_order_independent(w in world(false)) {
        // (g)
        let moves = run(&w);
        prop_assert_eq!(&moves, &run(&w));
        let mut rev = w.clone();
        rev.listeners.reverse();
        rev.pods.reverse();
        rev.leases.reverse();
        prop_assert_eq!(&moves, &run(&rev));
    }

    #[test]
    fn converges_with_agents_releasing(w in world(false)) {
        let mut leases = w.leases.clone();
        let mut rounds = 0;
        loop {
            agents_release(&w.pods, &mut leases);
            let moves = assign(&w.listeners, &w.pods, &leases, w.max);
            if moves.is_empty() {
                break;
            }
            rounds += 1;
            prop_assert!(rounds <= 4, "no convergence: {:?}", moves);
            leases = apply(&moves, &w.pods, &leases);
        }
        let index = Index::new(&w.pods);
        let load = loads(&w.pods, &leases);
        let max = if w.max == 0 { usize::MAX } else { w.max as usize };
        prop_assert!(load.values().all(|n| *n <= max));
        let full = load.values().all(|n| *n >= max);
        for listener in &w.listeners {
            let lease = leases.iter().find(|l| l.listener == listener.id);
            let holder = lease.and_then(|l| index.live_holder(l));
            if listener.suspended {
                prop_assert!(holder.is_none());
            } else if !holder.is_some_and(|p| p.eligible) {
                // not running on an eligible pod only if there is nowhere to put it
                prop_assert!(full, "{} not placed: {:?} {:?}", listener.id, holder, load);
            }
        }
        for lease in &leases {
            prop_assert!(w.listeners.iter().any(|l| l.id == lease.listener), "left over {:?}", lease);
        }
    }
}
