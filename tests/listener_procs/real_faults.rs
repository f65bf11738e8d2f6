//! Faults of the real control plane itself, with real `baton agent` and `baton controller`
//! processes: kube-apiserver paused (SIGSTOP) for longer than the listeners' lease, etcd paused,
//! and etcd killed (SIGKILL) in the middle of a drain and started again by `baton-cluster` (as a
//! kubelet restarts a control plane's static pod). Throughout, the harness samples every app every
//! 20 ms: no listener may run in two apps at any moment, no fencing token may go back, and once
//! the control plane answers again every listener must run again within a deadline.
//!
//! A paused or killed component stops every test that shares the control plane, so these tests
//! are `#[ignore]`d: `make test-real` runs them alone, one at a time, after the rest of the real
//! tier (`--ignored --test-threads=1`). They fail at once on any other backend.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_cluster::{procs, Attached};
use kube::api::ListParams;

use crate::harness::app::AppConfig;
use crate::harness::{listeners, real, wait_for, AgentFlags, Cluster, Ns, R};
use crate::{assert_clean, ok};

/// The listeners' lease duration (`spec.leaseDurationSeconds`).
const LEASE: Duration = Duration::from_secs(3);
/// How long a component stays paused: longer than the lease, so every agent passes its deadline
/// and the controller's clock says every pod expired; shorter than the harness controller's renew
/// deadline (8 s), so the controller keeps its leadership through it.
const PAUSE: Duration = Duration::from_secs(5);
/// From the control plane answering again to every listener running again.
const BACK: Duration = Duration::from_secs(45);
const LONG: Duration = Duration::from_secs(90);
const LISTENERS: usize = 12;

/// Fail unless this run's backend is the real control plane.
fn require_real() {
    assert!(
        real::selected(),
        "these tests make faults on the real control plane's processes: run them under \
         `baton-cluster exec` (BATON_TEST_CLUSTER=real, BATON_CLUSTER_DIR), as `make test-real` does"
    );
}

fn real_of(ns: &Ns) -> &real::Real {
    match ns.cluster.real() {
        Some(r) => r,
        None => panic!("the shared cluster is not the real control plane"),
    }
}

fn attached(ns: &Ns) -> &Attached {
    &real_of(ns).attached
}

/// How many times the controller fenced a pod of the namespace (a patch of its liveness Lease
/// that succeeded) after byte `mark` of kube-apiserver's audit log.
fn fences(ns: &Ns, mark: u64) -> usize {
    let writes = real_of(ns).audited_writes(mark);
    writes
        .iter()
        .filter(|w| w.namespace == ns.name && w.resource == "leases" && w.verb == "patch" && w.code == 200)
        .filter(|w| w.user.starts_with("ctl-") && w.name.starts_with("baton-agent."))
        .count()
}

/// Component `name` stopped with SIGSTOP until dropped (SIGCONT): a failing test never leaves the
/// shared control plane paused.
struct Paused {
    name: &'static str,
    pid: u32,
}

impl Paused {
    fn new(cp: &Attached, name: &'static str) -> R<Paused> {
        let pid = cp.pid_of(name).map_err(|e| e.to_string())?;
        if !procs::signal(pid, libc::SIGSTOP) {
            return Err(format!("SIGSTOP to {name} (pid {pid}) failed"));
        }
        Ok(Paused { name, pid })
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if !procs::signal(self.pid, libc::SIGCONT) {
            eprintln!("SIGCONT to {} (pid {}) failed", self.name, self.pid);
        }
    }
}

/// The running controller: `id` if it still runs, else a new one (it gave up its leadership
/// while the API server could not answer, and exited, as it must; its Deployment would start
/// it again). Whether it had to be started again.
async fn controller_running(ns: &Ns, id: &str) -> (String, bool) {
    let alive = ns.controller_pid(id).is_some_and(real::node::process_alive);
    if alive {
        return (id.to_string(), false);
    }
    let log = ns.controller_log(id).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    eprintln!(
        "controller {id} exited; its last lines (newest first):\n{}",
        tail.join("\n")
    );
    ok(ns.kill_controller(id).await);
    (ok(ns.start_controller().await), true)
}

/// A namespace with a controller, pods `pods` and set `sxt` of [`LISTENERS`] listeners running;
/// the Leases: listener → (holder, token).
async fn running_set(
    name: &str,
    app: AppConfig,
    pods: &[&str],
) -> (Ns, String, BTreeMap<String, (Option<String>, i32)>) {
    require_real();
    let ns = ok(Ns::new(Cluster::shared(), name, app, AgentFlags::default()).await);
    let ctl = ok(ns.start_controller().await);
    for p in pods {
        ok(ns.create_pod(p).await);
    }
    let (spec, _) = listeners("sxt", LISTENERS);
    let lease = i32::try_from(LEASE.as_secs()).unwrap_or(i32::MAX);
    ok(ns.create_set("sxt", spec, lease).await);
    let before = ok(ns.settled("sxt", LISTENERS, "every listener running", LONG).await);
    (ns, ctl, before)
}

/// Every listener's token now is at least what it was `before`; how many rose.
fn tokens_rose(
    before: &BTreeMap<String, (Option<String>, i32)>,
    after: &BTreeMap<String, (Option<String>, i32)>,
) -> usize {
    assert_eq!(after.len(), before.len(), "{after:?}");
    let mut rose = 0;
    for (id, (_, token)) in after {
        let was = before.get(id).map(|b| b.1).unwrap_or(i32::MAX);
        assert!(*token >= was, "{id}: token {token} after {was}");
        rose += usize::from(*token > was);
    }
    rose
}

/// Pause `component` for [`PAUSE`] while every listener runs: cut off from the API server,
/// every agent stops its listeners by its deadline (the lease after its last renewal, less the
/// safety margin), and after the resume every listener runs again.
async fn pause_runs_nothing_twice(component: &'static str, name: &str) {
    // Apps that ignore `validUntil`: the agents themselves must stop what they can no longer renew.
    let app = AppConfig {
        honour_valid_until: false,
        ..AppConfig::default()
    };
    let (ns, ctl, before) = running_set(name, app, &["pa-a", "pa-b", "pa-c"]).await;
    let (_, keys) = listeners("sxt", LISTENERS);
    let paused = ok(Paused::new(attached(&ns), component));
    let at = Instant::now();
    ok(wait_for(
        &format!("every listener stopped within the lease while {component} is paused"),
        LEASE,
        || async { (ns.log.running_count() == 0).then_some(()) },
    )
    .await);
    let stopped = at.elapsed();
    // The fault itself: the component stays paused for PAUSE in all.
    tokio::time::sleep_until((at + PAUSE).into()).await;
    let mark = real_of(&ns).audit_len();
    drop(paused);
    let resumed = Instant::now();
    ok(ns
        .wait_running(
            &format!("every listener running again after {component} resumed"),
            &keys,
            BACK,
            |_| true,
        )
        .await);
    let back = resumed.elapsed();
    let (_, restarted) = controller_running(&ns, &ctl).await;
    let after = ok(ns
        .settled("sxt", LISTENERS, "every Lease agreeing with its app", LONG)
        .await);
    let rose = tokens_rose(&before, &after);
    let fences = fences(&ns, mark);
    let a = ns.log.analyse();
    println!(
        "{component} paused {PAUSE:?} (lease {LEASE:?}): every listener stopped after {stopped:.1?}, \
         all running again {back:.1?} after the resume; pods fenced after the resume: {fences}; \
         {rose} of {LISTENERS} tokens rose; controller restarted: {restarted}; {} samples, {} duplicate",
        a.samples, a.duplicate_samples
    );
    assert_clean(&ns, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "pauses the shared control plane: make test-real runs it alone"]
async fn a_paused_api_server_runs_nothing_twice_and_every_listener_comes_back() {
    pause_runs_nothing_twice("kube-apiserver", "fault-api-pause").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "pauses the shared control plane: make test-real runs it alone"]
async fn a_paused_etcd_runs_nothing_twice_and_every_listener_comes_back() {
    pause_runs_nothing_twice("etcd", "fault-etcd-pause").await;
}

/// SIGKILL `component` and wait until `baton-cluster` has started it again (another pid in the
/// control plane's `pids` file) and kube-apiserver answers a consistent list: how long it took.
async fn kill_until_restarted(ns: &Ns, component: &str) -> Duration {
    let cp = attached(ns);
    let pid = ok(cp.pid_of(component).map_err(|e| e.to_string()));
    let at = Instant::now();
    assert!(procs::signal(pid, libc::SIGKILL), "SIGKILL to {component} (pid {pid})");
    ok(wait_for(&format!("{component} started again"), LONG, || async {
        cp.pid_of(component).ok().filter(|p| *p != pid).map(|_| ())
    })
    .await);
    let leases = ns.leases();
    ok(wait_for("kube-apiserver answering a list again", LONG, || async {
        leases.list(&ListParams::default().limit(1)).await.ok().map(|_| ())
    })
    .await);
    at.elapsed()
}

/// A pod is deleted while it runs listeners (its apps take 1 s to stop them), and etcd is killed
/// as its agent begins to stop them: the stops, releases and the pod's removal meet an API server
/// without its store. Nothing runs twice, nothing is assigned to the deleted pod, and every
/// listener runs on the remaining pods once etcd is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kills the shared control plane's etcd: make test-real runs it alone"]
async fn etcd_killed_during_a_drain_runs_nothing_twice_and_every_listener_moves() {
    let app = AppConfig {
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    };
    let (ns, ctl, before) = running_set("fault-etcd-kill", app, &["ek-a", "ek-b", "ek-c"]).await;
    let (_, keys) = listeners("sxt", LISTENERS);
    let drained: Vec<String> = ns
        .running_on()
        .into_iter()
        .filter_map(|(l, p)| (p == "ek-a").then_some(l))
        .collect();
    assert!(!drained.is_empty(), "ek-a runs no listener: {:?}", ns.running_on());
    ok(ns.delete_pod("ek-a", 30).await);
    ok(ns.mark_dead("ek-a").await);
    let sidecar = ok(ns.pod("ek-a"));
    ok(wait_for("ek-a's agent shutting down", LONG, || async {
        sidecar.logs().contains("agent shutting down").then_some(())
    })
    .await);
    let stopping = ns.running_on().values().filter(|p| *p == "ek-a").count();
    assert!(stopping > 0, "ek-a's apps stopped everything before etcd was killed");
    let outage = kill_until_restarted(&ns, "etcd").await;
    let at = Instant::now();
    ok(ns
        .wait_running(
            "every listener running on ek-b or ek-c after etcd's restart",
            &keys,
            BACK,
            |p| p != "ek-a",
        )
        .await);
    let back = at.elapsed();
    let pods = ns.pods_api();
    ok(wait_for("ek-a gone", LONG, || async {
        pods.get_opt("ek-a").await.ok()?.is_none().then_some(())
    })
    .await);
    let (_, restarted) = controller_running(&ns, &ctl).await;
    let after = ok(ns
        .settled("sxt", LISTENERS, "every Lease agreeing with its app", LONG)
        .await);
    assert!(
        after.values().all(|(h, _)| h.as_deref().is_some_and(|h| h != "ek-a")),
        "{after:?}"
    );
    let rose = tokens_rose(&before, &after);
    for key in &drained {
        let id = key.strip_prefix("sxt/").unwrap_or(key);
        let (was, now) = (before.get(id).map(|b| b.1), after.get(id).map(|a| a.1));
        assert!(now > was, "{key} moved off ek-a with token {now:?} after {was:?}");
    }
    let a = ns.log.analyse();
    println!(
        "etcd killed during ek-a's drain ({stopping} of its {} listeners still running): restarted and answering after \
         {outage:.1?}, every listener running on ek-b/ek-c {back:.1?} later; {rose} of {LISTENERS} \
         tokens rose; controller restarted: {restarted}; {} samples, {} duplicate",
        drained.len(),
        a.samples,
        a.duplicate_samples
    );
    assert_clean(&ns, true);
}
