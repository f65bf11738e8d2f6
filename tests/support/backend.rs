//! Where an [`Env`](super::Env) runs. On baton-sim (the default) every test has a simulator of
//! its own and works in `default`; on the real control plane (`BATON_TEST_CLUSTER=real`, see
//! [`super::real`]) the tests of a process share one control plane, attached once with the CRDs
//! installed once, and each test works in a fresh namespace of its own, removed when the test
//! passes (kept, and named, when it fails).
#![allow(dead_code)]

use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use baton_sim::Sim;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::real::{Audited, Real};
use super::{wait_for, Env, LONG};

/// The simulator of an [`Env`](super::Env) on baton-sim. On the real control plane there is
/// none, and every use panics: a test that needs baton-sim's fault rules, request log, clock or
/// kubelet controls is named `sim_only_…`, and the real tier skips it (`-- --skip sim_only`).
pub struct SimOnly(pub(super) Option<Sim>);

impl Deref for SimOnly {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        match &self.0 {
            Some(sim) => sim,
            None => panic!(
                "this test needs baton-sim (its fault rules, request log, clock or kubelet): \
                 name it sim_only_… so that the real control plane's tier skips it"
            ),
        }
    }
}

/// The real control plane of this test process, attached on a runtime of its own (each test has
/// its own runtime, which ends with the test; the attachment's watches outlive them), with the
/// CRDs installed (and Established) once.
pub fn shared_real() -> Arc<Real> {
    static SHARED: OnceLock<Arc<Real>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a runtime for the real control plane");
                rt.block_on(async move {
                    let attached = async {
                        let real = Real::connect().await?;
                        baton::demo::install_crds(&real.admin)
                            .await
                            .map_err(|e| format!("installing the CRDs: {e}"))?;
                        Ok::<_, String>(Arc::new(real))
                    };
                    let _ = tx.send(attached.await);
                    std::future::pending::<()>().await;
                });
            });
            let answer = rx.recv().expect("the control plane's thread answers");
            answer.unwrap_or_else(|e| panic!("attaching to the real control plane: {e}"))
        })
        .clone()
}

/// A namespace name for the running test: its function's name (the test thread is named after
/// it) and a suffix that differs from run to run, as a DNS label.
pub fn namespace_name() -> String {
    let thread = std::thread::current();
    let test = thread.name().and_then(|n| n.rsplit("::").next()).unwrap_or("test");
    let mut base: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    base.truncate(44);
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "test" } else { base };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{base}-{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Create namespace `name` and wait for its `default` ServiceAccount, which
/// kube-controller-manager creates a moment after the namespace (pods cannot be created before).
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/created-by": "baton-tests"}}
    }))
    .expect("a Namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    wait_for(&format!("ServiceAccount {name}/default"), LONG, || {
        let sas = sas.clone();
        async move { sas.get_opt("default").await.ok()?.map(|_| ()) }
    })
    .await;
}

/// Delete namespace `name` without waiting (real kubectl as the admin of `kubeconfig`): the
/// request outlives the test process, which may end right after.
pub fn delete_namespace(kubeconfig: &Path, name: &str) {
    let cache = std::env::temp_dir().join("baton-tests-kubectl-cache");
    let child = std::process::Command::new(super::kubectl::KUBECTL)
        .args(["delete", "namespace", name, "--wait=false", "--cache-dir"])
        .arg(cache)
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        std::thread::spawn(move || child.wait());
    }
}

/// A point in the API server's record of writes ([`Env::write_mark`]).
pub enum WriteMark {
    /// baton-sim's write log: the writes that arrived from this instant on.
    Sim(Instant),
    /// kube-apiserver's audit log: the lines after this byte.
    Real(u64),
}

/// One write the API server got: who, the HTTP method (`POST`, `PUT`, `PATCH`, `DELETE`) and
/// the request's path.
#[derive(Clone, Debug)]
pub struct Write {
    pub identity: String,
    pub method: String,
    pub path: String,
}

/// What only some tests need of the backend: the API server's record of writes, and clients
/// that can be cut off from it.
impl Env {
    /// Where the API server's record of writes is now ([`Env::writes_since`]).
    pub fn write_mark(&self) -> WriteMark {
        match &self.real {
            None => WriteMark::Sim(Instant::now()),
            Some(r) => WriteMark::Real(r.audit_len()),
        }
    }

    /// The writes the API server got since `mark` (baton-sim's write log, which records a
    /// request as it arrives; kube-apiserver's audit log, as it answers), whatever the answer.
    pub fn writes_since(&self, mark: &WriteMark) -> Vec<Write> {
        match (&self.real, mark) {
            (Some(r), WriteMark::Real(from)) => r.audited_writes(*from).into_iter().map(audited).collect(),
            (None, WriteMark::Sim(at)) => self
                .sim
                .core
                .writes()
                .into_iter()
                .filter(|w| w.at >= *at)
                .map(|w| Write {
                    identity: w.identity,
                    method: w.method,
                    path: w.path,
                })
                .collect(),
            _ => panic!("a mark of another backend"),
        }
    }

    /// An identity of the test's own for a client that [`Env::set_cut_off`] can cut off (on the
    /// real control plane its fault proxy is the process's, keyed by identity).
    pub fn cuttable_identity(&self, name: &str) -> String {
        format!("{name}-{}", self.ns)
    }

    /// A client as admin `identity` that [`Env::set_cut_off`] can cut off from the API server:
    /// baton-sim's fault rules hold its requests; on the real control plane its connections go
    /// through a fault proxy of its own.
    pub async fn cuttable_client(&self, identity: &str) -> kube::Client {
        let Some(real) = &self.real else {
            return self.client_as(identity).await;
        };
        let path = self.dir.path().join(format!("{identity}.proxied.kubeconfig"));
        real.kubeconfig_via_proxy(identity, &path)
            .await
            .unwrap_or_else(|e| panic!("a kubeconfig through a proxy: {e}"));
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("reading the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("a client configuration");
        kube::Client::try_from(config).expect("a client")
    }

    /// Cut `identity` (a [`Env::cuttable_client`]'s) off from the API server — its requests,
    /// watches included, hang as over a partitioned network — or let it through again.
    pub fn set_cut_off(&self, identity: &str, cut_off: bool) {
        match (&self.real, cut_off) {
            (None, true) => self.sim.faults.block(identity),
            (None, false) => self.sim.faults.unblock(identity),
            (Some(r), true) => assert!(r.block(identity), "{identity} has no proxy"),
            (Some(r), false) => assert!(r.unblock(identity), "{identity} has no proxy"),
        }
    }
}

/// A write of kube-apiserver's audit log as a [`Write`].
fn audited(a: Audited) -> Write {
    let method = match a.verb.as_str() {
        "create" => "POST",
        "update" => "PUT",
        "patch" => "PATCH",
        _ => "DELETE",
    };
    Write {
        identity: a.user,
        method: method.to_string(),
        path: a.uri,
    }
}
