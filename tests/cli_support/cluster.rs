//! What the CLI tests need of the API server beyond an [`Env`]: more namespaces of the test's
//! own, kubeconfigs with several contexts, and a ServiceAccount's kubeconfig — on baton-sim or
//! the real control plane (`BATON_TEST_CLUSTER=real`), where every name a test makes is its own
//! and what it makes is removed when it ends.
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

use crate::support::{backend, Env};

/// A namespace of the test besides [`Env::ns`]: `base` on baton-sim (a simulator of the test's
/// own), `base-<the test's namespace>` on the real control plane, deleted at the end there.
pub struct Namespace {
    pub name: String,
    delete_with: Option<PathBuf>,
}

impl Namespace {
    pub async fn create(env: &Env, base: &str) -> Namespace {
        let (name, delete_with) = if env.is_real() {
            let mut name = format!("{base}-{}", env.ns);
            name.truncate(63);
            (name.trim_end_matches('-').to_string(), Some(env.admin_kubeconfig()))
        } else {
            (base.to_string(), None)
        };
        backend::create_namespace(&env.client, &name).await;
        Namespace { name, delete_with }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(kubeconfig) = &self.delete_with {
            backend::delete_namespace(kubeconfig, &self.name);
        }
    }
}

/// The kubeconfig document at `path` (JSON or YAML).
fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A kubeconfig at `path` with the cluster and user of kubeconfig `admin` and one context per
/// `(context, namespace)`, the first current.
pub fn with_contexts(admin: &Path, path: &Path, contexts: &[(&str, &str)]) {
    let doc = read(admin);
    let cluster = doc["clusters"][0].clone();
    let user = doc["users"][0].clone();
    let contexts: Vec<Value> = contexts
        .iter()
        .map(|(name, ns)| {
            json!({"name": name, "context": {"cluster": cluster["name"], "user": user["name"], "namespace": ns}})
        })
        .collect();
    let out = json!({"apiVersion": "v1", "kind": "Config", "clusters": [cluster], "users": [user],
        "current-context": contexts[0]["name"], "contexts": contexts});
    std::fs::write(path, serde_json::to_vec_pretty(&out).expect("json")).expect("writing a kubeconfig");
}

/// A kubeconfig at `path` for ServiceAccount `sa` of the test's namespace (which must exist):
/// baton-sim's token, or one from kube-apiserver's TokenRequest API.
pub async fn service_account_kubeconfig(env: &Env, sa: &str, path: &Path) {
    if !env.is_real() {
        env.sim
            .kubeconfig_for_service_account(&env.ns, sa, None, path)
            .expect("a ServiceAccount's kubeconfig");
        return;
    }
    let req: TokenRequest = serde_json::from_value(json!({"apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest", "spec": {"audiences": [], "expirationSeconds": 3600}}))
    .expect("a TokenRequest");
    let api: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &env.ns);
    let token = api
        .create_subresource::<TokenRequest, TokenRequest>("token", sa, &PostParams::default(), &req)
        .await
        .unwrap_or_else(|e| panic!("a token for {sa}: {e}"))
        .status
        .map(|s| s.token)
        .unwrap_or_default();
    let doc = read(&env.admin_kubeconfig());
    let user = format!("system:serviceaccount:{}:{sa}", env.ns);
    let out = json!({"apiVersion": "v1", "kind": "Config", "clusters": [doc["clusters"][0]],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": doc["clusters"][0]["name"], "user": user, "namespace": env.ns}}],
        "current-context": "sa"});
    std::fs::write(path, serde_json::to_vec_pretty(&out).expect("json")).expect("writing a kubeconfig");
}
