//! `prometheus` checks with the real `baton controller` and a real Prometheus server
//! (Debian's `prometheus`, installed by `make deps`) scraping a metrics endpoint this test serves:
//! an error ratio below the condition passes a batch, one above it fails the batch and rolls it
//! back naming the series and its value; a check whose Secret is missing fails naming it.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::api::rollout::FailureReason;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::helpers::*;
use crate::support::controller;
use crate::support::*;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// `/metrics` in the text format: `app_error_ratio{version="…"} <ratio>` for each version set.
struct Metrics {
    port: u16,
    ratios: Arc<Mutex<BTreeMap<String, f64>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Metrics {
    async fn start() -> Self {
        let ratios: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let r = ratios.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let r = r.clone();
                async move {
                    let mut body = String::from("# TYPE app_error_ratio gauge\n");
                    for (v, x) in r.lock().unwrap().iter() {
                        body.push_str(&format!("app_error_ratio{{version=\"{v}\"}} {x}\n"));
                    }
                    body
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serving");
        });
        Metrics {
            port,
            ratios,
            _task: task,
        }
    }

    fn set(&self, version: &str, ratio: f64) {
        self.ratios.lock().unwrap().insert(version.into(), ratio);
    }
}

/// A Prometheus server scraping `metrics` every second, killed on drop.
struct Prometheus {
    address: String,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(metrics: &Metrics) -> Self {
        assert!(
            std::path::Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} not found: `make deps` installs Debian's prometheus"
        );
        let dir = controller::temp_dir("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
                metrics.port
            ),
        )
        .expect("writing prometheus.yml");
        // A free port: bound and released (Prometheus cannot report a port it chose itself).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            address: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    }

    /// Wait until Prometheus answers `app_error_ratio{version}` with `ratio` (it scraped it).
    async fn wait_scraped(&self, version: &str, ratio: f64) {
        let url = format!(
            "{}/api/v1/query?query=app_error_ratio%7Bversion%3D%22{version}%22%7D",
            self.address
        );
        let what = format!("Prometheus to have scraped app_error_ratio{{version={version:?}}} = {ratio}");
        wait::poll(&what, LONG, Duration::from_millis(200), || {
            let url = url.clone();
            async move {
                let answer = http_get(&url).await;
                let value = answer
                    .as_ref()
                    .ok()
                    .and_then(|v| v["data"]["result"][0]["value"][1].as_str().map(str::to_string));
                match value.and_then(|v| v.parse::<f64>().ok()) {
                    Some(x) if x == ratio => Ok(()),
                    _ => Err(format!("{answer:?}")),
                }
            }
        })
        .await
        .unwrap_or_else(|(message, last)| panic!("{message}; last answer: {last}"));
    }
}

/// GET `url` (plain HTTP) and parse the JSON answer.
async fn http_get(url: &str) -> Result<serde_json::Value, String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let resp = client.get(uri).await.map_err(|e| format!("{e}"))?;
    let body = resp.into_body().collect().await.map_err(|e| format!("{e}"))?.to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("{e}"))
}

/// A Rollout of `version` on 2 instances gated by the error ratio of its version (< 0.1, twice,
/// 1 s apart).
fn gated(env: &Env, version: &str, address: &str, secret: Option<&str>) -> serde_json::Value {
    let mut m = env.manifest_v(NAME, 2, version);
    let mut prometheus = json!({
        "address": address,
        "query": "max by (version) (app_error_ratio{version=\"{{version}}\"})",
        "condition": "< 0.1",
        "timeoutSeconds": 5
    });
    if let Some(s) = secret {
        prometheus["secretRef"] = json!({"name": s});
    }
    m["spec"]["checks"] = json!([{
        "name": "errors", "prometheus": prometheus, "count": 2, "failureLimit": 0, "intervalSeconds": 1
    }]);
    m
}

/// The app's metrics with each version's error ratio set, and a Prometheus that has scraped
/// them all.
async fn scraped(ratios: &[(&str, f64)]) -> (Metrics, Prometheus) {
    let metrics = Metrics::start().await;
    let prometheus = Prometheus::start(&metrics).await;
    for (v, x) in ratios {
        metrics.set(v, *x);
    }
    for (v, x) in ratios {
        prometheus.wait_scraped(v, *x).await;
    }
    (metrics, prometheus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_ratio_above_the_condition_rolls_the_batch_back() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    let (_metrics, prometheus) = scraped(&[("v1", 0.0), ("v2", 0.5), ("v3", 0.02)]).await;

    // v1's error ratio is 0: its checks pass and it is Healthy.
    env.apply(&gated(&env, "v1", &prometheus.address, None)).await;
    env.wait_healthy(NAME, "v1", 2).await;

    // v2's is 0.5: its first batch fails the check and is rolled back, naming the series.
    env.apply(&gated(&env, "v2", &prometheus.address, None)).await;
    let (r, f) = wait_rolled_back(&env).await;
    assert_eq!(f.reason, FailureReason::CheckFailed, "{f:?}");
    assert!(
        f.message
            .contains("check errors failed: 1 of 1 attempts failed, last: {version=\"v2\"} = 0.5 (expected < 0.1)"),
        "{}",
        f.message
    );
    assert_eq!(instance_versions(&r), map(&[("v1", 2)]));
    env.wait_event(NAME, "CheckFailed Warning naming the series", |e| {
        e.reason.as_deref() == Some("CheckFailed") && e.note.as_deref().unwrap_or("").contains("= 0.5")
    })
    .await;

    // v3's is 0.02: it passes and is Healthy.
    env.apply(&gated(&env, "v3", &prometheus.address, None)).await;
    env.wait_healthy(NAME, "v3", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_whose_secret_is_missing_fails_naming_it() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    let (_metrics, prometheus) = scraped(&[("v2", 0.0)]).await;
    env.apply(&env.manifest_v(NAME, 2, "v1")).await;
    env.wait_healthy(NAME, "v1", 2).await;

    // A condition without a comparison is refused by the API server (the schema's pattern).
    let mut bad = gated(&env, "v2", &prometheus.address, None);
    bad["spec"]["checks"][0]["prometheus"]["condition"] = json!("0.1");
    let err = env
        .rollouts()
        .patch(NAME, &PatchParams::apply("test").force(), &Patch::Apply(&bad))
        .await
        .expect_err("a condition without a comparison is refused");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(s.message.contains("prometheus.condition"), "{}", s.message);
        }
        e => panic!("unexpected error {e}"),
    }

    env.apply(&gated(&env, "v2", &prometheus.address, Some("prom-creds")))
        .await;
    let (_, f) = wait_rolled_back(&env).await;
    assert_eq!(f.reason, FailureReason::CheckFailed, "{f:?}");
    assert!(
        f.message.contains(&format!("cannot read Secret {}/prom-creds", env.ns)) && f.message.contains("not found"),
        "{}",
        f.message
    );
}
