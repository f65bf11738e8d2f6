//! Watch-cache plumbing shared by the controllers: readiness that wakes every waiter
//! ([`Synced`]), and watches that survive objects which do not decode ([`tolerant`]).
//!
//! # Why not `Store::wait_until_ready`
//!
//! In kube-runtime 5.0.0 `Store::wait_until_ready` is backed by a `DelayedInit` whose shared
//! `futures::channel::oneshot::Receiver` keeps a single waker slot: every waiter that polls it
//! overwrites the waker of the one before, so when the reflector sees its first `InitDone`
//! only the last waiter is woken. The others stay pending until something else polls them
//! (forever, for a task that nothing else wakes). kube's own `Controller` waits on its store
//! this way, so a second waiter on that store can stall the controller itself. Here, readiness
//! is read off the watch stream (the `InitDone` event after the reflector applied it) and
//! published on a [`tokio::sync::watch`] channel, which wakes every waiter; nothing in baton
//! calls `wait_until_ready`.
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use tokio::sync::watch;

pub mod leases;
pub mod namespaces;
pub mod owners;
pub mod tolerant;

/// The API of a namespaced kind in the watched namespace, or in all (`None`).
pub fn api<K>(client: &kube::Client, ns: &Option<String>) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => kube::Api::namespaced(client.clone(), n),
        None => kube::Api::all(client.clone()),
    }
}

/// A watch of the objects `selector` matches (a shard), or of all (`None`).
pub fn selected(selector: Option<&str>) -> watcher::Config {
    match selector {
        Some(s) => watcher::Config::default().labels(s),
        None => watcher::Config::default(),
    }
}

/// A stream of changed (applied or deleted) objects of one watch, as controllers take them
/// (`watches_stream`, `owns_stream`).
pub type Events<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// Whether a watch cache has had its first complete list, and how many it has had. Cheap to
/// clone; any number of tasks may wait on it.
#[derive(Clone, Debug)]
pub struct Synced(watch::Receiver<u64>);

/// The writing side of [`Synced`]: counts the cache's complete lists (`InitDone`s).
#[derive(Debug)]
pub struct SyncedTx(watch::Sender<u64>);

/// A new, not yet synced, readiness flag.
pub fn synced() -> (SyncedTx, Synced) {
    let (tx, rx) = watch::channel(0);
    (SyncedTx(tx), Synced(rx))
}

impl SyncedTx {
    /// Count a complete list when `event` is an `InitDone` (place after `.reflect(writer)`, so
    /// the store already holds the list).
    pub fn observe<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            self.0.send_modify(|n| *n += 1);
        }
    }

    /// Pass a watch stream through, marking synced at its first `InitDone`.
    pub fn track<S, K>(self, stream: S) -> impl Stream<Item = S::Item> + Send
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    {
        stream.inspect(move |e| self.observe(e))
    }
}

impl Synced {
    /// A flag that is synced from the start (for caches a caller fills by other means).
    pub fn always() -> Synced {
        let (tx, rx) = watch::channel(1);
        drop(tx);
        Synced(rx)
    }

    pub fn is_synced(&self) -> bool {
        *self.0.borrow() > 0
    }

    /// A signal after each complete list from now on: a relist after a watch expired (410) or
    /// failed. A controller must look at all its objects again then. The objects of a relist
    /// come as `InitApply` and trigger their owners' reconciles while the store still holds the
    /// state from before the gap (kube-runtime swaps the new list in at `InitDone`); a
    /// reconcile that ran then saw the old state, and nothing triggers it again — a Rollout
    /// whose pods became Ready in the gap waited forever. The signal comes after the swap.
    pub fn relisted(&self) -> futures::stream::BoxStream<'static, ()> {
        let mut rx = self.0.clone();
        rx.borrow_and_update();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
        .boxed()
    }

    /// Wait until synced. Pending forever if the cache's watch stopped before syncing (bound
    /// it with a timeout or a shutdown signal).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|n| *n > 0).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Wait at most `timeout`; true if synced.
    pub async fn wait_for(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait()).await.is_ok()
    }
}

/// Every flag of `all` synced.
pub fn all_synced(all: &[Synced]) -> bool {
    all.iter().all(Synced::is_synced)
}

/// Wait until every flag of `all` is synced.
pub async fn wait_all(all: &[Synced]) {
    for s in all {
        s.wait().await;
    }
}

#[cfg(test)]
mod tests;
