//! Start the control plane in order — etcd, kube-apiserver, then kube-controller-manager,
//! kube-scheduler and kwok — wait until each is healthy, create the fake nodes, and write the
//! admin kubeconfig last, so its presence means "ready". Stop in the reverse order. Components
//! that exit are started again ([`ControlPlane::supervise`]). The directory's `pids` file names
//! each component's process, one `<name> <pid>` a line, written before the kubeconfig and again
//! after every restart (what [`crate::Attached::pid_of`] reads, for tests that pause or kill one).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, ServiceAccount};
use kube::api::{Api, ListParams};

use crate::binaries::Binaries;
use crate::nodes::{self, PodTiming};
use crate::pki::Pki;
use crate::procs::{free_port, Proc};
use crate::{kubeconfig, Error};

/// How to start a control plane.
#[derive(Clone, Debug)]
pub struct Options {
    /// Its directory: certificates, etcd's data, logs, kubeconfigs (emptied first).
    pub dir: PathBuf,
    /// Fake nodes.
    pub nodes: usize,
    /// etcd syncs every write to disk, as in production (off: `--unsafe-no-fsync`, faster tests).
    pub fsync: bool,
    pub timing: PodTiming,
}

impl Options {
    pub fn new(dir: PathBuf) -> Options {
        Options {
            dir,
            nodes: 3,
            fsync: true,
            timing: PodTiming::default(),
        }
    }
}

/// A running control plane; dropping it kills every process.
pub struct ControlPlane {
    pub dir: PathBuf,
    /// The admin kubeconfig (user `kubernetes-admin`, group `system:masters`).
    pub kubeconfig: PathBuf,
    pub server: String,
    pub etcd_url: String,
    pki: Pki,
    procs: std::sync::Mutex<Vec<Proc>>,
}

/// Every write (verb and user, no bodies) goes to `logs/audit.log`, one JSON line each: what the
/// tests and benchmarks count writes per identity with on this backend.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
";

const DEADLINE: Duration = Duration::from_secs(180);

/// The file in the control plane's directory that names each component's process.
pub(crate) const PIDS: &str = "pids";

impl ControlPlane {
    /// Start every component with `bins` as `opts` says; returns once all are healthy.
    pub async fn start(bins: &Binaries, opts: &Options) -> Result<ControlPlane, Error> {
        let dir = &opts.dir;
        for sub in ["etcd", "logs", "pki"] {
            let _ = std::fs::remove_dir_all(dir.join(sub));
        }
        let _ = std::fs::remove_file(dir.join("kubeconfig"));
        let _ = std::fs::remove_file(dir.join(PIDS));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let pki = Pki::create(dir)?;
        let (etcd_port, peer_port, api_port, kwok_port) = (free_port()?, free_port()?, free_port()?, free_port()?);
        let server = format!("https://127.0.0.1:{api_port}");
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let mut cp = ControlPlane {
            dir: dir.clone(),
            kubeconfig: dir.join("kubeconfig"),
            server: server.clone(),
            etcd_url: etcd_url.clone(),
            pki,
            procs: std::sync::Mutex::default(),
        };
        let logs = dir.join("logs");
        cp.spawn("etcd", bins, &etcd_args(dir, etcd_port, peer_port, opts.fsync), &logs)?;
        cp.wait("etcd", || etcd_healthy(etcd_url.clone())).await?;
        let policy = dir.join("audit-policy.yaml");
        std::fs::write(&policy, AUDIT_POLICY).map_err(|e| Error::io(&policy, e))?;
        let mut api_args = apiserver_args(&cp.pki, &etcd_url, api_port);
        api_args.push(format!("--audit-policy-file={}", policy.display()));
        api_args.push(format!("--audit-log-path={}", logs.join("audit.log").display()));
        cp.spawn("kube-apiserver", bins, &api_args, &logs)?;
        let admin = kubeconfig::client(&server, &cp.pki, "kubernetes-admin", Some("system:masters")).await?;
        cp.wait("kube-apiserver", || readyz(admin.clone())).await?;
        let kcm = cp.component_kubeconfig("kube-controller-manager", "system:kube-controller-manager", None)?;
        cp.spawn("kube-controller-manager", bins, &kcm_args(&cp.pki, &kcm), &logs)?;
        let sched = cp.component_kubeconfig("kube-scheduler", "system:kube-scheduler", None)?;
        cp.spawn("kube-scheduler", bins, &scheduler_args(&sched), &logs)?;
        let kwok = cp.component_kubeconfig("kwok", "kwok", Some("system:masters"))?;
        let stages = dir.join("kwok-stages.yaml");
        std::fs::write(&stages, nodes::stages(&opts.timing)).map_err(|e| Error::io(&stages, e))?;
        cp.spawn("kwok", bins, &kwok_args(&kwok, &stages, kwok_port), &logs)?;
        for i in 0..opts.nodes {
            nodes::create(&admin, i).await?;
        }
        let want = opts.nodes;
        cp.wait("kwok (nodes Ready)", || nodes_ready(admin.clone(), want))
            .await?;
        cp.wait("kube-controller-manager (ServiceAccounts, root CA)", || {
            namespace_ready(admin.clone())
        })
        .await?;
        cp.wait(
            "kube-controller-manager and kube-scheduler (leader Leases held)",
            || leaders_elected(admin.clone()),
        )
        .await?;
        cp.wait("kube-scheduler and kwok (a probe pod bound and Running)", || {
            probe_pod(admin.clone())
        })
        .await?;
        cp.write_pids()?;
        kubeconfig::write(
            &cp.kubeconfig,
            &server,
            &cp.pki,
            "kubernetes-admin",
            Some("system:masters"),
            "default",
        )?;
        Ok(cp)
    }

    fn spawn(&mut self, name: &str, bins: &Binaries, args: &[String], logs: &Path) -> Result<(), Error> {
        self.lock().push(Proc::spawn(name, &bins.path(name), args, logs)?);
        Ok(())
    }

    fn component_kubeconfig(&self, name: &str, user: &str, group: Option<&str>) -> Result<PathBuf, Error> {
        let path = self.pki.path(&format!("{name}.kubeconfig"));
        kubeconfig::write(&path, &self.server, &self.pki, user, group, "default")?;
        Ok(path)
    }

    /// Poll `check` until it says healthy; fails when a component exits or the deadline passes.
    async fn wait<F, Fut>(&mut self, component: &str, mut check: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let started = Instant::now();
        let mut why = String::new();
        while started.elapsed() < DEADLINE {
            for p in self.lock().iter_mut() {
                if let Some(status) = p.exited() {
                    return Err(Error::Exited(format!("{} ({status})", p.name), p.log_tail(30)));
                }
            }
            match check().await {
                Ok(()) => return Ok(()),
                Err(e) => why = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Unhealthy {
            component: component.to_string(),
            seconds: DEADLINE.as_secs(),
            why,
        })
    }

    /// Mint a kubeconfig for admin `user` (group `system:masters`) at `path`.
    pub fn kubeconfig_as(&self, user: &str, ns: &str, path: &Path) -> Result<(), Error> {
        kubeconfig::write(path, &self.server, &self.pki, user, Some("system:masters"), ns)
    }

    /// An admin client for `user` (group `system:masters`).
    pub async fn client_as(&self, user: &str) -> Result<kube::Client, Error> {
        kubeconfig::client(&self.server, &self.pki, user, Some("system:masters")).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Proc>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start again every component that exited, as a kubelet restarts the static pods of a
    /// control plane (kube-controller-manager exits when it cannot reach kube-apiserver in time,
    /// for one); what it restarted, with the exit status. Call it every second or so.
    /// The `pids` file is rewritten after a restart.
    pub fn supervise(&self) -> Result<Vec<String>, Error> {
        let mut restarted = Vec::new();
        for p in self.lock().iter_mut() {
            if let Some(status) = p.exited() {
                p.restart()?;
                restarted.push(format!("{} ({status}; restart {})", p.name, p.restarts));
            }
        }
        if !restarted.is_empty() {
            self.write_pids()?;
        }
        Ok(restarted)
    }

    /// The process ids, by component (for tests that stop or pause one).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.lock().iter().map(|p| (p.name.clone(), p.pid())).collect()
    }

    /// Write [`ControlPlane::pids`] to the directory's `pids` file, one `<name> <pid>` a line
    /// (written aside, then renamed: a reader never sees half of it).
    fn write_pids(&self) -> Result<(), Error> {
        let text: String = self
            .pids()
            .into_iter()
            .map(|(name, pid)| format!("{name} {pid}\n"))
            .collect();
        let (path, aside) = (self.dir.join(PIDS), self.dir.join(format!("{PIDS}.new")));
        std::fs::write(&aside, text).map_err(|e| Error::io(&aside, e))?;
        std::fs::rename(&aside, &path).map_err(|e| Error::io(&path, e))
    }

    /// Stop every component, the last started first.
    pub fn stop(self) {
        let mut procs = self.procs.into_inner().unwrap_or_else(|p| p.into_inner());
        while let Some(mut p) = procs.pop() {
            p.stop(Duration::from_secs(10));
        }
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn etcd_args(dir: &Path, port: u16, peer: u16, fsync: bool) -> Vec<String> {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer}");
    let mut a = s(&["--name", "baton", "--data-dir"]);
    a.push(dir.join("etcd").display().to_string());
    a.extend([
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=baton={peer}"),
        "--log-level=warn".into(),
    ]);
    if !fsync {
        a.push("--unsafe-no-fsync".into());
    }
    a
}

fn apiserver_args(pki: &Pki, etcd: &str, port: u16) -> Vec<String> {
    let p = |n: &str| pki.path(n).display().to_string();
    vec![
        format!("--etcd-servers={etcd}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--tls-cert-file={}", p("apiserver.crt")),
        format!("--tls-private-key-file={}", p("apiserver.key")),
        format!("--client-ca-file={}", p("ca.crt")),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        "--api-audiences=https://kubernetes.default.svc.cluster.local".into(),
        "--authorization-mode=Node,RBAC".into(),
        // The default plugins (ValidatingAdmissionPolicy among them) plus what kubeadm adds.
        "--enable-admission-plugins=NodeRestriction".into(),
        "--service-cluster-ip-range=10.96.0.0/16".into(),
        // The `kubernetes` Service's endpoints would name the advertised address, which may not
        // be loopback; nothing on fake nodes dials it.
        "--endpoint-reconciler-type=none".into(),
        "--allow-privileged=true".into(),
        "--profiling=false".into(),
        "--v=1".into(),
    ]
}

/// The controller manager's and the scheduler's leader election (60 s Leases, 50 s renew
/// deadline: at the defaults a loaded machine made both give up and exit), and no serving port.
const LEADER_ELECTION: &[&str] = &[
    "--leader-elect=true",
    "--leader-elect-lease-duration=60s",
    "--leader-elect-renew-deadline=50s",
    "--leader-elect-retry-period=5s",
    "--secure-port=0",
    "--v=1",
];

fn kcm_args(pki: &Pki, kubeconfig: &Path) -> Vec<String> {
    let p = |n: &str| pki.path(n).display().to_string();
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--service-account-private-key-file={}", p("sa.key")),
        format!("--root-ca-file={}", p("ca.crt")),
        format!("--cluster-signing-cert-file={}", p("ca.crt")),
        format!("--cluster-signing-key-file={}", p("ca.key")),
        "--use-service-account-credentials=true".into(),
        "--controllers=*,bootstrapsigner,tokencleaner".into(),
    ]
    .into_iter()
    .chain(s(LEADER_ELECTION))
    .collect()
}

fn scheduler_args(kubeconfig: &Path) -> Vec<String> {
    vec![format!("--kubeconfig={}", kubeconfig.display())]
        .into_iter()
        .chain(s(LEADER_ELECTION))
        .collect()
}

fn kwok_args(kubeconfig: &Path, stages: &Path, port: u16) -> Vec<String> {
    vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--config={}", stages.display()),
        "--manage-all-nodes=false".into(),
        format!(
            "--manage-nodes-with-annotation-selector={}={}",
            nodes::NODE_ANNOTATION.0,
            nodes::NODE_ANNOTATION.1
        ),
        "--node-ip=127.0.0.1".into(),
        "--cidr=10.244.0.0/16".into(),
        format!("--server-address=127.0.0.1:{port}"),
        "--node-lease-duration-seconds=40".into(),
    ]
}

async fn etcd_healthy(url: String) -> Result<(), String> {
    let addr = url.trim_start_matches("http://").to_string();
    let body = crate::procs::http_get(&addr, "/health").await?;
    if body.contains("\"health\":\"true\"") {
        Ok(())
    } else {
        Err(body)
    }
}

async fn readyz(client: kube::Client) -> Result<(), String> {
    let req = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client.request_text(req).await.map_err(|e| e.to_string())?;
    if text.trim() == "ok" {
        Ok(())
    } else {
        Err(text)
    }
}

async fn nodes_ready(client: kube::Client, want: usize) -> Result<(), String> {
    let list = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let ready = list.items.iter().filter(|n| nodes::is_ready(n)).count();
    if ready >= want {
        Ok(())
    } else {
        Err(format!("{ready} of {want} nodes Ready"))
    }
}

/// A pod in `default` is bound to a node (kube-scheduler) and Running (kwok); then removed.
async fn probe_pod(client: kube::Client) -> Result<(), String> {
    use kube::api::{DeleteParams, PostParams};
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let name = "baton-cluster-probe";
    let pod = match pods.get_opt(name).await.map_err(|e| e.to_string())? {
        Some(p) => p,
        None => {
            let p: Pod = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name},
                "spec": {"containers": [{"name": "probe", "image": "probe:v1"}], "terminationGracePeriodSeconds": 0},
            }))
            .map_err(|e| e.to_string())?;
            pods.create(&PostParams::default(), &p)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    if !(bound && running) {
        return Err(format!("probe pod bound: {bound}, Running: {running}"));
    }
    let gone = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete(name, &gone).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The `default` namespace has its ServiceAccount (pods cannot be created before it) and the
/// root CA ConfigMap.
async fn namespace_ready(client: kube::Client) -> Result<(), String> {
    Api::<ServiceAccount>::namespaced(client.clone(), "default")
        .get_opt("default")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no ServiceAccount default/default yet")?;
    Api::<ConfigMap>::namespaced(client, "default")
        .get_opt("kube-root-ca.crt")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no ConfigMap default/kube-root-ca.crt yet")?;
    Ok(())
}

/// kube-controller-manager and kube-scheduler each hold their leader Lease in `kube-system`.
async fn leaders_elected(client: kube::Client) -> Result<(), String> {
    let leases = Api::<Lease>::namespaced(client, "kube-system");
    for name in ["kube-controller-manager", "kube-scheduler"] {
        let lease = leases.get_opt(name).await.map_err(|e| e.to_string())?;
        let held = lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty());
        if !held {
            return Err(format!("no holder of Lease kube-system/{name} yet"));
        }
    }
    Ok(())
}
