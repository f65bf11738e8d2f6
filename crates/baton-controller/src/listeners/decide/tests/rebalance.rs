//! Evening out as the decision makes it: it waits for a rollout or a pod that is not Ready, and
//! reports a burst once at its start and once at its end.
use super::*;

fn balanced() -> Option<Rebalance> {
    Some(Rebalance {
        max_skew: 1,
        max_moves: 4,
        min_residence: Duration::ZERO,
    })
}

/// Six listeners on p, none on q: both registered and answering.
fn lopsided(t: Instant) -> Scene {
    let ids = ["a", "b", "c", "d", "e", "f"];
    let mut scene =
        Scene::new(&ids, &["p", "q"], t).leases(ids.iter().map(|l| lease(l, Some("p"), 1, true, t)).collect());
    scene.rebalance = balanced();
    all_registered(scene, t)
}

fn rebalance_requests(d: &Decision) -> Vec<&str> {
    d.writes
        .iter()
        .filter(|w| {
            matches!(
                w.change,
                Move::RequestRelease {
                    reason: ReleaseReason::Rebalance,
                    ..
                }
            )
        })
        .map(|w| w.change.listener())
        .collect()
}

#[test]
fn a_sticky_set_does_not_even_out() {
    let t = Instant::now();
    let mut scene = lopsided(t);
    scene.rebalance = None;
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty());
    assert_eq!(d.balance.skew, 6);
}

#[test]
fn a_rollout_of_the_pods_or_a_pod_that_is_not_ready_holds_evening_out() {
    let t = Instant::now();
    let mut scene = lopsided(t);
    scene.pods[0].revision = Some(("Rollout web".into(), "v1".into()));
    scene.pods[1].revision = Some(("Rollout web".into(), "v2".into()));
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty(), "{:?}", d.writes);
    let why = d.balance.waiting.clone().unwrap_or_default();
    assert!(why.contains("Rollout web"), "{why}");
    assert_eq!(
        d.requeue,
        wake(ROLLOUT_RECHECK),
        "its status turning Healthy wakes nothing"
    );

    scene.pods[1].revision = Some(("Rollout web".into(), "v1".into()));
    // One revision, but the Rollout says it is scaling (its next pods do not exist yet).
    scene.under_way.insert("Rollout web".into());
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty());
    assert!(
        d.balance.waiting.clone().unwrap_or_default().contains("scaling"),
        "{:?}",
        d.balance
    );
    assert_eq!(d.requeue, wake(ROLLOUT_RECHECK));
    scene.under_way.clear();
    scene.pods.push(PodFacts {
        eligible: false,
        ..pod("r")
    });
    let d = scene.decide(t, &mut Memory::default());
    assert!(rebalance_requests(&d).is_empty());
    assert!(
        d.balance.waiting.clone().unwrap_or_default().contains("pod r"),
        "{:?}",
        d.balance
    );

    // A stopped pod is not waited for; with the rollout done, half of p's listeners go.
    scene.stopped.insert(uid("r"));
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(rebalance_requests(&d), ["d", "e", "f"]);
    assert_eq!((d.balance.requested, d.balance.in_progress), (3, 3));
}

#[test]
fn a_burst_is_reported_at_its_start_and_its_end_and_counted_for_a_minute() {
    let t = Instant::now();
    let mut memory = Memory::default();
    let mut scene = lopsided(t);
    let d = scene.decide(t, &mut memory);
    assert_eq!(d.burst, Some(Burst::Started { moves: 3, skew: 6 }));
    assert_eq!(d.moves_last_minute, 3);
    // The three are released and land on q; nothing more to do.
    for l in &mut scene.leases {
        if ["d", "e", "f"].contains(&l.view.listener.as_str()) {
            l.view.holder = Some("q".into());
            l.view.holder_uid = Some(uid("q"));
            l.labelled_uid = Some(uid("q"));
        }
    }
    let later = t + secs(2);
    let d = scene.decide(later, &mut memory);
    assert!(rebalance_requests(&d).is_empty());
    assert_eq!(
        d.burst,
        Some(Burst::Ended {
            moves: 3,
            took: secs(2),
            skew: 0
        })
    );
    assert_eq!(d.moves_last_minute, 3);
    assert_eq!(d.requeue, wake(secs(58)), "looks again when the count drops");
    let d = scene.decide(t + secs(61), &mut memory);
    assert_eq!((d.burst, d.moves_last_minute), (None, 0));
}
