use std::time::Duration;

use baton_sim::{Sim, SimConfig};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

use super::*;

async fn sim_with_crds() -> (Sim, kube::Client) {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    let client = sim.client().await.expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [crate::api::rollout::crd(), crate::api::listenerset::crd()] {
        crds.create(&PostParams::default(), &crd).await.expect("CRD");
    }
    let ns = ["default".to_string()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while check_crds(&client, &ns, Duration::ZERO).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "CRDs served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (sim, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_until_the_api_server_answers() {
    let (sim, client) = sim_with_crds().await;
    sim.faults.set_error_rate(None, 1.0, &[409, 429, 500, 503]);
    let check =
        tokio::spawn(async move { check_crds(&client, &["default".to_string()], Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!check.is_finished(), "gave up on transient errors");
    sim.faults.clear();
    let out = tokio::time::timeout(Duration::from_secs(60), check)
        .await
        .expect("finishes")
        .expect("no panic");
    assert_eq!(out.map_err(|e| e.to_string()), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_end_in_an_error_once_patience_runs_out() {
    let (sim, client) = sim_with_crds().await;
    sim.faults.set_error_rate(None, 1.0, &[500]);
    let out = check_crds(&client, &["default".to_string()], Duration::from_millis(700)).await;
    let e = out.expect_err("gives up").to_string();
    assert!(e.starts_with("checking that rollouts.baton.dev is served: "), "{e}");
    assert!(
        e.contains("(500 InternalError)") && e.contains("still failing after"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_crd_is_a_definite_answer() {
    let sim = Sim::start(SimConfig::default()).await.expect("simulator");
    let client = sim.client().await.expect("client");
    let started = tokio::time::Instant::now();
    let e = check_crds(&client, &[], Duration::from_secs(60))
        .await
        .expect_err("missing")
        .to_string();
    assert_eq!(
        e,
        "the CustomResourceDefinition rollouts.baton.dev is not installed: run `kubectl apply -f crds/` (or install the Helm chart)"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "not retried");
}
