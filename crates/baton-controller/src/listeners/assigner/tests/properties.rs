//! Property tests of `assign` over random worlds of listeners, pods and leases.
use super::*;

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
                prefer: None,
            })
            .collect();
        let pods = ps
            .iter()
            .enumerate()
            .filter(|(_, (exists, _, _))| *exists)
            .map(|(i, (_, eligible, _))| PodView {
                weight: 1,
                name: format!("p{i}"),
                uid: format!("uid-p{i}"),
                eligible: *eligible,
                // An order of ties other than the names'.
                rank: (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
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
                    held_for: None,
                    successor: None,
                    rebalancing: false,
                    listener: format!("l{i}"),
                    holder,
                    holder_uid,
                    expired: *expired || all_free,
                    transitions: *transitions,
                    resource_version: format!("rv{i}"),
                    release_requested: *requested,
                    renewed: true,
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
            let kind = match m {
                Move::Assign { .. } => 0,
                Move::RequestRelease { .. } => 1,
                Move::DeleteLease { .. } => 2,
                Move::RemoveFinalizer { .. } | Move::Adopt { .. } => unreachable!("the assigner never emits {m:?}"),
            };
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
