//! A cluster as the chart makes it: a simulator enforcing RBAC, charts/baton installed by Helm's
//! engine (tests/helm/install_chart.py), the chart's Deployment run as real `baton controller`
//! processes in pods of its template (env from the template, a ServiceAccount token bound to
//! the pod as a projected token is), and real `baton agent` processes beside every pod of the
//! application, authenticated as its ServiceAccount with tokens bound to their pods.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_sim::auth::token_request::TokenSpec;
use baton_sim::{Core, PodContext, Sim, SimConfig};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::support::process::LoggedChild;
use crate::support::{fast_kubelet, wait_for, LONG};

pub const RELEASE_NS: &str = "baton-system";
pub const APPS: &str = "apps";
pub const APP_SA: &str = "user-service";
pub const SECRET: &str = "sxt-tokens";

/// The controller's user: the chart's ServiceAccount (release `baton`).
pub fn controller_user() -> String {
    format!("system:serviceaccount:{RELEASE_NS}:baton")
}

/// The agents' user: the application's ServiceAccount.
pub fn agent_user() -> String {
    format!("system:serviceaccount:{APPS}:{APP_SA}")
}

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

pub struct Cluster {
    pub sim: Sim,
    pub admin: kube::Client,
    pub manifest: Vec<Value>,
    pub dir: tempfile::TempDir,
    pub controllers: Vec<Proc>,
    pub agent_logs: AgentLogs,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for c in &self.controllers {
                eprintln!("----- controller {} -----\n{}", c.pod, c.child.log_text());
            }
            for (pod, log) in self.agent_logs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let text = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
                eprintln!("----- agent {pod} -----\n{text}");
            }
            for e in self
                .sim
                .core
                .auth
                .audit
                .recent()
                .iter()
                .filter(|e| e.key.code == 403 || e.key.code == 401)
            {
                eprintln!(
                    "denied: {} {} {}: {}",
                    e.key.user, e.key.verb, e.key.resource, e.message
                );
            }
        }
    }
}

/// Writes kubeconfigs with ServiceAccount tokens bound to pods (what the kubelet's projected
/// token volume gives a container).
#[derive(Clone)]
struct Minter {
    core: Arc<Core>,
    url: String,
    ca: String,
}

impl Minter {
    fn of(sim: &Sim) -> Minter {
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

impl Cluster {
    /// A simulator with the `apps` namespace, its ServiceAccount and (when `secret`) the
    /// listeners' Secret, then `helm install baton` into `baton-system` with `values`.
    pub async fn install(values: Value, secret: bool) -> Cluster {
        crate::support::init_tracing();
        let sim = Sim::start(SimConfig {
            kubelet: baton_sim::KubeletConfig {
                ready_delay: Duration::from_millis(300),
                ..fast_kubelet()
            },
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let admin = sim.client().await.expect("admin client");
        let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
        ns.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": APPS}})).unwrap(),
        )
        .await
        .expect("namespace apps");
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), APPS);
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
            let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin.clone(), APPS);
            secrets
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": SECRET}, "stringData": data})).unwrap(),
                )
                .await
                .expect("the listeners' Secret");
        }
        let out = tokio::time::timeout(
            Duration::from_secs(300),
            Command::new(python())
                .arg("tests/helm/install_chart.py")
                .arg("--kubeconfig")
                .arg(sim.kubeconfig_path())
                .args([
                    "--release",
                    "baton",
                    "--namespace",
                    RELEASE_NS,
                    "--values",
                    &values.to_string(),
                ])
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
        let dir = tempfile::Builder::new()
            .prefix("baton-chart-rbac-")
            .tempdir()
            .expect("temp dir");
        Cluster {
            sim,
            admin,
            manifest,
            dir,
            controllers: Vec::new(),
            agent_logs: Arc::default(),
        }
    }

    /// The rendered object of `kind` named `name`.
    pub fn object(&self, kind: &str, name: &str) -> &Value {
        self.manifest
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name} is not in the release"))
    }

    /// A pod `name` of Deployment `deploy`'s template, created as the kubelet would see it, and a
    /// kubeconfig with its ServiceAccount's token bound to it: (template, pod uid, kubeconfig).
    async fn pod_of(&self, deploy: &str, name: &str) -> (Value, String, std::path::PathBuf) {
        let template = self.object("Deployment", deploy)["spec"]["template"].clone();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": RELEASE_NS, "labels": template["metadata"]["labels"]},
            "spec": template["spec"]});
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.admin.clone(), RELEASE_NS);
        let created = pods
            .create(&PostParams::default(), &serde_json::from_value(pod).expect("a pod"))
            .await
            .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
        let uid = created.metadata.uid.clone().unwrap_or_default();
        let sa = template["spec"]["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName");
        let kubeconfig = self.dir.path().join(format!("{name}.kubeconfig"));
        Minter::of(&self.sim).kubeconfig(RELEASE_NS, sa, name, &uid, &kubeconfig);
        (template, uid, kubeconfig)
    }

    /// Run one replica of the chart's Deployment: a pod of its template, and `baton` with the
    /// template's args and env in it (fieldRefs resolved), as the chart's ServiceAccount.
    pub async fn start_controller(&mut self, replica: usize) -> usize {
        let name = format!("baton-5f7d9c-{replica}");
        let (template, uid, kubeconfig) = self.pod_of("baton", &name).await;
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
                Some("metadata.name") => name.clone(),
                Some("metadata.namespace") => RELEASE_NS.to_string(),
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
        self.sim
            .kubelet
            .attach_pid(RELEASE_NS, &name, child.pid)
            .expect("attaching the controller to its pod");
        self.controllers.push(Proc { pod: name, child });
        self.controllers.len() - 1
    }

    /// Run the chart's dashboard Deployment: a pod of its template and `baton` with the
    /// template's args in it, as the dashboard's ServiceAccount, on a loopback port instead of
    /// the template's 0.0.0.0 one. Returns the process and where it serves.
    pub async fn start_dashboard(&self) -> (LoggedChild, std::net::SocketAddr) {
        let (template, _, kubeconfig) = self.pod_of("baton-dashboard", "baton-dashboard-7c9f5d-0").await;
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
        let leases: Api<Lease> = Api::namespaced(self.admin.clone(), RELEASE_NS);
        wait_for("a leader", LONG, || async {
            let l = leases.get_opt("baton-controller").await.ok().flatten()?;
            l.spec?.holder_identity.filter(|h| !h.is_empty())
        })
        .await
    }

    /// Delete a controller's pod gracefully: its process gets SIGTERM from the kubelet.
    pub async fn terminate_controller(&mut self, pod: &str) -> std::process::ExitStatus {
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.admin.clone(), RELEASE_NS);
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
        let minter = Minter::of(&self.sim);
        let dir = self.dir.path().to_path_buf();
        let logs = self.agent_logs.clone();
        let set = set.to_string();
        self.sim.kubelet.attach(
            |pod| pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(APP_SA),
            Arc::new(move |ctx: PodContext| {
                let (minter, dir, logs, set) = (minter.clone(), dir.clone(), logs.clone(), set.clone());
                Box::pin(async move { run_agent(&minter, &dir, &logs, &set, ctx).await })
            }),
        );
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
