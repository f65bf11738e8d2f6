//! Real-process harness for the listener safety replays and the churn benchmark.
//!
//! * One cluster ([`Cluster`]) with the CRDs — a simulator, or the real control plane when
//!   `BATON_TEST_CLUSTER=real` (see `tests/support/real`) — and every test works in its own
//!   namespace ([`Ns`]), so tests run side by side without a global lock.
//! * Every pod gets a real `baton agent` sidecar (the binary, spawned with its own client
//!   identity `agent-<ns>-<pod>`) attached to the simulated pod with `sim.kubelet.attach_pid`,
//!   so the simulated kubelet SIGTERMs it on a graceful deletion and SIGKILLs it at the end of the
//!   grace period; a force delete signals nothing (its containers run on, as on a real node). Next
//!   to it runs the pod's application ([`app`]): a task of this process that follows the sidecar's
//!   file or HTTP endpoint and logs every start and stop.
//! * The ListenerSet controller is the real `baton controller` binary (leader election in the
//!   namespace), which a test can SIGKILL and restart.
//! * [`history`] records every Lease, ListenerSet and pod change for the end-of-test checks.
//!
//! Everything returns `Result<_, String>` (the benchmarks report errors; tests unwrap them).
#![allow(dead_code)]

pub mod app;
mod cluster;
pub mod history;
/// Real kubectl against the simulator (the shared test helper).
#[path = "../../support/kubectl.rs"]
pub mod kubectl;
/// ListenerSet specs, Lease holders (shared with the in-process listener world).
#[path = "../../support/listenersets.rs"]
pub mod listenersets;
mod pods;
#[path = "../../support/process.rs"]
pub mod process;
/// Apps that are OS processes.
pub mod program;
/// The real control plane as a backend (the shared test helper).
#[path = "../../support/real/mod.rs"]
pub mod real;
/// A webhook receiver (the shared test helper).
#[path = "../../support/receiver.rs"]
pub mod receiver;
pub mod tap;
#[path = "../../support/wait.rs"]
pub mod wait;
pub mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use baton::api::listenerset::{Listener, ListenerSet, ListenersFrom, SecretRef};
use baton_sim::{KubeletConfig, Sim, SimConfig};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::process::Command;

use app::{AppConfig, AppLog};
#[allow(unused_imports)]
pub use cluster::{kubelet, Backend, Cluster};
use history::{Dead, History};
#[allow(unused_imports)]
pub use pods::{AppKind, PodProcs};
use process::LoggedChild;

pub type R<T> = Result<T, String>;

/// Deadline of one kubectl run.
pub const LONG: Duration = Duration::from_secs(60);

/// The `baton` binary under test: `BATON_TEST_BIN` (replays against another build), else the
/// one cargo built for the tests, else (an example) the one beside the example's directory.
pub fn baton_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BATON_TEST_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_baton") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("baton")))
        .unwrap_or_else(|| PathBuf::from("baton"))
}

/// Label every harness pod carries; sets select it.
pub const APP_LABEL: &str = "app";
pub const APP: &str = "svc";

/// Check `check` every 20 ms until it returns Some; Err naming `what` after `deadline` (the
/// shared polling loop of the tests, `tests/support/wait.rs`).
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, check: F) -> R<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait::poll_until(what, deadline, wait::POLL, check).await
}

/// Send `sig` (e.g. "KILL") to `pid` with the system's `kill`.
pub async fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// How the pods' sidecars run.
#[derive(Clone, Debug)]
pub struct AgentFlags {
    /// `--ack-timeout-seconds`.
    pub ack_timeout: u64,
    /// `--safety-margin-seconds` (None: the default).
    pub safety_margin: Option<f64>,
}

impl Default for AgentFlags {
    fn default() -> Self {
        AgentFlags {
            ack_timeout: 5,
            safety_margin: None,
        }
    }
}

/// A `baton controller` process.
pub struct ControllerProc {
    pub id: String,
    pub proc: LoggedChild,
}

/// One test's namespace: its pods and their processes, its controllers, the apps' log.
pub struct Ns {
    pub cluster: Arc<Cluster>,
    pub name: String,
    pub client: kube::Client,
    pub log: Arc<AppLog>,
    pub app: AppConfig,
    pub agent: AgentFlags,
    pods: Mutex<BTreeMap<String, Arc<PodProcs>>>,
    controllers: Mutex<Vec<ControllerProc>>,
    dead: Mutex<Vec<Dead>>,
    next_controller: Mutex<usize>,
    /// The binaries of the controllers and sidecars started from now on (None: [`baton_bin`]).
    binaries: Mutex<(Option<PathBuf>, Option<PathBuf>)>,
    /// Controllers started from now on elect a leader with the shipped timings (15 s / 10 s /
    /// 2 s) instead of the harness's fast ones (10 s / 8 s / 500 ms, for quick failovers).
    shipped_election: std::sync::atomic::AtomicBool,
    _sampler: app::AbortOnDrop,
    reapers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The last wait that failed, printed again after the logs (a long log buries the panic).
    failed: Mutex<Option<String>>,
}

impl Drop for Ns {
    fn drop(&mut self) {
        for r in self.reapers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            r.abort();
        }
        if std::thread::panicking() {
            for c in self.controllers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                eprintln!("----- controller {} -----\n{}", c.id, c.proc.log_text());
            }
            for p in self.pods.lock().unwrap_or_else(|p| p.into_inner()).values() {
                eprintln!("----- sidecar of {} -----\n{}", p.name, p.logs());
                if let Some(r) = &p.app.record {
                    eprintln!("----- app of {} -----\n{}", p.name, r.output().join("\n"));
                }
            }
            if let Some(f) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                eprintln!("----- the wait that failed -----\n{f}");
            }
        }
    }
}

impl Ns {
    /// Namespace `name` in the shared cluster, with default apps and agents.
    pub async fn plain(name: &str) -> Ns {
        let ns = Ns::new(Cluster::shared(), name, AppConfig::default(), AgentFlags::default()).await;
        ns.unwrap_or_else(|e| panic!("namespace {name}: {e}"))
    }

    /// A fresh namespace `name` on `cluster`, its apps configured by `app`, sidecars by `agent`.
    pub async fn new(cluster: Arc<Cluster>, name: &str, app: AppConfig, agent: AgentFlags) -> R<Ns> {
        let client = cluster.client().await?;
        cluster.history.watch_namespace(name);
        let ns: Namespace =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
                .map_err(|e| e.to_string())?;
        match Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
        {
            Ok(_) => {}
            // `default` and other namespaces every cluster has.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(format!("creating namespace {name}: {e}")),
        }
        if cluster.is_real() {
            // Pods need the namespace's `default` ServiceAccount, which kube-controller-manager
            // creates a moment after the namespace.
            let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), name);
            wait_for(
                &format!("ServiceAccount {name}/default"),
                Duration::from_secs(60),
                || {
                    let sas = sas.clone();
                    async move { sas.get_opt("default").await.ok()?.map(|_| ()) }
                },
            )
            .await?;
        }
        let log = Arc::new(AppLog::default());
        Ok(Ns {
            _sampler: app::AbortOnDrop(app::sampler(log.clone())),
            cluster,
            name: name.to_string(),
            client,
            log,
            app,
            agent,
            pods: Mutex::default(),
            controllers: Mutex::default(),
            dead: Mutex::default(),
            next_controller: Mutex::new(0),
            binaries: Mutex::default(),
            shipped_election: std::sync::atomic::AtomicBool::new(false),
            reapers: Mutex::default(),
            failed: Mutex::default(),
        })
    }

    pub fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.name)
    }
    pub fn sets(&self) -> Api<ListenerSet> {
        Api::namespaced(self.client.clone(), &self.name)
    }
    pub fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Requests baton-sim answered in this namespace so far (its audit's exact counts), summed
    /// by what `key` makes of each kind of request; those it makes `None` of are left out.
    /// Needs baton-sim: the real control plane's audit log keeps writes only.
    pub fn sim_counts<K: Ord>(&self, key: impl Fn(&baton_sim::auth::audit::AuditKey) -> Option<K>) -> BTreeMap<K, u64> {
        let mut out = BTreeMap::new();
        for (k, n) in self.cluster.sim().core.auth.audit.counts() {
            if k.namespace != self.name {
                continue;
            }
            if let Some(key) = key(&k) {
                *out.entry(key).or_insert(0) += n;
            }
        }
        out
    }

    /// The controllers running now.
    pub fn controller_ids(&self) -> Vec<String> {
        self.controllers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|c| c.id.clone())
            .collect()
    }

    /// Start controllers with `bin` from now on (None: the binary under test).
    pub fn use_controller_bin(&self, bin: Option<PathBuf>) {
        self.binaries.lock().unwrap_or_else(|p| p.into_inner()).0 = bin;
    }

    /// Start sidecars with `bin` from now on (None: the binary under test).
    pub fn use_agent_bin(&self, bin: Option<PathBuf>) {
        self.binaries.lock().unwrap_or_else(|p| p.into_inner()).1 = bin;
    }

    fn controller_bin(&self) -> PathBuf {
        let b = self.binaries.lock().unwrap_or_else(|p| p.into_inner()).0.clone();
        b.unwrap_or_else(baton_bin)
    }

    pub(crate) fn agent_bin(&self) -> PathBuf {
        let b = self.binaries.lock().unwrap_or_else(|p| p.into_inner()).1.clone();
        b.unwrap_or_else(baton_bin)
    }

    /// The names of the pods the harness started.
    pub fn pod_names(&self) -> Vec<String> {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn pod(&self, name: &str) -> R<Arc<PodProcs>> {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no pod {name} in the harness"))
    }

    // ----- controllers -----

    /// Start a `baton controller` watching this namespace (leader election in it: 2 s lease,
    /// renew deadline 1.5 s, retry 250 ms), and wait until it serves its probes.
    pub async fn start_controller(&self) -> R<String> {
        let n = {
            let mut g = self.next_controller.lock().unwrap_or_else(|p| p.into_inner());
            *g += 1;
            *g
        };
        let id = format!("ctl-{}-{n}", self.name);
        let kubeconfig = self.cluster.kubeconfig(&id).await?;
        let mut cmd = Command::new(self.controller_bin());
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["controller", "--watch-namespace", &self.name])
            .args(["--lease-namespace", &self.name, "--lease-name", "baton-controller"]);
        if !self.shipped_election.load(std::sync::atomic::Ordering::Relaxed) {
            // Quick failovers, but a renew deadline a loaded 2-core machine (every test of the
            // suite running beside) does not miss: a leader that misses it exits, and these tests
            // run no second controller unless they say so. The deadline counts from when the
            // acquiring request was sent, and under CI's load that request alone took 2.5 s: at
            // 4 s the first renewal then had 1.5 s and missed it.
            cmd.args([
                "--lease-duration",
                "10s",
                "--renew-deadline",
                "8s",
                "--retry-period",
                "500ms",
            ]);
        }
        cmd.args([
            "--identity",
            &id,
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env(
            "RUST_LOG",
            std::env::var("BATON_CONTROLLER_LOG")
                .unwrap_or_else(|_| "info,kube=warn,baton_controller::listeners::controller::reconcile=debug".into()),
        )
        .env_remove("KUBECONFIG")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE");
        let mut proc = LoggedChild::spawn(&mut cmd, "bound").map_err(|e| format!("starting {id}: {e}"))?;
        if proc.wait_addr(Duration::from_secs(60)).await.is_none() {
            return Err(format!("controller {id} did not start\n{}", proc.log_text()));
        }
        self.controllers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ControllerProc { id: id.clone(), proc });
        Ok(id)
    }

    /// Controllers started from now on use the shipped leader-election timings (a benchmark's
    /// writes at rest are then those of an install).
    pub fn use_shipped_election(&self) {
        self.shipped_election.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The process id of controller `id`.
    pub fn controller_pid(&self, id: &str) -> Option<u32> {
        self.controllers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.proc.pid)
    }

    /// What controller `id` logged so far.
    pub fn controller_log(&self, id: &str) -> Option<String> {
        self.controllers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.proc.log_text())
    }

    /// Take controller `id` out of the running ones.
    fn take_controller(&self, id: &str) -> R<ControllerProc> {
        let mut g = self.controllers.lock().unwrap_or_else(|p| p.into_inner());
        let i = g
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| format!("no controller {id}"))?;
        Ok(g.remove(i))
    }

    /// SIGKILL controller `id` (a crash: no release of the leader Lease) and wait for its exit.
    pub async fn kill_controller(&self, id: &str) -> R<()> {
        let mut c = self.take_controller(id)?;
        signal(c.proc.pid, "KILL").await;
        c.proc
            .wait_exit(Duration::from_secs(30))
            .await
            .ok_or_else(|| format!("controller {id} did not die"))?
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// SIGTERM controller `id` and wait for its exit.
    pub async fn stop_controller(&self, id: &str) -> R<()> {
        let mut c = self.take_controller(id)?;
        c.proc.terminate();
        c.proc
            .wait_exit(Duration::from_secs(30))
            .await
            .ok_or_else(|| format!("controller {id} did not exit on SIGTERM"))?
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    // ----- ListenerSets -----

    pub async fn create_set(&self, name: &str, listeners: Vec<Listener>, lease_seconds: i32) -> R<()> {
        let set = listenersets::set(&self.name, name, APP, listeners, lease_seconds);
        self.sets()
            .create(&PostParams::default(), &set)
            .await
            .map(|_| ())
            .map_err(|e| format!("creating set {name}: {e}"))
    }

    /// Secret `secret` holding `values` (key → value) and set `name` with a listener per key
    /// (`listenersFrom.secretRef`).
    pub async fn create_set_from_secret(
        &self,
        name: &str,
        secret: &str,
        values: &BTreeMap<String, String>,
        lease_seconds: i32,
    ) -> R<()> {
        let body: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret, "namespace": self.name},
            "stringData": values,
        }))
        .map_err(|e| e.to_string())?;
        Api::<Secret>::namespaced(self.client.clone(), &self.name)
            .create(&PostParams::default(), &body)
            .await
            .map_err(|e| format!("creating the Secret: {e}"))?;
        let mut set = listenersets::set(&self.name, name, APP, Vec::new(), lease_seconds);
        set.spec.listeners_from = Some(ListenersFrom {
            secret_ref: Some(SecretRef { name: secret.into() }),
            secret_selector: None,
        });
        self.sets()
            .create(&PostParams::default(), &set)
            .await
            .map(|_| ())
            .map_err(|e| format!("creating the set: {e}"))
    }

    /// Lease holders of `set`: listener → (holder, token).
    pub async fn holders(&self, set: &str) -> R<BTreeMap<String, (Option<String>, i32)>> {
        let lp = ListParams::default().labels(&listenersets::lease_selector(set));
        let list = self.leases().list(&lp).await.map_err(|e| e.to_string())?;
        Ok(listenersets::holders(list.items))
    }

    /// Wait until every listener in `ids` (`<set>/<id>`) runs in exactly one app that passes `ok`
    /// (given the pod name).
    /// Fails at once if the run breaks a rule meanwhile.
    pub async fn wait_running(
        &self,
        what: &str,
        ids: &[String],
        deadline: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> R<()> {
        // The whole run is checked at most every CHECK_EVERY, and for at most a twentieth of the
        // time (it reads every interval and every change recorded: at 100,000 listeners one check
        // takes a good part of a second, which the processes under test would otherwise lose on
        // the shared cores); a duplicate seen by the sampler fails at once. The caller checks the
        // whole run once more at the end.
        const CHECK_EVERY: Duration = Duration::from_millis(500);
        const CHECK_SHARE: u32 = 20;
        let checked = Mutex::new((std::time::Instant::now(), Duration::ZERO));
        let broken = wait_for(what, deadline, || {
            let all = self.log.each_runs_once(ids, |app| ok(pod_of(app)));
            let mut last = checked.lock().unwrap_or_else(|p| p.into_inner());
            let (at, took) = *last;
            let due = at.elapsed() >= CHECK_EVERY.max(took * CHECK_SHARE) || self.log.any_doubled();
            let v = if all || !due {
                Vec::new()
            } else {
                let started = std::time::Instant::now();
                let v = self.violations(false);
                *last = (std::time::Instant::now(), started.elapsed());
                v
            };
            async move { (all || !v.is_empty()).then_some(v) }
        })
        .await;
        match broken {
            Ok(b) if b.is_empty() => Ok(()),
            Ok(b) => Err(format!("while waiting for {what}:\n{}", b.join("\n"))),
            Err(e) => {
                let e = format!("{e}\n{}", self.api_state().await);
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                Err(e)
            }
        }
    }

    /// What the API server holds for the namespace's sets and Leases (for a failure's message).
    pub async fn api_state(&self) -> String {
        let mut out = String::from("API state:\n");
        for s in self
            .sets()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let status = serde_json::to_string(&s.status).unwrap_or_default();
            out.push_str(&format!(
                "  ListenerSet {}: {status}\n",
                s.metadata.name.unwrap_or_default()
            ));
        }
        for l in self
            .leases()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let m = &l.metadata;
            out.push_str(&format!(
                "  Lease {} rv {:?} deleting {:?} finalizers {:?} labels {:?} owners {:?} spec {}\n",
                m.name.clone().unwrap_or_default(),
                m.resource_version,
                m.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
                m.finalizers,
                m.labels,
                m.owner_references
                    .iter()
                    .flatten()
                    .map(|o| o.name.clone())
                    .collect::<Vec<_>>(),
                serde_json::to_string(&l.spec).unwrap_or_default(),
            ));
        }
        out
    }

    /// Wait until every listener of `set` runs in exactly one app, on the pod its Lease names
    /// and with the Lease's token; the Leases.
    pub async fn settled(
        &self,
        set: &str,
        n: usize,
        what: &str,
        deadline: Duration,
    ) -> R<BTreeMap<String, (Option<String>, i32)>> {
        wait_for(what, deadline, || async {
            let held = self.holders(set).await.ok()?;
            let running = self.log.running_tokens();
            let agree = held.len() == n
                && held.iter().all(|(id, (h, t))| {
                    running.get(&format!("{set}/{id}")).is_some_and(|apps| {
                        apps.len() == 1 && Some(pod_of(&apps[0].0)) == h.as_deref() && apps[0].1 == *t
                    })
                });
            agree.then_some(held)
        })
        .await
    }

    /// Where each listener runs now: `<set>/<id>` → pod name (first app).
    pub fn running_on(&self) -> BTreeMap<String, String> {
        self.log
            .running()
            .into_iter()
            .filter_map(|(l, apps)| Some((l, pod_of(apps.first()?).to_string())))
            .collect()
    }

    /// Every rule the run broke: duplicates (exact and sampled), token regressions in the apps
    /// and in the Leases, assignments to dead pods and, with `check_starting`, status counting a
    /// listener as running before its holder renewed. Empty: none.
    pub fn violations(&self, check_starting: bool) -> Vec<String> {
        let a = self.log.analyse();
        let mut out: Vec<String> = a.overlaps.iter().map(|o| format!("duplicate: {o}")).collect();
        out.extend(a.token_regressions.iter().map(|t| format!("app token: {t}")));
        if a.duplicate_samples > 0 {
            out.push(format!(
                "{} of {} samples saw a listener in two apps: {:?}",
                a.duplicate_samples, a.samples, a.duplicate_notes
            ));
        }
        let dead = self.dead.lock().unwrap_or_else(|p| p.into_inner()).clone();
        out.extend(self.cluster.history.with(&self.name, |h| {
            history::violations(h, &dead, check_starting, self.cluster.history.complete_up_to())
        }));
        let lagged = self.cluster.history.lagged.load(std::sync::atomic::Ordering::Relaxed);
        if lagged > 0 {
            out.push(format!("the history recorder missed {lagged} changes"));
        }
        out
    }
}

/// The pod name of an app id (`<pod>#<uid prefix>`).
pub fn pod_of(app: &str) -> &str {
    app.split('#').next().unwrap_or(app)
}

/// `n` listeners `l000`… of set `set`: (spec, `<set>/<id>` keys).
pub fn listeners(set: &str, n: usize) -> (Vec<Listener>, Vec<String>) {
    let keys = listenersets::ids(n).iter().map(|id| format!("{set}/{id}")).collect();
    (listenersets::listeners(n), keys)
}
