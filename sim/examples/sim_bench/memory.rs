//! Phase 3, memory: resident memory per 10,000 realistic pods beyond their stored JSON, kubelet
//! included (pods are bound, started and made Ready before the second reading).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use baton_sim::resources::ResKey;
use baton_sim::{Sim, SimConfig};
use serde_json::json;

use crate::raw_client::{create_namespace, find, RawClient};
use crate::{PODS, POD_CLIENTS, WARMUP_PODS};

/// Counts live heap bytes, so the memory figure can be split into what the simulator holds and
/// what the allocator keeps resident without it being in use.
struct CountingAlloc;

static LIVE_HEAP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Counting is on for the memory phase only (it runs first): one contended atomic per
/// allocation would slow the throughput phases measurably.
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_HEAP.fetch_add(new_size, Ordering::Relaxed);
            LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn vm_rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS in /proc/self/status"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing {line:?}"))?;
    Ok(kb * 1024)
}

fn pod_body(ns: &str, i: usize) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("web-7d9f8c6b5-{i:05}"),
            "namespace": ns,
            "labels": {
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/instance": "web-prod",
                "app.kubernetes.io/version": "1.24.3",
                "pod-template-hash": "7d9f8c6b5",
            },
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example.com/acme/web:1.24.3",
                    "args": ["--listen=:8080", "--metrics=:9090"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "REGION", "value": "eu-west-1"},
                        {"name": "DATABASE_URL", "value": "postgres://web@db.prod.svc:5432/web"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    ],
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": true}],
                },
                {
                    "name": "proxy",
                    "image": "registry.example.com/acme/proxy:0.9.1",
                    "args": ["--upstream=127.0.0.1:8080", "--port=15001"],
                    "ports": [{"name": "proxy", "containerPort": 15001, "protocol": "TCP"}],
                    "env": [
                        {"name": "PROXY_MODE", "value": "sidecar"},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    ],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                },
            ],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "terminationGracePeriodSeconds": 30,
        },
    })
    .to_string()
}

async fn create_pods(addr: SocketAddr, ns: &str, first: usize, count: usize) -> Result<()> {
    let per = count.div_ceil(POD_CLIENTS);
    let mut handles = Vec::new();
    for c in 0..POD_CLIENTS {
        let lo = first + c * per;
        let hi = (lo + per).min(first + count);
        let ns = ns.to_string();
        handles.push(tokio::spawn(async move {
            let mut conn = RawClient::connect(addr, "sim-bench-pods").await?;
            let path = format!("/api/v1/namespaces/{ns}/pods");
            for i in lo..hi {
                conn.ok("POST", &path, pod_body(&ns, i).as_bytes()).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for h in handles {
        h.await.context("a pod writer panicked")??;
    }
    Ok(())
}

/// Waits until `n` pods in `ns` are Running with every container ready, and the store has been
/// quiet for a moment (the kubelet has finished rewriting their status).
async fn wait_settled(sim: &Sim, ns: &str, n: usize, limit: Duration) -> Result<()> {
    let key = ResKey {
        group: String::new(),
        plural: "pods".into(),
    };
    let deadline = Instant::now() + limit;
    let mut last_rv = 0;
    loop {
        let (pods, rv) = sim.core.store.list(&key, Some(ns));
        let settled = pods
            .iter()
            .filter(|p| find(&p.raw, b"\"phase\":\"Running\"").is_some() && find(&p.raw, b"\"ready\":false").is_none())
            .count();
        drop(pods);
        if settled == n && rv == last_rv {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {settled} of {n} pods in {ns} settled within {limit:?}");
        }
        last_rv = rv;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(crate) struct MemFigures {
    pub(crate) rss_delta: u64,
    pub(crate) heap_delta: u64,
    pub(crate) json: u64,
    pub(crate) create_rate: f64,
    pub(crate) settle_secs: f64,
}

pub(crate) async fn memory() -> Result<MemFigures> {
    let sim = Sim::start(SimConfig::default())
        .await
        .context("starting the simulator")?;
    let addr = sim.addr();
    // Warm up every code path (and the allocator's arenas) with a few pods of their own.
    create_namespace(addr, "bench-warm").await?;
    create_pods(addr, "bench-warm", 0, WARMUP_PODS).await?;
    wait_settled(&sim, "bench-warm", WARMUP_PODS, Duration::from_secs(20)).await?;
    create_namespace(addr, "bench-mem").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = vm_rss_bytes()?;
    let heap0 = LIVE_HEAP.load(Ordering::Relaxed);
    let json0 = sim.core.store.stored_bytes() as u64;
    let t0 = Instant::now();
    create_pods(addr, "bench-mem", 0, PODS).await?;
    let create_rate = PODS as f64 / t0.elapsed().as_secs_f64();
    wait_settled(&sim, "bench-mem", PODS, Duration::from_secs(60)).await?;
    let settle_secs = t0.elapsed().as_secs_f64();
    let rss1 = vm_rss_bytes()?;
    let heap1 = LIVE_HEAP.load(Ordering::Relaxed);
    COUNTING.store(false, Ordering::Relaxed);
    let json1 = sim.core.store.stored_bytes() as u64;
    sim.stop();
    Ok(MemFigures {
        rss_delta: rss1.saturating_sub(rss0),
        heap_delta: heap1.saturating_sub(heap0) as u64,
        json: json1.saturating_sub(json0),
        create_rate,
        settle_secs,
    })
}
