//! Deployment artefacts: the CRD copies in the Helm chart and in config/crd/ are the generated
//! `crds/baton.dev_crds.yaml`, and the chart lints, renders and installs with Helm's real engine
//! (`tests/helm/check_chart.py`, helm-python-sdk) into a simulator started here — or the real
//! control plane (`BATON_TEST_CLUSTER=real`), whose kube-apiserver compiles the chart's
//! admission policies with cel-go and authorizes with its RBAC; its dashboard and alerts render
//! and pass `promtool` (`tests/helm/check_monitoring.py`).
//!
//! The Helm check needs `.venv/bin/python` with helm-python-sdk (`make deps` creates it); without
//! it the test fails and says so, unless BATON_SKIP_HELM_CHECKS=1.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{helm, world};

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

/// On the real control plane, which other tests share, the check names its releases and
/// namespaces with this test's suffix and removes them (`check_chart.py --shared`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_lints_renders_and_installs() {
    if !helm::helm_available().await {
        return;
    }
    // The simulator runs in this process (running `cargo run` from inside `cargo test` would
    // wait forever on the build-directory lock).
    let w = world::World::start("chart").await;
    let mut args: Vec<&std::ffi::OsStr> = vec!["--kubeconfig".as_ref(), w.kubeconfig().as_os_str()];
    if w.is_real() {
        w.install_crds().await;
        args.push("--shared".as_ref());
        args.push(w.suffix().as_ref());
    }
    run_helm_check("check_chart.py", &args).await;
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

/// The key paths of `values` (a mapping): every key, maps included, dot-joined.
fn key_paths(values: &serde_json::Value, prefix: &str, out: &mut Vec<(String, bool)>) {
    let Some(map) = values.as_object() else { return };
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let leaf = v.as_object().is_none_or(|m| m.is_empty());
        out.push((path.clone(), leaf));
        key_paths(v, &path, out);
    }
}

/// The keys the Values table of the chart's README names: the first cell of each row, where
/// `` `a.b.c` / `d` `` names `a.b.c` and its sibling `a.b.d`, and `<alert>` stands for any key.
fn readme_keys(readme: &str) -> Vec<Vec<String>> {
    let table = readme.split("## Values").nth(1).unwrap_or_default();
    let mut keys = Vec::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
        let Some(first) = names.first() else { continue };
        let first: Vec<String> = first.split('.').map(String::from).collect();
        for name in &names {
            let mut key = if name.contains('.') {
                Vec::new()
            } else {
                first[..first.len() - 1].to_vec()
            };
            key.extend(name.split('.').map(String::from));
            keys.push(key);
        }
    }
    keys
}

/// Whether a README key names `path`, one of its ancestors or (for a map) one of its keys.
fn documented(keys: &[Vec<String>], path: &str) -> bool {
    let path: Vec<&str> = path.split('.').collect();
    keys.iter().any(|k| {
        k.iter()
            .zip(&path)
            .all(|(a, b)| a == b || (a.starts_with('<') && a.ends_with('>')))
    })
}

/// The chart values docs/operating.md names: the code spans of its prose, and the `--set`s of
/// its examples, whose first key is one of the chart's top-level keys (`rbac.scope=namespace`
/// names `rbac.scope`).
fn operating_values(doc: &str, top: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let key = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
    };
    let mut fenced = false;
    let mut prose = String::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let spans = prose.split('`').skip(1).step_by(2).map(key);
    let sets = doc
        .split("--set")
        .skip(1)
        .map(|s| key(s.trim_start_matches([' ', '=', '\''])));
    let mut names: Vec<String> = spans
        .chain(sets)
        .filter(|k| top.contains_key(k.split('.').next().unwrap_or_default()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every key of the chart's values.yaml is in the README's Values table (itself or a map above
/// it), and every chart value docs/operating.md names is a key of values.yaml, so in the table.
#[test]
fn every_chart_value_is_documented() {
    let values: serde_json::Value =
        serde_saphyr::from_str(&read(&root().join("charts/baton/values.yaml"))).expect("values.yaml is YAML");
    let mut paths = Vec::new();
    key_paths(&values, "", &mut paths);
    let keys = readme_keys(&read(&root().join("charts/baton/README.md")));
    let missing: Vec<&str> = paths
        .iter()
        .filter(|(path, leaf)| *leaf && !documented(&keys, path))
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "charts/baton/README.md's Values table lacks {missing:?}"
    );
    let top = values.as_object().expect("values.yaml is a mapping");
    let named = operating_values(&read(&root().join("docs/operating.md")), top);
    assert!(named.len() > 10, "docs/operating.md names {named:?}");
    for name in &named {
        assert!(
            paths.iter().any(|(p, _)| p == name),
            "docs/operating.md names chart value {name}, which values.yaml does not have"
        );
        assert!(
            documented(&keys, name),
            "docs/operating.md names chart value {name}, which charts/baton/README.md does not"
        );
    }
}
