//! Real kubectl (/usr/bin/kubectl) against a test's simulator, with its own HOME and discovery
//! cache (kubectl caches discovery per host, and each simulator is a new host). Shared by
//! `tests/` and `sim/tests/` (through `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

#[path = "run.rs"]
mod run;
pub use run::{unique, Run};

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// How long one kubectl run may take, beyond any `--timeout` it was given: generous, for a
/// loaded machine.
const DEADLINE: Duration = Duration::from_secs(120);

/// kubectl bound to one simulator.
pub struct Kubectl {
    home: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(sim: &baton_sim::Sim) -> Kubectl {
        Self::with_kubeconfig(sim.kubeconfig_path().to_path_buf())
    }

    /// kubectl with another kubeconfig (another identity).
    pub fn with_kubeconfig(kubeconfig: PathBuf) -> Kubectl {
        let home = std::env::temp_dir().join(format!("baton-kubectl-{}", unique()));
        std::fs::create_dir_all(&home).expect("kubectl home");
        Kubectl { home, kubeconfig }
    }

    /// kubectl as ServiceAccount `ns/name` of `sim` (its token bound to `pod` when given).
    pub fn as_service_account(sim: &baton_sim::Sim, ns: &str, name: &str, pod: Option<&str>) -> Kubectl {
        let mut k = Self::with_kubeconfig(PathBuf::new());
        k.kubeconfig = k.home.join("sa.kubeconfig");
        sim.kubeconfig_for_service_account(ns, name, pod, &k.kubeconfig)
            .expect("writing a ServiceAccount kubeconfig");
        k
    }

    /// This kubectl's HOME (a temporary directory, removed on drop).
    pub fn home(&self) -> &std::path::Path {
        &self.home
    }

    /// `kubectl ARGS` (stdin closed, killed on drop), not started.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KUBECTL);
        c.env("HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Run to completion (within [`DEADLINE`]).
    pub async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(DEADLINE, self.cmd(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish"))
            .expect("kubectl runs");
        Run::from(out)
    }

    /// Run and require exit 0; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "kubectl {args:?} failed: {run}");
        run.stdout
    }

    /// `kubectl patch KIND NAME --type merge -p PATCH`, required to succeed; returns stdout.
    pub async fn merge_patch(&self, kind: &str, name: &str, patch: &str) -> String {
        self.ok(&["patch", kind, name, "--type", "merge", "-p", patch]).await
    }

    /// A shell command line with `kubectl` meaning this kubectl (`sh -c`), run to completion:
    /// for sequences exactly as a CI script writes them (`kubectl apply … && kubectl wait …`).
    pub async fn sh(&self, script: &str) -> Run {
        let kubectl = format!("{KUBECTL} --cache-dir {}", self.home.join("cache").to_string_lossy());
        let out = Command::new("sh")
            .arg("-c")
            .arg(script.replace("kubectl ", &format!("{kubectl} ")))
            .env("HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(DEADLINE, out)
            .await
            .unwrap_or_else(|_| panic!("`{script}` did not finish"))
            .expect("sh runs");
        Run::from(out)
    }

    /// Start a long-running kubectl (stdout and stderr piped).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl")
    }

    /// Write `value` as a JSON manifest file in this kubectl's home; returns its path.
    pub fn file(&self, name: &str, value: &serde_json::Value) -> String {
        let p = self.home.join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(value).expect("json")).expect("write manifest");
        p.to_string_lossy().into_owned()
    }
}

/// Wait for a spawned kubectl to exit (bounded by `deadline`).
pub async fn finish(child: Child, deadline: Duration) -> Run {
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .expect("kubectl exits in time")
        .expect("kubectl output");
    Run::from(out)
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The rows of `kubectl get` table output, split on runs of spaces, header row first.
pub fn table(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The cell of column `column` (by header) in the row whose NAME is `name`.
pub fn cell(stdout: &str, name: &str, column: &str) -> Option<String> {
    let rows = table(stdout);
    let header = rows.first()?;
    let i = header.iter().position(|h| h == column)?;
    rows.iter()
        .skip(1)
        .find(|r| r.first().map(String::as_str) == Some(name))?
        .get(i)
        .cloned()
}
