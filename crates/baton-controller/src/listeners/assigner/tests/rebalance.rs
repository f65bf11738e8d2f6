//! Evening out (`assign_balanced`): the moves a scale-out needs and no more, within the budget
//! of concurrent moves, never a listener twice, never while something else moves, weighted.
use super::*;
use std::time::Duration;

fn balanced(max_moves: u32) -> Balancing {
    Balancing {
        max_skew: 1,
        max_moves,
        min_residence: Duration::ZERO,
        wait: None,
    }
}

fn pods(n: usize) -> Vec<PodView> {
    (0..n).map(|i| pod(&format!("p{i:02}"))).collect()
}

/// `n` listeners spread round-robin over `over` pods, acknowledged.
fn spread(n: usize, over: &[PodView]) -> (Vec<ListenerView>, Vec<LeaseView>) {
    let listeners = (0..n).map(|i| l(&format!("l{i:05}"))).collect::<Vec<_>>();
    let leases = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| held(&l.id, &over[i % over.len()].name))
        .collect();
    (listeners, leases)
}

fn skew_of(pods: &[PodView], leases: &[LeaseView]) -> usize {
    let load = loads(pods, leases);
    load.values().max().unwrap_or(&0) - load.values().min().unwrap_or(&0)
}

/// Run rounds of decide → write → agents release until nothing changes; check every round.
/// Returns the listeners asked to move (each at most once, asserted) and the rounds taken.
fn settle(
    listeners: &[ListenerView],
    pods: &[PodView],
    mut leases: Vec<LeaseView>,
    balancing: &Balancing,
) -> (Vec<String>, usize, Vec<LeaseView>) {
    let mut moved: Vec<String> = Vec::new();
    for round in 0..10_000 {
        let (moves, balance) = assign_balanced(listeners, pods, &leases, 0, Some(balancing));
        if moves.is_empty() {
            return (moved, round, leases);
        }
        for m in &moves {
            if let Move::RequestRelease { listener, reason, .. } = m {
                assert_eq!(*reason, ReleaseReason::Rebalance, "{m:?}");
                assert!(!moved.contains(listener), "{listener} asked to move twice");
                moved.push(listener.clone());
            }
        }
        leases = apply(&moves, pods, &leases);
        // Assigned now: starting until the new holder's agent acknowledges (next round).
        for lease in leases.iter_mut() {
            if moves
                .iter()
                .any(|m| matches!(m, Move::Assign { listener, .. } if *listener == lease.listener))
            {
                lease.renewed = false;
            }
        }
        let in_flight = leases.iter().filter(|l| l.release_requested || !l.renewed).count();
        assert!(
            in_flight <= balancing.max_moves as usize,
            "round {round}: {in_flight} on the move, budget {}",
            balancing.max_moves
        );
        assert_eq!(
            balance.in_progress as usize, in_flight,
            "round {round}: in progress reported"
        );
        agents_release(pods, &mut leases);
        for lease in leases.iter_mut().filter(|l| l.holder.is_some()) {
            lease.renewed = true;
        }
    }
    panic!("never settled");
}

#[test]
fn a_scale_out_moves_the_minimum_within_the_budget_and_ends_balanced() {
    let all = pods(10);
    let (listeners, leases) = spread(2000, &all[..5]);
    let (moved, rounds, leases) = settle(&listeners, &all, leases, &balanced(50));
    assert_eq!(moved.len(), 1000, "5 → 10 pods: half the listeners, no more");
    assert!(skew_of(&all, &leases) <= 1, "{:?}", loads(&all, &leases));
    assert!(rounds >= 1000 / 50, "the budget paces it: {rounds} rounds");
    assert!(leases.iter().all(|l| l.holder.is_some()), "every listener runs");
}

#[test]
fn sticky_sets_and_balanced_ones_move_nothing() {
    let all = pods(10);
    let (listeners, leases) = spread(200, &all[..5]);
    let (moves, balance) = assign_balanced(&listeners, &all, &leases, 0, None);
    assert!(moves.is_empty(), "{moves:?}");
    assert_eq!(balance.skew, 40, "still reported");
    let (listeners, leases) = spread(201, &all);
    let (moves, balance) = assign_balanced(&listeners, &all, &leases, 0, Some(&balanced(10)));
    assert!(moves.is_empty(), "{moves:?}");
    assert_eq!((balance.skew, balance.waiting), (1, None));
}

#[test]
fn nothing_moves_while_the_caller_or_another_handover_says_wait() {
    let mut all = pods(4);
    let (listeners, mut leases) = spread(40, &all[..2]);
    let wait = Balancing {
        wait: Some("a rollout is under way".into()),
        ..balanced(10)
    };
    let (moves, balance) = assign_balanced(&listeners, &all, &leases, 0, Some(&wait));
    assert!(moves.is_empty());
    assert_eq!(balance.waiting.as_deref(), Some("a rollout is under way"));
    // A drain under way (a listener asked to leave a pod that may not keep it).
    all[0].eligible = false;
    let (moves, balance) = assign_balanced(&listeners, &all, &leases, 0, Some(&balanced(10)));
    assert!(
        moves.iter().all(|m| matches!(
            m,
            Move::RequestRelease {
                reason: ReleaseReason::HolderNotEligible,
                ..
            }
        )),
        "{moves:?}"
    );
    assert_eq!(balance.waiting.as_deref(), Some(WAIT_HANDOVERS));
    all[0].eligible = true;
    // A listener assigned and not yet acknowledged counts against the budget.
    for lease in leases.iter_mut().take(10) {
        lease.renewed = false;
    }
    let (moves, balance) = assign_balanced(&listeners, &all, &leases, 0, Some(&balanced(10)));
    assert!(moves.is_empty(), "budget of 10 taken by 10 starting: {moves:?}");
    assert_eq!(balance.in_progress, 10);
    let (moves, _) = assign_balanced(&listeners, &all, &leases, 0, Some(&balanced(13)));
    assert_eq!(moves.len(), 3, "the rest of the budget");
    assert!(
        moves
            .iter()
            .all(|m| !leases.iter().any(|l| l.listener == m.listener() && !l.renewed)),
        "a starting listener is not moved"
    );
}

#[test]
fn listeners_that_arrived_recently_stay_and_the_decision_says_when_to_look_again() {
    let all = pods(2);
    let (listeners, mut leases) = spread(10, &all[..1]);
    for (i, lease) in leases.iter_mut().enumerate() {
        lease.held_for = Some(Duration::from_secs(if i < 8 { 10 } else { 100 }));
    }
    let b = Balancing {
        min_residence: Duration::from_secs(60),
        ..balanced(10)
    };
    let (moves, balance) = assign_balanced(&listeners, &all, &leases, 0, Some(&b));
    let moved: Vec<&str> = moves.iter().map(Move::listener).collect();
    assert_eq!(moved, ["l00008", "l00009"], "only those resident long enough");
    assert_eq!(balance.waiting.as_deref(), Some(WAIT_RESIDENCE));
    assert_eq!(balance.wake, Some(Duration::from_secs(50)));
}

#[test]
fn weights_give_a_heavier_pod_its_share_and_max_per_pod_holds() {
    let mut all = pods(3);
    all[2].weight = 2;
    let (listeners, leases) = spread(400, &all[..2]);
    let (_, _, leases) = settle(&listeners, &all, leases, &balanced(25));
    let load = loads(&all, &leases);
    assert_eq!(load.values().copied().collect::<Vec<_>>(), [100, 100, 200], "{load:?}");
    // maxPerPod: a receiver never goes above it, even to even out.
    let all = pods(3);
    let (listeners, leases) = spread(90, &all[..2]);
    let (moves, _) = assign_balanced(&listeners, &all, &leases, 40, Some(&balanced(100)));
    let asked = moves
        .iter()
        .filter(|m| matches!(m, Move::RequestRelease { .. }))
        .count();
    assert!(asked <= 40, "{asked}");
}

proptest! {
    /// Any spread over pods of any weights ends within maxSkew (in listeners beyond each pod's
    /// share) or with no listener left that may move; no listener moves twice; the budget holds.
    #[test]
    fn any_spread_settles_within_the_skew(
        counts in prop::collection::vec(0usize..40, 2..6),
        weights in prop::collection::vec(1u32..4, 6),
        max_moves in 1u32..8,
        max_skew in 1u32..3,
    ) {
        let all: Vec<PodView> = counts
            .iter()
            .enumerate()
            .map(|(i, _)| PodView { weight: weights[i], ..pod(&format!("p{i}")) })
            .collect();
        let mut listeners = Vec::new();
        let mut leases = Vec::new();
        for (i, n) in counts.iter().enumerate() {
            for j in 0..*n {
                let id = format!("l{i}-{j:03}");
                listeners.push(l(&id));
                leases.push(held(&id, &all[i].name));
            }
        }
        let b = Balancing { max_skew, ..balanced(max_moves) };
        let (moved, _, leases) = settle(&listeners, &all, leases, &b);
        let (again, balance) = assign_balanced(&listeners, &all, &leases, 0, Some(&b));
        prop_assert!(again.is_empty());
        let total: f64 = listeners.len() as f64;
        let weight: f64 = all.iter().map(|p| f64::from(p.weight)).sum();
        let load = loads(&all, &leases);
        let excess: Vec<f64> = all.iter().map(|p| load[&p.name] as f64 - total * f64::from(p.weight) / weight).collect();
        let spread = excess.iter().cloned().fold(f64::MIN, f64::max) - excess.iter().cloned().fold(f64::MAX, f64::min);
        // Each move narrows the spread by one listener on each side, so a spread above
        // maxSkew is left only when no move can narrow it (at most 1 apart after rounding).
        prop_assert!(spread <= f64::from(max_skew) + 1e-9 || moved.is_empty() && spread <= 1.0 + 1e-9,
            "spread {spread:.2} > {max_skew}: loads {load:?}, moved {}", moved.len());
        prop_assert!(balance.skew <= max_skew, "reported {} for {spread:.2}", balance.skew);
    }
}
