//! The real `baton dashboard` binary against a test's simulator, and what a browser would send
//! it: pages, actions (with the page's CSRF token, Origin and JSON), and the live stream read
//! event by event. Also used, through `#[path]`, by tests/cli and tests/packaging (the chart's
//! dashboard).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use baton_sim::Sim;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::support::process::http::{request, RawResponse};
use crate::support::process::LoggedChild;
use crate::support::{Env, LONG, NS};

/// A `baton dashboard` process (killed on drop; its log printed if the test panics).
pub struct Dashboard {
    pub proc: LoggedChild,
    pub addr: SocketAddr,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- log of baton dashboard -----\n{}", self.proc.log_text());
        }
    }
}

/// Start `baton dashboard` on the simulator's admin kubeconfig with `extra` flags (e.g.
/// `--as jane`), on a free loopback port, and wait until it serves.
pub async fn start(sim: &Sim, extra: &[&str]) -> Dashboard {
    start_with(sim.kubeconfig_path(), extra).await
}

pub async fn start_with(kubeconfig: &Path, extra: &[&str]) -> Dashboard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "-n",
            NS,
            "dashboard",
            "--address",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .args(extra)
        .env("RUST_LOG", "info,kube=warn")
        .env_remove("KUBECONFIG");
    let mut proc = LoggedChild::spawn(&mut cmd, "bound").expect("starting baton dashboard");
    let addr = match proc.wait_addr(LONG).await {
        Some(a) => a,
        None => panic!("baton dashboard did not report its address:\n{}", proc.log_text()),
    };
    Dashboard { proc, addr }
}

impl Dashboard {
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET `path` as a browser on this origin would.
    pub async fn get(&self, path: &str) -> RawResponse {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> RawResponse {
        tokio::time::timeout(LONG, request(self.addr, "GET", path, headers, b""))
            .await
            .unwrap_or_else(|_| panic!("GET {path} did not answer"))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The CSRF token a page carries.
    pub async fn token(&self) -> String {
        let page = self.get("/").await;
        assert_eq!(page.code, 200, "{}", page.text());
        let text = page.text();
        let at = text.find(r#"name="csrf-token" content=""#).expect("a csrf-token meta") + 27;
        text[at..at + text[at..].find('"').expect("end of the token")].to_string()
    }

    /// POST an action on Rollout `name` of [`NS`] as the page does (token, Origin, JSON).
    pub async fn act(&self, name: &str, action: &str, body: Value) -> (u16, Value) {
        self.act_in(NS, name, action, body).await
    }

    /// [`Self::act`] in namespace `ns`.
    pub async fn act_in(&self, ns: &str, name: &str, action: &str, body: Value) -> (u16, Value) {
        let token = self.token().await;
        let origin = self.origin();
        let r = self
            .post(
                &format!("/api/rollouts/{ns}/{name}/{action}"),
                &[
                    ("Origin", &origin),
                    ("X-CSRF-Token", &token),
                    ("Content-Type", "application/json"),
                ],
                body.to_string().as_bytes(),
            )
            .await;
        (r.code, r.json())
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        tokio::time::timeout(LONG, request(self.addr, "POST", path, headers, body))
            .await
            .unwrap_or_else(|_| panic!("POST {path} did not answer"))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Open the live stream `path`.
    pub async fn live(&self, path: &str) -> Live {
        let mut s = TcpStream::connect(self.addr).await.expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        );
        s.write_all(req.as_bytes()).await.expect("send");
        Live {
            stream: s,
            buf: Vec::new(),
            seen: 0,
        }
    }
}

/// A live stream, read as it arrives.
pub struct Live {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already turned into events.
    seen: usize,
}

impl Live {
    /// The next `update` event's fragment, within `deadline`.
    pub async fn next(&mut self, deadline: Duration) -> Option<String> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(f) = self.parse() {
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout_at(end, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait for a fragment for which `pred` holds; panics after [`LONG`] with the last one.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = tokio::time::Instant::now() + LONG;
        let mut last = String::new();
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(f) if pred(&f) => return f,
                Some(f) => last = f,
                None => panic!("no live update with {what} within {LONG:?}; last fragment:\n{last}"),
            }
        }
    }

    /// The next complete `data:` line of an `update` event (each event is one chunk; its data
    /// is one JSON string).
    fn parse(&mut self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.buf[self.seen..]).into_owned();
        let start = text.find("event: update\ndata: ")?;
        let data_at = start + "event: update\ndata: ".len();
        let end = text[data_at..].find('\n')? + data_at;
        let fragment: String = serde_json::from_str(&text[data_at..end]).ok()?;
        self.seen += text[..end].len();
        Some(fragment)
    }
}

/// How many times `needle` occurs in `hay`.
pub fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// A Rollout of `replicas` instances of `version` that pauses after each batch but the last
/// until promoted.
pub fn pausing(name: &str, replicas: i32, version: &str) -> Value {
    let mut m = crate::support::manifest_v(name, replicas, version);
    m["spec"]["strategy"]["pause"] = json!({});
    m
}

/// User `jane`, who may view (the built-in `view` role, with baton's resources aggregated into
/// it as the chart does) but change nothing; returns nothing, the dashboard impersonates her.
pub async fn viewer_jane(env: &Env) {
    let k = crate::support::kubectl::Kubectl::new(&env.sim);
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "baton-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["baton.dev"], "resources": ["rollouts", "listenersets"], "verbs": ["get", "list", "watch"]}]
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "jane-view", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]
    });
    k.ok(&["apply", "-f", &k.file("role.json", &role)]).await;
    k.ok(&["apply", "-f", &k.file("binding.json", &binding)]).await;
    let can = k
        .run(&["auth", "can-i", "list", "rollouts.baton.dev", "--as", "jane", "-n", NS])
        .await;
    assert_eq!(can.stdout.trim(), "yes", "{can}");
}
