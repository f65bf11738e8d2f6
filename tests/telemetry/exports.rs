//! Telemetry: the real `baton controller` process against the simulator (with agents
//! in the simulated pods), its /metrics scraped and parsed by an OpenMetrics parser — names,
//! types, labels; per-object series that neither merge across namespaces nor outlive their
//! object; a handover's gap — and its JSON log, every reconcile line carrying the reconcile's
//! namespace, name and id. And `baton demo` serving /metrics.
#![allow(clippy::await_holding_lock)]
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use baton::api::rollout::{Rollout, RolloutPhase};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::{json, Value};

use crate::listener_world::*;
use crate::process::{http_get, LoggedChild};

const LONG: Duration = Duration::from_secs(60);

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(addr: SocketAddr) -> (String, Exposition) {
    let (code, body) = http_get(addr, "/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&body)
        .unwrap_or_else(|e| panic!("not valid OpenMetrics ({e:?}):\n{body}"));
    (body, parsed)
}

/// Family `name`: its type and label names.
fn family(m: &Exposition, name: &str) -> (OpenMetricsType, Vec<String>) {
    let f = m.families.get(name).unwrap_or_else(|| {
        panic!(
            "no family {name}; have {:?}",
            m.families.keys().collect::<BTreeSet<_>>()
        )
    });
    let mut labels = f.get_label_names().to_vec();
    labels.sort();
    (f.family_type, labels)
}

/// The samples of family `name` as label map → value (a histogram's value is its count).
fn samples(m: &Exposition, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let Some(f) = m.families.get(name) else {
        return Vec::new();
    };
    f.iter_samples()
        .map(|s| {
            let labels = s
                .get_labelset()
                .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let v = match &s.value {
                OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
                OpenMetricsValue::Counter(c) => c.value.as_f64(),
                OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
                _ => f64::NAN,
            };
            (labels, v)
        })
        .collect()
}

fn value(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(m, name)
        .into_iter()
        .find(|(l, _)| labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, v)| v)
}

/// The metrics tables of docs/operating.md: name → (type, sorted label names).
fn documented_metrics() -> BTreeMap<String, (String, Vec<String>)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operating.md")).unwrap();
    let section = doc.split("## Metrics").nth(1).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let kind = cells[2].to_string();
        // Process metrics have no labels column.
        let labels = if name.starts_with("process_") {
            Vec::new()
        } else {
            let mut l: Vec<String> = cells[3]
                .split(',')
                .map(|s| s.trim().trim_matches('`').to_string())
                .filter(|s| !s.is_empty())
                .collect();
            l.sort();
            l
        };
        out.insert(name, (kind, labels));
    }
    out
}

/// Label names, sorted (as [`family`] gives them).
fn strings(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + LONG;
    while !check().await {
        assert!(tokio::time::Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rollout(ns: &str, name: &str, version: &str) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": name}}, "version": version,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": format!("web:{version}")}]}},
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_logs_of_a_controller_process() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    w.sim.kubeconfig_as("baton-controller", &kc).unwrap();
    let mut controller = LoggedChild::spawn(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .args([
                "controller",
                "--leader-elect=false",
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .env("KUBECONFIG", &kc)
            .env("RUST_LOG", "info"),
        "bound",
    )
    .expect("baton controller starts");
    let addr = controller
        .wait_addr(LONG)
        .await
        .expect("the controller logs its metrics address");

    // Two services of the same version in two namespaces, and a ListenerSet with a handover.
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    for ns in ["team-a", "team-b"] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&PostParams::default(), &n).await.unwrap();
        let api: Api<Rollout> = Api::namespaced(w.client.clone(), ns);
        api.patch(
            "web",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&rollout(ns, "web", "v1")),
        )
        .await
        .unwrap();
    }
    for p in ["gw-a", "gw-b"] {
        w.create_pod(p, "gw").await;
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "gw", listeners(4), 15).await;
    let all = ids(4);
    w.wait_running("4 listeners", &all, LONG, |_| true).await;
    wait_until("a listener on gw-a", || async {
        w.log.running().values().any(|pods| pods.iter().any(|p| p == "gw-a"))
    })
    .await;
    // A graceful handover: gw-a is drained, its agent releases, gw-b takes over.
    let drain = json!({"metadata": {"annotations": {"baton.dev/drain": jiff::Timestamp::now().to_string()}}});
    w.pods()
        .patch("gw-a", &PatchParams::default(), &Patch::Merge(&drain))
        .await
        .unwrap();
    w.wait_running("every listener on gw-b", &all, LONG, |p| p == "gw-b")
        .await;
    for ns in ["team-a", "team-b"] {
        let api: Api<Rollout> = Api::namespaced(w.client.clone(), ns);
        wait_until(&format!("{ns}/web Healthy"), || async {
            let r = api.get("web").await.unwrap();
            r.status.and_then(|s| s.phase) == Some(RolloutPhase::Healthy)
        })
        .await;
    }
    let last = std::sync::Mutex::new(String::new());
    let waited = tokio::time::timeout(LONG, async {
        loop {
            let (text, m) = scrape(addr).await;
            let done = value(&m, "baton_listener_handover_gap_seconds", &[("name", "sxt")]).unwrap_or(0.0) >= 1.0
                && value(
                    &m,
                    "baton_listenerset_listeners",
                    &[("name", "sxt"), ("state", "running")],
                ) == Some(4.0);
            *last.lock().unwrap() = text;
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if waited.is_err() {
        let text = last.lock().unwrap().clone();
        let sxt: Vec<&str> = text.lines().filter(|l| l.contains("sxt")).collect();
        panic!(
            "timed out waiting for the handover gap and the listener states on /metrics:\n{}",
            sxt.join("\n")
        );
    }
    let (text, m) = scrape(addr).await;

    // Names, types and labels of every family.
    use OpenMetricsType::{Counter, Gauge, Histogram};
    let expected: &[(&str, OpenMetricsType, &[&str])] = &[
        ("baton_build_info", Gauge, &["version", "commit"]),
        ("baton_reconcile", Counter, &["controller", "result"]),
        ("baton_reconcile_duration_seconds", Histogram, &["controller"]),
        ("baton_reconcile_active", Gauge, &["controller"]),
        ("baton_workqueue_depth", Gauge, &["controller"]),
        ("baton_workqueue_adds", Counter, &["controller"]),
        ("baton_workqueue_queue_duration_seconds", Histogram, &["controller"]),
        ("baton_reconcile_backoff_objects", Gauge, &["controller"]),
        ("baton_undecodable_objects", Gauge, &["kind"]),
        ("baton_crd_installed", Gauge, &["crd"]),
        ("baton_leader", Gauge, &[]),
        ("baton_leader_transitions", Counter, &[]),
        ("baton_kubernetes_api_requests", Counter, &["verb", "code"]),
        ("baton_rollouts", Gauge, &["phase"]),
        (
            "baton_rollout_info",
            Gauge,
            &[
                "namespace",
                "name",
                "version",
                "target_version",
                "current_revision",
                "update_revision",
            ],
        ),
        ("baton_rollout_phase", Gauge, &["namespace", "name", "phase"]),
        ("baton_rollout_phase_seconds", Gauge, &["namespace", "name", "phase"]),
        ("baton_rollout_instances", Gauge, &["namespace", "name", "version"]),
        ("baton_rollout_replicas", Gauge, &["namespace", "name", "state"]),
        ("baton_rollout_batch", Gauge, &["namespace", "name"]),
        ("baton_rollout_batches", Gauge, &["namespace", "name"]),
        ("baton_listenerset_listeners", Gauge, &["namespace", "name", "state"]),
        ("baton_listener_handovers", Counter, &["namespace", "name"]),
        ("baton_listener_handover_gap_seconds", Histogram, &["namespace", "name"]),
        ("controller_runtime_reconcile", Counter, &["controller", "result"]),
        ("controller_runtime_reconcile_errors", Counter, &["controller"]),
        ("controller_runtime_reconcile_time_seconds", Histogram, &["controller"]),
        ("controller_runtime_max_concurrent_reconciles", Gauge, &["controller"]),
        ("controller_runtime_active_workers", Gauge, &["controller"]),
        ("workqueue_depth", Gauge, &["name"]),
        ("workqueue_adds", Counter, &["name"]),
        ("workqueue_queue_duration_seconds", Histogram, &["name"]),
        ("workqueue_work_duration_seconds", Histogram, &["name"]),
        ("workqueue_retries", Counter, &["name"]),
        ("rest_client_requests", Counter, &["code", "method", "host"]),
        ("process_cpu_seconds", Counter, &[]),
        ("process_resident_memory_bytes", Gauge, &[]),
        ("process_virtual_memory_bytes", Gauge, &[]),
        ("process_open_fds", Gauge, &[]),
        ("process_max_fds", Gauge, &[]),
        ("process_start_time_seconds", Gauge, &[]),
        ("process_threads", Gauge, &[]),
    ];
    for (name, kind, labels) in expected {
        let (t, l) = family(&m, name);
        assert_eq!((&t, &l), (kind, &strings(labels)), "{name}");
    }
    // Families without series are left out (as client_golang does); these may have none here.
    for (name, kind, labels) in [
        ("baton_listener_takeovers", Counter, &["namespace", "name"][..]),
        ("baton_listener_fencing_conflicts", Counter, &["namespace", "name"][..]),
        ("baton_reconcile_errors", Counter, &["controller", "error"][..]),
        ("leader_election_master_status", Gauge, &["name"][..]),
    ] {
        if m.families.contains_key(name) {
            assert_eq!(family(&m, name), (kind, strings(labels)), "{name}");
        } else {
            assert!(!text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
        }
    }

    // docs/operating.md lists each family with its type and labels.
    let documented = documented_metrics();
    for (name, f) in &m.families {
        let (t, labels) = family(&m, name);
        let doc_name = match t {
            Counter => format!("{name}_total"),
            _ => name.clone(),
        };
        let kind = format!("{:?}", f.family_type).to_lowercase();
        assert_eq!(
            documented.get(&doc_name),
            Some(&(kind, labels)),
            "{doc_name} in docs/operating.md"
        );
    }

    // Values.
    let commit = samples(&m, "baton_build_info")[0].0["commit"].clone();
    assert!(
        !commit.is_empty() && (commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    assert_eq!(
        value(&m, "baton_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    assert_eq!(value(&m, "baton_leader", &[]), Some(1.0));
    for controller in ["rollout", "listenerset"] {
        let reconciles: f64 = samples(&m, "baton_reconcile")
            .iter()
            .filter(|(l, _)| l["controller"] == controller)
            .map(|(_, v)| v)
            .sum();
        assert!(reconciles > 0.0, "{controller}:\n{text}");
        assert!(
            value(
                &m,
                "baton_workqueue_queue_duration_seconds",
                &[("controller", controller)]
            )
            .unwrap_or(0.0)
                > 0.0,
            "{controller}"
        );
        assert!(
            value(&m, "baton_workqueue_adds", &[("controller", controller)]).unwrap_or(0.0) > 0.0,
            "{controller}"
        );
        // controller-runtime's names carry the same facts.
        let runtime: f64 = samples(&m, "controller_runtime_reconcile")
            .iter()
            .filter(|(l, _)| l["controller"] == controller)
            .map(|(_, v)| v)
            .sum();
        assert!(runtime > 0.0, "{controller}:\n{text}");
        assert!(
            value(&m, "workqueue_adds", &[("name", controller)]).unwrap_or(0.0) > 0.0,
            "{controller}"
        );
        assert!(
            value(
                &m,
                "controller_runtime_max_concurrent_reconciles",
                &[("controller", controller)]
            )
            .unwrap_or(0.0)
                >= 1.0,
            "{controller}"
        );
    }
    let rest = samples(&m, "rest_client_requests");
    assert!(
        rest.iter().any(|(l, v)| l["method"] == "GET"
            && l["code"] == "200"
            && l["host"].starts_with("127.0.0.1:")
            && *v > 0.0),
        "{rest:?}"
    );
    assert!(value(&m, "process_resident_memory_bytes", &[]).unwrap_or(0.0) > 1e6);
    assert!(value(&m, "process_open_fds", &[]).unwrap_or(0.0) > 3.0);
    // Same version, two namespaces: two series, never one merged.
    for ns in ["team-a", "team-b"] {
        let at = [("namespace", ns), ("name", "web")];
        assert_eq!(
            value(&m, "baton_rollout_instances", &[at[0], at[1], ("version", "v1")]),
            Some(2.0),
            "{ns}"
        );
        assert_eq!(
            value(&m, "baton_rollout_phase", &[at[0], at[1], ("phase", "Healthy")]),
            Some(1.0),
            "{ns}"
        );
        assert_eq!(
            value(&m, "baton_rollout_phase", &[at[0], at[1], ("phase", "Progressing")]),
            Some(0.0),
            "{ns}"
        );
        assert_eq!(
            value(&m, "baton_rollout_replicas", &[at[0], at[1], ("state", "available")]),
            Some(2.0),
            "{ns}"
        );
        assert_eq!(
            value(
                &m,
                "baton_rollout_info",
                &[at[0], at[1], ("version", "v1"), ("target_version", "v1")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&m, "baton_rollout_batch", &at),
            value(&m, "baton_rollout_batches", &at)
        );
        assert!(value(&m, "baton_rollout_phase_seconds", &[at[0], at[1], ("phase", "Healthy")]).is_some());
    }
    assert_eq!(samples(&m, "baton_rollout_instances").len(), 2, "{text}");
    let sxt = [("namespace", "default"), ("name", "sxt")];
    assert!(
        value(&m, "baton_listener_handovers", &sxt).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    for (state, n) in [
        ("running", 4.0),
        ("starting", 0.0),
        ("pending", 0.0),
        ("orphaned", 0.0),
        ("suspended", 0.0),
    ] {
        assert_eq!(
            value(&m, "baton_listenerset_listeners", &[sxt[0], sxt[1], ("state", state)]),
            Some(n),
            "{state}"
        );
    }

    // Deleted objects take their series with them.
    let team_a: Api<Rollout> = Api::namespaced(w.client.clone(), "team-a");
    team_a.delete("web", &DeleteParams::default()).await.unwrap();
    w.sets().delete("sxt", &DeleteParams::default()).await.unwrap();
    wait_until("the series of team-a/web and of sxt gone", || async {
        let (text, _) = scrape(addr).await;
        !text.contains("namespace=\"team-a\"") && !text.contains("name=\"sxt\"")
    })
    .await;
    let (_, m) = scrape(addr).await;
    assert_eq!(
        value(
            &m,
            "baton_rollout_instances",
            &[("namespace", "team-b"), ("version", "v1")]
        ),
        Some(2.0)
    );

    // Every log line of a reconcile carries the reconcile's namespace, name and id.
    assert!(controller.terminate());
    controller.wait_exit(LONG).await;
    let lines: Vec<Value> = controller
        .log_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_reconcile: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|n| n == "reconcile"))
        })
        .collect();
    for l in &in_reconcile {
        for field in ["controller", "namespace", "name", "reconcile_id"] {
            assert!(l[field].as_str().is_some_and(|v| !v.is_empty()), "{field} missing: {l}");
        }
    }
    for controller in ["rollout", "listenerset"] {
        assert!(
            in_reconcile.iter().any(|l| l["controller"] == controller),
            "no reconcile line of {controller}"
        );
    }
    let reconcile_modules = [
        "baton_controller::rollout::controller",
        "baton_controller::listeners::controller::writes",
        "baton_controller::listeners::controller::finalize",
    ];
    for module in reconcile_modules {
        let of_module: Vec<&Value> = lines.iter().filter(|l| l["target"] == module).collect();
        assert!(!of_module.is_empty(), "no log line of {module}");
        for l in of_module {
            assert!(l["reconcile_id"].is_string(), "a reconcile line without its span: {l}");
        }
    }
}

/// A controller that has reconciled nothing yet exports its error and retry counters at 0, one
/// series per controller with the labels docs/operating.md gives them, as controller-runtime and
/// client-go's work queue do: an alert's rate over them is 0, not missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_controller_exports_its_error_counters_at_zero() {
    let sim = baton_sim::Sim::start(baton_sim::SimConfig::default())
        .await
        .expect("simulator starts");
    let client = sim.client().await.expect("client");
    baton::demo::install_crds(&client).await.expect("CRDs");
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.kubeconfig_as("baton-controller", &kc).unwrap();
    let mut controller = LoggedChild::spawn(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .args([
                "controller",
                "--leader-elect=false",
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .env("KUBECONFIG", &kc)
            .env("RUST_LOG", "info"),
        "bound",
    )
    .expect("baton controller starts");
    let addr = controller
        .wait_addr(LONG)
        .await
        .expect("the controller logs its metrics address");
    let controllers = ["rollout", "listenerset"];
    // Both controllers have started (each sets its concurrency as it does).
    wait_until("both controllers on /metrics", || async {
        let (_, m) = scrape(addr).await;
        controllers
            .iter()
            .all(|c| value(&m, "controller_runtime_max_concurrent_reconciles", &[("controller", c)]).is_some())
    })
    .await;
    let (text, m) = scrape(addr).await;
    let documented = documented_metrics();
    for (name, label) in [
        ("controller_runtime_reconcile_errors", "controller"),
        ("workqueue_retries", "name"),
    ] {
        let doc = &documented[&format!("{name}_total")];
        assert_eq!(
            (doc.0.as_str(), doc.1.as_slice()),
            ("counter", &[label.to_string()][..]),
            "{name}_total in docs/operating.md"
        );
        assert_eq!(
            family(&m, name),
            (OpenMetricsType::Counter, strings(&[label])),
            "{text}"
        );
        for c in controllers {
            assert_eq!(
                value(&m, name, &[(label, c)]),
                Some(0.0),
                "{name}_total{{{label}={c:?}}}:\n{text}"
            );
        }
    }
}

/// `baton demo` serves the controller's /metrics and says where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_metrics() {
    let (mut child, url) = crate::process::demo_says(
        env!("CARGO_BIN_EXE_baton"),
        &[],
        "baton demo: controller metrics at http://",
        LONG,
    )
    .await
    .expect("the demo prints its metrics address in time");
    let addr: SocketAddr = url
        .strip_suffix("/metrics")
        .and_then(|a| a.parse().ok())
        .expect("a metrics address");
    wait_until("the demo's Rollout on /metrics", || async {
        let (_, m) = scrape(addr).await;
        value(
            &m,
            "baton_rollout_info",
            &[("namespace", "default"), ("name", "user-service")],
        ) == Some(1.0)
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}
