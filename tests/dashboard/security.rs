//! The refusals that keep other web pages from acting with the user's credentials: CSRF token,
//! Origin, Host (DNS rebinding), JSON only — each refused before anything is written.
use serde_json::json;

use crate::harness::{self, pausing};
use crate::support::*;

const NAME: &str = "web";

/// A refused POST: what is wrong, its headers, the status and words of the answer.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_origin_and_host_are_checked() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 1, "v1")).await;
    env.wait_healthy(NAME, "v1", 1).await;
    let d = harness::start(&env.sim, &[]).await;
    let token = d.token().await;
    assert_eq!(token.len(), 64, "{token}");
    let origin = d.origin();
    let path = format!("/api/rollouts/{NS}/{NAME}/pause");
    let version_before = env.get(NAME).await.metadata.resource_version;
    let json = "application/json";
    let cases: Vec<Case> = vec![
        (
            "no token",
            vec![("Origin", &origin), ("Content-Type", json)],
            403,
            "CSRF token",
        ),
        (
            "a wrong token",
            vec![("Origin", &origin), ("X-CSRF-Token", "0123"), ("Content-Type", json)],
            403,
            "CSRF token",
        ),
        (
            "no Origin",
            vec![("X-CSRF-Token", &token), ("Content-Type", json)],
            403,
            "cross-origin",
        ),
        (
            "another Origin",
            vec![
                ("Origin", "http://evil.example"),
                ("X-CSRF-Token", &token),
                ("Content-Type", json),
            ],
            403,
            "cross-origin",
        ),
        (
            "a form",
            vec![
                ("Origin", &origin),
                ("X-CSRF-Token", &token),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            415,
            "JSON body",
        ),
        (
            "another Host",
            vec![
                ("Host", "evil.example"),
                ("Origin", "http://evil.example"),
                ("X-CSRF-Token", &token),
                ("Content-Type", json),
            ],
            403,
            "is not allowed",
        ),
    ];
    for (what, headers, code, words) in cases {
        let r = d.post(&path, &headers, b"{}").await;
        assert_eq!(r.code, code, "{what}: {}", r.text());
        assert!(
            r.json()["error"].as_str().is_some_and(|e| e.contains(words)),
            "{what}: {}",
            r.text()
        );
    }
    assert_eq!(
        env.get(NAME).await.metadata.resource_version,
        version_before,
        "nothing was written"
    );
    assert!(!env.get(NAME).await.spec.paused);

    // DNS rebinding: pages and the live stream answer only to the names they serve.
    for path in ["/", "/rollouts/default/web", "/live/", "/static/app.js"] {
        let r = d.get_with(path, &[("Host", "evil.example:80")]).await;
        assert_eq!(r.code, 403, "{path}: {}", r.text());
    }
    let port = d.addr.port().to_string();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(d.get_with("/", &[("Host", &host)]).await.code, 200, "{host}");
    }
    // With everything right, the same request acts.
    let (code, body) = d.act(NAME, "pause", json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert!(env.get(NAME).await.spec.paused);
}

/// `--allowed-host` adds a name (an ingress's), and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_are_added_by_name() {
    let env = Env::start().await;
    let d = harness::start(&env.sim, &["--allowed-host", "dash.example.com"]).await;
    assert_eq!(d.get_with("/", &[("Host", "dash.example.com")]).await.code, 200);
    assert_eq!(d.get_with("/", &[("Host", "other.example.com")]).await.code, 403);
}
