//! Harness for the ListenerSet tests: a simulator whose pods labelled `baton-agent=true` run the
//! agent library as their process, each with its own client identity `agent-<pod>`, logging
//! every listener start/stop on one shared monotonic clock.
// Tests are serialised with a std Mutex held for a whole test; each #[tokio::test] runs on its
// own runtime, so holding it across awaits is intended.
#![allow(clippy::await_holding_lock)]
#![allow(dead_code)]
#[path = "listenersets.rs"]
pub mod listenersets;
pub use listenersets::{ids, listeners};

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::agent::{Agent, AgentConfig, AgentEvent};
use baton::api::listenerset::{ConfigRef, Listener, ListenerSet, SecretKeyRef};
use baton::listeners::controller::{ControllerConfig, Stats};
use baton_sim::{Sim, SimConfig};
use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const NS: &str = "default";
pub const AGENT_LABEL: &str = "baton-agent";

/// The tests share 2 cores with everything else: run one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// One tenure of a listener on a pod, as the application saw it.
/// (pod, listener) → the config its agent was started with.
pub type Configs = Arc<Mutex<BTreeMap<(String, String), Option<String>>>>;

#[derive(Debug, Clone)]
pub struct Interval {
    pub listener: String,
    pub pod: String,
    pub token: i32,
    pub start: Instant,
    pub end: Option<Instant>,
}

#[derive(Default)]
pub struct Log {
    pub intervals: Mutex<Vec<Interval>>,
}

impl Log {
    fn start(&self, pod: &str, listener: &str, token: i32) {
        let mut g = self.intervals.lock().unwrap();
        g.push(Interval {
            listener: listener.into(),
            pod: pod.into(),
            token,
            start: Instant::now(),
            end: None,
        });
    }

    fn stop(&self, pod: &str, listener: &str) {
        let now = Instant::now();
        let mut g = self.intervals.lock().unwrap();
        for i in g
            .iter_mut()
            .filter(|i| i.pod == pod && i.listener == listener && i.end.is_none())
        {
            i.end = Some(now);
        }
    }

    /// The highest fencing token each listener was started with.
    pub fn tokens(&self) -> BTreeMap<String, i32> {
        let mut m: BTreeMap<String, i32> = BTreeMap::new();
        for i in self.snapshot() {
            let t = m.entry(i.listener).or_insert(i.token);
            *t = (*t).max(i.token);
        }
        m
    }

    /// The process died: everything it ran stopped now.
    fn kill(&self, pod: &str, uid_tag: &str) {
        let now = Instant::now();
        let _ = uid_tag;
        let mut g = self.intervals.lock().unwrap();
        for i in g.iter_mut().filter(|i| i.pod == pod && i.end.is_none()) {
            i.end = Some(now);
        }
    }

    pub fn snapshot(&self) -> Vec<Interval> {
        self.intervals.lock().unwrap().clone()
    }

    /// listener → pod currently running it (open intervals).
    pub fn running(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in self.snapshot().into_iter().filter(|i| i.end.is_none()) {
            m.entry(i.listener).or_default().push(i.pod);
        }
        m
    }

    pub fn starts(&self) -> usize {
        self.intervals.lock().unwrap().len()
    }

    /// No listener ever ran in two places at once; prints the worst gap.
    pub fn assert_no_duplicates(&self) {
        let (dups, worst, _) = self.analyse();
        println!("duplicates {dups}, worst gap {worst:?}");
        assert_eq!(dups, 0, "listeners that ran in two places at once");
    }

    /// Check that no two intervals of one listener overlap; returns (duplicates, worst gap, gaps).
    pub fn analyse(&self) -> (usize, Duration, Vec<Duration>) {
        let mut by: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        for i in self.snapshot() {
            by.entry(i.listener.clone()).or_default().push(i);
        }
        let mut dups = 0;
        let mut gaps = Vec::new();
        for (listener, mut is) in by {
            is.sort_by_key(|i| i.start);
            for w in is.windows(2) {
                match w[0].end {
                    Some(end) if end <= w[1].start => gaps.push(w[1].start - end),
                    _ => {
                        dups += 1;
                        eprintln!("OVERLAP {listener}: {:?} and {:?}", w[0], w[1]);
                    }
                }
            }
            let tokens: Vec<i32> = is.iter().map(|i| i.token).collect();
            let mut sorted = tokens.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() != tokens.len() && tokens.windows(2).any(|w| w[1] < w[0]) {
                eprintln!("fencing tokens of {listener} went backwards: {tokens:?}");
                dups += 1;
            }
        }
        let worst = gaps.iter().max().copied().unwrap_or_default();
        (dups, worst, gaps)
    }
}

/// Records the moment the process future is dropped (aborted: kill -9).
struct KillGuard {
    log: Arc<Log>,
    pod: String,
    armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if self.armed {
            self.log.kill(&self.pod, "");
        }
    }
}

/// Knobs for the attached agents.
#[derive(Clone)]
pub struct AgentKnobs {
    pub stop_timeout: Duration,
    pub safety_margin: Option<Duration>,
    /// Pods whose (re)started process does nothing (a dead container).
    pub dead: Arc<Mutex<HashSet<String>>>,
    /// How long the app takes to stop a listener. A start of a listener still stopping on the
    /// same pod waits for that stop (an app runs a listener once).
    pub stop_delay: Duration,
}

impl Default for AgentKnobs {
    fn default() -> Self {
        AgentKnobs {
            stop_timeout: Duration::from_secs(10),
            safety_margin: None,
            dead: Arc::default(),
            stop_delay: Duration::ZERO,
        }
    }
}

pub struct World {
    pub sim: Sim,
    pub client: kube::Client,
    pub log: Arc<Log>,
    pub knobs: AgentKnobs,
    /// Config values agents received: (pod, listener) → config.
    pub configs: Configs,
}

pub async fn world(knobs: AgentKnobs) -> World {
    if std::env::var_os("BATON_TEST_LOG").is_some() {
        baton::telemetry::init(baton::telemetry::LogFormat::Pretty);
    }
    let sim = Sim::start(SimConfig::default()).await.expect("simulator starts");
    let client = sim.client().await.expect("client");
    baton::demo::install_crds(&client).await.expect("CRDs");
    let log = Arc::new(Log::default());
    let configs: Configs = Arc::default();
    let ids = sim.identities();
    let (l2, k2, c2) = (log.clone(), knobs.clone(), configs.clone());
    sim.kubelet.attach(
        |pod| pod.pointer(&format!("/metadata/labels/{AGENT_LABEL}")).and_then(|v| v.as_str()) == Some("true"),
        Arc::new(move |ctx: baton_sim::PodContext| {
            let (log, knobs, configs, ids) = (l2.clone(), k2.clone(), c2.clone(), ids.clone());
            async move {
                if knobs.dead.lock().unwrap().contains(&ctx.name) {
                    futures::future::pending::<()>().await;
                }
                let client = ids.client(&format!("agent-{}", ctx.name)).expect("agent client");
                let mut cfg = AgentConfig::new(&ctx.namespace, &ctx.name, &ctx.uid);
                cfg.stop_timeout = knobs.stop_timeout;
                cfg.safety_margin = knobs.safety_margin;
                let mut agent = Agent::start(client, cfg);
                let _guard = KillGuard {
                    log: log.clone(),
                    pod: ctx.name.clone(),
                    armed: true,
                };
                let mut sigterm = ctx.sigterm.clone();
                let mut terminating = false;
                // A slow app (`stop_delay`): each listener's starts and stops happen one after
                // another, in the agent's order. Dropped with the process (kill -9).
                let mut chain: BTreeMap<String, tokio::sync::oneshot::Receiver<()>> = BTreeMap::new();
                let mut app = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        ev = agent.next() => match ev {
                            Some(AgentEvent::Start(s)) if knobs.stop_delay.is_zero() => {
                                configs.lock().unwrap().insert((ctx.name.clone(), s.listener.clone()), s.config.clone());
                                log.start(&ctx.name, &s.listener, s.fencing_token);
                            }
                            Some(AgentEvent::Stop(s)) if knobs.stop_delay.is_zero() => {
                                log.stop(&ctx.name, &s.listener);
                                s.ack();
                            }
                            Some(AgentEvent::Start(s)) => {
                                configs.lock().unwrap().insert((ctx.name.clone(), s.listener.clone()), s.config.clone());
                                let (tx, rx) = tokio::sync::oneshot::channel();
                                let prior = chain.insert(s.listener.clone(), rx);
                                let (log, pod) = (log.clone(), ctx.name.clone());
                                app.spawn(async move {
                                    if let Some(prior) = prior {
                                        let _ = prior.await;
                                    }
                                    log.start(&pod, &s.listener, s.fencing_token);
                                    let _ = tx.send(());
                                });
                            }
                            Some(AgentEvent::Stop(s)) => {
                                let (tx, rx) = tokio::sync::oneshot::channel();
                                let prior = chain.insert(s.listener.clone(), rx);
                                let (log, pod, delay) = (log.clone(), ctx.name.clone(), knobs.stop_delay);
                                app.spawn(async move {
                                    if let Some(prior) = prior {
                                        let _ = prior.await;
                                    }
                                    tokio::time::sleep(delay).await;
                                    log.stop(&pod, &s.listener);
                                    s.ack();
                                    let _ = tx.send(());
                                });
                            }
                            None => break,
                        },
                        _ = sigterm.changed(), if !terminating => {
                            terminating = true;
                            agent.shutdown();
                        }
                    }
                }
            }
            .boxed()
        }),
    );
    World {
        sim,
        client,
        log,
        knobs,
        configs,
    }
}

type Dump = Box<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send>;
/// What to print when a wait times out.
pub static DUMP: Mutex<Option<Dump>> = Mutex::new(None);

/// Poll `check` until it returns Some, or panic after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > end {
            if let Some(dump) = DUMP.lock().unwrap().as_ref() {
                dump().await;
            }
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl World {
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }
    pub fn sets(&self) -> Api<ListenerSet> {
        Api::namespaced(self.client.clone(), NS)
    }
    pub fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// A ListenerSet controller as identity `identity`; stop it by dropping/sending the returned sender.
    pub async fn controller(&self, identity: &str) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<Arc<Stats>>) {
        self.controller_counted(identity, Arc::new(Stats::default())).await
    }

    pub async fn controller_counted(
        &self,
        identity: &str,
        stats: Arc<Stats>,
    ) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<Arc<Stats>>) {
        let client = self.sim.client_as(identity).await.expect("client");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = ControllerConfig {
            namespace: Some(NS.into()),
            concurrency: 4,
            instance: identity.into(),
            ..ControllerConfig::default()
        };
        let h = tokio::spawn(baton::operator::run_listeners(client, cfg, stats, async move {
            let _ = rx.await;
        }));
        (tx, h)
    }

    pub async fn create_pod(&self, name: &str, app: &str) {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": app, AGENT_LABEL: "true"}},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}], "terminationGracePeriodSeconds": 30}
        }))
        .unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created");
    }

    pub async fn wait_ready(&self, name: &str) -> String {
        let pods = self.pods();
        wait_for(&format!("pod {name} Ready"), Duration::from_secs(20), || {
            let pods = pods.clone();
            async move {
                let p = pods.get_opt(name).await.ok()??;
                listenersets::ready_and_running(&p).then(|| p.metadata.uid.clone().unwrap_or_default())
            }
        })
        .await
    }

    pub async fn delete_pod(&self, name: &str, grace: Option<u32>) {
        let dp = DeleteParams {
            grace_period_seconds: grace,
            ..Default::default()
        };
        self.pods().delete(name, &dp).await.expect("pod deleted");
    }

    pub async fn create_set(&self, name: &str, app: &str, listeners: Vec<Listener>, lease_seconds: i32) {
        let set = listenersets::set(NS, name, app, listeners, lease_seconds);
        self.sets()
            .create(&PostParams::default(), &set)
            .await
            .expect("set created");
    }

    /// Create Secret `name` in the test namespace with `data` (as `stringData`).
    pub async fn create_secret(&self, name: &str, data: serde_json::Value) {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "stringData": data
        }))
        .expect("a Secret");
        Api::<Secret>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret created");
    }

    /// Wait until the log shows every listener in `ids` running on exactly one pod that passes `ok`.
    pub async fn wait_running(&self, what: &str, ids: &[String], deadline: Duration, ok: impl Fn(&str) -> bool) {
        wait_for(what, deadline, || {
            let running = self.log.running();
            let all = ids
                .iter()
                .all(|id| running.get(id).is_some_and(|p| p.len() == 1 && ok(&p[0])));
            async move { all.then_some(()) }
        })
        .await
    }

    /// Lease holders of a set: listener → (holder, token).
    pub async fn holders(&self, set: &str) -> BTreeMap<String, (Option<String>, i32)> {
        let lp = ListParams::default().labels(&listenersets::lease_selector(set));
        listenersets::holders(self.leases().list(&lp).await.expect("leases").items)
    }
}

/// Listener `tokened`, configured by key `tokened` of Secret `tokens` (see
/// [`World::create_secret`]).
pub fn tokened() -> Listener {
    Listener {
        id: "tokened".into(),
        config_ref: Some(ConfigRef {
            secret_key_ref: SecretKeyRef {
                name: "tokens".into(),
                key: "tokened".into(),
            },
        }),
        suspend: false,
    }
}

/// A stopped-by-dropping controller task (see [`World::controller`]).
pub type ControllerTask = (tokio::sync::oneshot::Sender<()>, JoinHandle<Arc<Stats>>);

/// The `recover` scene: Ready pods `rc-a`, `rc-b`, `rc-c` whose agents may take 120 s to stop,
/// a controller, and set `sxt` with 6 listeners running.
pub async fn recover_world() -> (World, ControllerTask) {
    let knobs = AgentKnobs {
        stop_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let w = world(knobs).await;
    let ctl = w.controller("controller-a").await;
    for p in ["rc-a", "rc-b", "rc-c"] {
        w.create_pod(p, "svc").await;
    }
    for p in ["rc-a", "rc-b", "rc-c"] {
        w.wait_ready(p).await;
    }
    w.create_set("sxt", "svc", listeners(6), 60).await;
    w.wait_running("6 listeners", &ids(6), Duration::from_secs(30), |_| true)
        .await;
    (w, ctl)
}

impl World {
    /// Pod `pod` gets stuck: its agent is cut off from the API, then the pod is deleted (a
    /// finalizer keeps it terminating). Returns once the agent stopped its listeners on SIGTERM
    /// (it cannot release them).
    pub async fn strand(&self, pod: &str) {
        let patch = json!({"metadata": {"finalizers": ["test/hold"]}});
        self.pods()
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("finalizer added");
        self.sim.faults.block(&format!("token=agent-{pod}"));
        self.delete_pod(pod, Some(30)).await;
        wait_for(&format!("{pod} stopped its listeners"), Duration::from_secs(20), || {
            let open = self.log.running().values().any(|p| p.iter().any(|p| p == pod));
            async move { (!open).then_some(()) }
        })
        .await;
    }

    /// Undo [`World::strand`]: the agent reaches the API again and the pod may go.
    pub async fn unstrand(&self, pod: &str) {
        self.sim.faults.unblock(&format!("token=agent-{pod}"));
        let patch = json!({"metadata": {"finalizers": null}});
        let _ = self
            .pods()
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
}

/// Aborts its task when dropped.
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// listener → when the test's watch saw its Lease deleted.
pub type Deletions = Arc<Mutex<BTreeMap<String, Instant>>>;

impl World {
    /// Record when each Lease of `set` is deleted (returns once the watch has listed).
    pub async fn watch_lease_deletions(&self, set: &str) -> (Deletions, AbortOnDrop) {
        use futures::StreamExt;
        use kube::runtime::{watcher, WatchStreamExt};
        let seen: Deletions = Arc::default();
        let cfg = watcher::Config::default().labels(&listenersets::lease_selector(set));
        // Backoff: once the simulator is gone, retries must not spin and block runtime shutdown.
        let mut stream = watcher(self.leases(), cfg).default_backoff().boxed();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let out = seen.clone();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Delete(l)) => {
                        if let Some(id) = listenersets::lease_listener(&l) {
                            out.lock().unwrap().insert(id.clone(), Instant::now());
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("lease watch listed in time")
            .expect("lease watch running");
        (seen, AbortOnDrop(task))
    }

    /// Reasons of the Events about ListenerSet `set`.
    pub async fn set_event_reasons(&self, set: &str) -> Vec<String> {
        let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.client.clone(), NS);
        let list = events.list(&ListParams::default()).await.expect("events");
        list.items
            .into_iter()
            .filter(|e| {
                e.regarding
                    .as_ref()
                    .is_some_and(|r| r.kind.as_deref() == Some("ListenerSet") && r.name.as_deref() == Some(set))
            })
            .filter_map(|e| e.reason)
            .collect()
    }
}
