//! The Go listener client as the app beside real `baton agent` sidecars: its sample app
//! (clients/go/examples/sample_app, built once with `go build`, `$GO` if set) logs every start
//! and stop as the Python sample app does, so the run is judged as any other.
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::{listeners, AppKind, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// The Go sample app, built once per test process.
fn go_sample_app_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let module = format!("{}/clients/go", env!("CARGO_MANIFEST_DIR"));
        let bin = std::env::temp_dir().join(format!("baton-{}-go-sample_app", std::process::id()));
        let go = std::env::var("GO").unwrap_or_else(|_| "go".to_string());
        let out = std::process::Command::new(&go)
            .args(["build", "-o"])
            .arg(&bin)
            .arg("./examples/sample_app")
            .current_dir(&module)
            .output()
            .unwrap_or_else(|e| panic!("running {go} build in {module}: {e}"));
        assert!(
            out.status.success(),
            "{go} build ./examples/sample_app failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// The Go client's sample app taking `stop_seconds` to stop a listener: the harness runs
/// `python3 -u <script>` with the sidecar's URL, so a launcher script in the temporary directory
/// sets STOP_SECONDS and replaces itself with the binary (signals reach the Go process).
fn go_sample_app(ns: &str, stop_seconds: f64) -> AppKind {
    let bin = go_sample_app_binary();
    let launcher = std::env::temp_dir().join(format!("baton-{ns}-{}-go-sample_app.py", std::process::id()));
    let script = format!(
        "import os\nos.environ['STOP_SECONDS'] = '{stop_seconds}'\nos.execv({bin:?}, [{bin:?}])\n",
        bin = bin.display().to_string()
    );
    std::fs::write(&launcher, script).unwrap_or_else(|e| panic!("writing {}: {e}", launcher.display()));
    AppKind::Script(launcher)
}

/// A pod replaced the way a rolling deploy replaces it (the new pod Ready, then the old one
/// deleted gracefully), with Go apps that take 1.5 s to stop a listener: on SIGTERM the old
/// sidecar lists nothing, the Go client stops each listener and acknowledges once its Start has
/// returned, and every listener moves to the other pods — never in two apps at once, no token
/// going back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_client_hands_its_listeners_over_when_its_pod_is_replaced() {
    let ns = Ns::plain("go-client").await;
    ok(ns.start_controller().await);
    let app = go_sample_app("go-client", 1.5);
    for p in ["go-a", "go-b"] {
        let uid = ok(ns.create_plain_pod(p).await);
        ok(ns.start_procs(p, &uid, Vec::new(), app.clone()).await);
    }
    let (spec, keys) = listeners("sxt", 6);
    ok(ns.create_set("sxt", spec, 5).await);
    let held = ok(ns.settled("sxt", 6, "6 listeners in the Go apps", LONG).await);
    let on_a = held.values().filter(|(h, _)| h.as_deref() == Some("go-a")).count();
    assert!(on_a > 0, "go-a runs listeners: {held:?}");
    let uid = ok(ns.create_plain_pod("go-c").await);
    ok(ns.start_procs("go-c", &uid, Vec::new(), app).await);
    ok(ns.delete_pod("go-a", 30).await);
    ok(ns
        .wait_running("every listener off the replaced go-a", &keys, LONG, |p| p != "go-a")
        .await);
    ok(ns
        .settled("sxt", 6, "6 listeners settled after the replacement", LONG)
        .await);
    assert_clean(&ns, true);
}
