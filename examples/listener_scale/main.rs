//! ListenerSets at scale (probe): time to all running and API writes at rest, with real `baton
//! agent` sidecars and a real `baton controller`.
#[path = "../../tests/listener_procs/harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::app::AppConfig;
use harness::{kubelet, AgentFlags, Cluster, Ns, R};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes (create/update/patch/delete) answered per (user kind, resource, verb).
fn writes(ns: &Ns) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for (k, n) in ns.cluster.sim.core.auth.audit.counts() {
        if !matches!(k.verb.as_str(), "create" | "update" | "patch" | "delete") || k.namespace != ns.name {
            continue;
        }
        let who = if k.user.contains("agent") {
            "agents"
        } else if k.user.contains("ctl") {
            "controller"
        } else {
            "other"
        };
        *out.entry((who.to_string(), k.resource.clone(), k.verb.clone()))
            .or_insert(0) += n;
    }
    out
}

/// (utime + stime in clock ticks, RSS in KiB) of `pid`.
fn proc_stat(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

async fn run(listeners: usize, pods: usize, lease: i32) -> R<()> {
    let cluster = Cluster::start(kubelet()).await?;
    let ns = Ns::new(cluster, "scale", AppConfig::default(), AgentFlags::default()).await?;
    if let Some(bin) = std::env::var_os("SCALE_CONTROLLER_BIN") {
        ns.use_controller_bin(Some(bin.into()));
    }
    let ctl = ns.start_controller().await?;
    let pid = ns.controller_pid(&ctl).ok_or("controller pid")?;
    let t = Instant::now();
    for i in 0..pods {
        ns.create_pod(&format!("p{i:03}")).await?;
    }
    println!("{pods} pods with sidecars in {:?}", t.elapsed());
    let data: BTreeMap<String, String> = (0..listeners)
        .map(|i| (format!("l{i:05}"), format!("token-{i}")))
        .collect();
    let secret: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "tokens", "namespace": ns.name}, "stringData": data}))
    .map_err(|e| e.to_string())?;
    kube::Api::<Secret>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| e.to_string())?;
    let mut set = harness::listenersets::set(&ns.name, "big", harness::APP, Vec::new(), lease);
    set.spec.listeners_from = Some(baton::api::listenerset::ListenersFrom {
        secret_ref: Some(baton::api::listenerset::SecretRef { name: "tokens".into() }),
        secret_selector: None,
    });
    let before = writes(&ns);
    let t = Instant::now();
    ns.sets()
        .create(&PostParams::default(), &set)
        .await
        .map_err(|e| e.to_string())?;
    ns.settled("big", listeners, "all running", Duration::from_secs(600))
        .await?;
    let all_running = t.elapsed();
    let after = writes(&ns);
    println!("{listeners} listeners on {pods} pods: all running in {all_running:?}");
    for (k, n) in &after {
        let d = n - before.get(k).copied().unwrap_or(0);
        if d > 0 {
            println!("  start writes {k:?}: {d}");
        }
    }
    // At rest.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (w0, (c0, _), t0) = (writes(&ns), proc_stat(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(
        std::env::var("REST").ok().and_then(|v| v.parse().ok()).unwrap_or(30),
    ))
    .await;
    let (w1, (c1, rss), secs) = (writes(&ns), proc_stat(pid), t0.elapsed().as_secs_f64());
    let mut total = 0.0;
    for (k, n) in &w1 {
        let d = (n - w0.get(k).copied().unwrap_or(0)) as f64 / secs;
        if d > 0.0 {
            println!("  at rest {k:?}: {d:.2}/s");
            total += d;
        }
    }
    let tick = 100.0;
    println!(
        "  at rest total {total:.2} writes/s (target ≤ {:.2}); controller CPU {:.2}% RSS {} MiB",
        pods as f64 * 4.0 / lease as f64,
        (c1 - c0) as f64 / tick / secs * 100.0,
        rss / 1024
    );
    if let Some(path) = std::env::var_os("SCALE_DUMP") {
        let _ = std::fs::write(path, ns.controller_log(&ctl).unwrap_or_default());
    }
    let v = ns.violations(true);
    println!("  violations: {}", v.len());
    for x in v.iter().take(10) {
        println!("    {x}");
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (n, p, lease) = (env("LISTENERS", 1000), env("PODS", 20), env("LEASE", 15) as i32);
    if let Err(e) = run(n, p, lease).await {
        eprintln!("failed: {e}");
        std::process::exit(1);
    }
}
