//! The TypeScript listener client as the app beside real `baton agent` sidecars: its sample app
//! (clients/typescript/examples/sample_app.ts, compiled by tsc and run by node from the checkout)
//! logs every start and stop as the Python sample app does, so the run is judged as any other.
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::harness::{listeners, AppKind, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// Run `what` in `dir`; its output in the panic message when it fails.
fn run_in(dir: &Path, what: &[&str]) {
    let out = Command::new(what[0])
        .args(&what[1..])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {what:?} in {}: {e} (is Node.js 20 installed?)", dir.display()));
    assert!(
        out.status.success(),
        "{what:?} in {} failed: {}\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The compiled sample app: `npm ci` when the checkout has no node_modules yet, then `tsc` (once
/// per test process: the sources may have changed since the last build).
fn compiled_sample_app() -> String {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/typescript");
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !*built {
        if !dir.join("node_modules/.bin/tsc").exists() {
            run_in(&dir, &["npm", "ci", "--no-audit", "--no-fund"]);
        }
        run_in(&dir, &["node", "node_modules/typescript/bin/tsc", "-p", "."]);
        *built = true;
    }
    dir.join("dist/examples/sample_app.js").display().to_string()
}

/// The TypeScript client's sample app taking `stop_seconds` to stop a listener: a launcher script
/// in the temporary directory (the harness runs `python3 -u <script>` with the sidecar's URL
/// only) that sets `STOP_SECONDS` and becomes `node` (exec: the same process, so the harness's
/// SIGTERM reaches the app).
fn ts_sample_app(ns: &str, stop_seconds: f64) -> AppKind {
    let app = compiled_sample_app();
    let launcher = std::env::temp_dir().join(format!("baton-{ns}-{}-sample_app.py", std::process::id()));
    let script =
        format!("import os\nos.environ['STOP_SECONDS'] = '{stop_seconds}'\nos.execvp('node', ['node', {app:?}])\n");
    std::fs::write(&launcher, script).unwrap_or_else(|e| panic!("writing {}: {e}", launcher.display()));
    AppKind::Script(launcher)
}

/// A pod replaced the way a rolling deploy replaces it (the new pod Ready, then the old one
/// deleted gracefully), with apps that take 1.5 s to stop a listener: on SIGTERM the old sidecar
/// lists nothing, the TypeScript client aborts each listener's signal and acknowledges once its
/// promise has settled, and every listener moves to the other pods — never in two apps at once,
/// no token going back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_hands_its_listeners_over_when_its_pod_is_replaced() {
    let ns = Ns::plain("ts-client").await;
    ok(ns.start_controller().await);
    let app = ts_sample_app("ts-client", 1.5);
    for p in ["ts-a", "ts-b"] {
        let uid = ok(ns.create_plain_pod(p).await);
        ok(ns.start_procs(p, &uid, Vec::new(), app.clone()).await);
    }
    let (spec, keys) = listeners("sxt", 6);
    ok(ns.create_set("sxt", spec, 5).await);
    let held = ok(ns.settled("sxt", 6, "6 listeners in the TypeScript apps", LONG).await);
    let on_a = held.values().filter(|(h, _)| h.as_deref() == Some("ts-a")).count();
    assert!(on_a > 0, "ts-a runs listeners: {held:?}");
    let uid = ok(ns.create_plain_pod("ts-c").await);
    ok(ns.start_procs("ts-c", &uid, Vec::new(), app).await);
    ok(ns.delete_pod("ts-a", 30).await);
    ok(ns
        .wait_running("every listener off the replaced ts-a", &keys, LONG, |p| p != "ts-a")
        .await);
    ok(ns
        .settled("sxt", 6, "6 listeners settled after the replacement", LONG)
        .await);
    assert_clean(&ns, true);
}
