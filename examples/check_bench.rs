//! Check overhead benchmark: the wall time a per-pod HTTP check adds to a batch,
//! beyond the check's own configured time. A Rollout of 3 instances goes v(n) → v(n+1) in
//! batches [1, 2, 3] (maxSurge 1, kubelet ready after ~150 ms), without checks and with a check
//! per pod of `count: 3, intervalSeconds: 1` against a local endpoint that answers at once (own
//! time ≈ 2 s per batch: three attempts, one second apart). Figure: (with − without) ÷ 3 batches −
//! 2 s; target ≤ 100 ms. The controller runs in-process against the simulator.
//! `cargo run --release --example check_bench`.
mod common;

use std::time::{Duration, Instant};

use baton::api::rollout::{Rollout, RolloutPhase};
use baton::operator::{self, OperatorConfig};
use baton_sim::{Sim, SimConfig};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const RUNS: usize = 3;
const BATCHES: u32 = 3;
const CHECK_OWN_TIME: Duration = Duration::from_secs(2);

fn manifest(name: &str, version: &str, port: Option<u16>) -> serde_json::Value {
    let mut m = json!({
        "apiVersion": baton::api::API_VERSION, "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "version": version,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": format!("svc:{version}")}]}},
            "strategy": {"batches": [1, 2, 3], "maxSurge": 1, "maxUnavailable": 0},
            "progressDeadlineSeconds": 120
        }
    });
    if let Some(port) = port {
        m["spec"]["checks"] = json!([{
            "name": "health",
            "http": {"url": format!("http://127.0.0.1:{port}/health/{{{{instance}}}}")},
            "count": 3, "failureLimit": 0, "intervalSeconds": 1
        }]);
    }
    m
}

async fn wait_healthy(api: &Api<Rollout>, name: &str, version: &str) -> Result<(), String> {
    let wanted = version.to_string();
    let healthy = move |r: Option<&Rollout>| {
        r.and_then(|r| Some((r, r.status.as_ref()?))).is_some_and(|(r, st)| {
            st.observed_generation == r.metadata.generation
                && st.phase == Some(RolloutPhase::Healthy)
                && st.versions.get(&wanted).copied() == Some(3)
        })
    };
    let wait = kube::runtime::wait::await_condition(api.clone(), name, healthy);
    match tokio::time::timeout(Duration::from_secs(120), wait).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("watching the Rollout: {e}")),
        Err(_) => Err(format!("{name} not healthy on {version} within 120 s")),
    }
}

/// Median wall time of `RUNS` rollouts of Rollout `name` (checked when `port` is set).
async fn measure(api: &Api<Rollout>, name: &str, port: Option<u16>) -> Result<Duration, String> {
    let apply = |v: &str| {
        let m = manifest(name, v, port);
        let api = api.clone();
        async move {
            api.patch(name, &PatchParams::apply("bench").force(), &Patch::Apply(&m))
                .await
                .map_err(|e| format!("applying {name}: {e}"))
        }
    };
    apply("v0").await?;
    wait_healthy(api, name, "v0").await?;
    let mut times = Vec::new();
    for i in 1..=RUNS {
        let v = format!("v{i}");
        let start = Instant::now();
        apply(&v).await?;
        wait_healthy(api, name, &v).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[RUNS / 2])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Sim::start(SimConfig {
        kubelet: common::fast_kubelet(),
        ..SimConfig::default()
    })
    .await?;
    let client = sim.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &baton::api::rollout::crd()).await?;
    let api: Api<Rollout> = Api::namespaced(client.clone(), "default");
    while api.list(&Default::default()).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = axum::Router::new().route("/health/{instance}", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let cfg = OperatorConfig {
        namespace: Some("default".into()),
        instance: "bench".into(),
        ..OperatorConfig::default()
    };
    let op = tokio::spawn(operator::run(client.clone(), cfg, async move {
        let _ = stopped.await;
    }));

    let plain = measure(&api, "plain", None).await?;
    let checked = measure(&api, "checked", Some(port)).await?;
    let added = checked.saturating_sub(plain) / BATCHES;
    let overhead = added.as_secs_f64() - CHECK_OWN_TIME.as_secs_f64();
    println!("rollout of 3 instances in {BATCHES} batches, median of {RUNS}:");
    println!("  without checks: {:.3} s", plain.as_secs_f64());
    println!(
        "  with a per-pod check (count 3, interval 1 s): {:.3} s",
        checked.as_secs_f64()
    );
    println!(
        "  added per batch: {:.3} s = check's own {:.3} s + {:.0} ms (target <= 100 ms)",
        added.as_secs_f64(),
        CHECK_OWN_TIME.as_secs_f64(),
        overhead * 1000.0
    );
    let _ = stop.send(());
    let _ = op.await;
    Ok(())
}
