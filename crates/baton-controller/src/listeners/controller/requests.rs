//! Release requests a pass sends without waiting for them. A drain asks every listener of its
//! pod at once; were the pass to wait for all those writes, the listeners its agent has let go
//! meanwhile would wait for them too before the next pass gives them to other pods. Sent on
//! their own, the requests and the handovers they lead to overlap.
//!
//! Only requests whose reason holds for each listener alone are sent so ([`detachable`]): the
//! holder may not keep it, the listener is suspended or removed, the set or the Lease is being
//! deleted. A pass that runs while they are on their way decides the same requests again, and
//! those are skipped: a listener with a write on its way gets no other write until it is
//! answered ([`InFlight`]). Requests chosen by count (over `maxPerPod`, evening out) are waited
//! for: decided again without them in view, a pass would choose more. So are requests that name
//! a successor: the holder's agent hands those over itself, so no pass waits for them to be
//! let go, and a pass that did not see where they go would place other listeners as if they went
//! elsewhere.
//!
//! Each answer is recorded as the pass's own would be (the write the cache has not shown yet);
//! a refused one wakes the set again after [`RETRY`]. The tasks end with the controller.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::task::JoinSet;

use super::context::SetKey;
use super::leases::{apply_move, Target};
use super::writes::{expect, lost, WRITES_AT_ONCE};
use super::Context;
use crate::api::listenerset::lease::CachedLease;
use crate::listeners::assigner::{Move, ReleaseReason};
use crate::listeners::decide::Write;

/// How long after a refused request its set is decided again (as a pass's own failed write).
pub(super) const RETRY: Duration = Duration::from_millis(100);

/// Whether a pass may send `m` without waiting for it (see the module's documentation).
pub(super) fn detachable(m: &Move) -> bool {
    matches!(m, Move::RequestRelease { reason, to: None, .. }
        if !matches!(reason, ReleaseReason::OverLimit | ReleaseReason::Rebalance))
}

/// The listeners of each set with a request on its way, and the tasks sending them.
#[derive(Default)]
pub(super) struct InFlight {
    listeners: Mutex<HashMap<SetKey, HashSet<String>>>,
    tasks: Mutex<JoinSet<()>>,
}

impl InFlight {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<SetKey, HashSet<String>>) -> T) -> T {
        f(&mut self.listeners.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The listeners of set `key` with a request on its way now.
    pub(super) fn of(&self, key: &SetKey) -> HashSet<String> {
        self.with(|m| m.get(key).cloned().unwrap_or_default())
    }

    /// Of `writes`, those whose listener had no request on its way, now marked as having one.
    fn claim<T>(&self, key: &SetKey, writes: Vec<T>, listener: impl Fn(&T) -> &str) -> Vec<T> {
        self.with(|m| {
            let set = m.entry(key.clone()).or_default();
            writes
                .into_iter()
                .filter(|w| set.insert(listener(w).to_string()))
                .collect()
        })
    }

    /// The request of listener `listener` of set `key` was answered.
    fn done(&self, key: &SetKey, listener: &str) {
        self.with(|m| {
            if let Some(set) = m.get_mut(key) {
                set.remove(listener);
                if set.is_empty() {
                    m.remove(key);
                }
            }
        });
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the tasks already over.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Stop every request still on its way (the controller stops: it may no longer write).
    pub(super) fn abort_all(&self) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).abort_all();
    }
}

/// What the requests of one pass are sent with.
pub(super) struct Sending {
    pub(super) key: SetKey,
    pub(super) api: Api<Lease>,
    pub(super) default_duration: i32,
}

/// A release request to send: the write, the Lease it was decided from, and the listener's config
/// reference and Secret version (a request that names a successor carries them, as the
/// assignment the successor gets from it would).
pub(super) type Request = (Write, Option<Arc<CachedLease>>, (Option<String>, Option<String>));

/// Send `requests` on their own, all but those whose listener has one on its way already.
pub(super) fn send(ctx: &Arc<Context>, to: Sending, requests: Vec<Request>) {
    let requests = ctx.in_flight.claim(&to.key, requests, |(w, _, _)| w.change.listener());
    if requests.is_empty() {
        return;
    }
    ctx.in_flight.spawn(deliver(Arc::clone(ctx), to, requests));
}

/// Send `requests`, record each answer, and wake the set again if one was refused.
async fn deliver(ctx: Arc<Context>, to: Sending, requests: Vec<Request>) {
    let Sending {
        key,
        api,
        default_duration,
    } = to;
    let (ns, set) = (key.0.as_str(), key.1.as_str());
    let sends = requests.into_iter().map(|(w, read, (config, config_version))| {
        let (api, ctx) = (&api, &ctx);
        async move {
            let target = Target {
                api,
                ns,
                set,
                lease: read.clone(),
                config,
                config_version,
                default_duration,
            };
            let r = apply_move(target, &w.change, &ctx.stats).await;
            (w, read, r)
        }
    });
    let mut answers = futures::stream::iter(sends).buffer_unordered(WRITES_AT_ONCE);
    let mut refused = false;
    while let Some((w, read, r)) = answers.next().await {
        match r {
            Ok(written) => expect(&ctx, ns, set, &w.change, read.as_ref(), written),
            Err(e) => {
                lost(&ctx, ns, set, &w.change, &e);
                refused = true;
            }
        }
        ctx.in_flight.done(&key, w.change.listener());
    }
    if refused {
        tokio::time::sleep(RETRY).await;
        ctx.index.wake_set(key.clone());
    }
}
