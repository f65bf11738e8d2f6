//! The listener clients as the app beside real `baton agent` sidecars: the Python client's sample
//! app (clients/python/examples/sample_app.py, run by python3 from the checkout; config/samples
//! runs it too) logs every start and stop in the harness's format, so the run is judged as any
//! other.
use std::time::Duration;

use crate::harness::{listeners, AppKind, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);

/// The Python client's sample app taking `stop_seconds` to stop a listener: a launcher script in
/// the temporary directory (the harness runs `python3 -u <script>` with the sidecar's URL only).
fn python_sample_app(ns: &str, stop_seconds: f64) -> AppKind {
    let app = format!("{}/clients/python/examples/sample_app.py", env!("CARGO_MANIFEST_DIR"));
    let launcher = std::env::temp_dir().join(format!("baton-{ns}-{}-sample_app.py", std::process::id()));
    let script = format!(
        "import os, runpy\nos.environ['STOP_SECONDS'] = '{stop_seconds}'\nrunpy.run_path({app:?}, run_name='__main__')\n"
    );
    std::fs::write(&launcher, script).unwrap_or_else(|e| panic!("writing {}: {e}", launcher.display()));
    AppKind::Script(launcher)
}

/// A pod replaced the way a rolling deploy replaces it (the new pod Ready, then the old one
/// deleted gracefully), with apps that take 1.5 s to stop a listener: on SIGTERM the old sidecar
/// lists nothing, the Python client stops each listener and acknowledges once it has stopped, and
/// every listener moves to the other pods — never in two apps at once, no token going back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_hands_its_listeners_over_when_its_pod_is_replaced() {
    let ns = Ns::plain("py-client").await;
    ok(ns.start_controller().await);
    let app = python_sample_app("py-client", 1.5);
    for p in ["py-a", "py-b"] {
        let uid = ok(ns.create_plain_pod(p).await);
        ok(ns.start_procs(p, &uid, Vec::new(), app.clone()).await);
    }
    let (spec, keys) = listeners("sxt", 6);
    ok(ns.create_set("sxt", spec, 5).await);
    let held = ok(ns.settled("sxt", 6, "6 listeners in the Python apps", LONG).await);
    let on_a = held.values().filter(|(h, _)| h.as_deref() == Some("py-a")).count();
    assert!(on_a > 0, "py-a runs listeners: {held:?}");
    let uid = ok(ns.create_plain_pod("py-c").await);
    ok(ns.start_procs("py-c", &uid, Vec::new(), app).await);
    ok(ns.delete_pod("py-a", 30).await);
    ok(ns
        .wait_running("every listener off the replaced py-a", &keys, LONG, |p| p != "py-a")
        .await);
    ok(ns
        .settled("sxt", 6, "6 listeners settled after the replacement", LONG)
        .await);
    assert_clean(&ns, true);
}
