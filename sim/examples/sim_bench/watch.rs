//! Phase 2, watch fan-out latency: many HTTP watchers, a writer whose objects carry their send
//! time, and the send → delivery latency over every (watcher, event) pair.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_sim::Sim;

use crate::raw_client::{find, str_field, RawClient};
use crate::{nanos, WATCHERS, WATCH_PACE, WATCH_WRITES};

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

pub(crate) struct Percentiles {
    pub(crate) n: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
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

pub(crate) struct WatchFigures {
    pub(crate) paced: Percentiles,
    pub(crate) burst: Percentiles,
    pub(crate) burst_rate: f64,
}

pub(crate) async fn watch_fanout(sim: &Sim, ns: &str) -> Result<WatchFigures> {
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
