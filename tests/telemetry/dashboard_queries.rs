//! The chart's Grafana dashboard (`charts/baton/dashboards/baton.json`) and alert rules
//! (`charts/baton/files/alerts.yaml`) against what the controller really exports. A real
//! `baton controller` with leader election reconciles two Rollouts (the API server refuses the
//! status writes of one, so reconciles fail) and a ListenerSet whose listeners are handed over
//! (a drain) and taken over (a pod deleted at once). Then:
//!
//! * every metric a dashboard query or an alert rule names is a family of its /metrics (or a
//!   histogram's `_bucket`/`_sum`/`_count`, a counter's `_total`);
//! * a real Prometheus scraping it answers every dashboard query with data, every variable
//!   query with the namespace and job of the test, and loads and evaluates every rule without
//!   error (the leader alert staying quiet while the controller leads).
#![allow(clippy::await_holding_lock)]
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use baton::api::rollout::{Rollout, RolloutPhase};
use baton_sim::FaultRule;
use kube::api::{Api, Patch, PatchParams};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::{json, Value};

use crate::listener_world::*;
use crate::process::{http_get, LoggedChild};

const LONG: Duration = Duration::from_secs(60);
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The scrape job the rules select for a release named baton (the chart puts the release's in).
const JOB: &str = "baton-metrics";
const IDENTITY: &str = "baton-dashboard-test";

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Metric names in PromQL

/// Words that are PromQL syntax, not series.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
];
/// Keywords whose parenthesised list names labels.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// `expr` with its string literals, then its `{…}` label matchers and `[…]` ranges, blanked out
/// (strings first: a matcher's value may hold braces).
fn strip_literals(expr: &str) -> String {
    let mut unquoted = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None => unquoted.push(c),
            // Backslash escapes in "…" and '…'; none in `…`.
            Some(q) if q != '`' && c == '\\' && !escaped => escaped = true,
            Some(q) => {
                if c == q && !escaped {
                    quote = None;
                    unquoted.push(' ');
                }
                escaped = false;
            }
        }
    }
    let mut out = String::with_capacity(unquoted.len());
    let mut close: Option<char> = None;
    for c in unquoted.chars() {
        match (close, c) {
            (None, '{') => close = Some('}'),
            (None, '[') => close = Some(']'),
            (None, _) => out.push(c),
            (Some(end), _) if c == end => {
                close = None;
                out.push(' ');
            }
            (Some(_), _) => {}
        }
    }
    out
}

/// The tokens of a stripped expression: identifiers, numbers (with a duration's unit),
/// Grafana variables (`$x`, `${x}`) and single punctuation characters.
fn tokens(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        } else if c == '$' && chars.get(i + 1) == Some(&'{') {
            while i < chars.len() && chars[i] != '}' {
                i += 1;
            }
            i += 1;
        } else if c == '$' || word(c) || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i += 1;
            while i < chars.len() && (word(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.push(chars[start..i.min(chars.len())].iter().collect());
    }
    out
}

/// The metric names a PromQL expression reads (its series selectors' names).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let toks = tokens(&strip_literals(expr));
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].as_str();
        let first = t.chars().next().unwrap_or(' ');
        // A function or aggregation: `f(…)`, or `sum by (…) (…)`.
        let next = toks.get(i + 1).map(String::as_str);
        let called = matches!(next, Some("(" | "by" | "without"));
        if LABEL_LISTS.contains(&t) && called {
            // Skip the label list up to its `)`.
            while i < toks.len() && toks[i] != ")" {
                i += 1;
            }
        } else if (first.is_ascii_alphabetic() || first == '_' || first == ':') && !called && !KEYWORDS.contains(&t) {
            names.insert(t.to_string());
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_what_promql_reads() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"histogram_quantile(0.99, sum by (le, controller) (rate(controller_runtime_reconcile_time_seconds_bucket{job="$job", a=~"x|{y}"}[$__rate_interval])))"#,
            &["controller_runtime_reconcile_time_seconds_bucket"],
        ),
        (
            "sum by (job, name) (leader_election_master_status{job=\"baton-metrics\"}) == 0\nor\nabsent(baton_leader{job=\"baton-metrics\"})",
            &["baton_leader", "leader_election_master_status"],
        ),
        (
            "a_total / on (x) group_left (y, z) b offset 5m > bool 0.5 unless ignoring(q) c",
            &["a_total", "b", "c"],
        ),
        (
            r#"label_replace(up, "dst", "$1", "src", "(.*)") and sum without (instance) (rate(x_total[5m:1m])) * ${factor} + 1e3"#,
            &["up", "x_total"],
        ),
        (
            "sum(rate(a[1m])) by (le) / sum(b) without(pod)",
            &["a", "b"],
        ),
    ];
    for (expr, want) in cases {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(metric_names(expr), want, "{expr}");
    }
}

// ---------------------------------------------------------------------------------------------
// The dashboard and the rules

/// Every panel's queries (`targets[].expr`), nested rows included: (panel title, expr).
fn dashboard_queries() -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&read("charts/baton/dashboards/baton.json")).expect("baton.json is JSON");
    let mut panels: Vec<&Value> = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        panels.push(p);
        panels.extend(p["panels"].as_array().into_iter().flatten());
    }
    let mut out = Vec::new();
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            out.push((title, t["expr"].as_str().expect("a target's expr").to_string()));
        }
    }
    out
}

/// The dashboard's template variable queries (`label_values(selector, label)`).
fn variable_queries() -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&read("charts/baton/dashboards/baton.json")).expect("baton.json is JSON");
    let mut out = Vec::new();
    for v in d["templating"]["list"].as_array().expect("templating.list") {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("variable {}: not label_values(…): {q}", v["name"]));
            let (selector, label) = inner.rsplit_once(',').expect("label_values(selector, label)");
            out.push((selector.trim().to_string(), label.trim().to_string()));
        }
    }
    out
}

/// Every rule of alerts.yaml: (alert, expr).
fn alert_rules() -> Vec<(String, String)> {
    let rules: Value = serde_saphyr::from_str(&read("charts/baton/files/alerts.yaml")).expect("alerts.yaml is YAML");
    let mut out = Vec::new();
    for g in rules["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            let alert = r["alert"].as_str().expect("alert").to_string();
            out.push((alert, r["expr"].as_str().expect("expr").to_string()));
        }
    }
    out
}

/// A dashboard query as Grafana sends it for this test: the job's, all namespaces.
fn as_sent(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$namespace", ".*")
        .replace("$job", JOB)
}

/// Whether the exposition has the series `name` as Prometheus stores it: a gauge's name, a
/// counter's `_total`, a histogram's `_bucket`, `_sum` or `_count`.
fn exported(m: &Exposition, name: &str) -> bool {
    let kind = |n: &str| m.families.get(n).map(|f| f.family_type);
    let suffixed =
        |suffix: &str, t: OpenMetricsType| name.strip_suffix(suffix).is_some_and(|base| kind(base) == Some(t));
    matches!(kind(name), Some(OpenMetricsType::Gauge))
        || suffixed("_total", OpenMetricsType::Counter)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| suffixed(s, OpenMetricsType::Histogram))
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus

/// A Prometheus server scraping the controller every second as job [`JOB`] and evaluating
/// alerts.yaml every second; killed on drop.
struct Prometheus {
    addr: SocketAddr,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} not found: `make deps` installs Debian's prometheus"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        let rules = repo("charts/baton/files/alerts.yaml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{rules:?}]\n\
                 scrape_configs:\n  - job_name: {JOB}\n    static_configs: [{{targets: ['{target}']}}]\n"
            ),
        )
        .expect("writing prometheus.yml");
        // A free port: bound and released (Prometheus cannot report a port it chose itself).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let child = tokio::process::Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            addr,
            _child: child,
            _dir: dir,
        }
    }

    /// GET an API path; the parsed answer, or None if Prometheus does not answer (yet).
    async fn api(&self, path: &str) -> Option<Value> {
        let (_, body) = http_get(self.addr, path).await?;
        serde_json::from_str(&body).ok()
    }

    /// An instant query: Prometheus's whole answer.
    async fn query(&self, promql: &str) -> Value {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        self.api(&format!("/api/v1/query?query={q}"))
            .await
            .unwrap_or_else(|| panic!("Prometheus answered no JSON to {promql}"))
    }

    /// Wait until `promql` has a result: Prometheus is up and has scraped what it needs.
    async fn wait_for_result(&self, promql: &str) {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let path = format!("/api/v1/query?query={q}");
        wait_for(&format!("Prometheus to answer {promql}"), LONG, || async {
            let answer = self.api(&path).await?;
            answer["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
                .then_some(())
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario

fn rollout(name: &str) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": name}}, "version": "v1",
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "web:v1"}]}},
        }
    })
}

/// `baton controller` with leader election, serving /metrics on a port of its own.
async fn start_controller(w: &World, kubeconfig: &Path) -> (LoggedChild, SocketAddr) {
    w.sim.kubeconfig_as(IDENTITY, kubeconfig).expect("a kubeconfig");
    let mut controller = LoggedChild::spawn(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["controller", "--leader-elect=true", "--lease-namespace", NS])
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", "controller-0")
            .env("RUST_LOG", "info"),
        "bound",
    )
    .expect("baton controller starts");
    let addr = controller
        .wait_addr(LONG)
        .await
        .expect("the controller logs its metrics address");
    (controller, addr)
}

/// Rollout `web` becomes Healthy; every status write of Rollout `broken` is refused (500), so
/// its reconciles fail and are retried.
async fn rollouts(w: &World) {
    w.sim.faults.add_rule(FaultRule {
        client: Some(IDENTITY.into()),
        path: Some("/rollouts/broken/status".into()),
        error_rate: 1.0,
        error_codes: vec![500],
        ..FaultRule::default()
    });
    let api: Api<Rollout> = Api::namespaced(w.client.clone(), NS);
    for name in ["web", "broken"] {
        api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&rollout(name)))
            .await
            .expect("Rollout applied");
    }
    wait_for("web Healthy", LONG, || async {
        let r = api.get("web").await.ok()?;
        (r.status?.phase? == RolloutPhase::Healthy).then_some(())
    })
    .await;
}

/// ListenerSet `sxt` runs on gw-a and gw-b; gw-a is drained (a handover to gw-b), then gw-b is
/// deleted at once (a takeover by gw-c).
async fn listeners_moved(w: &World) {
    for p in ["gw-a", "gw-b"] {
        w.create_pod(p, "gw").await;
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "gw", listeners(4), 15).await;
    let all = ids(4);
    w.wait_running("4 listeners", &all, LONG, |_| true).await;
    wait_for("a listener on gw-a", LONG, || async {
        let on_a = w.log.running().values().any(|pods| pods.iter().any(|p| p == "gw-a"));
        on_a.then_some(())
    })
    .await;
    let drain = json!({"metadata": {"annotations": {"baton.dev/drain": jiff::Timestamp::now().to_string()}}});
    w.pods()
        .patch("gw-a", &PatchParams::default(), &Patch::Merge(&drain))
        .await
        .expect("gw-a drained");
    w.wait_running("every listener on gw-b", &all, LONG, |p| p == "gw-b")
        .await;
    w.create_pod("gw-c", "gw").await;
    w.wait_ready("gw-c").await;
    w.delete_pod("gw-b", Some(0)).await;
    w.wait_running("every listener on gw-c", &all, LONG, |p| p == "gw-c")
        .await;
}

/// Scrape until `families` all have series (they appear with their first one).
async fn scrape_with(addr: SocketAddr, families: &[&str]) -> Exposition {
    let mut last = String::new();
    let end = tokio::time::Instant::now() + LONG;
    loop {
        let (code, body) = http_get(addr, "/metrics").await.expect("/metrics answers");
        assert_eq!(code, 200, "{body}");
        let m = openmetrics_parser::openmetrics::parse_openmetrics(&body)
            .unwrap_or_else(|e| panic!("not valid OpenMetrics ({e:?}):\n{body}"));
        let missing: Vec<&&str> = families.iter().filter(|f| !m.families.contains_key(**f)).collect();
        if missing.is_empty() {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {missing:?} on /metrics:\n{last}"
        );
        last = body;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_read_what_the_controller_exports() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (_controller, addr) = start_controller(&w, &dir.path().join("kubeconfig")).await;
    rollouts(&w).await;
    listeners_moved(&w).await;
    // Families that appear with their first series: a failed reconcile, a handover, a takeover,
    // a batch, leadership.
    let m = scrape_with(
        addr,
        &[
            "baton_reconcile_errors",
            "controller_runtime_reconcile_errors",
            "baton_listener_handover_gap_seconds",
            "baton_listener_takeovers",
            "baton_rollout_batch",
            "leader_election_master_status",
        ],
    )
    .await;

    let queries = dashboard_queries();
    let rules = alert_rules();
    assert!(
        queries.len() >= 15 && rules.len() >= 9,
        "{} queries, {} rules",
        queries.len(),
        rules.len()
    );
    let mut read_names = BTreeSet::new();
    for (what, expr) in queries.iter().chain(&rules) {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{what}: no metric found in {expr}");
        for name in &names {
            assert!(
                exported(&m, name),
                "{what}: {name} (in {expr}) is not exported by the controller; it exports {:?}",
                m.families.keys().collect::<BTreeSet<_>>()
            );
        }
        read_names.extend(names);
    }
    assert!(read_names.len() >= 15, "{read_names:?}");

    let prometheus = Prometheus::start(addr);
    // Three scrapes in the last minute: every rate over 1m has two samples.
    prometheus
        .wait_for_result(&format!("count_over_time(baton_build_info{{job=\"{JOB}\"}}[1m]) >= 3"))
        .await;
    for (panel, expr) in &queries {
        let sent = as_sent(expr);
        let answer = prometheus.query(&sent).await;
        assert_eq!(answer["status"], "success", "{panel}: {sent}: {answer}");
        let result = answer["data"]["result"].as_array().expect("a result");
        assert!(!result.is_empty(), "{panel}: no data for {sent}");
    }
    for (selector, label) in variable_queries() {
        let sent = as_sent(&selector);
        let q: String = form_urlencoded::byte_serialize(sent.as_bytes()).collect();
        let answer = prometheus
            .api(&format!("/api/v1/label/{label}/values?match%5B%5D={q}"))
            .await
            .expect("label values");
        let want = if label == "job" { JOB } else { NS };
        let values = answer["data"].as_array().expect("label values");
        assert!(
            values.iter().any(|v| v == want),
            "label_values({sent}, {label}): {answer}"
        );
    }
    rules_evaluated(&prometheus, &rules).await;
}

/// Prometheus loaded every rule of alerts.yaml, evaluated each without error, and the leader
/// alert is quiet: the controller leads.
async fn rules_evaluated(prometheus: &Prometheus, rules: &[(String, String)]) {
    let want: BTreeSet<&str> = rules.iter().map(|(a, _)| a.as_str()).collect();
    let loaded = wait_for("every rule evaluated", LONG, || async {
        let answer = prometheus.api("/api/v1/rules?type=alert").await?;
        let loaded: Vec<Value> = answer["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = loaded
            .iter()
            .all(|r| r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001-")));
        (evaluated && loaded.len() == want.len()).then_some(loaded)
    })
    .await;
    let names: BTreeSet<&str> = loaded.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, want);
    for r in &loaded {
        assert_eq!(r["health"], "ok", "{r}");
    }
    for (alert, expr) in rules {
        let answer = prometheus.query(expr).await;
        assert_eq!(answer["status"], "success", "{alert}: {answer}");
    }
    let leader = loaded
        .iter()
        .find(|r| r["name"] == "BatonNoLeader")
        .expect("BatonNoLeader");
    assert_eq!(leader["state"], "inactive", "{leader}");
    let leading = prometheus
        .query(&format!("sum(leader_election_master_status{{job=\"{JOB}\"}})"))
        .await;
    assert_eq!(leading["data"]["result"][0]["value"][1], "1", "{leading}");
}
