//! Dashboard benchmark: 100 Rollouts × 10 instances, rolled out by the real controller on the
//! in-process simulator; then `baton dashboard` (in-process, the user's view: every namespace):
//!
//! * cold first render: from starting the dashboard (its watches list everything) to the
//!   whole Rollout page of one of the 100 received;
//! * warm renders: the same page, 50 times (p50, p99, max);
//! * in a browser (Debian's headless Chromium through chromedriver, when installed): the page's
//!   first contentful paint and DOMContentLoaded, from navigation start;
//! * live update: from a spec change written (`spec.paused`) to the page's live stream
//!   delivering the changed fragment (target: within 1 s).
//!
//! Target: the Rollout page renders in < 500 ms. Run with `make bench` or
//! `cargo run --release --example dashboard_bench`.
use std::time::{Duration, Instant};

use baton::api::rollout::{Rollout, RolloutPhase};
use baton::operator::{self, OperatorConfig};
use baton_sim::{KubeletConfig, Sim, SimConfig};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../tests/support/http.rs"]
mod http;

const ROLLOUTS: usize = 100;
const INSTANCES: i32 = 10;
const PAGE: &str = "/rollouts/default/svc-042";

fn manifest(i: usize) -> serde_json::Value {
    let name = format!("svc-{i:03}");
    json!({
        "apiVersion": baton::api::API_VERSION, "kind": "Rollout",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": INSTANCES,
            "selector": {"matchLabels": {"app": name}},
            "version": "v1",
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "svc:v1"}]}},
            "strategy": {"batches": ["100%"], "maxSurge": "100%", "maxUnavailable": 0},
            "minReadySeconds": 0
        }
    })
}

fn healthy(r: &Rollout) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.observed_generation == r.metadata.generation
            && s.phase == Some(RolloutPhase::Healthy)
            && s.instances.len() == INSTANCES as usize
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let kubelet = KubeletConfig {
        ready_delay: Duration::from_millis(100),
        ..KubeletConfig::default()
    };
    let sim = Sim::start(SimConfig {
        kubelet,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let client = sim.client().await.map_err(|e| e.to_string())?;
    baton::demo::install_crds(&client).await?;
    let api: Api<Rollout> = Api::namespaced(client.clone(), "default");
    while api.list(&ListParams::default().limit(1)).await.is_err() {
        tokio::task::yield_now().await;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let cfg = OperatorConfig {
        namespace: Some("default".into()),
        concurrency: 8,
        ..OperatorConfig::default()
    };
    let op = tokio::spawn(operator::run(client.clone(), cfg, async move {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    let pp = PatchParams::apply("bench").force();
    for i in 0..ROLLOUTS {
        api.patch(&format!("svc-{i:03}"), &pp, &Patch::Apply(manifest(i)))
            .await
            .map_err(|e| e.to_string())?;
    }
    loop {
        let all = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
        if all.iter().filter(|r| healthy(r)).count() == ROLLOUTS {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the rollouts did not become Healthy within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{ROLLOUTS} Rollouts x {INSTANCES} instances Healthy after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Cold: the dashboard starts, lists everything, and serves the page.
    let session = baton::session::Session {
        client: client.clone(),
        namespace: "default".into(),
        server: sim.addr().to_string(),
        read_timeout: None,
    };
    let t0 = Instant::now();
    let served = baton::dashboard::serve(
        session,
        None,
        "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        &[],
        false,
    )
    .await
    .map_err(|e| e.to_string())?;
    let addr = served.address;
    let first = http::request(addr, "GET", PAGE, &[], b"")
        .await
        .map_err(|e| e.to_string())?;
    let cold = t0.elapsed();
    let tiles = first.text().matches("<li class=\"tile").count();
    if first.code != 200 || tiles != INSTANCES as usize {
        return Err(format!("the first page: HTTP {} with {tiles} tiles", first.code));
    }
    println!(
        "cold first render (start, list {ROLLOUTS} Rollouts, serve {PAGE}: {} KiB, {tiles} tiles): {}",
        first.body.len() / 1024,
        ms(cold)
    );

    // Warm.
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let r = http::request(addr, "GET", PAGE, &[], b"")
            .await
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed());
        if r.code != 200 {
            return Err(format!("HTTP {}", r.code));
        }
    }
    times.sort();
    println!(
        "warm render of {PAGE}, 50 requests: p50 {}, p99 {}, max {}",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1])
    );

    browser(&format!("http://{addr}{PAGE}")).await;
    live_update(&api, addr).await?;

    let _ = stop.send(());
    let _ = op.await;
    Ok(())
}

/// First contentful paint and DOMContentLoaded in headless Chromium, if it is installed.
async fn browser(url: &str) {
    use fantoccini::ClientBuilder;
    if !std::path::Path::new("/usr/bin/chromedriver").exists() {
        println!("browser: skipped (no /usr/bin/chromedriver; `make deps` installs it)");
        return;
    }
    let Ok(mut driver) = tokio::process::Command::new("/usr/bin/chromedriver")
        .arg("--port=0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
    else {
        println!("browser: chromedriver did not start");
        return;
    };
    let mut out = String::new();
    let mut stdout = driver.stdout.take().expect("piped");
    let port = loop {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(30), stdout.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => {
                println!("browser: chromedriver did not report its port");
                return;
            }
        }
        if let Some(p) = out
            .split("started successfully on port ")
            .nth(1)
            .and_then(|r| r.split('.').next())
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            break p;
        }
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let Ok(client) = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
    else {
        println!("browser: no session");
        return;
    };
    for run in ["first visit", "second visit"] {
        if client.goto(url).await.is_err() {
            println!("browser: navigation failed");
            break;
        }
        let timing = client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0]; \
                 const p = performance.getEntriesByName('first-contentful-paint')[0]; \
                 return [p ? p.startTime : -1, n.domContentLoadedEventEnd, document.querySelectorAll('#tiles li').length];",
                vec![],
            )
            .await
            .unwrap_or_default();
        println!(
            "browser ({run}): first contentful paint {} ms, DOMContentLoaded {} ms, {} tiles",
            timing[0]
                .as_f64()
                .filter(|v| *v >= 0.0)
                .map_or("n/a".into(), |v| format!("{v:.1}")),
            timing[1].as_f64().map_or("?".into(), |v| format!("{v:.1}")),
            timing[2]
        );
    }
    let _ = client.close().await;
}

/// From a spec change written to the changed fragment on the page's live stream.
async fn live_update(api: &Api<Rollout>, addr: std::net::SocketAddr) -> Result<(), String> {
    let mut samples = Vec::new();
    for (i, paused) in [true, false, true, false, true].into_iter().enumerate() {
        let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!("GET /live{PAGE} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        // The first fragment, as the page has it.
        while !String::from_utf8_lossy(&seen).contains("\n\n")
            || !String::from_utf8_lossy(&seen).contains("event: update")
        {
            let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
            seen.extend_from_slice(&buf[..n]);
        }
        let before = String::from_utf8_lossy(&seen).matches("event: update").count();
        let t = Instant::now();
        api.patch(
            "svc-042",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": paused}})),
        )
        .await
        .map_err(|e| e.to_string())?;
        loop {
            let text = String::from_utf8_lossy(&seen).into_owned();
            // The stream is chunked: a new event's first bytes mark its arrival.
            if text.matches("event: update").count() > before {
                break;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .map_err(|_| format!("no live update within 10 s (sample {i})"))?
                .map_err(|e| e.to_string())?;
            seen.extend_from_slice(&buf[..n]);
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "live update (spec change written -> fragment on the stream), 5 samples: median {}, max {}",
        ms(samples[2]),
        ms(samples[4])
    );
    Ok(())
}
