//! What `baton-sim serve` prints when it is up: the address its kubeconfig names (scheme
//! included), so a client following the banner uses TLS as the kubeconfig does.
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_banner_names_the_server_its_kubeconfig_names() {
    let dir = std::env::temp_dir().join(format!("baton-sim-banner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-sim"))
        .args(["serve", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("baton-sim serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("a banner within a minute")
        .expect("reading stdout")
        .expect("a line");
    let rest = line
        .strip_prefix("baton-sim listening on ")
        .unwrap_or_else(|| panic!("{line}"));
    let (url, path) = rest.split_once(" kubeconfig=").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(path, kubeconfig.to_string_lossy());
    assert!(url.starts_with("https://127.0.0.1:"), "{line}");
    let text = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig was written");
    assert!(
        text.contains(&format!("server: \"{url}\"\n")),
        "{url} is not the server of:\n{text}"
    );
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
