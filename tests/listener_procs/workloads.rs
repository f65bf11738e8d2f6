//! A ListenerSet beside a Deployment or a StatefulSet, run by the simulator's workload
//! controllers, through what users do with kubectl (see [`crate::harness::workloads`]): apps that
//! take 500 ms to stop, 30 listeners on 3 pods, every app's listeners sampled every 20 ms. No
//! listener ever runs in two apps, no fencing token goes back, status never counts a listener
//! running before an acknowledgement, and every listener runs again on the live pods.
use std::sync::Arc;
use std::time::Duration;

use crate::harness::app::AppConfig;
use crate::harness::workloads::{created_together, run, Case};
use crate::harness::{AgentFlags, Cluster, Ns};
use crate::{assert_clean, ok};

const LISTENERS: usize = 30;

async fn case(name: &str, case: Case) {
    let app = AppConfig {
        stop_delay: Duration::from_millis(500),
        ..AppConfig::default()
    };
    let ns = Arc::new(ok(Ns::new(Cluster::shared(), name, app, AgentFlags::default()).await));
    let outcome = ok(run(&ns, case, LISTENERS).await);
    assert!(outcome.moves > 0, "{}: nothing moved", case.describe());
    assert!(outcome.analysis.samples > 0, "the apps were never sampled");
    let mut gaps = outcome.analysis.gaps.clone();
    gaps.sort();
    println!(
        "{}: {} starts after the command, gap max {:?}",
        case.describe(),
        outcome.moves,
        gaps.last()
    );
    assert_clean(&ns, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_restarted_with_surge_hands_every_listener_over_once() {
    case("wl-surge-restart", Case::SurgeRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_given_a_new_image_with_surge_hands_every_listener_over_once() {
    case("wl-surge-image", Case::SurgeSetImage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_restarted_without_surge_hands_every_listener_over_once() {
    case("wl-nosurge", Case::NoSurgeRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_scaled_down_and_up_moves_listeners_once() {
    case("wl-scale", Case::ScaleDownUp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_restarted_hands_every_listener_over_once() {
    case("wl-sts-restart", Case::StatefulRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_statefulset_update_hands_over_only_what_it_replaces() {
    case("wl-sts-partition", Case::StatefulPartition).await;
}

/// `kubectl apply` of a set and the Deployment it serves together: the pods turn Ready and their
/// agents register one after another, and the set, waiting for them, spreads its listeners over
/// every pod (each takes its share, 10 of 30) instead of giving them all to the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_created_with_its_deployment_spreads_its_listeners_over_every_pod() {
    let ns = Arc::new(ok(Ns::new(
        Cluster::shared(),
        "wl-together",
        AppConfig::default(),
        AgentFlags::default(),
    )
    .await));
    let per_pod = ok(created_together(&ns, LISTENERS).await);
    println!("listeners per pod: {per_pod:?}");
    assert_eq!(
        per_pod.len(),
        3,
        "every pod of the Deployment holds listeners: {per_pod:?}"
    );
    let (least, most) = (per_pod.values().min(), per_pod.values().max());
    assert!(
        most.zip(least).is_some_and(|(m, l)| m - l <= 1),
        "the listeners are spread evenly: {per_pod:?}"
    );
    assert_clean(&ns, true);
}
