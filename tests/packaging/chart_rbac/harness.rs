//! A cluster as the chart makes it: an API server enforcing RBAC and admission policies
//! (baton-sim, or the real control plane with `BATON_TEST_CLUSTER=real`), charts/baton installed
//! by Helm's engine (tests/helm/install_chart.py), the chart's Deployment run as real `baton
//! controller` processes in pods of its template (env from the template, a ServiceAccount token
//! bound to the pod as a projected token is), and real `baton agent` processes beside every pod
//! of the application, authenticated as its ServiceAccount with tokens bound to their pods.
//!
//! On the real control plane, which other tests share, a test's namespaces and release are its
//! own (`apps-<suffix>`, `baton-system-<suffix>`, release `baton-<suffix>`: the chart's
//! cluster-scoped objects are named after the release and deleted at the end), the tokens come
//! from kube-apiserver's TokenRequest API, and the controller watches the application namespace
//! only (`controller.watchNamespace`): one watching every namespace would reconcile other
//! tests' Rollouts and ListenerSets.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_sim::auth::token_request::TokenSpec;
use baton_sim::{Core, PodContext, SimConfig};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::support::process::LoggedChild;
use crate::support::{fast_kubelet, wait_for, LONG};
use crate::world::{Backend, World};

/// The base names of the test's namespaces (on the real control plane `<name>-<suffix>`).
pub const RELEASE_NS: &str = "baton-system";
pub const APPS: &str = "apps";
/// A second application namespace, made only for a test whose values name it.
pub const APPS_B: &str = "apps-b";
pub const APP_SA: &str = "user-service";
pub const SECRET: &str = "sxt-tokens";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub use crate::helm::{helm_available, python};

/// One `baton` process and the pod it runs in.
pub struct Proc {
    pub pod: String,
    pub child: LoggedChild,
}

/// The logs of every agent process so far (printed when a test fails).
pub type AgentLogs = Arc<Mutex<Vec<(String, crate::support::process::Log)>>>;

/// A Helm release of the chart: its name (the chart's full name: it contains "baton"), its
/// namespace and rendered objects.
pub struct Release {
    pub name: String,
    pub ns: String,
    pub manifest: Vec<Value>,
}

impl Release {
    /// The rendered object of `kind` named `name`.
    pub fn object(&self, kind: &str, name: &str) -> &Value {
        self.manifest
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name} is not in release {}", self.name))
    }

    /// The controller's user: the chart's ServiceAccount.
    pub fn controller_user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.ns, self.name)
    }
}

pub struct Cluster {
    pub w: World,
    pub admin: kube::Client,
    pub release: Release,
    /// The application's namespace.
    pub apps: String,
    /// The second application namespace, if the values name [`APPS_B`].
    pub apps_b: Option<String>,
    pub controllers: Vec<Proc>,
    pub agent_logs: AgentLogs,
    /// Where kube-apiserver's audit log stood when the test started.
    pub audit_from: u64,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            t.abort();
        }
        if std::thread::panicking() {
            for c in &self.controllers {
                eprintln!("----- controller {} -----\n{}", c.pod, c.child.log_text());
            }
            for (pod, log) in self.agent_logs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let text = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
                eprintln!("----- agent {pod} -----\n{text}");
            }
            for a in self.answers().iter().filter(|a| a.code == 403 || a.code == 401) {
                eprintln!("denied: {} {} {}: {}", a.user, a.verb, a.resource, a.message);
            }
        }
    }
}

/// Replace every string `from` of `values` (a namespace) by `to`.
fn localize(values: &mut Value, from: &str, to: &str) {
    match values {
        Value::String(s) if s == from => *s = to.to_string(),
        Value::Array(a) => a.iter_mut().for_each(|v| localize(v, from, to)),
        Value::Object(m) => m.values_mut().for_each(|v| localize(v, from, to)),
        _ => {}
    }
}

/// Whether `values` has the string `s` anywhere.
fn mentions(values: &Value, s: &str) -> bool {
    match values {
        Value::String(v) => v == s,
        Value::Array(a) => a.iter().any(|v| mentions(v, s)),
        Value::Object(m) => m.values().any(|v| mentions(v, s)),
        _ => false,
    }
}

impl Cluster {
    /// An API server with the application namespace, its ServiceAccount and (when `secret`) the
    /// listeners' Secret, then `helm install` of the chart into the release namespace with
    /// `values` (where the namespace `apps` is named, the test's application namespace).
    pub async fn install(mut values: Value, secret: bool) -> Cluster {
        crate::support::init_tracing();
        let config = SimConfig {
            kubelet: baton_sim::KubeletConfig {
                ready_delay: Duration::from_millis(300),
                ..fast_kubelet()
            },
            ..SimConfig::default()
        };
        let w = World::with_sim_config("chart-rbac", config).await;
        let audit_from = w.real().map_or(0, |r| r.audit_len());
        if w.is_real() {
            w.install_crds().await;
        }
        let apps = w.namespace(APPS).await;
        let release_ns = w.namespace(RELEASE_NS).await;
        let admin = w.client.clone();
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), &apps);
        sas.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": APP_SA}})).unwrap(),
        )
        .await
        .expect("the application's ServiceAccount");
        if secret {
            let data: serde_json::Map<String, Value> = (1..=6)
                .map(|i| (format!("listener{i}"), json!(format!("token-{i}"))))
                .collect();
            let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin.clone(), &apps);
            secrets
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": SECRET}, "stringData": data})).unwrap(),
                )
                .await
                .expect("the listeners' Secret");
        }
        localize(&mut values, APPS, &apps);
        let apps_b = match mentions(&values, APPS_B) {
            true => Some(w.namespace(APPS_B).await),
            false => None,
        };
        if let Some(b) = &apps_b {
            localize(&mut values, APPS_B, b);
        }
        let confined = |v: &Value| {
            !v["watchNamespace"].as_str().unwrap_or_default().is_empty()
                || v["watchNamespaces"].as_array().is_some_and(|a| !a.is_empty())
        };
        if w.is_real() && !confined(&values["controller"]) {
            values["controller"]["watchNamespace"] = json!(apps);
        }
        let release = install_release(&w, "baton", &release_ns, &values).await;
        Cluster {
            w,
            admin,
            release,
            apps,
            apps_b,
            controllers: Vec::new(),
            agent_logs: Arc::default(),
            audit_from,
            tasks: Mutex::default(),
        }
    }

    /// The rendered object of `kind` named `name` of the release.
    pub fn object(&self, kind: &str, name: &str) -> &Value {
        self.release.object(kind, name)
    }

    /// The release's name (the chart's full name, the prefix of its objects' names).
    pub fn fullname(&self) -> &str {
        &self.release.name
    }

    pub fn release_ns(&self) -> &str {
        &self.release.ns
    }

    /// The controller's user: the chart's ServiceAccount.
    pub fn controller_user(&self) -> String {
        self.release.controller_user()
    }

    /// The agents' user: the application's ServiceAccount.
    pub fn agent_user(&self) -> String {
        format!("system:serviceaccount:{}:{APP_SA}", self.apps)
    }

    /// The admin kubeconfig.
    pub fn admin_kubeconfig(&self) -> &Path {
        self.w.kubeconfig()
    }

    /// A client as ServiceAccount `ns/sa`, its token bound to pod `pod` when given.
    pub async fn service_account(&self, ns: &str, sa: &str, pod: Option<&str>) -> kube::Client {
        self.w.service_account_client(ns, sa, pod).await
    }

    /// A pod `name` of Deployment `deploy`'s template of `release`, created as the kubelet would
    /// see it, and a kubeconfig with its ServiceAccount's token bound to it: (template, pod uid,
    /// kubeconfig).
    async fn pod_of(&self, release: &Release, deploy: &str, name: &str) -> (Value, String, PathBuf) {
        let template = release.object("Deployment", deploy)["spec"]["template"].clone();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": release.ns, "labels": template["metadata"]["labels"]},
            "spec": template["spec"]});
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.admin.clone(), &release.ns);
        let created = pods
            .create(&PostParams::default(), &serde_json::from_value(pod).expect("a pod"))
            .await
            .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
        let uid = created.metadata.uid.clone().unwrap_or_default();
        let sa = template["spec"]["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName");
        let kubeconfig = self.w.dir.path().join(format!("{name}.kubeconfig"));
        self.w
            .service_account_kubeconfig(&release.ns, sa, Some(name), &kubeconfig)
            .await;
        (template, uid, kubeconfig)
    }

    /// Attach process `pid` to pod `ns/name`: SIGTERM when the pod is deleted gracefully.
    async fn attach_pid(&self, ns: &str, name: &str, pid: u32) {
        match &self.w.backend {
            Backend::Sim(s) => s
                .kubelet
                .attach_pid(ns, name, pid)
                .unwrap_or_else(|e| panic!("attaching to pod {name}: {e}")),
            Backend::Real(r) => r
                .node
                .attach(ns, name, pid)
                .await
                .unwrap_or_else(|e| panic!("attaching to pod {name}: {e}")),
        }
    }

    /// Run one replica of the chart's Deployment: a pod of its template, and `baton` with the
    /// template's args and env in it (fieldRefs resolved), as the chart's ServiceAccount.
    pub async fn start_controller(&mut self, replica: usize) -> usize {
        let release = Release {
            name: self.release.name.clone(),
            ns: self.release.ns.clone(),
            manifest: self.release.manifest.clone(),
        };
        let name = format!("baton-5f7d9c-{replica}");
        let proc = self.start_controller_of(&release, &name).await;
        self.controllers.push(proc);
        self.controllers.len() - 1
    }

    /// A controller of `release` in its pod `name` (see [`Cluster::start_controller`]).
    pub async fn start_controller_of(&self, release: &Release, name: &str) -> Proc {
        let (template, uid, kubeconfig) = self.pod_of(release, &release.name, name).await;
        let container = &template["spec"]["containers"][0];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.arg("--kubeconfig").arg(&kubeconfig);
        for a in container["args"].as_array().into_iter().flatten() {
            cmd.arg(a.as_str().unwrap_or_default());
        }
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for e in container["env"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or_default();
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => name.to_string(),
                Some("metadata.namespace") => release.ns.clone(),
                Some("metadata.uid") => uid.clone(),
                Some(other) => panic!("fieldRef {other} is not resolved by the test"),
                None => e["value"].as_str().unwrap_or_default().to_string(),
            };
            cmd.env(key, value);
        }
        // Two processes on one machine: an ephemeral port; JSON logs for the test to read.
        cmd.env("BATON_METRICS_ADDR", "127.0.0.1:0")
            .env("BATON_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,kube=warn");
        let mut child = LoggedChild::spawn(&mut cmd, "bound").expect("starting baton controller");
        if child.wait_addr(LONG).await.is_none() {
            panic!("controller {name} did not serve its probes\n{}", child.log_text());
        }
        self.attach_pid(&release.ns, name, child.pid).await;
        Proc {
            pod: name.to_string(),
            child,
        }
    }

    /// Run the chart's dashboard Deployment: a pod of its template and `baton` with the
    /// template's args in it, as the dashboard's ServiceAccount, on a loopback port instead of
    /// the template's 0.0.0.0 one. Returns the process and where it serves.
    pub async fn start_dashboard(&self) -> (LoggedChild, std::net::SocketAddr) {
        let deploy = format!("{}-dashboard", self.fullname());
        let (template, _, kubeconfig) = self.pod_of(&self.release, &deploy, "baton-dashboard-7c9f5d-0").await;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.arg("--kubeconfig").arg(&kubeconfig);
        let args: Vec<&str> = template["spec"]["containers"][0]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (i, a) in args.iter().enumerate() {
            let after_address = i > 0 && args[i - 1] == "--address";
            cmd.arg(if after_address { "127.0.0.1:0" } else { a });
        }
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,kube=warn");
        let mut child = LoggedChild::spawn(&mut cmd, "bound").expect("starting baton dashboard");
        let Some(addr) = child.wait_addr(LONG).await else {
            panic!("the dashboard did not serve\n{}", child.log_text());
        };
        (child, addr)
    }

    /// The pod holding the leader Lease (waits until one does).
    pub async fn leader(&self) -> String {
        let leases: Api<Lease> = Api::namespaced(self.admin.clone(), self.release_ns());
        wait_for("a leader", LONG, || async {
            let l = leases.get_opt("baton-controller").await.ok().flatten()?;
            l.spec?.holder_identity.filter(|h| !h.is_empty())
        })
        .await
    }

    /// Delete a controller's pod gracefully: its process gets SIGTERM from the kubelet.
    pub async fn terminate_controller(&mut self, pod: &str) -> std::process::ExitStatus {
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.admin.clone(), &self.release.ns);
        pods.delete(pod, &DeleteParams::default())
            .await
            .expect("deleting the controller pod");
        let proc = self
            .controllers
            .iter_mut()
            .find(|p| p.pod == pod)
            .expect("a controller in that pod");
        match proc.child.wait_exit(LONG).await {
            Some(Ok(s)) => s,
            other => panic!(
                "controller {pod} did not exit after SIGTERM: {other:?}\n{}",
                proc.child.log_text()
            ),
        }
    }

    /// Run `baton agent` (ListenerSet `set`) beside every Running pod labelled
    /// `app=user-service`, authenticated as the application's ServiceAccount with a token bound
    /// to the pod; SIGTERM reaches it when the pod is deleted.
    pub fn attach_agents(&self, set: &str) {
        let dir = self.w.dir.path().to_path_buf();
        let logs = self.agent_logs.clone();
        let set = set.to_string();
        match &self.w.backend {
            Backend::Sim(sim) => {
                let minter = Minter::of(sim);
                sim.kubelet.attach(
                    |pod| pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(APP_SA),
                    Arc::new(move |ctx: PodContext| {
                        let (minter, dir, logs, set) = (minter.clone(), dir.clone(), logs.clone(), set.clone());
                        Box::pin(async move { run_agent(&minter, &dir, &logs, &set, ctx).await })
                    }),
                );
            }
            Backend::Real(real) => {
                let agents = super::real_agents::RealAgents {
                    admin: self.admin.clone(),
                    node: real.node.clone(),
                    admin_kubeconfig: self.w.kubeconfig().to_path_buf(),
                    dir,
                    logs,
                    set,
                    ns: self.apps.clone(),
                };
                let task = tokio::spawn(agents.run());
                self.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
            }
        }
    }
}

/// `helm install` of the chart as release `base` (on the real control plane `base-<suffix>`)
/// into namespace `ns` with `values`; on the real control plane its cluster-scoped objects
/// (found by the release's instance label) are deleted when the test ends.
pub async fn install_release(w: &World, base: &str, ns: &str, values: &Value) -> Release {
    let name = w.unique(base);
    if w.is_real() {
        let (kubeconfig, home, label) = (
            w.kubeconfig().to_path_buf(),
            w.dir.path().to_path_buf(),
            format!("app.kubernetes.io/instance={name}"),
        );
        w.on_drop(move || {
            let _ = std::process::Command::new(crate::world::kubectl::KUBECTL)
                .env("HOME", home)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args([
                    "delete",
                    "clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings",
                    "-l",
                    &label,
                    "--wait=false",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        });
    }
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        Command::new(python())
            .arg("tests/helm/install_chart.py")
            .arg("--kubeconfig")
            .arg(w.kubeconfig())
            .args(["--release", &name, "--namespace", ns, "--values", &values.to_string()])
            .current_dir(repo())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("helm install finished")
    .expect("helm install ran");
    assert!(
        out.status.success(),
        "helm install failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the manifest as JSON");
    Release {
        name,
        ns: ns.to_string(),
        manifest,
    }
}

/// Writes kubeconfigs with ServiceAccount tokens bound to pods (what the kubelet's projected
/// token volume gives a container), on baton-sim.
#[derive(Clone)]
struct Minter {
    core: Arc<Core>,
    url: String,
    ca: String,
}

impl Minter {
    fn of(sim: &baton_sim::Sim) -> Minter {
        Minter {
            core: sim.core.clone(),
            url: sim.https_url(),
            ca: sim.ca_pem().to_string(),
        }
    }

    /// A kubeconfig for ServiceAccount `ns/sa` with a token bound to pod `pod` (uid `uid`).
    fn kubeconfig(&self, ns: &str, sa: &str, pod: &str, uid: &str, path: &Path) {
        let spec = TokenSpec {
            bound: Some(("Pod".into(), pod.into(), uid.into())),
            ..TokenSpec::default()
        };
        let (_, token) = self.core.issue_token(ns, sa, &spec).expect("a token for the pod");
        let user = format!("system:serviceaccount:{ns}:{sa}");
        baton_sim::write_kubeconfig_full(path, &self.url, &self.ca, &user, &token, ns).expect("writing a kubeconfig");
    }
}

/// `baton agent` of set `set` in pod `(namespace, name, uid)` with `kubeconfig`: on a loopback
/// port, writing `file`, JSON logs, and `extra` flags.
pub fn agent_command(kubeconfig: &Path, set: &str, file: &Path, pod: (&str, &str, &str), extra: &[&str]) -> Command {
    let (namespace, name, uid) = pod;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["agent", "--listenerset", set, "--listen", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .args(extra)
        .arg("--file")
        .arg(file)
        .env("POD_NAME", name)
        .env("POD_NAMESPACE", namespace)
        .env("POD_UID", uid)
        .env("RUST_LOG", "info,kube=warn")
        .env_remove("KUBECONFIG");
    cmd
}

async fn run_agent(minter: &Minter, dir: &Path, logs: &AgentLogs, set: &str, ctx: PodContext) {
    let pod_dir = dir.join(&ctx.name);
    let _ = std::fs::create_dir_all(&pod_dir);
    let kubeconfig = pod_dir.join("kubeconfig");
    minter.kubeconfig(&ctx.namespace, APP_SA, &ctx.name, &ctx.uid, &kubeconfig);
    let file = pod_dir.join("listeners.json");
    let pod = (ctx.namespace.as_str(), ctx.name.as_str(), ctx.uid.as_str());
    let mut cmd = agent_command(&kubeconfig, set, &file, pod, &["--ack-timeout-seconds", "1"]);
    let Ok(mut child) = LoggedChild::spawn(&mut cmd, "addr") else {
        return;
    };
    logs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((ctx.name.clone(), child.log.clone()));
    let mut sigterm = ctx.sigterm.clone();
    tokio::select! {
        _ = child.child.wait() => return,
        _ = sigterm.changed() => {}
    }
    child.terminate();
    let _ = child.wait_exit(LONG).await;
}
