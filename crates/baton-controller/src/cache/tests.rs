use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use futures::task::ArcWake;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{reflector, watcher, WatchStreamExt};

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

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A relist (after a watch expired) is signalled once the store shows the new list, and only
/// lists after the subscription are: the objects that changed in the gap came as `InitApply`
/// while the store still held the old state, so whoever reconciled on them must look again.
#[tokio::test]
async fn relisted_fires_after_the_store_holds_the_new_list() {
    let (store, writer) = reflector::store::<ConfigMap>();
    let (tx, synced) = synced();
    let (events_tx, events_rx) = futures::channel::mpsc::unbounded();
    let drive = tokio::spawn(
        events_rx
            .map(Ok::<_, watcher::Error>)
            .reflect(writer)
            .inspect(move |e| tx.observe(e))
            .for_each(|_| futures::future::ready(())),
    );
    let send = |e: watcher::Event<ConfigMap>| events_tx.unbounded_send(e).expect("driver runs");
    send(watcher::Event::Init);
    send(watcher::Event::InitApply(cm("old")));
    send(watcher::Event::InitDone);
    synced.wait().await;
    let mut relisted = synced.relisted();
    // The first list happened before the subscription: no signal for it.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), relisted.next())
            .await
            .is_err(),
        "a list before the subscription is not signalled"
    );
    // A relist: while its objects arrive the store still shows the old state.
    send(watcher::Event::Init);
    send(watcher::Event::InitApply(cm("new")));
    send(watcher::Event::InitDone);
    let signalled = tokio::time::timeout(Duration::from_secs(10), relisted.next()).await;
    assert_eq!(signalled, Ok(Some(())), "a relist is signalled");
    let names: Vec<String> = store
        .state()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["new"],
        "when the signal comes, the store holds the relisted objects"
    );
    assert!(synced.is_synced());
    drop(events_tx);
    drive.await.expect("driver ends");
}
