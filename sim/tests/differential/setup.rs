//! What some tests need on both servers: baton's CRDs, identities RBAC decides for, kubectl,
//! and watch streams read event by event.

use std::path::PathBuf;

use http_body_util::BodyExt;
use serde_json::Value;

use crate::harness::{Both, Pair, Req, Side, LONG, SIDES};
use crate::kubectl::Kubectl;

/// baton's CRDs (crds/baton.dev_crds.yaml), each as a JSON value.
pub fn baton_crds() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/baton.dev_crds.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| v.is_object())
        .collect()
}

/// Server-side apply baton's CRDs on both servers as `baton demo` installs them (manager
/// `baton`, forced: on the shared control plane they may be installed already, unchanged),
/// and wait until they are Established.
pub async fn install_baton_crds(p: &Pair) {
    for crd in baton_crds() {
        let name = crd["metadata"]["name"].as_str().expect("a CRD name").to_string();
        let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
        for side in SIDES {
            let apply = Req::patch(format!("{path}?fieldManager=baton&force=true"), "apply", &crd);
            let r = p.send(side, apply).await;
            assert!(
                r.code == 200 || r.code == 201,
                "{side}: applying CRD {name}: {}",
                r.body
            );
            p.wait(
                side,
                &format!("CRD {name} Established"),
                |r| {
                    r.body["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
                },
                Req::get(path.clone()),
            )
            .await;
        }
    }
}

/// Clients of a user with no group but `system:authenticated` (RBAC decides what it may do):
/// a registered token on baton-sim, a client certificate without organisation on the real
/// control plane.
pub async fn unprivileged(p: &Pair, user: &str) -> Both<kube::Client> {
    let token = format!("token-{user}");
    p.sim.register_user(
        &token,
        baton_sim::auth::UserInfo {
            username: user.to_string(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        },
    );
    let sim = sim_client(&p.sim, Some(&token));
    let path = kubeconfig_dir().join(format!("{user}-{}.kubeconfig", p.ns));
    p.real
        .kubeconfig_unprivileged(user, &p.ns, &path)
        .expect("an unprivileged kubeconfig");
    let real = client_from(&path, false).await;
    Both { sim, real }
}

/// Clients that send no credentials (`system:anonymous`).
pub async fn anonymous(p: &Pair) -> Both<kube::Client> {
    let sim = sim_client(&p.sim, None);
    let real = client_from(&p.real.kubeconfig, true).await;
    Both { sim, real }
}

/// A client from the kubeconfig at `path` (without its credentials: anonymous), that never
/// retries: kube-rs retries 429, 503 and 504 by default, and the suite compares those answers.
pub async fn client_from(path: &std::path::Path, strip_credentials: bool) -> kube::Client {
    let mut kc = kube::config::Kubeconfig::read_from(path).expect("reading a kubeconfig");
    if strip_credentials {
        for user in &mut kc.auth_infos {
            user.auth_info = Some(Default::default());
        }
    }
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("a client configuration");
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("a client")
}

/// A client of the simulator's plain-HTTP port with bearer `token` (none: anonymous), that
/// never retries (see [`client_from`]).
pub fn sim_client(sim: &baton_sim::Sim, token: Option<&str>) -> kube::Client {
    let uri: http::Uri = sim.url().parse().expect("simulator URL");
    let mut cfg = kube::Config::new(uri);
    cfg.default_namespace = "default".into();
    cfg.auth_info.token = token.map(|t| t.to_string().into());
    cfg.read_timeout = None;
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("a simulator client")
}

/// The real control plane's admin client for `user` (group `system:masters`), that never
/// retries.
pub async fn real_admin(real: &baton_cluster::Attached, user: &str, ns: &str) -> kube::Client {
    let path = kubeconfig_dir().join(format!("{user}-{ns}.kubeconfig"));
    real.kubeconfig_as(user, ns, &path).expect("an admin kubeconfig");
    client_from(&path, false).await
}

fn kubeconfig_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("baton-differential");
    std::fs::create_dir_all(&dir).expect("a directory for kubeconfigs");
    dir
}

/// Real kubectl against each server (the admin identity), namespace `-n` given per command.
pub fn kubectls(p: &Pair) -> Both<Kubectl> {
    let path = kubeconfig_dir().join(format!("kubectl-{}.kubeconfig", p.ns));
    p.real
        .kubeconfig_as("differential-kubectl", &p.ns, &path)
        .expect("a kubectl kubeconfig");
    Both {
        sim: Kubectl::new(&p.sim),
        real: Kubectl::with_kubeconfig(path),
    }
}

/// A watch's answer: the code, and the events (JSON lines) read until `done` holds for the
/// events so far, the stream ended, or [`LONG`] passed.
pub struct Watched {
    pub code: u16,
    pub events: Vec<Value>,
}

/// Open the watch `req` on `side` and read it (see [`Watched`]).
pub async fn watch(p: &Pair, side: Side, req: Req, done: impl Fn(&[Value]) -> bool) -> Watched {
    let path = req.path.replace("{ns}", &p.ns);
    let mut builder = http::Request::builder().method(req.method.clone()).uri(&path);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let request = builder.body(kube::client::Body::from(Vec::new())).expect("a request");
    let resp = p
        .client(side)
        .send(request)
        .await
        .unwrap_or_else(|e| panic!("{side}: watch {path}: {e}"));
    let code = resp.status().as_u16();
    let mut body = resp.into_body();
    let (mut buf, mut events) = (Vec::<u8>::new(), Vec::new());
    let end = tokio::time::Instant::now() + LONG;
    while !done(&events) {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let frame = match tokio::time::timeout(left, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            _ => break,
        };
        if let Some(data) = frame.data_ref() {
            buf.extend_from_slice(data);
        }
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                events.push(v);
            }
        }
    }
    if !buf.is_empty() {
        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
            events.push(v);
        }
    }
    Watched { code, events }
}

/// Events without bookmarks (whose timing is the server's).
pub fn without_bookmarks(events: &[Value]) -> Vec<Value> {
    events.iter().filter(|e| e["type"] != "BOOKMARK").cloned().collect()
}
