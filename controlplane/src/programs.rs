//! In-process programs run "in" pods of the control plane, as baton-sim's kubelet runs them
//! (`Kubelet::attach`): one task per matching pod, started once the pod is Running; a graceful
//! deletion is its SIGTERM (a watch channel turning `true`), and the pod stays Terminating until
//! the task has finished — at most its grace period, after which the task is dropped — then its
//! containers are reported terminated and the pod removed, as a kubelet does. A force delete
//! signals nothing: the task runs on, as a real node's containers do. Pods running a program carry
//! the annotation `baton.dev/node-agent`, by which kwok leaves their termination to this module.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::node::{remove_pod_retrying, ANNOTATION};

/// What a program learns about its pod.
#[derive(Clone, Debug)]
pub struct PodContext {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// Becomes `true` when the pod is deleted gracefully: stop within the grace period.
    pub sigterm: watch::Receiver<bool>,
}

/// A program: started once per pod.
pub type Program = Arc<dyn Fn(PodContext) -> BoxFuture<'static, ()> + Send + Sync>;

struct Running {
    sigterm: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Run `program` in every pod of namespace `ns` that `selector` (a label selector) selects,
/// until the returned task is aborted.
pub fn run_in_pods(client: kube::Client, ns: &str, selector: &str, program: Program) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let cfg = watcher::Config::default().labels(selector);
    tokio::spawn(async move {
        let running: Arc<Mutex<HashMap<String, Running>>> = Arc::default();
        let mut events = watcher(pods.clone(), cfg).boxed();
        while let Some(ev) = events.next().await {
            let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev else {
                continue;
            };
            seen(&pods, &running, &program, p).await;
        }
    })
}

fn lock(m: &Mutex<HashMap<String, Running>>) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn seen(pods: &Api<Pod>, running: &Arc<Mutex<HashMap<String, Running>>>, program: &Program, p: Pod) {
    let uid = p.metadata.uid.clone().unwrap_or_default();
    let name = p.metadata.name.clone().unwrap_or_default();
    if let Some(deleting) = p.metadata.deletion_timestamp.as_ref() {
        let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(30);
        let Some(mut r) = lock(running).remove(&uid) else {
            return;
        };
        if grace == 0 {
            // A force delete: nothing tells the program.
            return;
        }
        let _ = r.sigterm.send(true);
        let left = deleting.0.as_millisecond() - jiff::Timestamp::now().as_millisecond();
        let grace = Duration::from_millis(left.max(0) as u64);
        let (pods, task) = (pods.clone(), r.task.take());
        tokio::spawn(async move {
            if let Some(mut task) = task {
                if tokio::time::timeout(grace, &mut task).await.is_err() {
                    task.abort();
                }
            }
            remove_pod_retrying(&pods, &name, &uid).await;
        });
        return;
    }
    let is_running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    if !is_running || lock(running).contains_key(&uid) {
        return;
    }
    let patch = json!({"metadata": {"annotations": {ANNOTATION: "program"}}});
    if pods
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .is_err()
    {
        return;
    }
    let (tx, rx) = watch::channel(false);
    let ctx = PodContext {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name,
        uid: uid.clone(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        sigterm: rx,
    };
    let task = tokio::spawn(program(ctx));
    lock(running).insert(
        uid,
        Running {
            sigterm: tx,
            task: Some(task),
        },
    );
}
