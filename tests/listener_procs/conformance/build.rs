//! The three clients' sample apps as programs the harness runs: built from the checkout once per
//! test process, or from a copy of a client's sources with one rule broken (a mutant).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use crate::harness::program::Program;
use crate::harness::R;

use super::Client;

/// What a sample app is asked to do (environment variables of the sample apps).
#[derive(Clone, Copy, Debug, Default)]
pub struct Knobs {
    /// `STOP_SECONDS`: how long stopping a listener takes.
    pub stop_seconds: f64,
    /// `STOP_FAILS=1`: the stop then raises (Python, TypeScript) or panics (Go).
    pub stop_fails: bool,
}

/// A rule broken on purpose, by a small textual patch at a marked line of the client's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// The version is acknowledged while a stop is still under way.
    AckBeforeStop,
    /// `validUntil` is only looked at when a new version arrives: no timer of its own.
    NoValidUntilTimer,
}

/// One patch: in `file`, the one line carrying `marker` and `from` gets `to` in place of `from`.
struct Patch {
    file: &'static str,
    marker: &'static str,
    from: &'static str,
    to: &'static str,
}

const ACK: &str = "conformance: ack-after-stop";
const TIMER: &str = "conformance: valid-until-timer";
const PY: &str = "src/baton_listeners/_listeners.py";
const TS: &str = "src/listeners.ts";

fn patches(client: Client, m: Mutation) -> Vec<Patch> {
    let p = |file, marker, from, to| Patch { file, marker, from, to };
    match (client, m) {
        (Client::Python, Mutation::AckBeforeStop) => {
            vec![p(PY, ACK, "self._oldest_stop_before(doc.version)", "doc.version")]
        }
        (Client::Python, Mutation::NoValidUntilTimer) => {
            vec![p(PY, TIMER, "self._next_deadline(now)", "None")]
        }
        (Client::Go, Mutation::AckBeforeStop) => {
            vec![p(
                "client.go",
                ACK,
                "c.oldestStopBefore(c.doc.version)",
                "c.doc.version",
            )]
        }
        (Client::Go, Mutation::NoValidUntilTimer) => {
            vec![p("client.go", TIMER, "c.nextDeadline(now)", "time.Duration(0), false")]
        }
        (Client::TypeScript, Mutation::AckBeforeStop) => {
            vec![p(
                TS,
                ACK,
                "Math.min(doc.version, ...[...this.stopping.values()].map((run) => run.before))",
                "doc.version",
            )]
        }
        // No timer at the soonest validUntil, and no look at the clock when a poll or an
        // acknowledgement fails (the sidecar gone, nothing else would).
        (Client::TypeScript, Mutation::NoValidUntilTimer) => vec![
            p(TS, TIMER, "if (soonest === Infinity) return;", "return;"),
            p(TS, "valid-until-timer (after a failed poll)", "this.reconcile();", ""),
            p(TS, "valid-until-timer (after a failed ack)", "this.reconcile();", ""),
        ],
    }
}

/// A client's sample app, built.
pub struct Build {
    client: Client,
    /// The client's directory the app was built from (the checkout's, or a mutant's copy).
    root: PathBuf,
    /// The Go binary, or the compiled TypeScript; for Python the script.
    artifact: PathBuf,
    _copy: Option<tempfile::TempDir>,
}

/// The checkout's `clients/<dir>`.
fn checkout(client: Client) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients").join(client.dir())
}

impl Build {
    /// The sample app of the client as checked out, built once per test process into `scratch`.
    pub fn checkout(client: Client, scratch: &Path) -> R<Arc<Build>> {
        static BUILT: [OnceLock<Result<Arc<Build>, String>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        BUILT[client as usize]
            .get_or_init(|| {
                let out = scratch.join(format!("{}-sample-app", client.dir()));
                build(client, &checkout(client), &out).map(|artifact| {
                    Arc::new(Build {
                        client,
                        root: checkout(client),
                        artifact,
                        _copy: None,
                    })
                })
            })
            .clone()
    }

    /// The sample app of a copy of the client's sources with `m` applied, in a directory of its
    /// own under `scratch` (removed with the build). Fails if a patch no longer applies.
    pub fn mutant(client: Client, m: Mutation, scratch: &Path) -> R<Build> {
        let copy = tempfile::Builder::new()
            .prefix(&format!("{}-mutant-", client.dir()))
            .tempdir_in(scratch)
            .map_err(|e| e.to_string())?;
        let root = copy.path().join(client.dir());
        copy_tree(&checkout(client), &root)?;
        if client == Client::TypeScript {
            // The copy compiles against the checkout's typescript and @types/node.
            let modules = node_modules()?;
            std::os::unix::fs::symlink(modules, root.join("node_modules")).map_err(|e| e.to_string())?;
        }
        for p in patches(client, m) {
            apply(&root.join(p.file), &p)?;
        }
        let artifact = build(client, &root, &copy.path().join("out"))?;
        Ok(Build {
            client,
            root,
            artifact,
            _copy: Some(copy),
        })
    }

    /// The program the harness runs: the sample app with `knobs`, behind a tap.
    pub fn program(&self, knobs: &Knobs) -> Program {
        let mut env = vec![("STOP_SECONDS".to_string(), knobs.stop_seconds.to_string())];
        if knobs.stop_fails {
            env.push(("STOP_FAILS".into(), "1".into()));
        }
        let (program, args) = match self.client {
            Client::Python => {
                // This copy's package first, whatever else is installed.
                env.push(("PYTHONPATH".into(), self.root.join("src").display().to_string()));
                ("python3".into(), vec!["-u".into(), self.artifact.display().to_string()])
            }
            Client::Go => (self.artifact.clone(), Vec::new()),
            Client::TypeScript => ("node".into(), vec![self.artifact.display().to_string()]),
        };
        Program {
            program,
            args,
            env,
            tap: true,
        }
    }
}

/// Build the sample app of the client in `root` (output under `out`): the artifact to run.
fn build(client: Client, root: &Path, out: &Path) -> R<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    match client {
        Client::Python => Ok(root.join("examples/sample_app.py")),
        Client::Go => {
            let bin = out.join("sample_app");
            let go = std::env::var("GO").unwrap_or_else(|_| "go".to_string());
            let mut cmd = Command::new(&go);
            cmd.args(["build", "-o"]).arg(&bin).arg("./examples/sample_app");
            run_in(root, &mut cmd)?;
            Ok(bin)
        }
        Client::TypeScript => {
            let tsc = node_modules()?.join("typescript/bin/tsc");
            let mut cmd = Command::new("node");
            cmd.arg(tsc).arg("-p").arg(root).arg("--outDir").arg(out);
            run_in(root, &mut cmd)?;
            Ok(out.join("examples/sample_app.js"))
        }
    }
}

/// The checkout's clients/typescript/node_modules, installed with `npm ci` if missing.
fn node_modules() -> R<PathBuf> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = checkout(Client::TypeScript);
            if !dir.join("node_modules/typescript/bin/tsc").exists() {
                let mut npm = Command::new("npm");
                npm.args(["ci", "--no-audit", "--no-fund"]);
                run_in(&dir, &mut npm)?;
            }
            Ok(dir.join("node_modules"))
        })
        .clone()
}

/// Run `cmd` in `dir`; its output in the error.
fn run_in(dir: &Path, cmd: &mut Command) -> R<()> {
    let out = cmd
        .current_dir(dir)
        .output()
        .map_err(|e| format!("running {cmd:?} in {}: {e}", dir.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} in {} failed: {}\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Copy the sources under `from` to `to` (not what builds or installs leave there).
fn copy_tree(from: &Path, to: &Path) -> R<()> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("node_modules" | "dist" | "__pycache__" | ".mypy_cache" | ".pytest_cache")
        ) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// Apply `p` to `file`: exactly one line carries both its marker and the text it replaces.
fn apply(file: &Path, p: &Patch) -> R<()> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(p.marker) && l.contains(p.from))
        .map(|(i, _)| i)
        .collect();
    let [line] = hits[..] else {
        return Err(format!(
            "the mutation no longer applies: {} has {} lines marked `{}` with `{}` (want exactly 1)",
            file.display(),
            hits.len(),
            p.marker,
            p.from
        ));
    };
    let patched: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                l.replacen(p.from, p.to, 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(file, patched.join("\n") + "\n").map_err(|e| e.to_string())
}
