//! Graceful pod deletion as a kubelet does it: SIGTERM to attached OS processes, the pod stays
//! Terminating until they exit (or its containers' stop delay passes), never longer than the
//! grace period (then SIGKILL); force deletes remove the pod at once and signal nothing.
use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_sim::{KubeletConfig, Sim, SimConfig};
use common::{raw, wait_for};
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

async fn sim_with(stop_delay: Duration) -> Sim {
    Sim::start(SimConfig {
        kubelet: KubeletConfig {
            stop_delay,
            ..KubeletConfig::default()
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

async fn running_pod(sim: &Sim, name: &str, image: &str, grace: i64) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": grace, "containers": [{"name": "c", "image": image}]}});
    let r = raw(
        sim,
        "POST",
        "/api/v1/namespaces/default/pods",
        Some("application/json"),
        pod.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    wait_for("the pod to run", LONG, || {
        let path = path.clone();
        async move { (raw(sim, "GET", &path, None, b"").await.json()["status"]["phase"] == "Running").then_some(()) }
    })
    .await;
}

async fn exists(sim: &Sim, name: &str) -> bool {
    raw(
        sim,
        "GET",
        &format!("/api/v1/namespaces/default/pods/{name}"),
        None,
        b"",
    )
    .await
    .code
        == 200
}

/// A process that records SIGTERM in `dir/term` and exits once `dir/go` exists (or never, with
/// `ignore`: it ignores SIGTERM).
/// A shell that records SIGTERM in `dir/term` (and then exits once `dir/go` exists, unless it
/// `ignore`s the signal). Returns once its trap is set (`dir/ready`): a SIGTERM before that would
/// kill the shell without a trace (seen on a loaded CI machine).
async fn spawn_process(dir: &Path, ignore: bool) -> tokio::process::Child {
    let script = if ignore {
        format!(
            "trap 'echo term > {d}/term' TERM; echo ready > {d}/ready; while true; do sleep 0.05; done",
            d = dir.display()
        )
    } else {
        format!(
            "trap 'echo term > {d}/term; while [ ! -e {d}/go ]; do sleep 0.05; done; exit 0' TERM; echo ready > {d}/ready; while true; do sleep 0.05; done",
            d = dir.display()
        )
    };
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sh");
    wait_for("the process to set its SIGTERM trap", LONG, || {
        let f = dir.join("ready");
        async move { f.exists().then_some(()) }
    })
    .await;
    child
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("baton-sim-graceful-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()))
        .is_some_and(|c| c != 'Z')
}

#[tokio::test]
async fn a_deleted_pod_stays_terminating_until_its_attached_process_exits() {
    let sim = sim_with(Duration::from_millis(50)).await;
    running_pod(&sim, "agent", "baton:1", 30).await;
    let dir = tmpdir("exit");
    let child = spawn_process(&dir, false).await;
    let pid = child.id().expect("pid");
    // Through the CLI, as a test driving a separate `baton-sim serve` would.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-sim"))
        .args([
            "attach",
            "--namespace",
            "default",
            "--pod",
            "agent",
            "--pid",
            &pid.to_string(),
        ])
        .env("KUBECONFIG", sim.kubeconfig_path())
        .output()
        .await
        .expect("baton-sim attach runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("attached process {pid} to pod default/agent\n")
    );

    let r = raw(&sim, "DELETE", "/api/v1/namespaces/default/pods/agent", None, b"").await;
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["metadata"]["deletionGracePeriodSeconds"], 30);
    wait_for("SIGTERM to reach the process", LONG, || {
        let f = dir.join("term");
        async move { f.exists().then_some(()) }
    })
    .await;
    // The process has not exited: the pod is still there, Terminating.
    assert!(exists(&sim, "agent").await, "the pod must wait for its process");
    assert!(alive(pid));
    std::fs::write(dir.join("go"), b"").expect("let it exit");
    wait_for("the pod to go once its process exited", LONG, || {
        let sim = &sim;
        async move { (!exists(sim, "agent").await).then_some(()) }
    })
    .await;
    assert!(!alive(pid));
    drop(child);
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_killed_when_the_grace_period_ends() {
    let sim = sim_with(Duration::from_millis(50)).await;
    running_pod(&sim, "stubborn", "baton:1", 30).await;
    let dir = tmpdir("kill");
    let child = spawn_process(&dir, true).await;
    let pid = child.id().expect("pid");
    sim.kubelet.attach_pid("default", "stubborn", pid).expect("attach");
    let r = raw(
        &sim,
        "DELETE",
        "/api/v1/namespaces/default/pods/stubborn",
        Some("application/json"),
        br#"{"gracePeriodSeconds":1}"#,
    )
    .await;
    assert_eq!(r.code, 200);
    wait_for("SIGTERM to reach the process", LONG, || {
        let f = dir.join("term");
        async move { f.exists().then_some(()) }
    })
    .await;
    wait_for("the pod to go after the grace period", LONG, || {
        let sim = &sim;
        async move { (!exists(sim, "stubborn").await).then_some(()) }
    })
    .await;
    assert!(!alive(pid), "SIGKILL after the grace period");
    drop(child);
}

#[tokio::test]
async fn force_delete_removes_the_pod_at_once_and_signals_nothing() {
    let sim = sim_with(Duration::from_millis(50)).await;
    running_pod(&sim, "forced", "baton:1", 30).await;
    let dir = tmpdir("force");
    let mut child = spawn_process(&dir, false).await;
    let pid = child.id().expect("pid");
    sim.kubelet.attach_pid("default", "forced", pid).expect("attach");
    let r = raw(
        &sim,
        "DELETE",
        "/api/v1/namespaces/default/pods/forced",
        Some("application/json"),
        br#"{"gracePeriodSeconds":0}"#,
    )
    .await;
    assert_eq!(r.code, 200);
    assert!(!exists(&sim, "forced").await, "gone at once");
    // Give a wrongly sent signal every chance to arrive, then check none did.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(pid), "a force delete leaves the process running");
    assert!(!dir.join("term").exists(), "and does not signal it");
    let _ = child.kill().await;
}

#[tokio::test]
async fn without_a_process_the_stop_delay_holds_the_pod_but_never_past_the_grace_period() {
    // A stop delay far beyond the grace period: the pod goes when the grace period ends.
    let sim = sim_with(Duration::from_secs(3600)).await;
    running_pod(&sim, "slow", "app:1", 1).await;
    let r = raw(&sim, "DELETE", "/api/v1/namespaces/default/pods/slow", None, b"").await;
    assert_eq!(r.code, 200);
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
    assert!(exists(&sim, "slow").await, "Terminating while its containers stop");
    wait_for("the pod to go at the end of its grace period", LONG, || {
        let sim = &sim;
        async move { (!exists(sim, "slow").await).then_some(()) }
    })
    .await;
    // Attaching to a missing pod or a dead process is refused.
    let r = raw(
        &sim,
        "POST",
        "/baton-sim/attach?namespace=default&pod=nope&pid=1",
        None,
        b"",
    )
    .await;
    assert_eq!(r.code, 404);
    assert_eq!(r.json()["message"], "pods \"nope\" not found");
    running_pod(&sim, "other", "app:1", 1).await;
    let r = raw(
        &sim,
        "POST",
        "/baton-sim/attach?namespace=default&pod=other&pid=4294967295",
        None,
        b"",
    )
    .await;
    assert_eq!(r.code, 400);
    assert_eq!(r.json()["message"], "process 4294967295 is not running");
}
