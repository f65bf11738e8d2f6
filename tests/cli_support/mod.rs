//! Running the real `baton` binary (directly, or as the kubectl plugin `kubectl baton`) and
//! reading what it prints: tables by their header's column offsets, ages as kubectl writes them.
#![allow(dead_code)]

pub mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

// Every test crate that uses this module also has `support` at its root.
pub use crate::support::kubectl::{unique, Run};

pub const BATON: &str = env!("CARGO_BIN_EXE_baton");
const DEADLINE: Duration = Duration::from_secs(90);

/// Run `program args` with `env` (RUST_LOG removed), within a generous deadline.
pub async fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = tokio::time::timeout(DEADLINE, c.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish"))
        .expect("the command runs");
    Run::from(out)
}

/// `baton ARGS` with `KUBECONFIG=kubeconfig`.
pub async fn baton(kubeconfig: &Path, args: &[&str]) -> Run {
    run(BATON, args, &[("KUBECONFIG", &kubeconfig.to_string_lossy())]).await
}

/// A directory with the baton binary installed as `kubectl-baton`, a HOME and a kubectl cache
/// of its own, for running `kubectl baton …` as a user would.
pub struct Plugin {
    pub dir: PathBuf,
}

impl Plugin {
    pub fn install() -> Plugin {
        let dir = std::env::temp_dir().join(format!("baton-plugin-{}", unique()));
        std::fs::create_dir_all(dir.join("bin")).expect("plugin dir");
        std::fs::create_dir_all(dir.join("home")).expect("plugin home");
        std::os::unix::fs::symlink(BATON, dir.join("bin").join("kubectl-baton")).expect("install kubectl-baton");
        Plugin { dir }
    }

    /// `kubectl ARGS` with the plugin on the PATH and `KUBECONFIG=kubeconfig`.
    pub async fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        );
        let cache = self.dir.join("cache");
        let mut all = vec!["--cache-dir", cache.to_str().unwrap_or("/tmp")];
        // kubectl passes every argument after the plugin name on to the plugin, and allows no
        // flags before it: put the cache flag where kubectl itself reads it only for its own
        // commands.
        if args.first() == Some(&"baton") {
            all.clear();
        }
        all.extend_from_slice(args);
        run(
            "/usr/bin/kubectl",
            &all,
            &[
                ("PATH", &path),
                ("HOME", &self.dir.join("home").to_string_lossy()),
                ("KUBECONFIG", &kubeconfig.to_string_lossy()),
            ],
        )
        .await
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The rows of a kubectl-style table as column → cell maps, cut at the header's column
/// offsets (cells may contain spaces).
pub fn rows(table: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = table.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return Vec::new() };
    let mut starts = Vec::new();
    let mut prev_space = true;
    for (i, c) in header.char_indices() {
        if c != ' ' && prev_space {
            starts.push(i);
        }
        prev_space = c == ' ';
    }
    let names: Vec<String> = header.split_whitespace().map(String::from).collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let from = starts[k].min(chars.len());
                    let to = starts.get(k + 1).copied().unwrap_or(chars.len()).min(chars.len());
                    (
                        name.clone(),
                        chars[from..to].iter().collect::<String>().trim().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

/// Does `s` read like a kubectl age ("7s", "3m5s", "2d4h")?
pub fn is_age(s: &str) -> bool {
    let mut digits = false;
    let mut ok = !s.is_empty();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if "smhdy".contains(c) && digits {
            digits = false;
        } else {
            ok = false;
        }
    }
    ok && !digits
}

/// A kubectl-style table as its header and rows of cells (cut at the header's column offsets,
/// so a misaligned row reads wrong), with the cells of the age columns `ages` checked to be
/// ages and replaced by `<age>`: the exact output, minus the clock.
pub fn cells(table: &str, ages: &[&str]) -> Vec<Vec<String>> {
    let Some(header) = table.lines().next() else {
        return Vec::new();
    };
    let names: Vec<String> = header.split_whitespace().map(String::from).collect();
    let mut out = vec![names.clone()];
    for row in rows(table) {
        out.push(
            names
                .iter()
                .map(|n| {
                    let cell = row.get(n).cloned().unwrap_or_default();
                    if ages.contains(&n.as_str()) {
                        assert!(is_age(&cell), "{n} {cell:?} is not an age in:\n{table}");
                        "<age>".to_string()
                    } else {
                        cell
                    }
                })
                .collect(),
        );
    }
    out
}

/// Rows of string slices, for comparing with [`cells`].
pub fn expect(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

/// A kubeconfig with one context per `(context, namespace)`, all pointing at `server` with
/// bearer token `user`; the first is the current one.
pub fn kubeconfig(path: &Path, server: &str, user: &str, contexts: &[(&str, &str)]) {
    let mut text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {server}\nusers:\n- name: {user}\n  user:\n    token: {user}\ncontexts:\n"
    );
    for (name, ns) in contexts {
        text.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: sim\n    user: {user}\n    namespace: {ns}\n"
        ));
    }
    text.push_str(&format!("current-context: {}\n", contexts[0].0));
    std::fs::write(path, text).expect("write kubeconfig");
}
