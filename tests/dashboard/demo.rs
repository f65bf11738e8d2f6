//! `baton demo --keep` serves the dashboard from the start and prints its URL.
use std::net::SocketAddr;

use crate::support::process::demo_says;
use crate::support::process::http::request;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_dashboard_and_prints_its_url() {
    let args = [
        "--keep",
        "--dashboard-address",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let (mut child, url) = demo_says(
        env!("CARGO_BIN_EXE_baton"),
        &args,
        "baton demo: dashboard at http://",
        LONG,
    )
    .await
    .expect("the demo prints the dashboard's URL in time");
    let addr: SocketAddr = url
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("a dashboard URL");
    wait_for("the demo's Rollout on the dashboard", LONG, || async {
        let r = request(addr, "GET", "/", &[], b"").await.ok()?;
        (r.code == 200 && r.text().contains(r#"data-name="user-service""#)).then_some(())
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// `baton demo` runs every step to the end: the webhook receiver of step 5 hears v4 start, fail
/// its health check and roll back, after its migration hook ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_every_step_including_hooks_checks_and_webhooks() {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["demo", "--metrics-addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baton demo starts");
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), child.wait_with_output())
        .await
        .expect("the demo ends within 10 minutes")
        .expect("the demo's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for needle in [
        "webhook ← Started",
        "webhook ← CheckFailed: batch 1/3 of v4: check health on user-service-",
        "webhook ← RolledBack",
        "failedUpdate: CheckFailed",
        "baton demo: every step finished as expected",
        // The scheme its kubeconfig names: the simulator serves TLS.
        "baton demo: API server simulator at https://127.0.0.1:",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from:\n{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("migration hook Job user-service-") && l.ends_with(": succeeded")),
        "the hook Job succeeded:\n{stdout}"
    );
}

/// `baton demo --backend real` runs the same script on the real control plane (etcd,
/// kube-apiserver, kube-controller-manager, kube-scheduler and kwok, started by the demo):
/// every step to the end, the hook Job run by the real Job controller, no listener twice, no
/// ERROR line, and the control plane's processes gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts the real control plane (built from the Go module proxy): `make test-real` runs it"]
async fn the_demo_runs_every_step_on_the_real_control_plane() {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["demo", "--backend", "real", "--metrics-addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baton demo starts");
    let pid = child.id().expect("a pid");
    let out = tokio::time::timeout(std::time::Duration::from_secs(2400), child.wait_with_output())
        .await
        .expect("the demo ends within 40 minutes (a first run builds the control plane)")
        .expect("the demo's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for needle in [
        "baton demo: Kubernetes v1.33.13 control plane at https://127.0.0.1:",
        "webhook ← RolledBack",
        "duplicates 0",
        "baton demo: every step finished as expected",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from:\n{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("migration hook Job user-service-") && l.ends_with(": succeeded")),
        "the hook Job succeeded:\n{stdout}"
    );
    assert!(!stderr.contains("ERROR"), "stderr:\n{stderr}");
    // Nothing the demo started outlives it (its components die with it).
    let dir = format!("baton-demo-cluster-{pid}");
    let left = std::process::Command::new("pgrep")
        .args(["-f", &dir])
        .output()
        .expect("pgrep runs");
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// `baton demo` with its output redirected, as in a CI log: no ANSI colour anywhere, no ERROR
/// line, exit 0 — on each of three quick runs (at the end of a run every client must stop
/// before the API server does, or its open watch logs an error). At `info`, so the log has
/// lines to colour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_demo_prints_no_colour_and_no_error() {
    for run in 1..=3 {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["demo", "--metrics-addr", "127.0.0.1:0", "--ready-delay-ms", "50"])
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("baton demo starts");
        let out = tokio::time::timeout(std::time::Duration::from_secs(600), child.wait_with_output())
            .await
            .expect("the demo ends within 10 minutes")
            .expect("the demo's output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "run {run}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
        assert!(
            stderr.lines().any(|l| l.contains("INFO")),
            "run {run}: no log line to judge:\n{stderr}"
        );
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(!bytes.contains(&0x1b), "run {run}: an ANSI escape in {name}:\n{stderr}");
        }
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(errors.is_empty(), "run {run}: ERROR lines:\n{}", errors.join("\n"));
    }
}
