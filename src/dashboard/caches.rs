//! The dashboard's view of the cluster: one watch cache (reflector) per kind it shows, filled
//! with the user's credentials, and a counter bumped on every change that the live pages wait
//! on. Nothing else is kept: a restarted dashboard lists everything again.
//!
//! Each watch keeps its own state for the page: synced yet, and the last error in kubectl's
//! words (a `view`-only user cannot read Leases; a namespace user cannot list every namespace),
//! so a page says what it cannot show instead of showing nothing.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::listenerset::{ListenerSet, LISTENERSET_LABEL};
use crate::api::rollout::{labels, Rollout};
use crate::cache::tolerant::{decode_events, Bad, Tolerant, Undecodables};
use crate::session::Session;

/// The kinds the dashboard watches, as named on its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watched {
    Rollouts,
    ListenerSets,
    Revisions,
    Leases,
    RolloutEvents,
    ListenerSetEvents,
}

impl Watched {
    pub fn label(self) -> &'static str {
        match self {
            Watched::Rollouts => "Rollouts",
            Watched::ListenerSets => "ListenerSets",
            Watched::Revisions => "ControllerRevisions",
            Watched::Leases => "Leases",
            Watched::RolloutEvents => "Events of Rollouts",
            Watched::ListenerSetEvents => "Events of ListenerSets",
        }
    }
}

/// How one watch is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchState {
    /// Its first complete list has arrived.
    pub synced: bool,
    /// The last error, in kubectl's words, until the watch works again.
    pub error: Option<String>,
}

/// The caches, their states, and the change counter. Cheap to clone.
#[derive(Clone)]
pub struct Caches {
    /// The namespace watched, or None for all.
    pub namespace: Option<String>,
    pub rollouts: Store<Rollout>,
    pub sets: Store<ListenerSet>,
    pub revisions: Store<ControllerRevision>,
    pub leases: Store<Lease>,
    pub rollout_events: Store<Event>,
    pub set_events: Store<Event>,
    /// Rollouts and ListenerSets left out because they do not decode.
    pub bad_rollouts: Undecodables,
    pub bad_sets: Undecodables,
    states: Arc<Mutex<BTreeMap<Watched, WatchState>>>,
    changed: Arc<watch::Sender<u64>>,
}

/// The watch tasks; dropping this stops them.
pub struct Watches {
    _tasks: JoinSet<()>,
}

impl Watches {
    /// Stop every watch and wait until each has ended.
    pub async fn stop(&mut self) {
        self._tasks.shutdown().await;
    }
}

impl Caches {
    /// Start watching, in `namespace` or all (None), as `session`'s user.
    pub fn start(session: &Session, namespace: Option<String>) -> (Caches, Watches) {
        let client = &session.client;
        let api = |c: &kube::Client| -> Api<Tolerant<Rollout>> { crate::cache::api(c, &namespace) };
        let (rollouts, rollouts_w) = reflector::store();
        let (sets, sets_w) = reflector::store();
        let (revisions, revisions_w) = reflector::store();
        let (leases, leases_w) = reflector::store();
        let (rollout_events, rollout_events_w) = reflector::store();
        let (set_events, set_events_w) = reflector::store();
        let caches = Caches {
            namespace: namespace.clone(),
            rollouts: rollouts.clone(),
            sets: sets.clone(),
            revisions,
            leases,
            rollout_events,
            set_events,
            bad_rollouts: Undecodables::new("Rollout", Default::default()),
            bad_sets: Undecodables::new("ListenerSet", Default::default()),
            states: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        };
        let mut tasks = JoinSet::new();
        // The server ends each watch before the client's read timeout would (see
        // `Session::watch_config`).
        let all = session.watch_config();
        let stream = decode_events(watcher(api(client), all.clone()), rollouts, caches.bad_rollouts.clone());
        tasks.spawn(
            caches
                .clone()
                .run(Watched::Rollouts, session.clone(), stream.reflect(rollouts_w)),
        );
        let sets_api: Api<Tolerant<ListenerSet>> = crate::cache::api(client, &namespace);
        let stream = decode_events(watcher(sets_api, all.clone()), sets, caches.bad_sets.clone());
        tasks.spawn(
            caches
                .clone()
                .run(Watched::ListenerSets, session.clone(), stream.reflect(sets_w)),
        );
        let by_rollout = session.watch_config().labels(labels::ROLLOUT);
        tasks.spawn(
            caches
                .clone()
                .watch::<ControllerRevision>(Watched::Revisions, session, by_rollout, revisions_w),
        );
        let by_set = session.watch_config().labels(LISTENERSET_LABEL);
        tasks.spawn(
            caches
                .clone()
                .watch::<Lease>(Watched::Leases, session, by_set, leases_w),
        );
        let of = |kind: &str| session.watch_config().fields(&format!("involvedObject.kind={kind}"));
        tasks.spawn(
            caches
                .clone()
                .watch::<Event>(Watched::RolloutEvents, session, of("Rollout"), rollout_events_w),
        );
        tasks.spawn(caches.clone().watch::<Event>(
            Watched::ListenerSetEvents,
            session,
            of("ListenerSet"),
            set_events_w,
        ));
        // Undecodable objects change the pages too.
        for bad in [caches.bad_rollouts.clone(), caches.bad_sets.clone()] {
            let me = caches.clone();
            tasks.spawn(async move {
                let mut rx = bad.changed();
                while rx.changed().await.is_ok() {
                    me.bump();
                }
            });
        }
        (caches, Watches { _tasks: tasks })
    }

    /// A typed watch of `K` into `writer`.
    fn watch<K>(
        self,
        kind: Watched,
        session: &Session,
        cfg: watcher::Config,
        writer: reflector::store::Writer<K>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let api: Api<K> = crate::cache::api(&session.client, &self.namespace);
        self.run(kind, session.clone(), watcher(api, cfg).reflect(writer))
    }

    /// Drive a reflecting watch stream, recording its state and announcing every change.
    async fn run<K, S>(self, kind: Watched, session: Session, stream: S)
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    {
        let mut stream = std::pin::pin!(stream.default_backoff());
        while let Some(event) = stream.next().await {
            let changed = {
                let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
                let state = states.entry(kind).or_default();
                let before = state.clone();
                match &event {
                    Ok(watcher::Event::InitDone) => {
                        state.synced = true;
                        state.error = None;
                    }
                    Ok(watcher::Event::Apply(_)) | Ok(watcher::Event::Delete(_)) => state.error = None,
                    Ok(_) => {}
                    Err(e) => state.error = Some(watch_error(&session, e)),
                }
                *state != before || matches!(event, Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)))
            };
            if changed {
                self.bump();
            }
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every change (the live pages wait on it).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The state of each watch that has reported anything.
    pub fn states(&self) -> BTreeMap<Watched, WatchState> {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `kind`'s first list has arrived.
    pub fn synced(&self, kind: Watched) -> bool {
        self.states().get(&kind).is_some_and(|s| s.synced)
    }

    /// Wait (at most `timeout`) until the watches of `kinds` have their first list or an error,
    /// so a first page shows what there is rather than an empty table.
    pub async fn settled(&self, kinds: &[Watched], timeout: std::time::Duration) {
        let mut rx = self.changes();
        let done = |me: &Caches| {
            let states = me.states();
            kinds
                .iter()
                .all(|k| states.get(k).is_some_and(|s| s.synced || s.error.is_some()))
        };
        let _ = tokio::time::timeout(timeout, async {
            while !done(self) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Objects left out of the caches because they do not decode.
    pub fn undecodable(&self) -> Vec<Bad> {
        let mut all = self.bad_rollouts.snapshot();
        all.extend(self.bad_sets.snapshot());
        all
    }
}

/// A watch error in kubectl's words.
fn watch_error(session: &Session, e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            session.error(e).message
        }
        watcher::Error::WatchError(s) => session.error(&kube::Error::Api(s.clone())).message,
        other => format!("error: {other}"),
    }
}
