//! A pod's processes, as a node would run them: the `baton agent` sidecar (a real process,
//! attached to the simulated pod, restartable at the same localhost port) and the app; and what
//! happens to them (graceful and force deletion, SIGKILL, restarts, partitions).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::api::rollout::Rollout;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::process::Command;
use tokio::sync::watch;

use super::app::App;
use super::history::Dead;
use super::process::LoggedChild;
use super::program::Program;
use super::{signal, wait_for, Ns, APP, APP_LABEL, R};

/// What runs beside a pod's sidecar.
#[derive(Clone, Debug)]
pub enum AppKind {
    /// The harness's app model, configured by [`Ns::app`].
    Model,
    /// `python3` running this script (the sample app).
    Script(PathBuf),
    /// A program (a client library's sample app), optionally behind a tap.
    Program(Program),
}

/// A pod's processes: its sidecar (restartable) and its app.
pub struct PodProcs {
    pub name: String,
    pub uid: String,
    pub file: PathBuf,
    pub identity: String,
    /// The sidecar's localhost port (kept across restarts, like a container's).
    pub port: u16,
    /// `--listenerset` of the sidecar (empty: every set).
    sets: Vec<String>,
    sidecar: Mutex<Option<LoggedChild>>,
    /// Logs of earlier sidecar incarnations (printed when a test fails).
    old_logs: Mutex<Vec<String>>,
    addr: watch::Sender<Option<SocketAddr>>,
    pub app: App,
}

impl PodProcs {
    /// The sidecar's process id, while it runs.
    pub fn sidecar_pid(&self) -> Option<u32> {
        self.sidecar
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.pid)
    }

    /// Every sidecar log line so far, oldest incarnation first.
    pub fn logs(&self) -> String {
        let mut out = self.old_logs.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
        if let Some(c) = self.sidecar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            out.push('\n');
            out.push_str(&c.log_text());
        }
        out
    }

    fn replace_sidecar(&self, new: Option<LoggedChild>) -> Option<LoggedChild> {
        let mut g = self.sidecar.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *g, new)
    }
}

/// Ports below this are left alone (well-known and registered services).
const FIRST_PORT: u32 = 10_000;

/// A free localhost port for a sidecar (bound and let go; the sidecar binds it next, and again
/// after each restart). It is taken below the kernel's ephemeral range: a port let go inside it
/// can be handed to any outgoing connection before the sidecar binds it, which then fails with
/// "Address already in use"; below it only an explicit bind takes a port. Each test process
/// walks the range from its own point, so two of them rarely probe the same port.
fn free_port() -> R<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = ephemeral_floor();
    let span = ephemeral.saturating_sub(FIRST_PORT);
    if span < 1_000 {
        // No room below the ephemeral range: let the kernel pick one.
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        return Ok(l.local_addr().map_err(|e| e.to_string())?.port());
    }
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST_PORT + (start + n) % span).map_err(|e| e.to_string())?;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free localhost port in {FIRST_PORT}..{ephemeral}"))
}

/// The lowest port of the kernel's ephemeral range (`ip_local_port_range`; Linux's default if
/// unreadable).
fn ephemeral_floor() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
}

impl Ns {
    /// Create pod `name` (selected by every set of the harness), wait until it is Ready, start
    /// its sidecar and its app (the model app).
    pub async fn create_pod(&self, name: &str) -> R<Arc<PodProcs>> {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": self.name, "labels": {APP_LABEL: APP}},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}, {"name": "baton-agent", "image": "baton:dev"}],
                     "terminationGracePeriodSeconds": 30}
        }))
        .map_err(|e| e.to_string())?;
        self.pods_api()
            .create(&PostParams::default(), &pod)
            .await
            .map_err(|e| format!("creating pod {name}: {e}"))?;
        let uid = self.wait_ready(name).await?;
        self.start_procs(name, &uid, Vec::new(), AppKind::Model).await
    }

    /// Create pod `name` without any process (no agent): Ready all the same. Its uid.
    pub async fn create_plain_pod(&self, name: &str) -> R<String> {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": self.name, "labels": {APP_LABEL: APP}},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}], "terminationGracePeriodSeconds": 30}
        }))
        .map_err(|e| e.to_string())?;
        self.pods_api()
            .create(&PostParams::default(), &pod)
            .await
            .map_err(|e| format!("creating pod {name}: {e}"))?;
        self.wait_ready(name).await
    }

    /// Wait until pod `name` is Ready and not terminating; its uid.
    pub async fn wait_ready(&self, name: &str) -> R<String> {
        let pods = self.pods_api();
        wait_for(&format!("pod {name} Ready"), Duration::from_secs(60), || {
            let pods = pods.clone();
            async move {
                let p = pods.get_opt(name).await.ok()??;
                let ready = baton::api::pod::is_ready(&p);
                (ready && p.metadata.deletion_timestamp.is_none()).then(|| p.metadata.uid.clone().unwrap_or_default())
            }
        })
        .await
    }

    /// From now on, nothing may be assigned to `name` (checked at the end).
    pub async fn mark_dead(&self, name: &str) -> R<()> {
        let pod = self.pod(name)?;
        // The store's own revision, not the recorder's (which may lag behind under load): every
        // change before this call, the dead pod's last assignments included, is at or below it.
        let after_rv = self.cluster.current_rv().await?;
        self.dead.lock().unwrap_or_else(|p| p.into_inner()).push(Dead {
            pod: pod.name.clone(),
            uid: pod.uid.clone(),
            after_rv,
        });
        Ok(())
    }

    /// Start the sidecar (serving `sets`; empty: all) and the app of existing pod `name`.
    pub async fn start_procs(&self, name: &str, uid: &str, sets: Vec<String>, kind: AppKind) -> R<Arc<PodProcs>> {
        let identity = format!("agent-{}-{name}", self.name);
        let dir = self.cluster.dir.path().join(&self.name).join(format!("{name}-{uid}"));
        let file = dir.join("listeners.json");
        let port = free_port()?;
        let (addr, addr_rx) = watch::channel(None);
        let app_id = format!("{name}#{}", &uid[..uid.len().min(8)]);
        let app = match &kind {
            AppKind::Model => App::spawn(self.app.clone(), self.log.clone(), app_id, file.clone(), addr_rx),
            AppKind::Script(script) => {
                let at = SocketAddr::from(([127, 0, 0, 1], port));
                App::process(self.log.clone(), app_id, &Program::python(script), at)?
            }
            AppKind::Program(prog) => {
                let at = SocketAddr::from(([127, 0, 0, 1], port));
                App::process(self.log.clone(), app_id, prog, at)?
            }
        };
        if let Some(pid) = app.pid {
            self.cluster
                .attach_pid(&self.name, name, pid)
                .await
                .map_err(|e| format!("attaching the app of {name}: {e}"))?;
        }
        let procs = Arc::new(PodProcs {
            name: name.to_string(),
            uid: uid.to_string(),
            file,
            identity,
            port,
            sets,
            sidecar: Mutex::new(None),
            old_logs: Mutex::default(),
            addr,
            app,
        });
        self.start_sidecar(&procs).await?;
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), procs.clone());
        Ok(procs)
    }

    /// Run the containers of every pod of this namespace that declares a container named
    /// `sidecar` (as a node would): its `baton agent` (with the `--listenerset` of that
    /// container's args) and the app `kind`, once the pod is Running. Until the returned task is
    /// aborted.
    pub fn run_declared_sidecars(self: &Arc<Self>, sidecar: &str, kind: AppKind) -> tokio::task::JoinHandle<()> {
        let (me, sidecar) = (self.clone(), sidecar.to_string());
        tokio::spawn(async move {
            loop {
                let pods = me.pods_api().list(&Default::default()).await.map(|l| l.items);
                for p in pods.unwrap_or_default() {
                    let (Some(name), Some(uid)) = (p.metadata.name.clone(), p.metadata.uid.clone()) else {
                        continue;
                    };
                    let known = me.pod(&name).is_ok_and(|k| k.uid == uid);
                    let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    if known || !running || p.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    let containers = p.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
                    let Some(c) = containers.iter().find(|c| c.name == sidecar) else {
                        continue;
                    };
                    let sets: Vec<String> = c
                        .args
                        .iter()
                        .flatten()
                        .filter_map(|a| a.strip_prefix("--listenerset="))
                        .flat_map(|s| s.split(','))
                        .map(str::to_string)
                        .collect();
                    if let Err(e) = me.start_procs(&name, &uid, sets, kind.clone()).await {
                        eprintln!("running the containers of {name}: {e}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }

    /// The script container `container` of Rollout `rollout`'s pod template runs, laid out as a
    /// node would: every ConfigMap volume the container mounts written under its mount path in a
    /// directory of this namespace (each item's key at its path; without items, every key at its
    /// own name), and the `.py` argument of the container's command there
    /// (`[python3, -u, /app/sample_app.py]` → `<dir>/app/sample_app.py`).
    pub async fn script_of_template(&self, rollout: &str, container: &str) -> R<PathBuf> {
        let ro = Api::<Rollout>::namespaced(self.client.clone(), &self.name)
            .get(rollout)
            .await
            .map_err(|e| format!("reading Rollout {rollout}: {e}"))?;
        let spec = ro.spec.template.spec.unwrap_or_default();
        let c = spec
            .containers
            .iter()
            .find(|c| c.name == container)
            .ok_or_else(|| format!("Rollout {rollout} has no container {container}"))?;
        let root = self
            .cluster
            .dir
            .path()
            .join(format!("{}-{rollout}-{container}", self.name));
        let config_maps = Api::<ConfigMap>::namespaced(self.client.clone(), &self.name);
        for mount in c.volume_mounts.iter().flatten() {
            let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name);
            let Some(cm) = volume.and_then(|v| v.config_map.as_ref()) else {
                continue;
            };
            let data = config_maps
                .get(&cm.name)
                .await
                .map_err(|e| format!("reading ConfigMap {}: {e}", cm.name))?
                .data
                .unwrap_or_default();
            let items: Vec<(String, String)> = match &cm.items {
                Some(items) => items.iter().map(|i| (i.key.clone(), i.path.clone())).collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in items {
                let text = data
                    .get(&key)
                    .ok_or_else(|| format!("ConfigMap {} has no key {key}", cm.name))?;
                let file = root.join(mount.mount_path.trim_start_matches('/')).join(path);
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                std::fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
            }
        }
        let script = c
            .command
            .iter()
            .flatten()
            .find(|a| a.ends_with(".py"))
            .ok_or_else(|| format!("the command of {container} runs no .py: {:?}", c.command))?;
        Ok(root.join(script.trim_start_matches('/')))
    }

    /// Spawn `baton agent` for `pod` (on its port) and attach it to the simulated pod.
    async fn start_sidecar(&self, pod: &PodProcs) -> R<()> {
        let kubeconfig = self.cluster.kubeconfig(&pod.identity).await?;
        let mut cmd = Command::new(self.agent_bin());
        cmd.arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "agent",
                "--listen",
                &format!("127.0.0.1:{}", pod.port),
                "--log-format",
                "json",
            ])
            .arg("--file")
            .arg(&pod.file)
            .args(["--ack-timeout-seconds", &self.agent.ack_timeout.to_string()])
            .env("POD_NAME", &pod.name)
            .env("POD_NAMESPACE", &self.name)
            .env("POD_UID", &pod.uid)
            .env(
                "RUST_LOG",
                std::env::var("BATON_AGENT_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            .env_remove("KUBECONFIG");
        if !pod.sets.is_empty() {
            cmd.arg(format!("--listenerset={}", pod.sets.join(",")));
        }
        if let Some(m) = self.agent.safety_margin {
            cmd.args(["--safety-margin-seconds", &m.to_string()]);
        }
        let mut child = LoggedChild::spawn(&mut cmd, "addr").map_err(|e| format!("starting baton agent: {e}"))?;
        let Some(addr) = child.wait_addr(Duration::from_secs(60)).await else {
            return Err(format!(
                "the sidecar of {} did not start\n{}",
                pod.name,
                child.log_text()
            ));
        };
        self.cluster
            .attach_pid(&self.name, &pod.name, child.pid)
            .await
            .map_err(|e| format!("attaching the sidecar of {}: {e}", pod.name))?;
        pod.replace_sidecar(Some(child));
        pod.addr.send_replace(Some(addr));
        Ok(())
    }

    /// SIGKILL the sidecar of `name` (OOM): the app keeps running.
    pub async fn kill_agent(&self, name: &str) -> R<()> {
        let pod = self.pod(name)?;
        pod.addr.send_replace(None);
        if let Some(mut c) = pod.replace_sidecar(None) {
            signal(c.pid, "KILL").await;
            let _ = c.wait_exit(Duration::from_secs(30)).await;
            pod.old_logs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(c.log_text());
        }
        Ok(())
    }

    /// SIGTERM the sidecar of `name` alone (its container is stopped): it stops every listener,
    /// releases every Lease once acknowledged (or after the ack timeout) and exits; the app keeps
    /// running. Waits for the exit.
    pub async fn term_agent(&self, name: &str) -> R<()> {
        let pod = self.pod(name)?;
        let Some(mut c) = pod.replace_sidecar(None) else {
            return Ok(());
        };
        signal(c.pid, "TERM").await;
        let exited = c.wait_exit(Duration::from_secs(60)).await;
        pod.addr.send_replace(None);
        pod.old_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c.log_text());
        match exited {
            Some(Ok(_)) => Ok(()),
            _ => Err(format!("the sidecar of {name} did not exit on SIGTERM")),
        }
    }

    /// The sidecar's container restarts: the kubelet counts a restart (`sim.kubelet.crash`: the
    /// pod is not Ready for a moment) and a new `baton agent` starts on the same port.
    pub async fn restart_agent(&self, name: &str) -> R<()> {
        self.kill_agent(name).await?;
        let pod = self.pod(name)?;
        let restarts = |p: &Pod| -> i32 {
            let st = p.status.as_ref();
            st.and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.restart_count)
                .sum()
        };
        let before = self.pods_api().get(name).await.map(|p| restarts(&p)).unwrap_or(0);
        self.cluster.restart_container(&self.name, name).await?;
        self.start_sidecar(&pod).await?;
        // Until the kubelet shows the restart and the pod Ready again.
        let pods = self.pods_api();
        wait_for(
            &format!("pod {name} restarted and Ready"),
            Duration::from_secs(60),
            || async {
                let p = pods.get_opt(name).await.ok()??;
                (restarts(&p) > before && baton::api::pod::is_ready(&p)).then_some(())
            },
        )
        .await
    }

    /// Replace the sidecar of `name` by one of the binary `use_agent_bin` names now (an upgrade of
    /// its container): SIGTERM the running one (it stops and releases every listener), then
    /// start the new one on the same port.
    pub async fn replace_agent(&self, name: &str) -> R<()> {
        self.term_agent(name).await?;
        let pod = self.pod(name)?;
        self.start_sidecar(&pod).await
    }

    /// Cut the sidecar of `name` off from the API server (its requests hang).
    pub fn partition_agent(&self, name: &str) -> R<()> {
        let pod = self.pod(name)?;
        self.cluster.set_blocked(&pod.identity, true)
    }

    pub fn heal_agent(&self, name: &str) -> R<()> {
        let pod = self.pod(name)?;
        self.cluster.set_blocked(&pod.identity, false)
    }

    /// The pod's containers all die at once (the node went away): sidecar SIGKILLed, app killed.
    pub async fn kill_containers(&self, name: &str) -> R<()> {
        let pod = self.pod(name)?;
        self.kill_agent(name).await?;
        pod.app.kill();
        Ok(())
    }

    /// Delete pod `name` gracefully (`grace` seconds): the kubelet SIGTERMs its sidecar; once the
    /// pod is gone from the API its app is dead too.
    pub async fn delete_pod(&self, name: &str, grace: u32) -> R<()> {
        let pod = self.pod(name)?;
        let dp = DeleteParams {
            grace_period_seconds: Some(grace),
            ..Default::default()
        };
        self.pods_api()
            .delete(name, &dp)
            .await
            .map_err(|e| format!("deleting pod {name}: {e}"))?;
        let pods = self.pods_api();
        let reaper = tokio::spawn(async move {
            let _ = wait_for("the pod gone", Duration::from_secs(3600), || {
                let pods = pods.clone();
                let (name, uid) = (pod.name.clone(), pod.uid.clone());
                async move {
                    match pods.get_opt(&name).await {
                        Ok(Some(p)) if p.metadata.uid.as_deref() == Some(&uid) => None,
                        Ok(_) => Some(()),
                        Err(_) => None,
                    }
                }
            })
            .await;
            // The kubelet has stopped every container.
            pod.app.kill();
            pod.addr.send_replace(None);
        });
        self.reapers.lock().unwrap_or_else(|p| p.into_inner()).push(reaper);
        Ok(())
    }

    /// `kubectl delete pod --force --grace-period=0`: the pod is gone from the API at once; its
    /// containers (sidecar and app) keep running until [`kill_containers`](Self::kill_containers).
    pub async fn force_delete_pod(&self, name: &str) -> R<()> {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        self.pods_api()
            .delete(name, &dp)
            .await
            .map(|_| ())
            .map_err(|e| format!("force-deleting pod {name}: {e}"))
    }

    /// Annotate pod `name` `baton.dev/drain=true` (`on`), or remove the annotation: a merge patch,
    /// as `kubectl annotate` writes it.
    pub async fn drain(&self, name: &str, on: bool) -> R<()> {
        let value = if on { json!("true") } else { serde_json::Value::Null };
        let patch = json!({"metadata": {"annotations": {baton::api::pod::DRAIN_ANNOTATION: value}}});
        self.pods_api()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "annotating pod {name} {}: {e}",
                    if on { "drained" } else { "undrained" }
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bind `port` on localhost, waiting up to `deadline` for it: a process another thread forks
    /// while a probe's socket is open holds a copy of that socket until it execs (close-on-exec
    /// closes it only then), which on a loaded machine can outlast the probe by milliseconds.
    fn bind_within(port: u16, deadline: Duration) -> std::io::Result<std::net::TcpListener> {
        let end = std::time::Instant::now() + deadline;
        loop {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    /// A sidecar's port is never one the kernel may hand to an outgoing connection meanwhile:
    /// it lies below the ephemeral range, and it is free: each is bound as soon as it is picked
    /// and held, so every later pick must pass over the ones held (a port picked earlier and let
    /// go may be taken by any other process on the machine before a later check). Other tests
    /// of the binary spawn processes meanwhile, which may hold a probe's socket until they exec.
    #[test]
    fn sidecar_ports_are_free_and_below_the_ephemeral_range() {
        let low = u16::try_from(ephemeral_floor()).expect("a port number");
        let mut held = Vec::new();
        for _ in 0..50 {
            let p = free_port().expect("a port");
            assert!(
                (u32::from(p) >= FIRST_PORT) && p < low,
                "port {p} is not in {FIRST_PORT}..{low}"
            );
            let listener = bind_within(p, Duration::from_secs(5)).expect("the port is free");
            held.push((p, listener));
        }
        let distinct: std::collections::BTreeSet<u16> = held.iter().map(|(p, _)| *p).collect();
        assert_eq!(distinct.len(), held.len(), "{distinct:?}");
    }
}
