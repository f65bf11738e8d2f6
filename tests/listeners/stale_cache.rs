//! A pod cache that lags behind the API server must never make the controller write a Lease for
//! a pod that is gone. Replayed deterministically: the controller's pod cache is frozen (its
//! watch events held back), a holder pod is force-deleted, and the garbage collector removes its
//! Leases, which the controller's Lease cache does see. To the controller the Leases look
//! deleted by hand with a live holder; before the fix it recreated them for that pod (token + 1),
//! an assignment to a dead pod (seen in `listener_procs` force under load as "assigned to dead
//! pod fd-a"). Now every assignment's pod is confirmed by a GET first: nothing is written for the
//! gone pod, and once the cache catches up its listeners are held one lease, then taken over.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::api::pod::CachedPod;
use baton::cache::namespaces::NamespacePods;
use baton::listeners::controller::{run_counted, ControllerConfig, SharedViews, Stats};
use baton::operator::SharedCaches;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};

use crate::listener_world::*;

/// Lease events in watch order: (deleted, listener, holder).
type LeaseLog = Arc<Mutex<Vec<(bool, String, Option<String>)>>>;

/// A ListenerSet controller whose pod cache passes changes on only while `open` is true.
async fn controller_with_gated_pods(
    w: &World,
    stats: Arc<Stats>,
    open: tokio::sync::watch::Receiver<bool>,
) -> (tokio::sync::oneshot::Sender<()>, AbortOnDrop, AbortOnDrop) {
    let client = w.sim.client_as("controller-stale").await.expect("client");
    let (pods, writer) = reflector::store::<CachedPod>();
    let (synced_tx, pods_synced) = baton::cache::synced();
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let gated = watcher(Api::<CachedPod>::namespaced(client.clone(), NS), Default::default())
        .default_backoff()
        .then(move |e| {
            let mut open = open.clone();
            async move {
                let _ = open.wait_for(|o| *o).await;
                e
            }
        })
        .reflect(writer);
    let mut changes = synced_tx.track(gated).touched_objects().boxed();
    let pod_watch = tokio::spawn(async move {
        while let Some(p) = changes.next().await {
            if let Ok(p) = p {
                let _ = tx.unbounded_send(p);
            }
        }
    });
    let caches = SharedCaches::new(&client, &Some(NS.into()));
    let views = SharedViews {
        rollouts: None,
        pods: NamespacePods::fixed(pods, pods_synced),
        pod_events: rx.map(Ok).boxed(),
        leases: caches.leases.clone(),
        index: caches.lease_index.clone(),
        synced: vec![caches.leases_synced.clone()],
    };
    let lease_watch = tokio::spawn(caches.drive());
    let cfg = ControllerConfig {
        namespace: Some(NS.into()),
        concurrency: 4,
        instance: "controller-stale".into(),
        ..ControllerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = Arc::new(baton::metrics::Metrics::default());
    tokio::spawn(run_counted(client, cfg, views, metrics, stats, async move {
        let _ = stopped.await;
    }));
    (stop, AbortOnDrop(pod_watch), AbortOnDrop(lease_watch))
}

/// Record every Lease event of set `set` in watch order.
async fn record_leases(w: &World, set: &str) -> (LeaseLog, AbortOnDrop) {
    let log: LeaseLog = Arc::default();
    let cfg = watcher::Config::default().labels(&format!("baton.dev/listenerset={set}"));
    let mut stream = watcher(w.leases(), cfg).default_backoff().boxed();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let out = log.clone();
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let entry = |deleted: bool, l: &Lease| {
            let id = l.metadata.labels.as_ref()?.get("baton.dev/listener")?.clone();
            let holder = l.spec.as_ref().and_then(|s| s.holder_identity.clone());
            Some((deleted, id, holder))
        };
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(watcher::Event::Apply(l)) | Ok(watcher::Event::InitApply(l)) => {
                    out.lock().unwrap().extend(entry(false, &l));
                }
                Ok(watcher::Event::Delete(l)) => out.lock().unwrap().extend(entry(true, &l)),
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("lease watch listed in time")
        .expect("lease watch running");
    (log, AbortOnDrop(task))
}

/// Lease events naming `pod` after the first deletion of that listener's Lease.
fn written_after_deletion(log: &LeaseLog, listeners: &[String], pod: &str) -> Vec<String> {
    let log = log.lock().unwrap().clone();
    let mut out = Vec::new();
    for l in listeners {
        let Some(gone) = log.iter().position(|(deleted, id, _)| *deleted && id == l) else {
            continue;
        };
        out.extend(
            log[gone..]
                .iter()
                .filter(|(deleted, id, holder)| !deleted && id == l && holder.as_deref() == Some(pod))
                .map(|(_, id, _)| format!("{id} written for {pod} after its Lease was deleted")),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_pod_cache_never_gets_a_lease_written_for_a_gone_pod() {
    let _serial = serial();
    let w = world(AgentKnobs::default()).await;
    let stats = Arc::new(Stats::default());
    let (open_tx, open_rx) = tokio::sync::watch::channel(true);
    let (_stop, _pods, _leases) = controller_with_gated_pods(&w, stats.clone(), open_rx).await;
    for p in ["stale-a", "stale-b"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["stale-a", "stale-b"] {
        w.wait_ready(p).await;
    }
    let (log, _rec) = record_leases(&w, "sxt").await;
    w.create_set("sxt", "svc", listeners(4), 3).await;
    let all = ids(4);
    w.wait_running("4 listeners", &all, Duration::from_secs(30), |_| true)
        .await;
    let on_a: Vec<String> = w
        .log
        .running()
        .into_iter()
        .filter(|(_, p)| p[0] == "stale-a")
        .map(|(l, _)| l)
        .collect();
    assert!(!on_a.is_empty(), "stale-a runs a listener");

    // The controller's pod cache stops moving; stale-a is force-deleted, and the garbage
    // collector removes its Leases (the controller's Lease cache sees that).
    open_tx.send_replace(false);
    w.delete_pod("stale-a", Some(0)).await;
    wait_for("stale-a's Leases deleted", Duration::from_secs(30), || {
        let log = log.lock().unwrap().clone();
        let gone = on_a.iter().all(|l| log.iter().any(|(d, id, _)| *d && id == l));
        async move { gone.then_some(()) }
    })
    .await;
    // Let the controller act on it (a few reconciles of the set). A controller with nothing
    // left to do looks again only when something changes: the set is touched until it has.
    let seen = stats.reconciles.load(Ordering::Relaxed);
    let touches = std::sync::atomic::AtomicU32::new(0);
    wait_for("3 reconciles after the deletions", Duration::from_secs(30), || {
        let n = stats.reconciles.load(Ordering::Relaxed);
        let touch = touches.fetch_add(1, Ordering::Relaxed);
        let sets = w.sets();
        async move {
            if n >= seen + 3 {
                return Some(());
            }
            let patch = serde_json::json!({"metadata": {"annotations": {"test.baton.dev/touched": touch.to_string()}}});
            let _ = sets.patch("sxt", &PatchParams::default(), &Patch::Merge(&patch)).await;
            None
        }
    })
    .await;
    let wrong = written_after_deletion(&log, &on_a, "stale-a");
    assert!(wrong.is_empty(), "with the pod cache behind: {wrong:?}");

    // The cache catches up: stale-a is gone (unconfirmed), its listeners move after a lease.
    open_tx.send_replace(true);
    w.wait_running("all on stale-b", &all, Duration::from_secs(30), |p| p == "stale-b")
        .await;
    let wrong = written_after_deletion(&log, &on_a, "stale-a");
    assert!(wrong.is_empty(), "{wrong:?}");
    assert_eq!(w.log.analyse().0, 0, "duplicates");
}
