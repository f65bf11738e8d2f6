//! Deployment artefacts: the CRD copies in the Helm chart and in config/crd/ are the generated
//! `crds/baton.dev_crds.yaml`, and the chart lints, renders and installs with Helm's real engine
//! (`tests/helm/check_chart.py`, helm-python-sdk) into a simulator started here; its dashboard
//! and alerts render and pass `promtool` (`tests/helm/check_monitoring.py`).
//!
//! The Helm check needs `.venv/bin/python` with helm-python-sdk (`make deps` creates it); without
//! it the test fails and says so, unless BATON_SKIP_HELM_CHECKS=1.
#[path = "support/helm.rs"]
mod helm;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use baton_sim::{Sim, SimConfig};

const GENERATED: &str = "crds/baton.dev_crds.yaml";
const COPIES: [&str; 2] = [
    "charts/baton/crds/baton.dev_crds.yaml",
    "config/crd/baton.dev_crds.yaml",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn crd_copies_equal_the_generated_crds() {
    let root = root();
    let generated = read(&root.join(GENERATED));
    assert!(generated.contains("name: rollouts.baton.dev") && generated.contains("name: listenersets.baton.dev"));
    for copy in COPIES {
        let text = read(&root.join(copy));
        if text != generated {
            let line = text
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| text.lines().count().min(generated.lines().count()) + 1, |i| i + 1);
            panic!(
                "{copy} differs from {GENERATED} (first difference at line {line}); refresh the copies with:\n  \
                 cp {GENERATED} charts/baton/crds/ && cp {GENERATED} config/crd/"
            );
        }
    }
    // Nothing else in the chart's crds/ (Helm would install it too), and kustomize lists the copy.
    let extra: Vec<_> = std::fs::read_dir(root.join("charts/baton/crds"))
        .expect("charts/baton/crds")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "baton.dev_crds.yaml")
        .collect();
    assert!(extra.is_empty(), "unexpected files in charts/baton/crds: {extra:?}");
    let kustomization = read(&root.join("config/crd/kustomization.yaml"));
    assert!(
        kustomization.lines().any(|l| l.trim() == "- baton.dev_crds.yaml"),
        "config/crd/kustomization.yaml does not list baton.dev_crds.yaml"
    );
}

/// Run `tests/helm/<script>` with the project's Python and `args`, print its output, and fail
/// when it does.
async fn run_helm_check(script: &str, args: &[&std::ffi::OsStr]) {
    let child = tokio::process::Command::new(helm::python())
        .arg(format!("tests/helm/{script}"))
        .args(args)
        .current_dir(root())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start tests/helm/{script}: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tests/helm/{script} finished within 10 minutes"))
        .unwrap_or_else(|e| panic!("tests/helm/{script} ran: {e}"));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "tests/helm/{script} failed ({}); its output is above",
        out.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_lints_renders_and_installs_into_the_simulator() {
    if !helm::helm_available().await {
        return;
    }
    // The simulator runs in this process (running `cargo run` from inside `cargo test` would
    // wait forever on the build-directory lock).
    let sim = Sim::start(SimConfig::default()).await.expect("simulator starts");
    run_helm_check(
        "check_chart.py",
        &["--kubeconfig".as_ref(), sim.kubeconfig_path().as_os_str()],
    )
    .await;
    sim.stop();
}

/// The chart's Grafana dashboard and PrometheusRule render with their values, and the rendered
/// rules pass `promtool check rules` and the alert cases of tests/monitoring/alerts_test.yaml
/// (`tests/helm/check_monitoring.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_dashboard_and_alerts_render_and_pass_promtool() {
    if !helm::helm_available().await {
        return;
    }
    assert!(
        Path::new("/usr/bin/promtool").exists(),
        "/usr/bin/promtool not found: `make deps` installs Debian's prometheus"
    );
    run_helm_check("check_monitoring.py", &[]).await;
}

/// The value of `key:` in the chart's values.yaml (the first line that sets it; the chart's
/// keys under `controller:` are unique).
fn chart_value(values: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    values
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("values.yaml sets no {key}"))
}

/// The chart states `baton controller`'s defaults for users to read and change: they must be
/// the binary's own, or an install without overrides behaves unlike the docs say.
#[test]
fn chart_defaults_are_the_controllers() {
    let values = read(&root().join("charts/baton/values.yaml"));
    let secs = |d: Duration| format!("{}s", d.as_secs());
    let expected = [
        ("concurrency", baton::operator::DEFAULT_CONCURRENCY.to_string()),
        (
            "drainTimeoutSeconds",
            baton::rollout::planner::DEFAULT_DRAIN_TIMEOUT.as_secs().to_string(),
        ),
        ("kubeApiBurst", baton::throttle::DEFAULT_BURST.to_string()),
        ("listenerApiBurst", baton::throttle::DEFAULT_LISTENER_BURST.to_string()),
        ("leaseDuration", secs(baton::election::DEFAULT_LEASE_DURATION)),
        ("renewDeadline", secs(baton::election::DEFAULT_RENEW_DEADLINE)),
        ("retryPeriod", secs(baton::election::DEFAULT_RETRY_PERIOD)),
    ];
    for (key, want) in expected {
        assert_eq!(chart_value(&values, key), want, "charts/baton/values.yaml: {key}");
    }
    let qps: f32 = chart_value(&values, "kubeApiQps")
        .parse()
        .expect("kubeApiQps is a number");
    assert_eq!(
        qps,
        baton::throttle::DEFAULT_QPS,
        "charts/baton/values.yaml: kubeApiQps"
    );
    let listener_qps: f32 = chart_value(&values, "listenerApiQps")
        .parse()
        .expect("listenerApiQps is a number");
    assert_eq!(
        listener_qps,
        baton::throttle::DEFAULT_LISTENER_QPS,
        "charts/baton/values.yaml: listenerApiQps"
    );
}
