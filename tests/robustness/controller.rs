//! `baton controller` as a child process against a test's simulator, and what the tests read
//! from it: its endpoints, its JSON log, its objects' raw JSON.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use baton::api::listenerset::ListenerSet;
use baton::api::rollout::Rollout;
use baton_sim::Sim;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;
use tokio::process::Command;

use crate::support::process::{http_get, metric, LoggedChild};
use crate::support::{wait_for, LONG, NS};

/// A `baton controller` process (killed on drop; its log printed if the test panics).
pub struct Proc {
    pub id: String,
    pub proc: LoggedChild,
    pub addr: Option<SocketAddr>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- log of controller {} -----\n{}", self.id, self.proc.log_text());
        }
    }
}

/// Spawn `baton controller` as `id` (its kubeconfig's token is `id`, so fault rules can single
/// it out), watching [`NS`], metrics on an ephemeral port, JSON logs; `extra` flags appended.
pub fn spawn(sim: &Sim, dir: &Path, id: &str, extra: &[&str]) -> Proc {
    let kubeconfig = dir.join(format!("{id}.kubeconfig"));
    sim.kubeconfig_as(id, &kubeconfig).expect("writing a kubeconfig");
    // BATON_TEST_BIN replays the tests against another build (e.g. one from before a fix).
    let bin = std::env::var_os("BATON_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_baton").into());
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["controller", "--watch-namespace", NS, "--identity", id])
        .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .env("RUST_LOG", "info,kube=warn")
        .env_remove("KUBECONFIG")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE");
    let proc = LoggedChild::spawn(&mut cmd, "bound").unwrap_or_else(|e| panic!("starting the baton binary: {e}"));
    Proc {
        id: id.to_string(),
        proc,
        addr: None,
    }
}

/// Spawn and wait until it serves its probes.
pub async fn start(sim: &Sim, dir: &Path, id: &str, extra: &[&str]) -> Proc {
    let mut p = spawn(sim, dir, id, extra);
    match p.proc.wait_addr(LONG).await {
        Some(a) => p.addr = Some(a),
        None => panic!("controller {id} did not report its metrics address"),
    }
    p
}

/// Leader election off: the process reconciles as soon as its caches are synced.
pub const NO_ELECTION: [&str; 2] = ["--leader-elect", "false"];

impl Proc {
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr.expect("address known"), path).await
    }

    pub async fn metric(&self, series: &str) -> Option<f64> {
        match self.get("/metrics").await {
            Some((200, body)) => metric(&body, series),
            _ => None,
        }
    }

    /// `/readyz` answers 200, within [`LONG`]; panics if the process exits first.
    pub async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            if matches!(self.get("/readyz").await, Some((200, _))) {
                return;
            }
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                panic!("controller {} exited with {status} before it was ready", self.id);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz of {} not 200 within {LONG:?}",
                self.id
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn terminate(&self) {
        assert!(self.proc.terminate(), "kill -TERM {}", self.proc.pid);
    }

    /// The exit status within `deadline`, or None if it still runs.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        self.proc
            .wait_exit(deadline)
            .await
            .map(|r| r.expect("waiting for the child"))
    }

    /// SIGTERM, then the exit within [`LONG`], which must be a success.
    pub async fn stop(&mut self) {
        self.terminate();
        let status = self.wait_exit(LONG).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "controller {} after SIGTERM: {status:?}",
            self.id
        );
    }

    /// The log lines (JSON, flattened fields) whose message contains `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<Value> {
        self.proc
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .collect()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }
}

/// Raw access to Rollouts and ListenerSets, for objects `Rollout` cannot decode.
pub fn raw<K: kube::Resource<DynamicType = ()>>(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &ApiResource::erase::<K>(&()))
}

pub fn raw_rollouts(client: &kube::Client) -> Api<DynamicObject> {
    raw::<Rollout>(client)
}

pub fn raw_listenersets(client: &kube::Client) -> Api<DynamicObject> {
    raw::<ListenerSet>(client)
}

/// Create an object from JSON as is (the API server decides what it stores).
pub async fn create_raw(api: &Api<DynamicObject>, obj: Value) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(obj).expect("a JSON object");
    api.create(&PostParams::default(), &obj).await
}

/// A condition of a raw object's status: (status, reason, message, observedGeneration).
pub fn raw_condition(obj: &DynamicObject, type_: &str) -> Option<(String, String, String, Option<i64>)> {
    let conds = obj.data["status"]["conditions"].as_array()?;
    let c = conds.iter().find(|c| c["type"] == type_)?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message"), c["observedGeneration"].as_i64()))
}

/// `status.observedGeneration == metadata.generation` of a raw object.
pub fn observed_current(obj: &DynamicObject) -> bool {
    obj.metadata.generation.is_some() && obj.data["status"]["observedGeneration"].as_i64() == obj.metadata.generation
}

/// Wait until every named object of `api` has been reconciled at its current generation.
pub async fn wait_observed(api: &Api<DynamicObject>, names: &[String], what: &str) {
    wait_for(what, LONG, || async {
        for n in names {
            let o = api.get(n).await.ok()?;
            if !observed_current(&o) {
                return None;
            }
        }
        Some(())
    })
    .await
}

/// A temporary directory for kubeconfigs, removed on drop.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("baton-robust-{tag}-"))
        .tempdir()
        .expect("creating a temporary directory")
}

/// A ListenerSet selecting pods labelled `app=<name>` with listeners `a`, `b`.
pub fn listenerset(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "ListenerSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "listeners": [{"id": "a"}, {"id": "b"}],
        },
    })
}

/// `value` without any `minimum`/`maximum` (an older baton's schema, before integers were
/// bounded).
fn strip_bounds(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.remove("minimum");
            m.remove("maximum");
            m.values_mut().for_each(strip_bounds);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_bounds),
        _ => {}
    }
}

/// Swap the schema of the CRD `crd_name` for `schema`; returns the one it had.
async fn swap_schema(client: &kube::Client, crd_name: &str, schema: Option<Value>) -> Value {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(crd_name).await.expect("the CRD");
    let mut v = serde_json::to_value(&crd).expect("json");
    let path = "/spec/versions/0/schema/openAPIV3Schema";
    let old = v.pointer(path).cloned().expect("a schema");
    let new = schema.unwrap_or_else(|| {
        let mut s = old.clone();
        strip_bounds(&mut s);
        s
    });
    if let Some(slot) = v.pointer_mut(path) {
        *slot = new;
    }
    let crd: CustomResourceDefinition = serde_json::from_value(v).expect("a CRD");
    crds.replace(crd_name, &PostParams::default(), &crd)
        .await
        .expect("replacing the CRD");
    old
}

/// Store `objects` as an API server would have under an older baton's CRDs, whose schema did
/// not bound integers (kube-apiserver does not enforce `format: int32` on custom resources):
/// the bounds are lifted for the creates and restored at once. Such objects stay stored
/// after an upgrade, and every controller start, failover or relist meets them.
pub async fn create_under_unbounded_schema(
    client: &kube::Client,
    crd_name: &str,
    api: &Api<DynamicObject>,
    objects: Vec<Value>,
) -> Vec<Result<DynamicObject, kube::Error>> {
    let schema = swap_schema(client, crd_name, None).await;
    let mut out = Vec::new();
    for obj in objects {
        out.push(create_raw(api, obj).await);
    }
    swap_schema(client, crd_name, Some(schema)).await;
    out
}

/// [`create_under_unbounded_schema`], each create expected to succeed.
pub async fn store_under_unbounded_schema(
    client: &kube::Client,
    crd_name: &str,
    api: &Api<DynamicObject>,
    objects: Vec<Value>,
) {
    for r in create_under_unbounded_schema(client, crd_name, api, objects).await {
        if let Err(e) = r {
            panic!("storing under the unbounded schema: {e}");
        }
    }
}

pub const ROLLOUTS_CRD: &str = "rollouts.baton.dev";
pub const LISTENERSETS_CRD: &str = "listenersets.baton.dev";

/// events.k8s.io/v1 Events regarding the object `kind`/`name`.
pub async fn events_of(client: &kube::Client, kind: &str, name: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    api.list(&Default::default())
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

/// Wait for a Warning Event with `reason` regarding `kind`/`name`; its note.
pub async fn wait_warning(client: &kube::Client, kind: &str, name: &str, reason: &str) -> String {
    wait_for(&format!("a {reason} Warning on {kind} {name}"), LONG, || async {
        events_of(client, kind, name)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning"))
            .map(|e| e.note.unwrap_or_default())
    })
    .await
}
