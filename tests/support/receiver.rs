//! A webhook receiver for the notification tests: logs every request (path, headers, JSON body),
//! answers scripted status codes per path (then 200), and can go down (connections refused) and
//! come back on the same port. Shared by `tests/rollout` and `tests/listener_procs` through
//! `#[path]`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// Applies (server-side, forced) Secret `name` in `ns` holding a sink's `url` and optional
/// `headers`, as the notification sinks read it.
pub async fn apply_sink_secret(client: &kube::Client, ns: &str, name: &str, url: &str, headers: Option<&str>) {
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::ByteString;
    let mut data = std::collections::BTreeMap::new();
    data.insert("url".to_string(), ByteString(url.as_bytes().to_vec()));
    if let Some(h) = headers {
        data.insert("headers".to_string(), ByteString(h.as_bytes().to_vec()));
    }
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&s).expect("secret json");
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    let patch = kube::api::Patch::Apply(&body);
    kube::Api::<Secret>::namespaced(client.clone(), ns)
        .patch(name, &kube::api::PatchParams::apply("test").force(), &patch)
        .await
        .unwrap_or_else(|e| panic!("applying Secret {name}: {e}"));
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The idempotency key.
    pub fn key(&self) -> String {
        self.header("idempotency-key").unwrap_or_default().to_string()
    }

    /// The event named by the message, whatever its format.
    pub fn event(&self) -> String {
        // CloudEvents: `dev.baton.<kind>.<event>`.
        let word = |t: &str| t.rsplit('.').next().unwrap_or_default().to_string();
        if let Some(t) = self.header("ce-type") {
            return word(t);
        }
        if let Some(t) = self.body["type"].as_str() {
            return word(t);
        }
        if let Some(e) = self.body["event"].as_str() {
            return e.to_string();
        }
        // Slack: "[ns/name] Event: message".
        let text = self.body["text"].as_str().unwrap_or_default();
        text.split_once("] ")
            .and_then(|(_, rest)| rest.split_once(':'))
            .map(|(e, _)| e.to_string())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Log {
    /// Every request, answered or not.
    got: Vec<Received>,
    /// Status codes to answer the next requests to a path with (then 200), by path.
    script: std::collections::HashMap<String, VecDeque<u16>>,
}

/// A webhook receiver on a fixed port that can go down (its listener and every connection
/// closed: connections are refused) and come back on the same port.
pub struct Receiver {
    pub port: u16,
    log: Arc<Mutex<Log>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mut r = Receiver {
            port,
            log: Arc::default(),
            task: None,
        };
        r.task = Some(tokio::spawn(serve(listener, r.log.clone())));
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Down once this returns: the accept loop and its connections are gone.
    pub async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the same port again");
        self.task = Some(tokio::spawn(serve(listener, self.log.clone())));
    }

    pub fn script(&self, path: &str, codes: &[u16]) {
        self.log
            .lock()
            .unwrap()
            .script
            .entry(path.to_string())
            .or_default()
            .extend(codes);
    }

    pub fn got(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().unwrap();
        log.got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The events delivered to `path`, once per idempotency key, in order of first arrival.
    pub fn events(&self, path: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.got(path)
            .into_iter()
            .filter(|r| seen.insert(r.key()))
            .map(|r| r.event())
            .collect()
    }
}

impl Receiver {
    /// Wait until `want.len()` distinct messages arrived at `path` (2 minutes at most); their
    /// events, in order. (Its own loop: the harnesses that include this file have different
    /// `wait_for`s.)
    pub async fn wait_events(&self, path: &str, want: &[&str]) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let got = self.events(path);
            if got.len() >= want.len() {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {want:?} at /{path}: got {got:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Accept connections until aborted; the connections die with this task (a JoinSet).
async fn serve(listener: tokio::net::TcpListener, log: Arc<Mutex<Log>>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let log = log.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let log = log.clone();
                async move {
                    let path = req.uri().path().trim_start_matches('/').to_string();
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                        .collect();
                    let bytes = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let code = {
                        let mut l = log.lock().unwrap();
                        let code = l.script.get_mut(&path).and_then(VecDeque::pop_front);
                        l.got.push(Received { path, headers, body });
                        code.unwrap_or(200)
                    };
                    let resp = hyper::Response::builder()
                        .status(code)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}
