//! Apps that are OS processes — the client libraries' sample apps, the seed example — beside
//! the sidecar: each prints `start <set>/<id> token=<n>` and `stop <set>/<id>` as it starts and
//! stops a listener, which the harness logs as it reads them. Whatever else it prints (stdout and
//! stderr) is kept for the test, and so is its exit.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::app::{App, AppLog};
use super::tap::Tap;

/// How to run an app process. The harness adds `BATON_AGENT_URL` (its sidecar, or a [`Tap`] in
/// front of it) and `PORT=0`.
#[derive(Clone, Debug)]
pub struct Program {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Put a tap between the app and its sidecar ([`App::tap`]: every document and
    /// acknowledgement).
    pub tap: bool,
}

impl Program {
    /// `python3 -u script`.
    pub fn python(script: &Path) -> Program {
        Program {
            program: "python3".into(),
            args: vec!["-u".into(), script.display().to_string()],
            env: Vec::new(),
            tap: false,
        }
    }
}

/// What an app process printed besides its starts and stops, and how it ended.
#[derive(Default)]
pub struct ProcessRecord {
    output: Mutex<Vec<String>>,
    exit: Mutex<Option<(Instant, ExitStatus)>>,
}

/// At most this many lines of other output are kept.
const KEEP_LINES: usize = 5000;

impl ProcessRecord {
    fn push(&self, line: String) {
        let mut g = self.output.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() < KEEP_LINES {
            g.push(line);
        }
    }

    /// Every other line it printed so far (stderr's prefixed `stderr: `).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// When it exited, and how (None: it runs).
    pub fn exit(&self) -> Option<(Instant, ExitStatus)> {
        *self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl App {
    /// Run `prog` as app `id` against the sidecar at `agent`: its starts and stops go to `log`
    /// as they are read; once its stdout ends (it exited), nothing it ran runs any more.
    pub fn process(log: Arc<AppLog>, id: String, prog: &Program, agent: SocketAddr) -> Result<App, String> {
        let tap = if prog.tap { Some(Tap::start(agent)?) } else { None };
        let url = tap.as_ref().map_or(agent, |t| t.addr);
        let mut child = tokio::process::Command::new(&prog.program)
            .args(&prog.args)
            .envs(prog.env.iter().map(|(k, v)| (k, v)))
            .env("BATON_AGENT_URL", format!("http://{url}"))
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", prog.program.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("the app's stdout is not piped")?;
        let stderr = child.stderr.take().ok_or("the app's stderr is not piped")?;
        let record = Arc::new(ProcessRecord::default());
        let errors = tokio::spawn(keep(stderr, record.clone(), "stderr: "));
        let (l2, id2, r2) = (log.clone(), id.clone(), record.clone());
        let killer = Arc::new(Notify::new());
        let kill = killer.clone();
        let task = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let line = tokio::select! {
                    line = lines.next_line() => line,
                    () = kill.notified() => {
                        // Killed (a no-op once it has exited): read on to the end.
                        let _ = child.start_kill();
                        continue;
                    }
                };
                let Ok(Some(line)) = line else { break };
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("start"), Some(key), Some(token)) => {
                        let token = token.trim_start_matches("token=").parse().unwrap_or(-1);
                        l2.start(&id2, key, token);
                    }
                    (Some("stop"), Some(key), _) => l2.stop(&id2, key),
                    _ => r2.push(line),
                }
            }
            // The process exited: nothing it ran runs any more.
            l2.kill(&id2);
            if let Ok(status) = child.wait().await {
                *r2.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), status));
            }
            let _ = errors.await;
        });
        let mut app = App::with_task(id, log, task, pid);
        app.record = Some(record);
        app.killer = Some(killer);
        app.tap = tap.as_ref().map(|t| t.log.clone());
        app.tap_proxy = tap;
        Ok(app)
    }
}

/// Keep every line of `from` in `record`, each after `prefix`.
async fn keep(from: impl AsyncRead + Unpin, record: Arc<ProcessRecord>, prefix: &'static str) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        record.push(format!("{prefix}{line}"));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::harness::wait_for;

    /// A pod's containers are killed (its graceful deletion ended) after its app exited but
    /// before the harness read the end of what it printed: its exit and its last lines are still
    /// recorded. A child keeps the app's stdout open for a moment, so the kill always comes first.
    #[tokio::test]
    async fn a_kill_after_the_app_exited_keeps_its_exit_and_last_lines() {
        let log = Arc::new(AppLog::default());
        let prog = Program {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "sleep 1 & echo 'start s/a token=3'; echo 'stop s/a'; echo bye".into(),
            ],
            env: Vec::new(),
            tap: false,
        };
        let agent = SocketAddr::from(([127, 0, 0, 1], 9));
        let app = App::process(log.clone(), "p#1".into(), &prog, agent).expect("the app runs");
        let record = app.record.clone().expect("a process app has a record");
        let pid = app.pid.expect("a process app has a pid");
        let zombie = || async {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().starts_with('Z').then_some(())
        };
        wait_for("the app's shell exited", Duration::from_secs(10), zombie)
            .await
            .expect("the shell exits at once");
        app.kill();
        let (_, status) = wait_for("its exit recorded", Duration::from_secs(10), || async { record.exit() })
            .await
            .expect("the exit is recorded");
        assert!(status.success(), "{status}");
        assert_eq!(record.output(), vec!["bye".to_string()]);
        assert!(
            log.unstopped("p#1").is_empty(),
            "its stop was read: {:?}",
            log.unstopped("p#1")
        );
    }
}
