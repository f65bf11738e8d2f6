//! Checks, with the real `baton controller`: an HTTP check per batch against a real
//! server in the test (pod IPs, baton-sim's or kwok's, are not routable, so the URL names the
//! instance in its path), a health endpoint that flips to failing and rolls the batch back; the bake
//! window, which an instance lost during it rolls back and `baton rollout promote --full` ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use baton::api::rollout::{FailureReason, RolloutPhase};
use kube::api::DeleteParams;
use serde_json::json;

use crate::helpers::*;
use crate::support::controller::NO_ELECTION;
use crate::support::*;

/// A health endpoint: `GET /health/<instance>` answers 200 `{"status":"ok"}` while healthy, 500
/// `{"status":"failing"}` otherwise; it counts the requests per instance.
struct HealthServer {
    port: u16,
    healthy: Arc<AtomicBool>,
    hits: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Every answer: the instance, when, and whether it was healthy.
    log: Arc<Mutex<Vec<(String, jiff::Timestamp, bool)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl HealthServer {
    async fn start() -> Self {
        let healthy = Arc::new(AtomicBool::new(true));
        let hits: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
        let log: Arc<Mutex<Vec<(String, jiff::Timestamp, bool)>>> = Arc::default();
        let (h, c, l) = (healthy.clone(), hits.clone(), log.clone());
        let app = axum::Router::new().route(
            "/health/{instance}",
            axum::routing::get(move |axum::extract::Path(instance): axum::extract::Path<String>| {
                let (h, c, l) = (h.clone(), c.clone(), l.clone());
                async move {
                    *c.lock().unwrap().entry(instance.clone()).or_default() += 1;
                    let ok = h.load(Ordering::SeqCst);
                    l.lock().unwrap().push((instance, jiff::Timestamp::now(), ok));
                    if ok {
                        (axum::http::StatusCode::OK, axum::Json(json!({"status": "ok"})))
                    } else {
                        (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"status": "failing"})),
                        )
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serving");
        });
        HealthServer {
            port,
            healthy,
            hits,
            log,
            _task: task,
        }
    }

    fn hits(&self) -> BTreeMap<String, u32> {
        self.hits.lock().unwrap().clone()
    }

    /// The instances that got a healthy answer after `since`.
    fn healthy_since(&self, since: jiff::Timestamp) -> std::collections::BTreeSet<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(_, at, ok)| *ok && *at > since)
            .map(|(i, _, _)| i.clone())
            .collect()
    }
}

/// A Rollout of `version` on 3 instances checked by `health` (3 successes, 1 s apart).
fn checked(env: &Env, version: &str, port: u16) -> serde_json::Value {
    let mut m = env.manifest_v(NAME, 3, version);
    m["spec"]["checks"] = json!([{
        "name": "health",
        "http": {"url": format!("http://127.0.0.1:{port}/health/{{{{instance}}}}"), "expectedStatus": [200],
                 "json": {"path": "status", "equals": "ok"}, "timeoutSeconds": 2},
        "count": 3, "failureLimit": 0, "intervalSeconds": 1
    }]);
    m
}

/// Applies `m` with a 10-minute bake window and waits until it is baking (its last batch out).
async fn bake_for_10_minutes(env: &Env, mut m: serde_json::Value) -> baton::api::rollout::Rollout {
    m["spec"]["bakeSeconds"] = json!(600);
    env.apply(&m).await;
    env.wait_rollout(NAME, "Baking", LONG, |r| {
        current_generation(r) && condition(r, "Progressing").is_some_and(|c| c.reason == "Baking")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_rolls_the_batch_back() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    let server = HealthServer::start().await;

    // v1: every instance is checked (the first rollout is one batch) before it is Healthy.
    env.apply(&checked(&env, "v1", server.port)).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let hits = server.hits();
    for i in ["svc-0", "svc-1", "svc-2"] {
        assert!(hits.get(i).copied().unwrap_or(0) >= 3, "{i} checked 3 times: {hits:?}");
    }

    // The endpoint turns to failing; v2's first batch fails its check and is rolled back.
    server.healthy.store(false, Ordering::SeqCst);
    env.apply(&checked(&env, "v2", server.port)).await;
    let r = wait_phase(&env, "RolledBack", RolloutPhase::RolledBack).await;
    let st = status(&r);
    let f = st.failed_update.clone().expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::CheckFailed, "{f:?}");
    assert_eq!(f.instances, ["svc-0"]);
    assert!(
        f.message
            .contains("check health on svc-0 failed: 1 of 1 attempts failed, last: HTTP 500 (expected 200)"),
        "{}",
        f.message
    );
    assert_eq!(cond(&r, "Ready").0, "False");
    assert_eq!(cond(&r, "Available").0, "True");
    assert_eq!(instance_versions(&r), map(&[("v1", 3)]));
    let ev = env
        .wait_event(NAME, "CheckFailed Warning", |e| {
            e.reason.as_deref() == Some("CheckFailed")
        })
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(
        ev.note
            .as_deref()
            .unwrap_or("")
            .contains("check health on svc-0 failed"),
        "{ev:?}"
    );
    assert!(st.message.unwrap_or_default().contains("HTTP 500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bake_window_rolls_back_on_a_lost_instance_and_promote_full_ends_it() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    deployed(&env, 3, "v1").await;

    // v2 bakes for 10 minutes; an instance lost meanwhile fails it and it is rolled back.
    let r = bake_for_10_minutes(&env, env.manifest_v(NAME, 3, "v2")).await;
    let st = status(&r);
    assert_eq!(st.phase, Some(RolloutPhase::Progressing));
    assert_eq!(cond(&r, "Ready").0, "False");
    assert_eq!(
        st.version.as_deref(),
        Some("v1"),
        "v2 is not healthy before the bake ends"
    );
    assert!(st.batch.as_ref().and_then(|b| b.bake_started_at.as_ref()).is_some());
    assert!(
        st.message.clone().unwrap_or_default().contains("baking until"),
        "{:?}",
        st.message
    );
    let victim = env
        .pods(NAME)
        .await
        .into_iter()
        .find(|p| pod_slot(p) == 1 && pod_version(p) == "v2" && p.metadata.deletion_timestamp.is_none())
        .and_then(|p| p.metadata.name)
        .expect("svc-1's v2 pod");
    env.pods_api()
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete");
    let r = wait_phase(&env, "RolledBack after the bake failed", RolloutPhase::RolledBack).await;
    let f = status(&r).failed_update.expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::BakeFailed, "{f:?}");
    assert!(
        f.message.contains("v2 not available during the bake window: svc-1"),
        "{}",
        f.message
    );
    assert_eq!(instance_versions(&r), map(&[("v1", 3)]));

    // v3 bakes for an hour; `baton rollout promote --full` ends the bake and it is Healthy.
    let mut v3 = env.manifest_v(NAME, 3, "v3");
    v3["spec"]["bakeSeconds"] = json!(3600);
    env.apply(&v3).await;
    env.wait_rollout(NAME, "v3 baking", LONG, |r| {
        current_generation(r) && condition(r, "Progressing").is_some_and(|c| c.reason == "Baking")
    })
    .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["rollout", "promote", "--full", NAME])
        .env("KUBECONFIG", env.admin_kubeconfig())
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output()
        .await
        .expect("running baton");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = env.wait_healthy(NAME, "v3", 3).await;
    assert_eq!(cond(&r, "Ready").0, "True");
    env.wait_event(NAME, "Promoted ending the bake", |e| {
        e.reason.as_deref() == Some("Promoted") && e.note.as_deref().unwrap_or("").contains("bake window ends early")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_mid_check_runs_it_again_from_its_first_attempt() {
    let env = Env::start().await;
    let mut first = env.start_controller("ctrl-1", &NO_ELECTION).await;
    let server = HealthServer::start().await;
    let mut m = checked(&env, "v1", server.port);
    m["spec"]["checks"][0]["count"] = json!(5);
    env.apply(&m).await;
    // Mid-check: svc-0 has had 2 of its 5 attempts.
    let hits_at = |s: &HealthServer| s.hits().get("svc-0").copied().unwrap_or(0);
    wait_for("svc-0 checked twice", LONG, || {
        let n = hits_at(&server);
        async move { (n >= 2).then_some(()) }
    })
    .await;
    let status_kill = std::process::Command::new("kill")
        .args(["-KILL", &first.proc.pid.to_string()])
        .status()
        .expect("kill");
    assert!(status_kill.success());
    first.exited(LONG).await;
    let before = hits_at(&server);
    assert!(before < 5, "killed before the run ended ({before} attempts)");
    let r = env.get(NAME).await;
    assert_ne!(status(&r).phase, Some(RolloutPhase::Healthy), "{}", describe(Some(&r)));

    let _second = env.start_controller("ctrl-2", &NO_ELECTION).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let after = hits_at(&server);
    assert!(
        after >= before + 5,
        "the new controller ran svc-0's check from its first attempt: {before} attempts before the kill, {after} in all"
    );
}

/// §3: "the checks and pod health keep being evaluated" through the bake window. The health
/// endpoint turns to failing after the first bake run of every instance passed; a later run
/// fails and the rollout is rolled back long before the 10-minute window ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_failing_in_the_middle_of_the_bake_rolls_back() {
    let env = Env::start().await;
    let _ctrl = env.start_controller("ctrl", &NO_ELECTION).await;
    let server = HealthServer::start().await;
    let quick = |version: &str| {
        let mut m = checked(&env, version, server.port);
        m["spec"]["checks"][0]["count"] = json!(1);
        m
    };
    env.apply(&quick("v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;

    let r = bake_for_10_minutes(&env, quick("v2")).await;
    let started = status(&r)
        .batch
        .and_then(|b| b.bake_started_at)
        .expect("bakeStartedAt")
        .0;
    // The bake's first run passed on every instance (the batch's runs all ended before it).
    let all: std::collections::BTreeSet<String> = ["svc-0", "svc-1", "svc-2"].map(String::from).into();
    wait_for("a healthy answer to every instance's first bake run", LONG, || {
        let seen = server.healthy_since(started);
        let all = all.clone();
        async move { (seen == all).then_some(()) }
    })
    .await;
    let r = env.get(NAME).await;
    assert!(
        condition(&r, "Progressing").is_some_and(|c| c.reason == "Baking"),
        "still baking after the first runs passed: {}",
        describe(Some(&r))
    );

    server.healthy.store(false, Ordering::SeqCst);
    let r = env
        .wait_rollout(NAME, "RolledBack by a bake check", LONG, |r| {
            current_generation(r) && status(r).phase == Some(RolloutPhase::RolledBack)
        })
        .await;
    let f = status(&r).failed_update.expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::CheckFailed, "{f:?}");
    assert!(
        f.message.contains("v2 during the bake window: check health on svc-"),
        "{}",
        f.message
    );
    assert!(f.message.contains("last: HTTP 500 (expected 200)"), "{}", f.message);
    assert!(f.rolled_back);
    assert_eq!(instance_versions(&r), map(&[("v1", 3)]));
    env.wait_event(NAME, "CheckFailed during the bake", |e| {
        e.reason.as_deref() == Some("CheckFailed") && e.note.as_deref().unwrap_or("").contains("during the bake window")
    })
    .await;
}
