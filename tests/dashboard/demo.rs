//! `baton demo --keep` serves the dashboard from the start and prints its URL.
use std::net::SocketAddr;

use crate::support::process::demo_says;
use crate::support::process::http::request;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_dashboard_and_prints_its_url() {
    let args = [
        "--keep",
        "--dashboard-address",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let (mut child, url) = demo_says(
        env!("CARGO_BIN_EXE_baton"),
        &args,
        "baton demo: dashboard at http://",
        LONG,
    )
    .await
    .expect("the demo prints the dashboard's URL in time");
    let addr: SocketAddr = url
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("a dashboard URL");
    wait_for("the demo's Rollout on the dashboard", LONG, || async {
        let r = request(addr, "GET", "/", &[], b"").await.ok()?;
        (r.code == 200 && r.text().contains(r#"data-name="user-service""#)).then_some(())
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}
