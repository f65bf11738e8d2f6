//! The control plane's programs, built once from the Go module proxy and cached. kubectl is not
//! among them: the release is chosen so that the machine's kubectl (1.32) is within its
//! supported version skew (one minor version either way).
//!
//! Three small Go modules of this crate (`controlplane/go/`, their `go.sum` committed) pin the
//! releases: `kube` requires `k8s.io/kubernetes` and replaces each staging module with its
//! published version (kube-apiserver, kube-controller-manager, kube-scheduler), `etcd`
//! wraps `etcdmain.Main`, `kwok` names kwok's command as a tool. Their sources are compiled into
//! this crate, so the build needs no checkout: they are written to the cache and built there.
//! The cache directory is keyed by a digest of those sources (a changed pin builds anew) and
//! filled atomically (a rename), so concurrent users never see half a build; a lock file
//! serialises builders. Go downloads modules once (its module cache) and works offline after.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Error;

/// The pinned releases (the Go modules under `controlplane/go/` say the same; a test checks).
pub const KUBERNETES: &str = "v1.33.13";
pub const ETCD: &str = "v3.6.16";
pub const KWOK: &str = "v0.7.0";

/// Every program the control plane runs, by file name.
pub const PROGRAMS: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

struct Module {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    packages: &'static [&'static str],
}

const MODULES: &[Module] = &[
    Module {
        name: "kube",
        files: &[
            ("go.mod", include_str!("../go/kube/go.mod")),
            ("go.sum", include_str!("../go/kube/go.sum")),
        ],
        packages: &[
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
        ],
    },
    Module {
        name: "etcd",
        files: &[
            ("go.mod", include_str!("../go/etcd/go.mod")),
            ("go.sum", include_str!("../go/etcd/go.sum")),
            ("main.go", include_str!("../go/etcd/main.go")),
        ],
        packages: &["."],
    },
    Module {
        name: "kwok",
        files: &[
            ("go.mod", include_str!("../go/kwok/go.mod")),
            ("go.sum", include_str!("../go/kwok/go.sum")),
        ],
        packages: &["sigs.k8s.io/kwok/cmd/kwok"],
    },
];

/// Where the programs are.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }
}

/// `$BATON_CLUSTER_CACHE`, else `$XDG_CACHE_HOME/baton/controlplane`, else
/// `~/.cache/baton/controlplane`: outside any checkout, so clean clones share it.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BATON_CLUSTER_CACHE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("baton").join("controlplane")
}

/// The digest of the pinned sources: the cache key.
fn key() -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for m in MODULES {
        for (name, text) in m.files {
            ctx.update(m.name.as_bytes());
            ctx.update(name.as_bytes());
            ctx.update(text.as_bytes());
        }
    }
    ctx.finish().as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The cached programs, building them first when they are missing (progress on `out`).
pub fn ensure(out: &mut dyn Write) -> Result<Binaries, Error> {
    let root = cache_root();
    let home = root.join(format!("kubernetes-{KUBERNETES}-{}", key()));
    let bins = Binaries { dir: home.join("bin") };
    if complete(&bins) {
        return Ok(bins);
    }
    std::fs::create_dir_all(&home).map_err(|e| Error::io(&home, e))?;
    let lock_path = home.join("build.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    if complete(&bins) {
        return Ok(bins);
    }
    let _ = writeln!(
        out,
        "building the control plane from the Go module proxy (kubernetes {KUBERNETES}, etcd {ETCD}, kwok {KWOK}) into {}:\n\
         a first build takes 15-30 minutes on 2 cores and about 2 GB of Go caches; later runs reuse it",
        bins.dir.display()
    );
    let staging = home.join("bin.new");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let started = Instant::now();
    for m in MODULES {
        build_module(&home, m, &staging, out)?;
    }
    let _ = std::fs::remove_dir_all(&bins.dir);
    std::fs::rename(&staging, &bins.dir).map_err(|e| Error::io(&bins.dir, e))?;
    let _ = writeln!(out, "control plane built in {:.0?}", started.elapsed());
    Ok(bins)
}

fn complete(b: &Binaries) -> bool {
    PROGRAMS.iter().all(|p| b.path(p).is_file())
}

/// The linker flags that make the Kubernetes programs report their release (`/version`,
/// `kubectl version`), as Kubernetes' own build sets them.
fn version_ldflags() -> String {
    let minor = KUBERNETES.split('.').nth(1).unwrap_or("0");
    let mut flags = String::from("-s -w");
    for pkg in ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"] {
        for (var, val) in [
            ("gitVersion", KUBERNETES),
            ("gitMajor", "1"),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", "1970-01-01T00:00:00Z"),
        ] {
            flags.push_str(&format!(" -X {pkg}.{var}={val}"));
        }
    }
    flags
}

fn build_module(home: &Path, m: &Module, bin: &Path, out: &mut dyn Write) -> Result<(), Error> {
    let src = home.join("src").join(m.name);
    std::fs::create_dir_all(&src).map_err(|e| Error::io(&src, e))?;
    for (name, text) in m.files {
        let p = src.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
    }
    let mut cmd = Command::new(go());
    cmd.current_dir(&src)
        .env("CGO_ENABLED", "0")
        .args(["build", "-v", "-ldflags"])
        .arg(if m.name == "kube" {
            version_ldflags()
        } else {
            "-s -w".into()
        })
        .arg("-o");
    if m.name == "etcd" {
        cmd.arg(bin.join("etcd"));
    } else {
        cmd.arg(format!("{}/", bin.display()));
    }
    cmd.args(m.packages).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Go(format!("running {}: {e}", go().display())))?;
    let started = Instant::now();
    let mut compiled = 0usize;
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // `go build -v` names each package as it compiles it; anything else is a message.
            if line.contains(' ') || line.contains(':') {
                tail.push(line);
                continue;
            }
            compiled += 1;
            if compiled.is_multiple_of(250) {
                let _ = writeln!(
                    out,
                    "  {}: {compiled} packages compiled ({:.0?})",
                    m.name,
                    started.elapsed()
                );
            }
        }
    }
    let status = child.wait().map_err(|e| Error::Go(e.to_string()))?;
    if !status.success() {
        return Err(Error::Go(format!(
            "go build of the {} module failed ({status}):\n{}",
            m.name,
            tail.join("\n")
        )));
    }
    let _ = writeln!(
        out,
        "  {}: built ({compiled} packages, {:.0?})",
        m.name,
        started.elapsed()
    );
    Ok(())
}

/// The `go` command: `$GO`, else the one on the PATH.
fn go() -> PathBuf {
    std::env::var_os("GO").map(PathBuf::from).unwrap_or_else(|| "go".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants name the releases the Go modules pin.
    #[test]
    fn pins_agree() {
        let kube = MODULES[0].files[0].1;
        assert!(kube.contains(&format!("k8s.io/kubernetes {KUBERNETES}")), "{kube}");
        let staging = format!("v0.{}", KUBERNETES.trim_start_matches("v1."));
        assert!(kube.contains(&format!("k8s.io/api => k8s.io/api {staging}")));
        assert!(MODULES[1].files[0]
            .1
            .contains(&format!("go.etcd.io/etcd/server/v3 {ETCD}")));
        assert!(MODULES[2].files[0].1.contains(&format!("sigs.k8s.io/kwok {KWOK}")));
    }

    #[test]
    fn ldflags_name_the_release() {
        let f = version_ldflags();
        assert!(f.contains("k8s.io/component-base/version.gitVersion=v1.33.13"));
        assert!(f.contains("gitMinor=33"));
    }
}
