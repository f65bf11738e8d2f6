//! The kubelet's part for OS processes attached to a pod of the control plane (kwok plays the
//! pods, but runs nothing): the test harness's sidecars and apps, the demo's. As baton-sim's kubelet does: a graceful deletion sends
//! SIGTERM to the pod's processes; the pod stays Terminating until they have exited, never
//! longer than its grace period, after which what still runs gets SIGKILL; then its containers
//! are reported terminated and the pod deleted with grace 0, as a kubelet does. A force delete signals
//! nothing: the processes run on, as a real node's containers do. An attached pod carries the
//! annotation `baton.dev/node-agent`, by which kwok's stages leave its termination to this agent.
//! A container restart ([`NodeAgent::restart_container`]) is written to the pod's status as a
//! kubelet writes it: a restart counted, the pod not Ready until kwok takes it Ready again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use serde_json::json;

pub use crate::nodes::NODE_AGENT_ANNOTATION as ANNOTATION;

#[derive(Default)]
struct State {
    /// Processes by pod uid.
    pids: HashMap<String, Vec<u32>>,
    /// Pods whose termination has begun.
    stopping: HashSet<String>,
}

pub struct NodeAgent {
    client: kube::Client,
    state: Mutex<State>,
    watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        if let Some(t) = self.watch.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}

/// Whether an OS process still runs (a zombie has exited).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

impl NodeAgent {
    /// Start watching every pod (on the current runtime, until the agent is dropped).
    pub fn start(client: kube::Client) -> Arc<NodeAgent> {
        let me = Arc::new(NodeAgent {
            client: client.clone(),
            state: Mutex::default(),
            watch: Mutex::default(),
        });
        let agent = Arc::downgrade(&me);
        let task = tokio::spawn(async move {
            let pods: Api<Pod> = Api::all(client);
            let mut events = watcher(pods, watcher::Config::default()).boxed();
            while let Some(ev) = events.next().await {
                let Some(agent) = agent.upgrade() else { return };
                if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                    agent.seen(&p);
                }
            }
        });
        *me.watch.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        me
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attach process `pid` to pod `ns/name`.
    pub async fn attach(&self, ns: &str, name: &str, pid: u32) -> Result<(), String> {
        if !process_alive(pid) {
            return Err(format!("process {pid} is not running"));
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({"metadata": {"annotations": {ANNOTATION: "attached"}}});
        let pod = patch_retrying(&api, name, &patch)
            .await
            .map_err(|e| format!("pods \"{name}\": {e}"))?;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        {
            let mut st = self.lock();
            let pids = st.pids.entry(uid).or_default();
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        // A deletion that began before the annotation: terminate now.
        self.seen(&pod);
        Ok(())
    }

    fn seen(self: &NodeAgent, p: &Pod) {
        let Some(deleting) = p.metadata.deletion_timestamp.as_ref() else {
            return;
        };
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(30);
        if grace == 0 {
            return;
        }
        let pids = {
            let mut st = self.lock();
            let Some(pids) = st.pids.get(&uid).cloned() else { return };
            if !st.stopping.insert(uid.clone()) {
                return;
            }
            pids
        };
        let deadline = deleting.0.as_millisecond() - jiff_now_ms();
        let until = Instant::now() + Duration::from_millis(deadline.max(0) as u64);
        let (ns, name, client) = (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
            self.client.clone(),
        );
        tokio::spawn(async move {
            for pid in &pids {
                signal(*pid, "TERM");
            }
            while Instant::now() < until && pids.iter().any(|p| process_alive(*p)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for pid in pids.iter().filter(|p| process_alive(**p)) {
                signal(*pid, "KILL");
            }
            let api: Api<Pod> = Api::namespaced(client, &ns);
            remove_pod_retrying(&api, &name, &uid).await;
        });
    }

    /// Restart the containers of pod `ns/name` in its status (restart counted, not Ready); kwok's
    /// ready stage takes it Ready again, keeping the count.
    pub async fn restart_container(&self, ns: &str, name: &str) -> Result<(), String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let pod = api.get(name).await.map_err(|e| e.to_string())?;
        let now = jiff::Timestamp::now().to_string();
        let statuses = container_statuses(&pod, |c| {
            json!({"name": c.name, "image": c.image, "imageID": c.image_id, "ready": false, "started": true,
                   "restartCount": c.restart_count + 1, "state": {"running": {"startedAt": now}}})
        });
        let patch = json!({"status": {
            "containerStatuses": statuses,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// How many times [`patch_retrying`] sends its patch.
const PATCH_TRIES: u32 = 5;

/// Merge `patch` into pod `name`, sent again after 200 ms when the request did not reach an
/// answer (a pooled connection the server closed as the request went out): the patch is
/// idempotent. An answer of the API server, an error status included, is returned as it is.
async fn patch_retrying(api: &Api<Pod>, name: &str, patch: &serde_json::Value) -> Result<Pod, kube::Error> {
    let mut tries = 1;
    loop {
        match api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(e) if !matches!(e, kube::Error::Api(_)) && tries < PATCH_TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answer => return answer,
        }
    }
}

/// How long [`remove_pod_retrying`] keeps trying.
const REMOVE_FOR: Duration = Duration::from_secs(300);

/// [`remove_pod`] again every 200 ms until it succeeds or the pod is gone (404, or another pod
/// of that name: 409 on the uid precondition), as a kubelet retries its status and its final
/// delete — kube-apiserver answers 5xx while etcd is down or restarting; at most [`REMOVE_FOR`].
pub async fn remove_pod_retrying(api: &Api<Pod>, name: &str, uid: &str) {
    let until = Instant::now() + REMOVE_FOR;
    loop {
        match remove_pod(api, name, uid).await {
            Ok(()) => return,
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return,
            Err(_) if Instant::now() >= until => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// What a kubelet does last: the containers of pod `name` (uid `uid`) reported terminated, then
/// the pod deleted with grace 0.
pub async fn remove_pod(api: &Api<Pod>, name: &str, uid: &str) -> Result<(), kube::Error> {
    report_terminated(api, name, uid).await?;
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    api.delete(name, &dp).await.map(|_| ())
}

/// Write every container of pod `name` as terminated (exit 0), as the kubelet reports stopped
/// containers before it removes the pod; nothing when the pod of that name now has another uid
/// (the delete that follows then fails on its uid precondition).
async fn report_terminated(api: &Api<Pod>, name: &str, uid: &str) -> Result<(), kube::Error> {
    let pod = api.get(name).await?;
    if pod.metadata.uid.as_deref() != Some(uid) {
        return Ok(());
    }
    let now = jiff::Timestamp::now().to_string();
    let statuses = container_statuses(&pod, |c| {
        json!({"name": c.name, "image": c.image, "imageID": c.image_id, "ready": false, "started": false,
               "restartCount": c.restart_count,
               "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}}})
    });
    let patch = json!({"status": {"containerStatuses": statuses}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

fn jiff_now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Each container status of `pod`, rewritten by `status` (what a kubelet reports next).
fn container_statuses(
    pod: &Pod,
    status: impl Fn(&k8s_openapi::api::core::v1::ContainerStatus) -> serde_json::Value,
) -> Vec<serde_json::Value> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(status)
        .collect()
}
