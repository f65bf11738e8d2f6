//! The simulator benchmark (`make bench`):
//!
//! ```text
//! cargo run --release -p baton-sim --example sim_bench
//! ```
//!
//! Three figures, all measured in one process over loopback:
//!
//! 1. write throughput (creates/s and updates/s of ConfigMaps) from one client and from 8
//!    concurrent clients, with kube-rs (`Api<ConfigMap>`) and with a lean hand-written HTTP/1.1
//!    keep-alive client, so server capacity and client overhead can be told apart;
//! 2. watch fan-out latency: 100 HTTP watchers, a writer whose objects carry their send time,
//!    and the send → delivery latency over every (watcher, event) pair;
//! 3. resident memory per 10,000 realistic pods beyond their stored JSON, kubelet included
//!    (pods are bound, started and made Ready before the second reading).
//!
//! The memory phase runs first, in a simulator of its own, so memory freed by the other phases
//! cannot be reused by the pods and hide their cost.
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use baton_sim::resources::ResKey;
use baton_sim::{Sim, SimConfig};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Counts live heap bytes, so the memory figure can be split into what the simulator holds and
/// what the allocator keeps resident without it being in use.
struct CountingAlloc;

static LIVE_HEAP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LIVE_HEAP.fetch_add(new_size, Ordering::Relaxed);
        LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const COMMAND: &str = "cargo run --release -p baton-sim --example sim_bench";

/// Writes of each kind (creates, then updates) by the single client.
const SINGLE_WRITES: usize = 5_000;
const CONCURRENT_CLIENTS: usize = 8;
/// Writes of each kind by each of the concurrent clients.
const PER_CLIENT_WRITES: usize = 1_000;

const WATCHERS: usize = 100;
/// Writes in each watch phase (paced, then burst).
const WATCH_WRITES: usize = 500;
/// Time between writes in the paced watch phase (200 writes/s → 20,000 deliveries/s).
const WATCH_PACE: Duration = Duration::from_millis(5);

const PODS: usize = 10_000;
const WARMUP_PODS: usize = 200;
const POD_CLIENTS: usize = 4;

const TARGET_WRITES_PER_S: f64 = 5_000.0;
const TARGET_P99_MS: f64 = 20.0;
const TARGET_MIB_PER_10K: f64 = 30.0;

/// The shared clock: watch events carry nanoseconds since this instant.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn nanos() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client: Content-Length request bodies, Content-Length or chunked
// responses. Just enough for the simulator, with as little client-side work as possible.
// ---------------------------------------------------------------------------------------------

struct RawClient {
    io: BufReader<TcpStream>,
    host: String,
    identity: String,
    req: Vec<u8>,
    line: String,
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

impl RawClient {
    async fn connect(addr: SocketAddr, identity: &str) -> Result<Self> {
        let s = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the simulator at {addr}"))?;
        s.set_nodelay(true).context("setting TCP_NODELAY")?;
        Ok(RawClient {
            io: BufReader::with_capacity(64 * 1024, s),
            host: addr.to_string(),
            identity: identity.to_string(),
            req: Vec::with_capacity(4096),
            line: String::new(),
        })
    }

    async fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Result<()> {
        self.req.clear();
        write!(
            self.req,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sim-bench-raw\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\n",
            self.host, self.identity
        )?;
        if method != "GET" {
            write!(
                self.req,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )?;
        }
        self.req.extend_from_slice(b"\r\n");
        self.req.extend_from_slice(body);
        self.io
            .get_mut()
            .write_all(&self.req)
            .await
            .with_context(|| format!("sending {method} {path}"))
    }

    async fn read_line(&mut self) -> Result<()> {
        self.line.clear();
        let n = self.io.read_line(&mut self.line).await.context("reading a response")?;
        if n == 0 {
            bail!("the simulator closed the connection");
        }
        Ok(())
    }

    async fn read_head(&mut self) -> Result<Head> {
        self.read_line().await?;
        let status = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("malformed status line {:?}", self.line))?;
        let mut head = Head {
            status,
            content_length: None,
            chunked: false,
        };
        loop {
            self.read_line().await?;
            let l = self.line.trim_end();
            if l.is_empty() {
                return Ok(head);
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    head.content_length = Some(v.parse().with_context(|| format!("Content-Length {v:?}"))?);
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
                    head.chunked = true;
                }
            }
        }
    }

    /// Append one chunk of a chunked body to `out`; false at the last (empty) chunk.
    async fn read_chunk(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        self.read_line().await?;
        let size_text = self.line.trim_end().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).with_context(|| format!("chunk size {size_text:?}"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                self.read_line().await?;
                if self.line.trim_end().is_empty() {
                    return Ok(false);
                }
            }
        }
        let start = out.len();
        out.resize(start + size, 0);
        self.io.read_exact(&mut out[start..]).await.context("reading a chunk")?;
        let mut crlf = [0u8; 2];
        self.io.read_exact(&mut crlf).await.context("reading a chunk's CRLF")?;
        Ok(true)
    }

    /// One request; the status and the whole body.
    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        self.send(method, path, body).await?;
        let head = self.read_head().await?;
        let mut out = Vec::new();
        if head.chunked {
            while self.read_chunk(&mut out).await? {}
        } else if let Some(n) = head.content_length {
            out.resize(n, 0);
            self.io.read_exact(&mut out).await.context("reading a response body")?;
        } else {
            bail!("{method} {path}: response has neither Content-Length nor chunked encoding");
        }
        Ok((head.status, out))
    }

    /// A request that must succeed (2xx); the body.
    async fn ok(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let (status, out) = self.request(method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {}", String::from_utf8_lossy(&out));
        }
        Ok(out)
    }
}

/// The string value of the first `"key":"…"` in compact JSON, without parsing the document.
fn str_field<'a>(json: &'a [u8], key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let at = find(json, pat.as_bytes())? + pat.len();
    let end = json[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&json[at..at + end]).ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn create_namespace(addr: SocketAddr, name: &str) -> Result<()> {
    let mut c = RawClient::connect(addr, "sim-bench").await?;
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).to_string();
    c.ok("POST", "/api/v1/namespaces", body.as_bytes())
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Write throughput.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Rates {
    creates: f64,
    updates: f64,
}

/// Runs `clients` tasks, each making `per_client` creates, then (after all creates are done)
/// `per_client` updates; the aggregate rates of both phases.
async fn throughput<F, Fut>(clients: usize, per_client: usize, mut task: F) -> Result<Rates>
where
    F: FnMut(usize, Arc<Barrier>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(clients + 1));
    let futs: Vec<Fut> = (0..clients).map(|c| task(c, barrier.clone())).collect();
    let t0 = Instant::now();
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    barrier.wait().await;
    let t1 = Instant::now();
    for h in handles {
        h.await.context("a writer task panicked")??;
    }
    let t2 = Instant::now();
    let n = (clients * per_client) as f64;
    Ok(Rates {
        creates: n / (t1 - t0).as_secs_f64(),
        updates: n / (t2 - t1).as_secs_f64(),
    })
}

async fn kube_throughput(sim: &Sim, ns: &str, clients: usize, per_client: usize) -> Result<Rates> {
    let tag = format!("kube{clients}");
    let mut apis = Vec::with_capacity(clients);
    for c in 0..clients {
        let client = sim
            .client_as(&format!("sim-bench-kube-{c}"))
            .await
            .context("building a kube client")?;
        apis.push(Api::<ConfigMap>::namespaced(client, ns));
    }
    let mut apis = apis.into_iter();
    throughput(clients, per_client, move |c, barrier| {
        let api = apis.next();
        let tag = tag.clone();
        async move {
            let api = api.ok_or_else(|| anyhow!("no client for writer {c}"))?;
            let pp = PostParams::default();
            let mut created = Vec::with_capacity(per_client);
            let mut result = Ok(());
            for i in 0..per_client {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("{tag}-{c}-{i}")),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([("value".to_string(), "0".to_string())])),
                    ..ConfigMap::default()
                };
                match api.create(&pp, &cm).await {
                    Ok(o) => created.push(o),
                    Err(e) => {
                        result = Err(anyhow!("kube-rs create {tag}-{c}-{i}: {e}"));
                        break;
                    }
                }
            }
            // Always reach the barrier, so a failed writer cannot hang the others.
            barrier.wait().await;
            result?;
            for mut cm in created {
                let name = cm.metadata.name.clone().unwrap_or_default();
                cm.data = Some(BTreeMap::from([("value".to_string(), "1".to_string())]));
                api.replace(&name, &pp, &cm)
                    .await
                    .map_err(|e| anyhow!("kube-rs replace {name}: {e}"))?;
            }
            Ok(())
        }
    })
    .await
}

async fn raw_throughput(addr: SocketAddr, ns: &str, clients: usize, per_client: usize) -> Result<Rates> {
    let mut conns = Vec::with_capacity(clients);
    for c in 0..clients {
        conns.push(RawClient::connect(addr, &format!("sim-bench-raw-{c}")).await?);
    }
    let mut conns = conns.into_iter();
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let tag = format!("raw{clients}");
    throughput(clients, per_client, move |c, barrier| {
        let conn = conns.next();
        let base = base.clone();
        let tag = tag.clone();
        async move {
            let mut conn = conn.ok_or_else(|| anyhow!("no connection for writer {c}"))?;
            let mut rvs = Vec::with_capacity(per_client);
            let mut result = Ok(());
            for i in 0..per_client {
                let body = format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{tag}-{c}-{i}"}},"data":{{"value":"0"}}}}"#
                );
                match conn.ok("POST", &base, body.as_bytes()).await {
                    Ok(out) => match str_field(&out, "resourceVersion") {
                        Some(rv) => rvs.push(rv.to_string()),
                        None => {
                            result = Err(anyhow!("create {tag}-{c}-{i}: no resourceVersion in the reply"));
                            break;
                        }
                    },
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            barrier.wait().await;
            result?;
            for (i, rv) in rvs.iter().enumerate() {
                let body = format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{tag}-{c}-{i}","resourceVersion":"{rv}"}},"data":{{"value":"1"}}}}"#
                );
                conn.ok("PUT", &format!("{base}/{tag}-{c}-{i}"), body.as_bytes()).await?;
            }
            Ok(())
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// 2. Watch fan-out latency.
// ---------------------------------------------------------------------------------------------

/// Latencies (ns) seen by one watcher, split by phase (paced, burst).
#[derive(Default)]
struct Seen {
    paced: Vec<u64>,
    burst: Vec<u64>,
}

async fn watcher(addr: SocketAddr, path: String, expect: usize) -> Result<Seen> {
    let mut c = RawClient::connect(addr, "sim-bench-watch").await?;
    c.send("GET", &path, b"").await?;
    let head = c.read_head().await?;
    if head.status != 200 || !head.chunked {
        bail!("watch {path}: HTTP {} (chunked: {})", head.status, head.chunked);
    }
    let mut seen = Seen::default();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut got = 0;
    while got < expect {
        if !c.read_chunk(&mut buf).await? {
            bail!("watch {path} ended after {got} of {expect} events");
        }
        let now = nanos();
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            start += nl + 1;
            if let Some(sent) = str_field(line, "sent") {
                let (phase, t) = sent.split_once(':').unwrap_or(("", sent));
                let t: u64 = t.parse().with_context(|| format!("sent time {sent:?}"))?;
                let lat = now.saturating_sub(t);
                match phase {
                    "b" => seen.burst.push(lat),
                    _ => seen.paced.push(lat),
                }
                got += 1;
            } else if find(line, b"\"type\":\"ERROR\"").is_some() {
                bail!("watch {path}: {}", String::from_utf8_lossy(line));
            }
        }
        buf.drain(..start);
    }
    Ok(seen)
}

struct Percentiles {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut v: Vec<u64>) -> Percentiles {
    v.sort_unstable();
    let at = |q: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i] as f64 / 1e6
    };
    Percentiles {
        n: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}

struct WatchFigures {
    paced: Percentiles,
    burst: Percentiles,
    burst_rate: f64,
}

async fn watch_fanout(sim: &Sim, ns: &str) -> Result<WatchFigures> {
    let addr = sim.addr();
    let rv = sim.core.store.current_rv();
    let open_before = sim.core.open_watches.load(Ordering::SeqCst);
    let path = format!("/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}");
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| tokio::spawn(watcher(addr, path.clone(), 2 * WATCH_WRITES)))
        .collect();
    // The server counts a watch once it is subscribed: start writing only when all are.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.core.open_watches.load(Ordering::SeqCst) < open_before + WATCHERS {
        if Instant::now() > deadline {
            bail!(
                "only {} of {WATCHERS} watches opened within 10 s",
                sim.core.open_watches.load(Ordering::SeqCst) - open_before
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut w = RawClient::connect(addr, "sim-bench-writer").await?;
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut tick = tokio::time::interval(WATCH_PACE);
    for i in 0..WATCH_WRITES {
        tick.tick().await;
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"paced-{i}"}},"data":{{"sent":"p:{}"}}}}"#,
            nanos()
        );
        w.ok("POST", &base, body.as_bytes()).await?;
    }
    let t0 = Instant::now();
    for i in 0..WATCH_WRITES {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"burst-{i}"}},"data":{{"sent":"b:{}"}}}}"#,
            nanos()
        );
        w.ok("POST", &base, body.as_bytes()).await?;
    }
    let burst_rate = WATCH_WRITES as f64 / t0.elapsed().as_secs_f64();
    let mut paced = Vec::with_capacity(WATCHERS * WATCH_WRITES);
    let mut burst = Vec::with_capacity(WATCHERS * WATCH_WRITES);
    for h in watchers {
        let s = tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .context("a watcher did not receive every event within 30 s")?
            .context("a watcher task panicked")??;
        paced.extend(s.paced);
        burst.extend(s.burst);
    }
    Ok(WatchFigures {
        paced: percentiles(paced),
        burst: percentiles(burst),
        burst_rate,
    })
}

// ---------------------------------------------------------------------------------------------
// 3. Memory per 10,000 pods.
// ---------------------------------------------------------------------------------------------

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

struct MemFigures {
    rss_delta: u64,
    heap_delta: u64,
    json: u64,
    create_rate: f64,
    settle_secs: f64,
}

async fn memory() -> Result<MemFigures> {
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

// ---------------------------------------------------------------------------------------------

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

const MIB: f64 = 1024.0 * 1024.0;

async fn run() -> Result<()> {
    let started = Instant::now();
    nanos();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("baton-sim benchmark: `{COMMAND}`");
    println!("machine: {cores} cores; tokio multi-thread runtime shared by simulator and clients; loopback only");
    println!();

    println!("[3/3 first] memory: {PODS} pods (+{WARMUP_PODS} warm-up pods), kubelet included …");
    let mem = tokio::time::timeout(Duration::from_secs(90), memory())
        .await
        .context("memory phase exceeded 90 s")??;
    let per10k = (mem.rss_delta as f64 - mem.json as f64) / MIB / (PODS as f64 / 10_000.0);
    println!(
        "  RSS delta {:.1} MiB, stored JSON {:.1} MiB ({} B/pod), created at {:.0} pods/s, settled after {:.1} s",
        mem.rss_delta as f64 / MIB,
        mem.json as f64 / MIB,
        mem.json / PODS as u64,
        mem.create_rate,
        mem.settle_secs
    );
    println!(
        "  live heap delta {:.1} MiB ({:.1} MiB beyond JSON); the rest of the RSS delta is allocator slack",
        mem.heap_delta as f64 / MIB,
        (mem.heap_delta as f64 - mem.json as f64) / MIB
    );

    let sim = Sim::start(SimConfig::default())
        .await
        .context("starting the simulator")?;
    let addr = sim.addr();
    for ns in ["bench-kube", "bench-raw", "bench-watch"] {
        create_namespace(addr, ns).await?;
    }

    println!("[1/3] write throughput (ConfigMaps) …");
    let limit = Duration::from_secs(60);
    let kube1 = tokio::time::timeout(limit, kube_throughput(&sim, "bench-kube", 1, SINGLE_WRITES))
        .await
        .context("kube-rs single-client phase timed out")??;
    let kube8 = tokio::time::timeout(
        limit,
        kube_throughput(&sim, "bench-kube", CONCURRENT_CLIENTS, PER_CLIENT_WRITES),
    )
    .await
    .context("kube-rs concurrent phase timed out")??;
    let raw1 = tokio::time::timeout(limit, raw_throughput(addr, "bench-raw", 1, SINGLE_WRITES))
        .await
        .context("raw single-client phase timed out")??;
    let raw8 = tokio::time::timeout(
        limit,
        raw_throughput(addr, "bench-raw", CONCURRENT_CLIENTS, PER_CLIENT_WRITES),
    )
    .await
    .context("raw concurrent phase timed out")??;
    let rows = [
        ("kube-rs Api<ConfigMap>, 1 client", SINGLE_WRITES, kube1),
        (
            "kube-rs Api<ConfigMap>, 8 clients",
            CONCURRENT_CLIENTS * PER_CLIENT_WRITES,
            kube8,
        ),
        ("raw HTTP/1.1 keep-alive, 1 client", SINGLE_WRITES, raw1),
        (
            "raw HTTP/1.1 keep-alive, 8 clients",
            CONCURRENT_CLIENTS * PER_CLIENT_WRITES,
            raw8,
        ),
    ];
    for (label, n, r) in &rows {
        println!(
            "  {label:<36} {n:>5} creates {:>7.0}/s   {n:>5} updates {:>7.0}/s",
            r.creates, r.updates
        );
    }

    println!("[2/3] watch fan-out: {WATCHERS} watchers, {WATCH_WRITES} paced writes (1 per {WATCH_PACE:?}) then {WATCH_WRITES} burst writes …");
    let wf = tokio::time::timeout(Duration::from_secs(60), watch_fanout(&sim, "bench-watch"))
        .await
        .context("watch phase timed out")??;
    for (label, p) in [("paced (200 writes/s)", &wf.paced), ("burst", &wf.burst)] {
        println!(
            "  {label:<22} {} deliveries: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            p.n, p.p50, p.p99, p.max
        );
    }
    println!("  burst writer ran at {:.0} writes/s", wf.burst_rate);
    sim.stop();

    let t_single = TARGET_WRITES_PER_S;
    let table: Vec<(String, String, String, &str)> = vec![
        (
            "creates/s, 1 client, kube-rs".into(),
            format!("{:.0}", kube1.creates),
            format!("≥ {t_single:.0}"),
            verdict(kube1.creates >= t_single),
        ),
        (
            "updates/s, 1 client, kube-rs".into(),
            format!("{:.0}", kube1.updates),
            format!("≥ {t_single:.0}"),
            verdict(kube1.updates >= t_single),
        ),
        (
            "creates/s, 8 clients, kube-rs".into(),
            format!("{:.0}", kube8.creates),
            "info".into(),
            "-",
        ),
        (
            "updates/s, 8 clients, kube-rs".into(),
            format!("{:.0}", kube8.updates),
            "info".into(),
            "-",
        ),
        (
            "creates/s, 1 client, raw HTTP".into(),
            format!("{:.0}", raw1.creates),
            format!("≥ {t_single:.0}"),
            verdict(raw1.creates >= t_single),
        ),
        (
            "updates/s, 1 client, raw HTTP".into(),
            format!("{:.0}", raw1.updates),
            format!("≥ {t_single:.0}"),
            verdict(raw1.updates >= t_single),
        ),
        (
            "creates/s, 8 clients, raw HTTP".into(),
            format!("{:.0}", raw8.creates),
            "info".into(),
            "-",
        ),
        (
            "updates/s, 8 clients, raw HTTP".into(),
            format!("{:.0}", raw8.updates),
            "info".into(),
            "-",
        ),
        (
            format!("watch p50 / p99 / max, {WATCHERS} watchers, 200 writes/s"),
            format!("{:.2} / {:.2} / {:.2} ms", wf.paced.p50, wf.paced.p99, wf.paced.max),
            format!("p99 < {TARGET_P99_MS:.0} ms"),
            verdict(wf.paced.p99 < TARGET_P99_MS),
        ),
        (
            format!(
                "watch p50 / p99 / max, {WATCHERS} watchers, burst {:.0} writes/s",
                wf.burst_rate
            ),
            format!("{:.2} / {:.2} / {:.2} ms", wf.burst.p50, wf.burst.p99, wf.burst.max),
            "info".into(),
            "-",
        ),
        (
            format!(
                "RSS beyond JSON per 10k pods (kubelet on; RSS Δ {:.1} MiB, JSON {:.1} MiB)",
                mem.rss_delta as f64 / MIB,
                mem.json as f64 / MIB
            ),
            format!("{per10k:.1} MiB"),
            format!("< {TARGET_MIB_PER_10K:.0} MiB"),
            verdict(per10k < TARGET_MIB_PER_10K),
        ),
    ];
    println!();
    println!("| figure | measured | target | result |");
    println!("|---|---|---|---|");
    for (f, m, t, r) in &table {
        println!("| {f} | {m} | {t} | {r} |");
    }
    println!();
    println!("command: {COMMAND}   (total {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("sim_bench failed: {e:#}");
        std::process::exit(1);
    }
}
