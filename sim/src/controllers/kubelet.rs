//! The simulated kubelet: binds pods to the simulated node, takes them Pending → Running →
//! Ready after configurable delays, runs attached in-process "processes", honours the grace
//! period on deletion, and misbehaves on request by image name:
//!
//! * an image whose name or tag contains `never-ready` runs but never becomes Ready;
//! * `crash` crash-loops (restartCount grows, waiting reason `CrashLoopBackOff`);
//! * `slow-start` becomes Ready after `slow_factor` × the ready delay;
//! * `slow-stop` takes `slow_factor` × the stop delay to stop after SIGTERM, and
//!   `ignore-sigterm` does not stop at all (it is killed when the grace period ends);
//! * `fail` (see `super::jobs`) exits non-zero once Running.
//!
//! Graceful deletion is what a kubelet does: SIGTERM to the pod's processes (in-process ones
//! attached with [`Kubelet::attach`], OS processes attached with [`Kubelet::attach_pid`]), the
//! pod stays `Terminating` until they have exited — or, without processes, until its
//! containers' stop delay has passed — never longer than the grace period, after which what
//! still runs is killed (SIGKILL) and the pod removed. A force delete (grace 0) removes the pod
//! from the API at once and signals nothing: the processes keep running, as a real node's
//! containers do until its kubelet catches up, which is what makes force deletes dangerous.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::handlers::Core;
use crate::resources::ResKey;
use crate::store::{EventKind, Write};

mod completion;
mod lifecycle;
mod pod;

use pod::{pod_ip, set_container_state, stop_delay};

pub const NODE_NAME: &str = "sim-node-1";

#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Pending (unscheduled) → bound to the node.
    pub schedule_delay: Duration,
    /// Bound → Running (containers started).
    pub start_delay: Duration,
    /// Running → Ready.
    pub ready_delay: Duration,
    /// Ready delay multiplier for `slow-start` images.
    pub slow_factor: u32,
    /// Time between restarts of a crash-looping container.
    pub crash_interval: Duration,
    /// How long a container without an attached process takes to stop after SIGTERM.
    pub stop_delay: Duration,
    /// How long a run-to-completion container (a Job's pod) runs before it exits.
    pub run_duration: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            schedule_delay: Duration::from_millis(10),
            start_delay: Duration::from_millis(100),
            ready_delay: Duration::from_millis(200),
            slow_factor: 10,
            crash_interval: Duration::from_millis(500),
            stop_delay: Duration::from_millis(50),
            run_duration: Duration::from_millis(300),
        }
    }
}

/// What an attached process learns about its pod.
#[derive(Debug, Clone)]
pub struct PodContext {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub pod_ip: String,
    pub labels: HashMap<String, String>,
    /// Becomes `true` when the pod is deleted (SIGTERM); the process should stop within the grace period.
    pub sigterm: watch::Receiver<bool>,
}

pub type ProcessFactory = Arc<dyn Fn(PodContext) -> BoxFuture<'static, ()> + Send + Sync>;
type Matcher = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// Per-pod state, kept small: there is one per pod for the pod's whole life.
struct Running {
    /// Dropped when the lifecycle finishes: a finished task's memory lives as long as its handle.
    lifecycle: Option<JoinHandle<()>>,
    /// Created when a process is attached; most pods never have one.
    sigterm: Option<watch::Sender<bool>>,
    terminating: bool,
    process: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Running {
    fn abort_lifecycle(&self) {
        if let Some(l) = &self.lifecycle {
            l.abort();
        }
    }

    fn send_sigterm(&mut self) {
        self.terminating = true;
        if let Some(tx) = &self.sigterm {
            let _ = tx.send(true);
        }
    }
}

pub struct Kubelet {
    core: Arc<Core>,
    config: RwLock<KubeletConfig>,
    factories: Mutex<Vec<(Matcher, ProcessFactory)>>,
    pods: Mutex<HashMap<String, Running>>,
    /// OS processes attached to pods, by pod uid.
    external: Mutex<HashMap<String, Vec<u32>>>,
}

/// Why [`Kubelet::attach_pid`] refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttachError {
    #[error("pods \"{0}\" not found")]
    NoPod(String),
    #[error("process {0} is not running")]
    NoProcess(u32),
}

fn pods_key() -> ResKey {
    ResKey {
        group: String::new(),
        plural: "pods".into(),
    }
}

/// Whether an OS process is still running (a zombie has exited).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Send a signal with the system's `kill` (no unsafe code for one syscall).
async fn signal(pid: u32, sig: &str) {
    let _ = tokio::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

fn now() -> String {
    crate::meta::now_rfc3339()
}

impl Kubelet {
    pub fn new(core: Arc<Core>, config: KubeletConfig) -> Arc<Self> {
        Arc::new(Kubelet {
            core,
            config: RwLock::new(config),
            factories: Mutex::new(Vec::new()),
            pods: Mutex::new(HashMap::new()),
            external: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> KubeletConfig {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_config(&self, c: KubeletConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = c;
    }

    /// Run `factory` as the process of every pod `matcher` accepts, from when it is Running.
    pub fn attach(&self, matcher: impl Fn(&Value) -> bool + Send + Sync + 'static, factory: ProcessFactory) {
        self.factories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((Arc::new(matcher), factory));
    }

    /// Attach a running OS process (e.g. a real `baton agent` a test started) to a pod: it gets
    /// SIGTERM when the pod is deleted gracefully, the pod stays Terminating until it exits, and
    /// SIGKILL if it outlives the grace period. A force delete does not signal it.
    pub fn attach_pid(&self, namespace: &str, name: &str, pid: u32) -> Result<(), AttachError> {
        let pod = self
            .core
            .store
            .get(&pods_key(), namespace, name)
            .ok_or_else(|| AttachError::NoPod(name.to_string()))?;
        if !process_alive(pid) {
            return Err(AttachError::NoProcess(pid));
        }
        let mut ext = self.external.lock().unwrap_or_else(|p| p.into_inner());
        let pids = ext.entry(pod.uid.clone()).or_default();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
        Ok(())
    }

    /// Kill a pod's process without SIGTERM (like `kill -9`); the container restarts.
    pub fn crash(self: &Arc<Self>, namespace: &str, name: &str) -> bool {
        let Some(pod) = self.core.store.get(&pods_key(), namespace, name) else {
            return false;
        };
        let proc = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pod.uid)
            .map(|r| r.process.clone());
        let Some(proc) = proc else { return false };
        if let Some(h) = proc.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
        let me = self.clone();
        let (ns, n, uid) = (namespace.to_string(), name.to_string(), pod.uid.clone());
        tokio::spawn(async move {
            me.set_status(&ns, &n, &uid, |st| {
                set_container_state(st, false, json!({"waiting": {"reason": "Error"}}), 1);
            });
            let cfg = me.config();
            tokio::time::sleep(cfg.start_delay).await;
            me.start_process(&ns, &n, &uid, proc).await;
            me.set_status(&ns, &n, &uid, |st| {
                set_container_state(st, false, json!({"running": {"startedAt": now()}}), 0)
            });
            tokio::time::sleep(cfg.ready_delay).await;
            me.set_status(&ns, &n, &uid, |st| {
                set_container_state(st, true, json!({"running": {"startedAt": now()}}), 0)
            });
        });
        true
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        self.ensure_node();
        let mut rx = self.core.store.subscribe();
        // Pods that exist already (created before the kubelet started).
        let (existing, _) = self.core.store.list(&pods_key(), None);
        for p in existing {
            self.observe(&p.namespace, &p.name, &p.uid, p.deleting, false);
        }
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) if ev.key == pods_key() => {
                        self.observe(&ev.obj.namespace, &ev.obj.name, &ev.obj.uid, ev.obj.deleting, ev.kind == EventKind::Deleted);
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let (all, _) = self.core.store.list(&pods_key(), None);
                        for p in all {
                            self.observe(&p.namespace, &p.name, &p.uid, p.deleting, false);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = shutdown.changed() => break,
            }
        }
        let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        for (_, r) in pods.drain() {
            r.abort_lifecycle();
            if let Some(h) = r.process.lock().unwrap_or_else(|p| p.into_inner()).take() {
                h.abort();
            }
        }
    }

    fn ensure_node(&self) {
        let Some(rt) = self.core.resource("", "nodes") else {
            return;
        };
        // The labels a kubelet registers its node with (`kubelet_node_status.go`).
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE_NAME, "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
            }},
            "spec": {},
        });
        let opts = crate::handlers::Opts {
            field_manager: "kubelet".into(),
            ..Default::default()
        };
        if self.core.create(&rt, None, node, &opts).is_ok() {
            let _ = self.core.store.write(&rt.key(), "", NODE_NAME, false, |cur| {
                let Some(cur) = cur else { return Ok(Write::Keep) };
                let mut v = cur.value();
                v["status"] = json!({
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                    "nodeInfo": {
                        "machineID": "5a1b2c3d4e5f40718293a4b5c6d7e8f9", "systemUUID": "5a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9",
                        "bootID": "0f1e2d3c-4b5a-4968-8776-655443322110", "kernelVersion": "6.1.0-baton-sim",
                        "osImage": "baton-sim", "containerRuntimeVersion": "sim://1.0.0",
                        "kubeletVersion": "v1.32.0-baton-sim", "kubeProxyVersion": "v1.32.0-baton-sim",
                        "operatingSystem": "linux", "architecture": "amd64",
                    },
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
                });
                Ok(Write::Put(v))
            });
        }
    }

    fn observe(self: &Arc<Self>, ns: &str, name: &str, uid: &str, deleting: bool, deleted: bool) {
        let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
        if deleted {
            // Force-deleted (or finished): attached OS processes are not signalled.
            self.external.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
            // Gone from the API (grace 0 or finished): the process dies with it.
            if let Some(mut r) = pods.remove(uid) {
                r.send_sigterm();
                r.abort_lifecycle();
                if let Some(h) = r.process.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    h.abort();
                }
            }
            return;
        }
        if let Some(r) = pods.get_mut(uid) {
            if deleting && !r.terminating {
                r.send_sigterm();
                let me = self.clone();
                let (ns, name, uid) = (ns.to_string(), name.to_string(), uid.to_string());
                let proc = r.process.clone();
                tokio::spawn(async move { me.terminate(&ns, &name, &uid, proc).await });
            }
            return;
        }
        if deleting {
            let me = self.clone();
            let (ns, name, uid) = (ns.to_string(), name.to_string(), uid.to_string());
            tokio::spawn(async move { me.terminate(&ns, &name, &uid, Arc::new(Mutex::new(None))).await });
            return;
        }
        let process = Arc::new(Mutex::new(None));
        let me = self.clone();
        let (ns2, name2, uid2) = (ns.to_string(), name.to_string(), uid.to_string());
        let proc2 = process.clone();
        let lifecycle = tokio::spawn(async move {
            me.clone().lifecycle(&ns2, &name2, &uid2, proc2).await;
            // Waits for `observe` to have inserted the handle (it holds the lock until then).
            if let Some(r) = me.pods.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&uid2) {
                r.lifecycle = None;
            }
        });
        pods.insert(
            uid.to_string(),
            Running {
                lifecycle: Some(lifecycle),
                sigterm: None,
                terminating: false,
                process,
            },
        );
    }

    /// Apply a status change to a pod if it is still the same incarnation.
    fn set_status(&self, ns: &str, name: &str, uid: &str, f: impl FnOnce(&mut Value)) -> bool {
        let r = self.core.store.write(&pods_key(), ns, name, false, |cur| {
            let Some(cur) = cur.filter(|c| c.uid == uid) else {
                return Err(crate::error::ApiError::not_found("pods", name));
            };
            let mut v = cur.value();
            if !v.get("status").is_some_and(Value::is_object) {
                v["status"] = json!({});
            }
            f(&mut v["status"]);
            Ok(Write::Put(v))
        });
        r.is_ok()
    }

    async fn start_process(&self, ns: &str, name: &str, uid: &str, slot: Arc<Mutex<Option<JoinHandle<()>>>>) {
        // Without attached process factories there is nothing to start: the pod is not read
        // (its decoding was one of the ~6 per pod's life; most pods have no process).
        if self.factories.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            return;
        }
        let Some(pod) = self.core.store.get(&pods_key(), ns, name).filter(|p| p.uid == uid) else {
            return;
        };
        let v = pod.value();
        let factory = {
            let fs = self.factories.lock().unwrap_or_else(|p| p.into_inner());
            fs.iter().find(|(m, _)| m(&v)).map(|(_, f)| f.clone())
        };
        let Some(factory) = factory else { return };
        let sigterm = {
            let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
            match pods.get_mut(uid) {
                Some(r) => {
                    let terminating = r.terminating;
                    r.sigterm
                        .get_or_insert_with(|| watch::channel(terminating).0)
                        .subscribe()
                }
                None => return,
            }
        };
        let ctx = PodContext {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            pod_ip: pod_ip(uid),
            labels: pod.label_map().into_iter().collect(),
            sigterm,
        };
        let handle = tokio::spawn(factory(ctx));
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    /// Graceful termination: SIGTERM to the pod's processes; wait until they have exited (or,
    /// without processes, the containers' stop delay) within the grace period; kill what is
    /// left; then remove the pod (the kubelet's final delete with grace 0).
    async fn terminate(self: Arc<Self>, ns: &str, name: &str, uid: &str, process: Arc<Mutex<Option<JoinHandle<()>>>>) {
        let Some(pod) = self.core.store.get(&pods_key(), ns, name).filter(|p| p.uid == uid) else {
            return;
        };
        let (grace, delay) = {
            let v = pod.value();
            let grace = v
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            (Duration::from_secs(grace.max(0) as u64), stop_delay(&v, &self.config()))
        };
        drop(pod);
        let external = self
            .external
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .cloned()
            .unwrap_or_default();
        for pid in &external {
            signal(*pid, "TERM").await;
        }
        let mut handle = process.lock().unwrap_or_else(|p| p.into_inner()).take();
        let no_process = handle.is_none() && external.is_empty();
        let stopped = async {
            if let Some(h) = handle.as_mut() {
                let _ = h.await;
            }
            while external.iter().any(|p| process_alive(*p)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if no_process {
                match delay {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
            }
        };
        if tokio::time::timeout(grace, stopped).await.is_err() {
            if let Some(h) = handle {
                h.abort();
            }
            for pid in external.iter().filter(|p| process_alive(**p)) {
                signal(*pid, "KILL").await;
            }
        }
        self.external.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
        if let Some(r) = self.pods.lock().unwrap_or_else(|p| p.into_inner()).get(uid) {
            r.abort_lifecycle();
        }
        let _ = self.core.store.write(&pods_key(), ns, name, false, |cur| {
            let Some(cur) = cur.filter(|c| c.uid == uid) else {
                return Ok(Write::Keep);
            };
            let mut v = cur.value();
            v["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            if let Some(st) = v.get_mut("status") {
                set_container_state(
                    st,
                    false,
                    json!({"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now()}}),
                    0,
                );
            }
            if cur.finalizers.is_empty() {
                Ok(Write::Delete(v))
            } else {
                Ok(Write::Put(v))
            }
        });
    }
}
