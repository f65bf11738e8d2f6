use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{reflector, watcher};

use super::*;

/// Waiters on `reflector::Store::wait_until_ready` (kube-runtime 5.0.0) and on [`Synced`],
/// each in its own task, then the store's first `InitDone`: how many waiters finished.
async fn woken(waiters: usize) -> (usize, usize) {
    let (store, mut writer) = reflector::store::<ConfigMap>();
    let (tx, synced) = synced();
    let (kube_done, ours_done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    for _ in 0..waiters {
        let (store, done) = (store.clone(), kube_done.clone());
        tokio::spawn(async move {
            let _ = store.wait_until_ready().await;
            done.fetch_add(1, Ordering::SeqCst);
        });
        let (synced, done) = (synced.clone(), ours_done.clone());
        tokio::spawn(async move {
            synced.wait().await;
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    // Let every waiter register before the list completes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for ev in [watcher::Event::Init, watcher::Event::InitDone] {
        writer.apply_watcher_event(&ev);
        tx.observe(&Ok(ev));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while ours_done.load(Ordering::SeqCst) < waiters && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Give kube's waiters the same time again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (kube_done.load(Ordering::SeqCst), ours_done.load(Ordering::SeqCst))
}

/// The kube-runtime 5.0.0 behaviour this module works around (the upstream report's
/// reproduction): of several concurrent waiters, only one is woken. When this starts failing,
/// kube-runtime has fixed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_store_readiness_wakes_one_waiter_of_several() {
    let (kube, ours) = woken(4).await;
    assert_eq!(ours, 4, "every Synced waiter is woken");
    assert!(
        kube < 4,
        "kube-runtime woke all {kube} waiters: its readiness bug is fixed"
    );
}

#[tokio::test]
async fn synced_is_read_off_the_stream_and_wakes_every_waiter() {
    let (tx, synced) = synced();
    assert!(!synced.is_synced());
    tx.observe::<ConfigMap>(&Ok(watcher::Event::Init));
    assert!(!synced.is_synced());
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = synced.clone();
            tokio::spawn(async move { s.wait().await })
        })
        .collect();
    tx.observe::<ConfigMap>(&Ok(watcher::Event::InitDone));
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("woken")
            .expect("no panic");
    }
    assert!(all_synced(&[synced.clone(), Synced::always()]));
    assert!(synced.wait_for(Duration::from_millis(1)).await);
}

#[tokio::test]
async fn a_watch_that_ends_before_syncing_never_reports_synced() {
    let (tx, synced) = synced();
    drop(tx);
    assert!(!synced.wait_for(Duration::from_millis(50)).await);
}
