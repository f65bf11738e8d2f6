//! Records the commit baton is built from (`baton_build_info{commit}`): `$BATON_COMMIT` when
//! set (image builds without `.git`), else `git rev-parse`, else `unknown`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Rebuild when HEAD moves: the files that hold it, where they exist.
fn watch_head() {
    let mut paths = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(git(&["rev-parse", "--git-path", &r]));
    }
    paths.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for p in paths.into_iter().flatten() {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=BATON_COMMIT");
    let commit = match std::env::var("BATON_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            watch_head();
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=BATON_BUILD_COMMIT={commit}");
}
