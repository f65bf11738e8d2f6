use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use futures::task::ArcWake;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{reflector, watcher};

use super::*;

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl ArcWake for Flag {
    fn wake_by_ref(me: &Arc<Self>) {
        me.0.store(true, Ordering::SeqCst);
    }
}

/// Poll `futures` once each, every one with its own waker (all pending); run `then`; return
/// how many of the wakers were woken.
fn woken_by<'a>(futures: Vec<Pin<Box<dyn Future<Output = ()> + 'a>>>, then: impl FnOnce()) -> usize {
    let mut flags = Vec::new();
    let mut futures = futures;
    for f in &mut futures {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = futures::task::waker(flag.clone());
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        flags.push(flag);
    }
    then();
    flags.iter().filter(|f| f.0.load(Ordering::SeqCst)).count()
}

/// The kube-runtime 5.0.0 behaviour [`crate::cache`] works around (the upstream report's
/// reproduction): four tasks wait on `Store::wait_until_ready`, the store gets its first
/// list, one of them is woken. (`DelayedInit` polls one shared `futures::channel::oneshot`
/// receiver, which keeps a single waker: each poll replaces the previous waiter's.) When this
/// starts failing, kube-runtime has fixed it. [`Synced`] wakes all four.
#[test]
fn kube_store_readiness_wakes_one_waiter_of_several() {
    let (store, mut writer) = reflector::store::<ConfigMap>();
    let waiters: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = (0..4)
        .map(|_| -> Pin<Box<dyn Future<Output = ()> + '_>> {
            Box::pin(async {
                let _ = store.wait_until_ready().await;
            })
        })
        .collect();
    let kube = woken_by(waiters, || {
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
    });
    assert_eq!(
        kube, 1,
        "kube-runtime woke {kube} of 4 waiters: its readiness bug is fixed"
    );

    let (tx, synced) = synced();
    let waiters: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = (0..4)
        .map(|_| -> Pin<Box<dyn Future<Output = ()> + '_>> { Box::pin(synced.wait()) })
        .collect();
    let ours = woken_by(waiters, || {
        tx.observe::<ConfigMap>(&Ok(watcher::Event::Init));
        tx.observe::<ConfigMap>(&Ok(watcher::Event::InitDone));
    });
    assert_eq!(ours, 4, "every Synced waiter is woken");
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
