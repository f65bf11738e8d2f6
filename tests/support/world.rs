//! One test's API server, for the tests that run on both backends with plain clients and real
//! kubectl (the CRD, chart and CLI tests): a baton-sim of its own, or — with
//! `BATON_TEST_CLUSTER=real` — the real control plane `BATON_CLUSTER_DIR` names, shared with
//! every other test running at the same time.
//!
//! On the real control plane a test works in namespaces of its own (named after the test, with
//! a unique suffix), deleted when it ends; what it creates cluster-wide is named uniquely too
//! ([`World::suffix`]) and removed by the clean-ups it registers ([`World::on_drop`]). The CRDs
//! are installed idempotently, with the definition of this tree (`baton crds`).
//!
//! Shared through `#[path]` (with its own copies of `kubectl.rs` and `wait.rs`).
#![allow(dead_code)]

#[path = "kubectl.rs"]
pub mod kubectl;
#[path = "real/mod.rs"]
pub mod real;
#[path = "wait.rs"]
pub mod wait;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use baton_sim::{Sim, SimConfig};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

pub use real::Real;

/// How long a namespace's `default` ServiceAccount (made by kube-controller-manager) may take.
const SETUP: Duration = Duration::from_secs(90);

/// The API server of a test.
pub enum Backend {
    Sim(Sim),
    Real(Box<Real>),
}

/// A clean-up run when the test ends (a `helm uninstall`, a cluster-scoped object deleted).
type Cleanup = Box<dyn FnOnce() + Send>;

/// One test's world: its API server, an admin client, its namespace.
pub struct World {
    pub backend: Backend,
    /// An admin client (baton-sim's admin; on the real control plane, a `system:masters`
    /// client certificate).
    pub client: kube::Client,
    /// The test's namespace: `default` on baton-sim (a simulator of its own), a fresh one on
    /// the real control plane.
    pub ns: String,
    /// A scratch directory (kubeconfigs, manifests), removed at the end.
    pub dir: tempfile::TempDir,
    /// The admin kubeconfig, its context's namespace [`World::ns`].
    kubeconfig: PathBuf,
    suffix: String,
    created: Mutex<Vec<String>>,
    cleanups: Mutex<Vec<Cleanup>>,
}

/// A suffix no other test (of this process or another) has used: the pid and a counter, and the
/// clock's low bits against a pid reused while an old namespace is still terminating.
fn fresh_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}{}{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos >> 12
    )
}

impl World {
    /// A world for test `name` (a short DNS label: the real namespace is `name-<suffix>`).
    pub async fn start(name: &str) -> World {
        Self::with_sim_config(name, SimConfig::default()).await
    }

    /// As [`World::start`], a simulator started with `config` on baton-sim.
    pub async fn with_sim_config(name: &str, config: SimConfig) -> World {
        let dir = tempfile::Builder::new()
            .prefix(&format!("baton-{name}-"))
            .tempdir()
            .expect("a scratch directory");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let suffix = fresh_suffix();
        if !real::selected() {
            let sim = Sim::start(config).await.expect("simulator starts");
            let client = sim.client().await.expect("admin client");
            std::fs::copy(sim.kubeconfig_path(), &kubeconfig).expect("copying the kubeconfig");
            return World {
                backend: Backend::Sim(sim),
                client,
                ns: "default".into(),
                dir,
                kubeconfig,
                suffix,
                created: Mutex::default(),
                cleanups: Mutex::default(),
            };
        }
        let real = Real::connect().await.unwrap_or_else(|e| panic!("{e}"));
        let ns = format!("{name}-{suffix}");
        real.kubeconfig_as("baton-test-admin", &kubeconfig)
            .unwrap_or_else(|e| panic!("{e}"));
        set_namespace(&kubeconfig, &ns);
        let w = World {
            client: real.admin.clone(),
            backend: Backend::Real(Box::new(real)),
            ns: ns.clone(),
            dir,
            kubeconfig,
            suffix,
            created: Mutex::default(),
            cleanups: Mutex::default(),
        };
        w.create_namespace(&ns).await;
        w
    }

    pub fn is_real(&self) -> bool {
        matches!(self.backend, Backend::Real(_))
    }

    /// The simulator, for what only it offers; panics on the real control plane, where such
    /// tests do not run (their names say `sim_only`).
    pub fn sim(&self) -> &Sim {
        match &self.backend {
            Backend::Sim(s) => s,
            Backend::Real(_) => panic!("this test needs baton-sim (name it sim_only)"),
        }
    }

    pub fn real(&self) -> Option<&Real> {
        match &self.backend {
            Backend::Real(r) => Some(r),
            Backend::Sim(_) => None,
        }
    }

    /// This test's unique suffix: for names of cluster-scoped objects and releases on the
    /// shared control plane.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// `base` on baton-sim; `base-<suffix>` on the real control plane (a name no other test uses).
    pub fn unique(&self, base: &str) -> String {
        if self.is_real() {
            format!("{base}-{}", self.suffix)
        } else {
            base.to_string()
        }
    }

    /// The admin kubeconfig (context namespace [`World::ns`]).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Real kubectl with the admin kubeconfig.
    pub fn kubectl(&self) -> kubectl::Kubectl {
        kubectl::Kubectl::with_kubeconfig(self.kubeconfig.clone())
    }

    /// Another namespace of this test: `base` on baton-sim, `base-<suffix>` on the real control
    /// plane (deleted at the end). Returns its name once pods can be created in it.
    pub async fn namespace(&self, base: &str) -> String {
        let name = self.unique(base);
        self.create_namespace(&name).await;
        name
    }

    async fn create_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("a namespace");
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 && !self.is_real() => {}
            Err(e) => panic!("creating namespace {name}: {e}"),
        }
        if !self.is_real() {
            return;
        }
        self.lock_created().push(name.to_string());
        // Pods need the namespace's `default` ServiceAccount, which kube-controller-manager
        // creates a moment after the namespace.
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        wait::wait_for(&format!("ServiceAccount {name}/default"), SETUP, || async {
            sas.get_opt("default").await.ok().flatten().map(|_| ())
        })
        .await;
    }

    fn lock_created(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.created.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` when the test ends (before its namespaces are deleted), pass or fail.
    pub fn on_drop(&self, f: impl FnOnce() + Send + 'static) {
        self.cleanups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    /// Install the CRDs (`baton crds`) and wait until they are Established. Idempotent: on the
    /// real control plane a server-side apply of the same definition changes nothing.
    pub async fn install_crds(&self) {
        baton::demo::install_crds(&self.client)
            .await
            .unwrap_or_else(|e| panic!("installing the CRDs: {e}"));
    }

    /// A kubeconfig at `path` for ServiceAccount `ns/sa`, its token bound to pod `pod` of `ns`
    /// when given (what a pod's projected token is), namespace `ns`.
    pub async fn service_account_kubeconfig(&self, ns: &str, sa: &str, pod: Option<&str>, path: &Path) {
        match &self.backend {
            Backend::Sim(s) => s
                .kubeconfig_for_service_account(ns, sa, pod, path)
                .unwrap_or_else(|e| panic!("a token for {ns}/{sa}: {e}")),
            Backend::Real(_) => {
                let token = self.token_request(ns, sa, pod).await;
                let user = format!("system:serviceaccount:{ns}:{sa}");
                write_token_kubeconfig(&self.kubeconfig, path, &user, &token, ns);
            }
        }
    }

    /// A client authenticated as ServiceAccount `ns/sa` (see [`World::service_account_kubeconfig`]).
    pub async fn service_account_client(&self, ns: &str, sa: &str, pod: Option<&str>) -> kube::Client {
        let path = self.dir.path().join(format!("sa-{}.kubeconfig", fresh_suffix()));
        self.service_account_kubeconfig(ns, sa, pod, &path).await;
        let client = client_of(&path).await;
        let _ = std::fs::remove_file(&path);
        client
    }

    async fn token_request(&self, ns: &str, sa: &str, pod: Option<&str>) -> String {
        let bound = match pod {
            None => None,
            Some(name) => {
                let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.client.clone(), ns);
                let p = pods.get(name).await.unwrap_or_else(|e| panic!("pod {ns}/{name}: {e}"));
                Some((name.to_string(), p.metadata.uid.unwrap_or_default()))
            }
        };
        let bound = bound.as_ref().map(|(n, u)| (n.as_str(), u.as_str()));
        token_request(&self.client, ns, sa, bound).await
    }

    /// A kubeconfig at `path` for user `user` in group `group` (no group: RBAC alone decides),
    /// namespace `ns`: a client certificate on the real control plane, a static token on
    /// baton-sim.
    pub fn user_kubeconfig(&self, user: &str, group: Option<&str>, ns: &str, path: &Path) {
        match &self.backend {
            Backend::Sim(s) => {
                let token = format!("{user}-token");
                s.register_user(
                    &token,
                    baton_sim::auth::UserInfo {
                        username: user.into(),
                        groups: group.into_iter().map(String::from).collect(),
                        ..Default::default()
                    },
                );
                s.kubeconfig_with_token(user, &token, path)
                    .unwrap_or_else(|e| panic!("{e}"));
                set_namespace(path, ns);
            }
            Backend::Real(r) => {
                let pki = baton_cluster::pki::Pki::load(&r.dir()).unwrap_or_else(|e| panic!("{e}"));
                baton_cluster::kubeconfig::write(path, &r.attached.server, &pki, user, group, ns)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// A kube client from kubeconfig `path`.
pub async fn client_of(path: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    kube::Client::try_from(cfg).expect("a client")
}

/// A token from kube-apiserver's TokenRequest API (what `kubectl create token` asks for) for
/// ServiceAccount `ns/sa`, bound to pod `(name, uid)` when given (its user's extra then names
/// the pod, as a projected token's does), valid one hour.
pub async fn token_request(admin: &kube::Client, ns: &str, sa: &str, pod: Option<(&str, &str)>) -> String {
    let bound = pod.map(|(name, uid)| json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}));
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 3600, "boundObjectRef": bound}});
    let req: TokenRequest = serde_json::from_value(req).expect("a TokenRequest");
    let api: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let out: TokenRequest = api
        .create_subresource("token", sa, &PostParams::default(), &req)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {ns}/{sa}: {e}"));
    out.status.map(|s| s.token).unwrap_or_default()
}

/// Set the namespace of every context of kubeconfig `path` (JSON or YAML) to `ns`.
fn set_namespace(path: &Path, ns: &str) {
    let text = std::fs::read_to_string(path).expect("the kubeconfig");
    let mut doc: serde_json::Value = serde_saphyr::from_str(&text).expect("a kubeconfig");
    for c in doc["contexts"].as_array_mut().into_iter().flatten() {
        c["context"]["namespace"] = json!(ns);
    }
    std::fs::write(path, serde_json::to_vec_pretty(&doc).expect("json")).expect("writing the kubeconfig");
}

/// A kubeconfig at `path` with the cluster of kubeconfig `admin` and bearer `token` as `user`.
pub fn write_token_kubeconfig(admin: &Path, path: &Path, user: &str, token: &str, ns: &str) {
    let text = std::fs::read_to_string(admin).expect("the admin kubeconfig");
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("a kubeconfig");
    let out = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [doc["clusters"][0].clone()],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": doc["clusters"][0]["name"], "user": user, "namespace": ns}}],
        "current-context": "sa",
    });
    std::fs::write(path, serde_json::to_vec_pretty(&out).expect("json")).expect("writing a kubeconfig");
}

impl Drop for World {
    fn drop(&mut self) {
        let cleanups: Vec<Cleanup> = std::mem::take(&mut *self.cleanups.lock().unwrap_or_else(|p| p.into_inner()));
        for c in cleanups.into_iter().rev() {
            c();
        }
        let created = std::mem::take(&mut *self.lock_created());
        if created.is_empty() {
            return;
        }
        // Deleted in the background (kube-controller-manager empties them); nothing waits.
        let _ = std::process::Command::new(kubectl::KUBECTL)
            .env("HOME", self.dir.path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", "--wait=false", "--ignore-not-found"])
            .args(&created)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
