//! API Priority and Fairness emulation: a per-user rate above which the simulator answers 429
//! as kube-apiserver's APF filter does, and what real kubectl makes of it (it honours
//! Retry-After, then reports the error in client-go's words).
use crate::common;

use std::time::{Duration, Instant};

use baton_sim::auth::{AuthorizationMode, UserInfo};
use baton_sim::server::FlowLimit;
use baton_sim::{Sim, SimConfig};
use common::kubectl::Kubectl;
use common::raw_with;

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn throttled_sim(qps: f64, burst: u32) -> Sim {
    Sim::start(SimConfig {
        authorization: AuthorizationMode::AlwaysAllow,
        flow_limit: Some(FlowLimit { qps, burst }),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// A user outside system:masters (which APF exempts), authenticated by token `name`.
fn user(sim: &Sim, name: &str) {
    sim.register_user(
        name,
        UserInfo {
            username: name.into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        },
    );
}

#[tokio::test]
async fn over_the_rate_a_user_gets_apf_429s() {
    let sim = throttled_sim(0.001, 2).await;
    user(&sim, "alice");
    user(&sim, "bob");
    let as_user = |who: &str| format!("Bearer {who}");
    let (alice, bob) = (as_user("alice"), as_user("bob"));
    let get = |auth: &str| {
        let auth = auth.to_string();
        let sim = &sim;
        async move { raw_with(sim, "GET", PODS, &[("Authorization", auth.as_str())], b"").await }
    };
    // The burst is served, with the classification headers.
    for _ in 0..2 {
        let r = get(&alice).await;
        assert_eq!(r.code, 200, "{}", r.text());
        assert!(r.header("X-Kubernetes-PF-FlowSchema-UID").is_some());
        assert!(r.header("X-Kubernetes-PF-PriorityLevel-UID").is_some());
    }
    // Above it: kube-apiserver's rejection, byte for byte.
    let r = get(&alice).await;
    assert_eq!(r.code, 429);
    assert_eq!(r.text(), "Too many requests, please try again later.\n");
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(r.header("X-Kubernetes-PF-FlowSchema-UID").is_some());
    // Writes too.
    let pod =
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
    let r = raw_with(
        &sim,
        "POST",
        PODS,
        &[("Authorization", alice.as_str()), ("Content-Type", "application/json")],
        pod,
    )
    .await;
    assert_eq!(r.code, 429);
    // Another user has a flow of its own; system:masters is exempt.
    assert_eq!(get(&bob).await.code, 200);
    for _ in 0..5 {
        let r = raw_with(&sim, "GET", PODS, &[], b"").await;
        assert_eq!(r.code, 200, "admin: {}", r.text());
    }
    // The audit tells who was throttled.
    assert_eq!(sim.core.auth.audit.count_code("alice", 429), 2);
    assert_eq!(sim.core.auth.audit.count_code("bob", 429), 0);
    assert_eq!(sim.core.auth.audit.count_code(baton_sim::ADMIN, 429), 0);
    // Off: everything passes, no headers.
    sim.fairness.set_limit(None);
    let r = get(&alice).await;
    assert_eq!(r.code, 200);
    assert!(r.header("X-Kubernetes-PF-FlowSchema-UID").is_none());
}

/// kubectl (client-go) waits Retry-After and retries: a throttled user still gets its answer,
/// only later, as against kube-apiserver.
#[tokio::test]
async fn kubectl_retries_after_the_delay_and_succeeds() {
    let sim = throttled_sim(1.0, 1).await;
    user(&sim, "carol");
    let kubeconfig = std::env::temp_dir().join(format!("fairness-carol-{}.kubeconfig", std::process::id()));
    sim.kubeconfig_with_token("carol", "carol", &kubeconfig)
        .expect("kubeconfig");
    let k = Kubectl::with_kubeconfig(kubeconfig.clone());
    // Discovery and the list, several requests in a row at 1 a second: some are answered 429.
    let run = k.run(&["get", "pods", "-n", "default"]).await;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.stderr.trim(), "No resources found in default namespace.", "{run}");
    assert!(
        sim.core.auth.audit.count_code("carol", 429) > 0,
        "kubectl was never throttled: the test shows nothing"
    );
    let _ = std::fs::remove_file(&kubeconfig);
}

/// Past client-go's 10 retries kubectl gives up with client-go's message for a 429 whose body is
/// not a Status (APF's is plain text).
#[tokio::test]
async fn kubectl_reports_too_many_requests_when_retries_run_out() {
    let sim = throttled_sim(0.001, 1).await;
    user(&sim, "dave");
    // Use up dave's one token.
    let r = raw_with(&sim, "GET", PODS, &[("Authorization", "Bearer dave")], b"").await;
    assert_eq!(r.code, 200);
    let kubeconfig = std::env::temp_dir().join(format!("fairness-dave-{}.kubeconfig", std::process::id()));
    sim.kubeconfig_with_token("dave", "dave", &kubeconfig)
        .expect("kubeconfig");
    let k = Kubectl::with_kubeconfig(kubeconfig.clone());
    let started = Instant::now();
    let run = k.run(&["get", "--raw", PODS]).await;
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(
        run.stderr.trim(),
        "Error from server (TooManyRequests): the server has received too many requests and has asked us to try again later",
        "{run}"
    );
    // The list: 1 try + 10 retries, each after Retry-After (1 s).
    // (kubectl also asks /version once, without retrying.)
    let rejected: Vec<_> = (sim.core.auth.audit.answered("dave", 429).into_iter())
        .filter(|e| e.key.resource == "pods")
        .collect();
    let paths: Vec<String> = rejected.iter().map(|e| format!("{:?} {}", e.key, e.name)).collect();
    assert_eq!(rejected.len(), 11, "{paths:#?}");
    assert!(started.elapsed() >= Duration::from_secs(9), "{:?}", started.elapsed());
    let _ = std::fs::remove_file(&kubeconfig);
}
