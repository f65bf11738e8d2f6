//! Real kubectl (/usr/bin/kubectl) against a simulator, with its own HOME and discovery cache.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use baton_sim::Sim;
use tokio::process::Command;

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// kubectl with a fresh HOME and cache dir per simulator (kubectl caches discovery per host).
pub struct Kubectl {
    pub home: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(sim: &Sim) -> Self {
        Self::with_kubeconfig(sim.kubeconfig_path().to_path_buf())
    }

    /// kubectl with another kubeconfig (another identity).
    pub fn with_kubeconfig(kubeconfig: PathBuf) -> Self {
        let home = std::env::temp_dir().join(format!("baton-kubectl-{}", uuid_like()));
        std::fs::create_dir_all(&home).expect("home");
        Kubectl { home, kubeconfig }
    }

    /// kubectl as ServiceAccount `ns/name` (a token bound to `pod` when given).
    pub fn as_service_account(sim: &Sim, ns: &str, name: &str, pod: Option<&str>) -> Self {
        let mut k = Self::with_kubeconfig(PathBuf::new());
        k.kubeconfig = k.home.join("sa.kubeconfig");
        sim.kubeconfig_for_service_account(ns, name, pod, &k.kubeconfig)
            .expect("writing a ServiceAccount kubeconfig");
        k
    }

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

    /// Run to completion; (exit code, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.cmd(args).output())
            .await
            .expect("kubectl finished in time")
            .expect("kubectl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args).await;
        assert_eq!(code, 0, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    pub fn file(&self, name: &str, v: &serde_json::Value) -> String {
        let p = self.home.join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(v).expect("json")).expect("write manifest");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

pub fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
