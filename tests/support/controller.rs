//! `baton controller` (the real binary) as a child process against a test's simulator: spawned
//! with its own identity (kubeconfig token), metrics on an ephemeral port and JSON logs; its
//! endpoints, metrics and log for the tests to read. Killed on drop, its log printed if the test
//! panics.
//!
//! `BATON_TEST_BIN=/path/to/baton` runs the tests against another build of the binary, e.g. one
//! from before a fix, to see them fail.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use baton_sim::Sim;
use serde_json::Value;
use tokio::process::Command;

use super::process::{http_get, metric, LoggedChild};
use super::{wait_for, LONG, NS};

/// A `baton controller` process (killed on drop; its log printed if the test panics).
pub struct ControllerProc {
    pub id: String,
    pub proc: LoggedChild,
    pub addr: Option<SocketAddr>,
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- log of controller {} -----\n{}", self.id, self.proc.log_text());
        }
    }
}

/// Spawn `baton controller` as `id` (its kubeconfig's token is `id`, so fault rules can single
/// it out), watching [`NS`], metrics on an ephemeral port, JSON logs; `extra` flags appended.
pub fn spawn(sim: &Sim, dir: &Path, id: &str, extra: &[&str]) -> ControllerProc {
    let kubeconfig = dir.join(format!("{id}.kubeconfig"));
    sim.kubeconfig_as(id, &kubeconfig).expect("writing a kubeconfig");
    spawn_with(&kubeconfig, id, extra)
}

/// [`spawn`] as `id`, a plain authenticated user outside `system:masters` (whom API Priority
/// and Fairness does not exempt); the simulator must let it do its work (e.g. AlwaysAllow).
pub fn spawn_as_user(sim: &Sim, dir: &Path, id: &str, extra: &[&str]) -> ControllerProc {
    sim.register_user(
        id,
        baton_sim::auth::UserInfo {
            username: id.to_string(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        },
    );
    let kubeconfig = dir.join(format!("{id}.kubeconfig"));
    sim.kubeconfig_with_token(id, id, &kubeconfig)
        .expect("writing a kubeconfig");
    spawn_with(&kubeconfig, id, extra)
}

fn spawn_with(kubeconfig: &Path, id: &str, extra: &[&str]) -> ControllerProc {
    spawn_in(kubeconfig, NS, id, extra)
}

/// Spawn `baton controller` as `id` with `kubeconfig`, watching namespace `ns`, metrics on an
/// ephemeral port, JSON logs; `extra` flags appended.
pub fn spawn_in(kubeconfig: &Path, ns: &str, id: &str, extra: &[&str]) -> ControllerProc {
    // BATON_TEST_BIN replays the tests against another build (e.g. one from before a fix).
    let bin = std::env::var_os("BATON_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_baton").into());
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["controller", "--watch-namespace", ns, "--identity", id])
        .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .env("RUST_LOG", "info,kube=warn")
        .env_remove("KUBECONFIG")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE");
    let proc = LoggedChild::spawn(&mut cmd, "bound").unwrap_or_else(|e| panic!("starting the baton binary: {e}"));
    ControllerProc {
        id: id.to_string(),
        proc,
        addr: None,
    }
}

/// Spawn and wait until it serves its probes.
pub async fn start(sim: &Sim, dir: &Path, id: &str, extra: &[&str]) -> ControllerProc {
    started(spawn(sim, dir, id, extra)).await
}

/// [`spawn_in`] and wait until it serves its probes.
pub async fn start_in(kubeconfig: &Path, ns: &str, id: &str, extra: &[&str]) -> ControllerProc {
    started(spawn_in(kubeconfig, ns, id, extra)).await
}

async fn started(mut p: ControllerProc) -> ControllerProc {
    match p.proc.wait_addr(LONG).await {
        Some(a) => p.addr = Some(a),
        None => panic!("controller {} did not report its metrics address", p.id),
    }
    p
}

/// Leader election off: the process reconciles as soon as its caches are synced.
pub const NO_ELECTION: [&str; 2] = ["--leader-elect", "false"];
/// Leader election timings for tests: a 3 s lease, renewed within 2 s, retried every 500 ms.
pub const ELECTION_TIMINGS: [&str; 6] = [
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "500ms",
];

impl ControllerProc {
    /// Where it serves /metrics, /healthz and /readyz.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("address known")
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr(), path).await
    }

    /// The whole `/metrics` text, if it answered.
    pub async fn scrape(&self) -> Option<String> {
        match self.get("/metrics").await {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// One series of `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.scrape().await?, series)
    }

    /// `/readyz` answers 200, within [`LONG`]; panics if the process exits first.
    pub async fn wait_ready(&self) {
        wait_for(&format!("/readyz 200 on {}", self.id), LONG, || async {
            assert!(
                !self.proc.log_closed(),
                "controller {} exited before it was ready",
                self.id
            );
            matches!(self.get("/readyz").await, Some((200, _))).then_some(())
        })
        .await
    }

    /// Series `series` of `/metrics` reads `value`, within [`LONG`].
    pub async fn wait_metric(&self, series: &str, value: f64) {
        wait_for(&format!("{series} {value} on {}", self.id), LONG, || async {
            (self.metric(series).await == Some(value)).then_some(())
        })
        .await
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

    /// The exit status within `deadline`; panics if it still runs.
    pub async fn exited(&mut self, deadline: Duration) -> ExitStatus {
        match self.wait_exit(deadline).await {
            Some(s) => s,
            None => panic!("controller {} did not exit within {deadline:?}", self.id),
        }
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

/// A controller "ctrl" with no election and its directory: [`start`] in a [`temp_dir`] tagged
/// `tag`. The process is killed before its directory is removed.
pub async fn start_in_temp(sim: &Sim, tag: &str) -> InTemp {
    let dir = temp_dir(tag);
    let proc = start(sim, dir.path(), "ctrl", &NO_ELECTION).await;
    InTemp { proc, _dir: dir }
}

/// A controller and its temporary directory (fields drop in order: the process first).
pub struct InTemp {
    pub proc: ControllerProc,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for InTemp {
    type Target = ControllerProc;
    fn deref(&self) -> &ControllerProc {
        &self.proc
    }
}

impl std::ops::DerefMut for InTemp {
    fn deref_mut(&mut self) -> &mut ControllerProc {
        &mut self.proc
    }
}

/// A temporary directory (for kubeconfigs), removed on drop.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("baton-test-{tag}-"))
        .tempdir()
        .expect("creating a temporary directory")
}
