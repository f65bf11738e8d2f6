//! Helm's real engine for the chart tests (`tests/packaging/chart.rs`,
//! `tests/packaging/chart_rbac`): helm-python-sdk in the project's venv (`make deps` creates it).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;

/// The interpreter for the Helm checks: the project venv if it exists, else python3.
pub fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Whether Helm's engine is importable. When it is not: false with BATON_SKIP_HELM_CHECKS=1 (the
/// test is skipped, and says so), else a panic that says how to install it.
pub async fn helm_available() -> bool {
    let python = python();
    let ok = tokio::process::Command::new(&python)
        .args(["-c", "import helm_python"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!(
            "{} cannot import helm_python (helm-python-sdk). Create the venv: \
             python3 -m venv .venv && .venv/bin/pip install helm-python-sdk (make deps)",
            python.display()
        );
        if std::env::var("BATON_SKIP_HELM_CHECKS").as_deref() == Ok("1") {
            eprintln!("skipping the Helm checks (BATON_SKIP_HELM_CHECKS=1): {msg}");
            return false;
        }
        panic!("{msg}; set BATON_SKIP_HELM_CHECKS=1 to skip");
    }
    true
}
