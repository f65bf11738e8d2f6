//! Shared harness for the root crate's integration tests: a simulator per test — or, with
//! `BATON_TEST_CLUSTER=real`, a namespace per test in the real control plane ([`backend`],
//! [`real`]) — the CRDs, the operator as a task that can be stopped or killed, Rollout
//! manifests, and recorders that watch Rollout statuses and pods so tests can assert on every
//! intermediate state.
#![allow(dead_code)]

pub mod argocd;
pub mod backend;
pub mod controller;
pub mod docs;
pub mod kstatus;
pub mod kubectl;
pub mod process;
pub mod real;
pub mod receiver;
pub mod recorders;
pub mod wait;

#[allow(unused_imports)]
pub use recorders::{PodHistory, PodRecorder, Snapshots, StatusRecorder};
pub use wait::wait_for;

/// The columns of a Rollout table, as `kubectl get rollouts` (the CRD's printer columns) and
/// `kubectl baton rollout list` print them: the tests check that both print these.
pub const ROLLOUT_COLUMNS: &[&str] = &baton::cli::rollout::COLUMNS;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use baton::api::rollout::{labels, Rollout, RolloutPhase, RolloutStatus};
use baton::operator::{self, OperatorConfig};
use baton::rollout::controller::Stats;
use baton_sim::{KubeletConfig, Sim, SimConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Namespace every test works in on baton-sim (on the real control plane, [`Env::ns`]).
pub const NS: &str = "default";
/// Identity of the operator's client (baton-sim's bearer token, or the CN of a client certificate
/// on the real control plane): fault rules and the API server's record of writes single it out.
pub const CONTROLLER_ID: &str = "baton-controller";
/// Generous deadline for anything a loaded 2-core machine must get done.
pub const LONG: Duration = Duration::from_secs(60);

/// Logs to the test's captured output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Fast kubelet: pods are Ready ~150 ms after creation; crash loops restart every 100 ms.
pub fn fast_kubelet() -> KubeletConfig {
    KubeletConfig {
        schedule_delay: Duration::from_millis(5),
        start_delay: Duration::from_millis(30),
        ready_delay: Duration::from_millis(100),
        slow_factor: 10,
        crash_interval: Duration::from_millis(100),
        stop_delay: Duration::from_millis(20),
        run_duration: Duration::from_millis(100),
    }
}

/// A running operator task.
pub struct OperatorTask {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: JoinHandle<Arc<Stats>>,
}

impl OperatorTask {
    /// Graceful stop; returns the controller's counters.
    pub async fn stop(mut self) -> Arc<Stats> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(LONG, &mut self.handle)
            .await
            .expect("operator stops within the deadline")
            .expect("operator task did not panic")
    }

    /// Crash: the task is dropped at whatever await point it is in.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// One test's world: its own simulator (namespace [`NS`]), or a fresh namespace in the real
/// control plane; an admin client; the CRDs installed.
pub struct Env {
    /// The simulator; panics on the real control plane (see [`backend::SimOnly`]).
    pub sim: backend::SimOnly,
    pub client: kube::Client,
    /// The namespace the test works in.
    pub ns: String,
    real: Option<Arc<real::Real>>,
    /// Kubeconfigs of the identities the test uses.
    dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        match &self.real {
            None => {}
            Some(_) if std::thread::panicking() => eprintln!("namespace {} is kept for inspection", self.ns),
            // The control plane's admin kubeconfig: the test's own goes with the test.
            Some(r) => backend::delete_namespace(r.admin_kubeconfig(), &self.ns),
        }
    }
}

impl Env {
    /// baton-sim with the fast kubelet, or a fresh namespace of the real control plane when the
    /// run selects it ([`real::selected`]).
    pub async fn start() -> Env {
        if real::selected() {
            return Self::start_real().await;
        }
        Self::with_kubelet(fast_kubelet()).await
    }

    /// baton-sim with `kubelet`: a test that needs it is sim-only.
    pub async fn with_kubelet(kubelet: KubeletConfig) -> Env {
        Self::with_config(SimConfig {
            kubelet,
            ..SimConfig::default()
        })
        .await
    }

    /// A simulator started with `config`, serving the CRDs: a test that needs it is sim-only
    /// (it panics when the run selects the real control plane).
    pub async fn with_config(config: SimConfig) -> Env {
        assert!(
            !real::selected(),
            "this test configures baton-sim: name it sim_only_… so that the real tier skips it"
        );
        init_tracing();
        let sim = Sim::start(config).await.expect("simulator starts");
        let client = sim.client().await.expect("admin client");
        install_crds(&client).await;
        Env {
            sim: backend::SimOnly(Some(sim)),
            client,
            ns: NS.to_string(),
            real: None,
            dir: controller::temp_dir("env"),
        }
    }

    /// A fresh namespace in the real control plane (CRDs installed once per process).
    async fn start_real() -> Env {
        init_tracing();
        let real = backend::shared_real();
        // A client of this test's own runtime (one made on another runtime dies with it).
        let client = real
            .attached
            .client_as("baton-test-admin")
            .await
            .expect("an admin client");
        let ns = backend::namespace_name();
        backend::create_namespace(&client, &ns).await;
        Env {
            sim: backend::SimOnly(None),
            client,
            ns,
            real: Some(real),
            dir: controller::temp_dir("env"),
        }
    }

    /// Whether the test runs on the real control plane.
    pub fn is_real(&self) -> bool {
        self.real.is_some()
    }

    /// A client as admin `identity` (baton-sim's token, or a client certificate of the cluster's
    /// CA in group `system:masters`): the API server's logs name it.
    pub async fn client_as(&self, identity: &str) -> kube::Client {
        match &self.real {
            None => self.sim.client_as(identity).await.expect("a client"),
            Some(r) => r.attached.client_as(identity).await.expect("a client"),
        }
    }

    /// A kubeconfig for admin `identity` whose namespace is the test's (written once).
    pub fn kubeconfig(&self, identity: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("{identity}.kubeconfig"));
        if !path.exists() {
            match &self.real {
                None => self.sim.kubeconfig_as(identity, &path).expect("a kubeconfig"),
                Some(r) => r
                    .attached
                    .kubeconfig_as(identity, &self.ns, &path)
                    .expect("a kubeconfig"),
            }
        }
        path
    }

    /// The admin's kubeconfig, namespace the test's.
    pub fn admin_kubeconfig(&self) -> std::path::PathBuf {
        match &self.real {
            None => self.sim.kubeconfig_path().to_path_buf(),
            Some(_) => self.kubeconfig("baton-test-admin"),
        }
    }

    /// Real kubectl as the admin, in the test's namespace.
    pub fn kubectl(&self) -> kubectl::Kubectl {
        kubectl::Kubectl::with_kubeconfig(self.admin_kubeconfig())
    }

    /// Start the real `baton controller` as `id`, watching the test's namespace, `extra` flags
    /// appended, and wait until it serves its probes.
    pub async fn start_controller(&self, id: &str, extra: &[&str]) -> controller::ControllerProc {
        controller::start_in(&self.kubeconfig(id), &self.ns, id, extra).await
    }

    /// [`Env::start_controller`] "ctrl" with no leader election.
    pub async fn controller(&self) -> controller::ControllerProc {
        self.start_controller("ctrl", &controller::NO_ELECTION).await
    }

    /// [`manifest`] in the test's namespace.
    pub fn manifest(&self, name: &str, replicas: i32, version: &str, image: &str) -> Value {
        let mut m = manifest(name, replicas, version, image);
        m["metadata"]["namespace"] = json!(self.ns);
        m
    }

    /// [`manifest_v`] in the test's namespace.
    pub fn manifest_v(&self, name: &str, replicas: i32, version: &str) -> Value {
        self.manifest(name, replicas, version, &format!("svc:{version}"))
    }

    /// Start the operator with its own client identity ([`CONTROLLER_ID`]), watching the test's
    /// namespace.
    pub async fn start_operator(&self) -> OperatorTask {
        self.start_operator_with(self.client_as(CONTROLLER_ID).await)
    }

    /// Start the operator with `client`, watching the test's namespace.
    pub fn start_operator_with(&self, client: kube::Client) -> OperatorTask {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = OperatorConfig {
            namespace: Some(self.ns.clone()),
            concurrency: 4,
            drain_timeout: Duration::from_secs(30),
            instance: "test".into(),
            ..OperatorConfig::default()
        };
        let handle = tokio::spawn(operator::run(client, cfg, async move {
            let _ = rx.await;
        }));
        OperatorTask { stop: Some(tx), handle }
    }

    pub fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Server-side apply of a whole Rollout manifest (field manager `test`, forced).
    ///
    /// Retries a plain 409 Conflict: the simulator answers a server-side apply that races
    /// with another write with 409 where kube-apiserver retries internally (reported as a
    /// simulator bug); a forced apply can never conflict on fields.
    pub async fn apply(&self, manifest: &Value) -> Rollout {
        let name = manifest["metadata"]["name"].as_str().expect("manifest has a name");
        let mut attempts = 0;
        loop {
            match self
                .rollouts()
                .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(manifest))
                .await
            {
                Ok(r) => return r,
                Err(kube::Error::Api(s)) if s.code == 409 && attempts < 5 => attempts += 1,
                Err(e) => panic!("applying rollout {name}: {e}"),
            }
        }
    }

    /// JSON merge patch of a Rollout.
    pub async fn merge(&self, name: &str, patch: Value) -> Rollout {
        self.rollouts()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patching rollout {name} with {patch}: {e}"))
    }

    pub async fn get(&self, name: &str) -> Rollout {
        self.rollouts()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("getting rollout {name}: {e}"))
    }

    /// Wait (watching the Rollout) until `pred` holds; panics after `deadline` with the last
    /// status seen.
    pub async fn wait_rollout(
        &self,
        name: &str,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&Rollout) -> bool,
    ) -> Rollout {
        let api = self.rollouts();
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::applied_objects(
            kube::runtime::WatchStreamExt::default_backoff(watcher(api.clone(), cfg))
        ));
        let end = tokio::time::Instant::now() + deadline;
        let mut last: Option<Rollout> = api.get_opt(name).await.ok().flatten();
        if let Some(r) = &last {
            if pred(r) {
                return r.clone();
            }
        }
        loop {
            match tokio::time::timeout_at(end, stream.next()).await {
                Ok(Some(Ok(r))) => {
                    if pred(&r) {
                        return r;
                    }
                    last = Some(r);
                }
                Ok(Some(Err(_))) => {}
                Ok(None) => panic!("watch of rollout {name} ended while waiting for {what}"),
                Err(_) => panic!(
                    "timed out after {deadline:?} waiting for rollout {name}: {what}\nlast seen: {}",
                    describe(last.as_ref())
                ),
            }
        }
    }

    /// Wait until the Rollout is Healthy at its current generation with every instance Ready
    /// on `version`, and the pods are exactly one per slot, all labelled `version`.
    pub async fn wait_healthy(&self, name: &str, version: &str, replicas: usize) -> Rollout {
        let r = self
            .wait_rollout(name, &format!("Healthy on {version} x{replicas}"), LONG, |r| {
                healthy_on(r, version, replicas)
            })
            .await;
        self.wait_pods(name, &format!("{replicas} pods all on {version}"), |pods| {
            pods.len() == replicas
                && pods
                    .iter()
                    .all(|p| pod_version(p) == version && p.metadata.deletion_timestamp.is_none())
        })
        .await;
        r
    }

    /// The Rollout's pods (label `baton.dev/rollout`), sorted by name.
    pub async fn pods(&self, name: &str) -> Vec<Pod> {
        let mut pods = self
            .pods_api()
            .list(&ListParams::default().labels(&format!("{}={name}", labels::ROLLOUT)))
            .await
            .expect("listing pods")
            .items;
        pods.sort_by_key(|p| p.name_any());
        pods
    }

    /// Poll the pods until `pred` holds.
    pub async fn wait_pods(&self, name: &str, what: &str, pred: impl Fn(&[Pod]) -> bool) -> Vec<Pod> {
        let pred = &pred;
        let what = format!("the pods of {name}: {what}");
        wait::poll(&what, LONG, wait::POLL, || async move {
            let pods = self.pods(name).await;
            if pred(&pods) {
                Ok(pods)
            } else {
                Err(pods)
            }
        })
        .await
        .unwrap_or_else(|(message, pods)| panic!("{message}\npods: {}", describe_pods(&pods)))
    }

    /// events.k8s.io/v1 Events regarding the Rollout `name`, oldest first.
    pub async fn events(&self, name: &str) -> Vec<K8sEvent> {
        let mut events = events_in(&self.client, &self.ns, "Rollout", name).await;
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
    }

    /// Wait for an Event regarding `name` for which `pred` holds.
    pub async fn wait_event(&self, name: &str, what: &str, pred: impl Fn(&K8sEvent) -> bool) -> K8sEvent {
        let pred = &pred;
        let what = format!("an event on {name}: {what}");
        wait::poll(&what, LONG, wait::POLL, || async move {
            let events = self.events(name).await;
            events.iter().find(|e| pred(e)).cloned().ok_or(events)
        })
        .await
        .unwrap_or_else(|(message, events)| panic!("{message}\nevents:\n{}", describe_events(&events)))
    }

    /// Run a `baton rollout …` command in-process (the CLI's library entry point).
    pub async fn cli(&self, cmd: baton::cli::rollout::RolloutCommand) -> std::process::ExitCode {
        baton::cli::rollout::run(self.client.clone(), &self.ns, cmd).await
    }
}

/// events.k8s.io/v1 Events regarding the object `kind`/`name` in [`NS`].
pub async fn events_of(client: &kube::Client, kind: &str, name: &str) -> Vec<K8sEvent> {
    events_in(client, NS, kind, name).await
}

/// events.k8s.io/v1 Events regarding the object `kind`/`name` in `ns`.
pub async fn events_in(client: &kube::Client, ns: &str, kind: &str, name: &str) -> Vec<K8sEvent> {
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.name.as_deref() == Some(name) && r.kind.as_deref() == Some(kind))
        })
        .collect()
}

pub async fn install_crds(client: &kube::Client) {
    baton::demo::install_crds(client).await.expect("installing the CRDs");
    // Wait until the resource is served.
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NS);
    wait_for("rollouts served", LONG, || {
        let rollouts = rollouts.clone();
        async move { rollouts.list(&ListParams::default()).await.ok().map(|_| ()) }
    })
    .await;
}

/// A Rollout manifest: `replicas` instances of `version` running `image`, batches
/// `[1, "50%", "100%"]`, maxSurge 1, maxUnavailable 0, minReadySeconds 0, deadline 30 s.
pub fn manifest(name: &str, replicas: i32, version: &str, image: &str) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "version": version,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"batches": [1, "50%", "100%"], "maxSurge": 1, "maxUnavailable": 0},
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 30,
            "autoRollback": true,
            "revisionHistoryLimit": 10
        }
    })
}

/// Same manifest with `version` and an image `svc:<version>`.
pub fn manifest_v(name: &str, replicas: i32, version: &str) -> Value {
    manifest(name, replicas, version, &format!("svc:{version}"))
}

pub fn condition<'a>(r: &'a Rollout, type_: &str) -> Option<&'a Condition> {
    r.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// `(status, reason)` of a condition, or `("-", "-")`.
pub fn cond(r: &Rollout, type_: &str) -> (String, String) {
    condition(r, type_).map_or(("-".into(), "-".into()), |c| (c.status.clone(), c.reason.clone()))
}

pub fn status(r: &Rollout) -> RolloutStatus {
    r.status.clone().unwrap_or_default()
}

pub fn current_generation(r: &Rollout) -> bool {
    r.status
        .as_ref()
        .is_some_and(|s| s.observed_generation.is_some() && s.observed_generation == r.metadata.generation)
}

/// Healthy at the current generation with every instance Ready on `version`.
pub fn healthy_on(r: &Rollout, version: &str, replicas: usize) -> bool {
    let Some(st) = &r.status else { return false };
    current_generation(r)
        && st.phase == Some(RolloutPhase::Healthy)
        && st.instances.len() == replicas
        && st
            .instances
            .iter()
            .all(|i| i.ready && i.version.as_deref() == Some(version))
}

/// Instances per version as `status.instances` shows them.
pub fn instance_versions(r: &Rollout) -> BTreeMap<String, i32> {
    let mut out = BTreeMap::new();
    for i in &status(r).instances {
        *out.entry(i.version.clone().unwrap_or_default()).or_default() += 1;
    }
    out
}

pub fn pod_label<'a>(p: &'a Pod, key: &str) -> &'a str {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

pub fn pod_version(p: &Pod) -> &str {
    pod_label(p, labels::VERSION)
}

pub fn pod_slot(p: &Pod) -> i32 {
    pod_label(p, labels::SLOT).parse().unwrap_or(-1)
}

/// `(name, uid)` of every pod: equal sets mean nothing was created or deleted.
pub fn identities(pods: &[Pod]) -> BTreeSet<(String, String)> {
    pods.iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// Versions by slot of the live (not terminating) pods.
pub fn versions_by_slot(pods: &[Pod]) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        out.entry(pod_slot(p)).or_default().push(pod_version(p).to_string());
    }
    out
}

pub fn describe(r: Option<&Rollout>) -> String {
    let Some(r) = r else { return "<none>".into() };
    let Some(st) = &r.status else {
        return format!("generation {:?}, no status", r.metadata.generation);
    };
    let conds: Vec<String> = st
        .conditions
        .iter()
        .map(|c| format!("{}={}/{}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    let inst: Vec<String> = st
        .instances
        .iter()
        .map(|i| {
            format!(
                "{}={}@{}{}",
                i.name,
                i.version.as_deref().unwrap_or("-"),
                i.revision,
                if i.ready { "✓" } else { "…" }
            )
        })
        .collect();
    format!(
        "generation {:?} observed {:?} phase {:?} batch {:?} versions {:?}\n  message: {}\n  instances: {}\n  conditions:\n    {}\n  failedUpdate: {:?}",
        r.metadata.generation,
        st.observed_generation,
        st.phase,
        st.batch.as_ref().map(|b| (b.current, b.total)),
        st.versions,
        st.message.as_deref().unwrap_or(""),
        inst.join(" "),
        conds.join("\n    "),
        st.failed_update,
    )
}

pub fn describe_pods(pods: &[Pod]) -> String {
    pods.iter()
        .map(|p| {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True");
            format!(
                "{} v={} ready={} terminating={}",
                p.name_any(),
                pod_version(p),
                ready,
                p.metadata.deletion_timestamp.is_some()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn describe_events(events: &[K8sEvent]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "  {} {} {}: {}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.series.as_ref().map_or(String::new(), |s| format!("(x{})", s.count)),
                e.note.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
