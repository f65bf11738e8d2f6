//! The control plane's processes: each logs to `<dir>/logs/<name>.log`, dies with the thread that
//! started it (`PR_SET_PDEATHSIG`, so a killed test run leaves nothing behind), can be started
//! again after it exits (as a kubelet restarts a static pod) and is stopped with SIGTERM, then
//! SIGKILL after a grace period.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    program: PathBuf,
    args: Vec<String>,
    child: Child,
    /// Times it was started again after exiting.
    pub restarts: u32,
}

impl Proc {
    /// Start `program` with `args`, its output appended to `<logs>/<name>.log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], logs: &Path) -> Result<Proc, Error> {
        std::fs::create_dir_all(logs).map_err(|e| Error::io(logs, e))?;
        let log = logs.join(format!("{name}.log"));
        let file = File::create(&log).map_err(|e| Error::io(&log, e))?;
        let child = start(name, program, args, file, &log)?;
        Ok(Proc {
            name: name.to_string(),
            log,
            program: program.to_path_buf(),
            args: args.to_vec(),
            child,
            restarts: 0,
        })
    }

    /// Start it again (its log continues) after it exited.
    pub fn restart(&mut self) -> Result<(), Error> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .map_err(|e| Error::io(&self.log, e))?;
        self.child = start(&self.name, &self.program, &self.args, file, &self.log)?;
        self.restarts += 1;
        Ok(())
    }
}

fn start(name: &str, program: &Path, args: &[String], file: File, log: &Path) -> Result<Child, Error> {
    let err = file.try_clone().map_err(|e| Error::io(log, e))?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(file).stderr(err);
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| Error::Start(format!("{name} ({}): {e}", program.display())))
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `n` lines of its log (for an error message).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        signal(self.pid(), libc::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Send `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // SAFETY: kill(2) with a pid this process started.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// A free TCP port on loopback (bound, then let go for the program to bind).
pub fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Start(format!("a free port: {e}")))?;
    let port = l
        .local_addr()
        .map_err(|e| Error::Start(format!("a free port: {e}")))?
        .port();
    Ok(port)
}

/// The body of `GET http://<addr><path>` (plain HTTP/1.0; etcd's health endpoint).
pub async fn http_get(addr: &str, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}
