//! The real `baton` binary as a child process: its JSON log kept, the address it reports, a raw
//! HTTP client for its endpoints and a Prometheus series reader.
//!
//! Shared by integration tests and by `examples/failover_bench.rs` (through `#[path]`); examples
//! report errors instead of panicking, so nothing here panics.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "http.rs"]
pub mod http;

/// A child's stderr, one JSON log line an entry.
pub type Log = Arc<Mutex<Vec<String>>>;

/// A spawned `baton` process whose stderr is read into [`Log`] until EOF. Killed on drop.
pub struct LoggedChild {
    pub child: Child,
    pub pid: u32,
    pub log: Log,
    /// The first address logged under the field named at spawn; taken by [`Self::wait_addr`].
    addr: Option<oneshot::Receiver<SocketAddr>>,
    reader: Option<JoinHandle<()>>,
}

impl LoggedChild {
    /// Spawn `cmd` (stdin and stdout null, stderr piped, killed on drop) and read its log; the
    /// first line whose JSON has `addr_field` parsing as a socket address (e.g.
    /// `{"message":"…","bound":"127.0.0.1:PORT"}`) is where it serves.
    pub fn spawn(cmd: &mut Command, addr_field: &'static str) -> std::io::Result<LoggedChild> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the child has no pid"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::other("the child's stderr is not piped"))?;
        let log: Log = Arc::default();
        let (tx, rx) = oneshot::channel();
        let out = log.clone();
        let reader = tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(addr) = v[addr_field].as_str().and_then(|a| a.parse().ok()) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                }
                lock(&out).push(line);
            }
        });
        Ok(LoggedChild {
            child,
            pid,
            log,
            addr: Some(rx),
            reader: Some(reader),
        })
    }

    /// The address the process reported, or None if it did not within `deadline` (or exited, or
    /// this was already asked).
    pub async fn wait_addr(&mut self, deadline: Duration) -> Option<SocketAddr> {
        let rx = self.addr.take()?;
        tokio::time::timeout(deadline, rx).await.ok()?.ok()
    }

    /// Its stderr reached its end (the process exited, or closed it).
    pub fn log_closed(&self) -> bool {
        self.reader.as_ref().is_none_or(|r| r.is_finished())
    }

    /// The log so far, one line per entry.
    pub fn log_text(&self) -> String {
        lock(&self.log).join("\n")
    }

    /// SIGTERM without a libc dependency: `kill -TERM`. False if that failed.
    pub fn terminate(&self) -> bool {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Wait up to `deadline` for the exit (None: still running), then up to 10 s for the log to be
    /// read to the end, so [`Self::log_text`] has the last words.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<std::io::Result<ExitStatus>> {
        let status = tokio::time::timeout(deadline, self.child.wait()).await.ok()?;
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        Some(status)
    }
}

/// A poisoned log is still worth reading (a panicking test prints it).
fn lock(log: &Log) -> std::sync::MutexGuard<'_, Vec<String>> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// One HTTP/1.1 request without a body (`Connection: close`); (status, body), or None if
/// nothing answered within `deadline`.
pub async fn http(addr: SocketAddr, method: &str, path: &str, deadline: Duration) -> Option<(u16, String)> {
    let r = tokio::time::timeout(deadline, http::request(addr, method, path, &[], b""))
        .await
        .ok()?
        .ok()?;
    Some((r.code, r.text()))
}

/// A GET with a 5 s deadline: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, Duration::from_secs(5)).await
}

/// The value of one series (`name` or `name{labels}`) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Run `baton demo ARGS` (`baton` the binary; stdin and stderr null, killed on drop) and wait up
/// to `deadline` for the stdout line that starts with `prefix`: the child and the rest of that
/// line. Later output is drained. None if the line does not come.
pub async fn demo_says(baton: &str, args: &[&str], prefix: &str, deadline: Duration) -> Option<(Child, String)> {
    let mut child = Command::new(baton)
        .arg("demo")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut lines = BufReader::new(child.stdout.take()?).lines();
    let rest = tokio::time::timeout(deadline, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.to_string());
            }
        }
        None
    })
    .await
    .ok()??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((child, rest))
}
