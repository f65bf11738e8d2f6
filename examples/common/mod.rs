//! Shared by the benchmark examples (each has it as `mod common`): where the `baton` binary is,
//! spawning it, the simulator's fast kubelet and the write requests a client made.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use baton_sim::{KubeletConfig, Sim};
use tokio::process::{Child, Command};

/// The HTTP methods that write.
pub const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// Write requests (POST, PUT, PATCH, DELETE) the simulator has served to clients whose identity
/// contains `who`.
pub fn writes(sim: &Sim, who: &str) -> u64 {
    WRITE_METHODS.iter().map(|m| sim.core.request_count(who, m)).sum()
}

/// The `baton` binary to run as the controller: `$BATON_BIN` if set (`make bench-scale` sets it
/// to the image's build, without the `demo` feature), else `target/<profile>/baton`, the binary
/// built beside this example (in `target/<profile>/examples/`).
pub fn baton_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("BATON_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("baton"))
        .ok_or_else(|| "no target dir".to_string())
}

/// Spawn `cmd` (the `baton` binary at `baton`, its arguments, environment and stderr set by the
/// caller) with stdout discarded, killed on drop.
pub fn spawn_baton(cmd: &mut Command, baton: &Path) -> Result<Child, String> {
    cmd.stdout(Stdio::null()).kill_on_drop(true).spawn().map_err(|e| {
        format!(
            "starting {}: {e} (build it with cargo build --release)",
            baton.display()
        )
    })
}

/// A kubelet that schedules a pod in 5 ms, starts it 30 ms later and reports it Ready 100 ms
/// after that.
pub fn fast_kubelet() -> KubeletConfig {
    KubeletConfig {
        schedule_delay: Duration::from_millis(5),
        start_delay: Duration::from_millis(30),
        ready_delay: Duration::from_millis(100),
        ..KubeletConfig::default()
    }
}

/// One figure of a report: what, measured, target, result.
pub type Row = (String, String, String, &'static str);

/// The report's figures as a Markdown table, after a blank line.
pub fn print_rows(rows: &[Row]) {
    println!();
    println!("| figure | measured | target | result |");
    println!("|---|---|---|---|");
    for (f, m, t, r) in rows {
        println!("| {f} | {m} | {t} | {r} |");
    }
}
