//! Two API servers driven in step: a fresh baton-sim and the real control plane named by
//! `BATON_CLUSTER_DIR`, one namespace of the same name on each. A request kind is sent to both
//! ([`Pair::compare`]); the answers are normalised ([`crate::normalise`]) and compared
//! ([`crate::diff`]); what differs is either documented ([`crate::known`]) or fails the test at
//! [`Pair::finish`].

use std::sync::Mutex;
use std::time::Duration;

use baton_cluster::Attached;
use baton_sim::{Sim, SimConfig};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::diff::{self, Difference};
use crate::normalise::Normaliser;
use crate::report::TestReport;

/// The User-Agent of the suite's raw requests (kube-apiserver derives the default field manager
/// from it: `differential`).
pub const USER_AGENT: &str = "differential/v1.0.0 (linux/amd64)";

/// How long a condition on the real control plane may take (a loaded, shared 2-core machine).
pub const LONG: Duration = Duration::from_secs(90);

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sim,
    Real,
}

pub const SIDES: [Side; 2] = [Side::Sim, Side::Real];

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Sim => "baton-sim",
            Side::Real => "kube-apiserver",
        })
    }
}

/// One value per server.
#[derive(Debug, Clone)]
pub struct Both<T> {
    pub sim: T,
    pub real: T,
}

impl<T> Both<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Sim => &self.sim,
            Side::Real => &self.real,
        }
    }

    pub fn map<U>(&self, mut f: impl FnMut(Side, &T) -> U) -> Both<U> {
        Both {
            sim: f(Side::Sim, &self.sim),
            real: f(Side::Real, &self.real),
        }
    }
}

/// One raw request: method, path with query (`{ns}` stands for the test's namespace), headers,
/// body.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: http::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: http::Method, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
            headers: vec![("User-Agent".into(), USER_AGENT.into())],
            body: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Req {
        Req::new(http::Method::GET, path)
    }

    pub fn post(path: impl Into<String>, body: &Value) -> Req {
        Req::new(http::Method::POST, path).json(body)
    }

    pub fn put(path: impl Into<String>, body: &Value) -> Req {
        Req::new(http::Method::PUT, path).json(body)
    }

    pub fn delete(path: impl Into<String>) -> Req {
        Req::new(http::Method::DELETE, path)
    }

    /// A PATCH of `content_type` (`merge`, `json`, `strategic`, `apply` or a full media type).
    pub fn patch(path: impl Into<String>, content_type: &str, body: &Value) -> Req {
        let ct = match content_type {
            "merge" => "application/merge-patch+json",
            "json" => "application/json-patch+json",
            "strategic" => "application/strategic-merge-patch+json",
            "apply" => "application/apply-patch+yaml",
            other => other,
        };
        Req::new(http::Method::PATCH, path)
            .header("Content-Type", ct)
            .bytes(body.to_string().into_bytes())
    }

    pub fn json(self, body: &Value) -> Req {
        self.header("Content-Type", "application/json")
            .bytes(body.to_string().into_bytes())
    }

    pub fn bytes(mut self, body: Vec<u8>) -> Req {
        self.body = body;
        self
    }

    /// Add (or, for an empty value, remove) a header.
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            self.headers.push((name.into(), value.into()));
        }
        self
    }
}

/// One answer: status code, headers, body (JSON when it parses, else the text as a string).
#[derive(Debug, Clone)]
pub struct Resp {
    pub code: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// A field of the body by JSON pointer, as text ("" when absent).
    pub fn str(&self, pointer: &str) -> String {
        match self.body.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }
}

/// A test's two servers, namespace and findings.
pub struct Pair {
    pub ns: String,
    pub sim: Sim,
    pub real: Attached,
    pub admin: Both<kube::Client>,
    norm: Both<Mutex<Normaliser>>,
    report: Mutex<TestReport>,
}

impl Pair {
    /// A fresh simulator, the real control plane, and namespace `diff-<test>-<random>` on both.
    pub async fn start(test: &'static str) -> Pair {
        Pair::start_with(test, SimConfig::default()).await
    }

    /// [`Pair::start`] with a simulator configured as `config`.
    pub async fn start_with(test: &'static str, config: SimConfig) -> Pair {
        let real = Attached::from_env()
            .expect(
                "the differential suite needs BATON_CLUSTER_DIR (run it under `baton-cluster exec`: make test-real)",
            )
            .expect("attaching to the real control plane");
        let sim = Sim::start(config).await.expect("simulator starts");
        let admin = Both {
            sim: crate::setup::sim_client(&sim, Some(baton_sim::ADMIN)),
            real: crate::setup::real_admin(&real, "differential-admin", "default").await,
        };
        let servers = vec![
            sim.addr().to_string(),
            real.server.trim_start_matches("https://").to_string(),
        ];
        let norm = Both {
            sim: Mutex::new(Normaliser::new(servers.clone())),
            real: Mutex::new(Normaliser::new(servers)),
        };
        let short: String = test.replace('_', "-").chars().take(40).collect();
        let ns = format!(
            "diff-{}-{:05x}",
            short.trim_end_matches('-'),
            rand::random::<u32>() & 0xfffff
        );
        let pair = Pair {
            ns,
            sim,
            real,
            admin,
            norm,
            report: Mutex::new(TestReport::new(test)),
        };
        pair.create_namespace().await;
        pair
    }

    async fn create_namespace(&self) {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}});
        for side in SIDES {
            let r = self.send(side, Req::post("/api/v1/namespaces", &body)).await;
            assert_eq!(r.code, 201, "creating namespace {} on {side}: {}", self.ns, r.body);
        }
    }

    /// Wait until the `default` ServiceAccount of the namespace exists on both (the real
    /// serviceaccounts controller makes it a moment after the namespace; pods need it).
    pub async fn await_default_service_account(&self) {
        for side in SIDES {
            let path = format!("/api/v1/namespaces/{}/serviceaccounts/default", self.ns);
            self.wait(
                side,
                "the default ServiceAccount",
                |r| r.code == 200,
                Req::get(path.clone()),
            )
            .await;
        }
    }

    pub fn client(&self, side: Side) -> &kube::Client {
        self.admin.get(side)
    }

    /// Send `req` to one server (`{ns}` in its path replaced).
    pub async fn send(&self, side: Side, req: Req) -> Resp {
        send_with(&side.to_string(), self.client(side), &self.ns, req).await
    }

    /// Send the request `make` builds for each server to both, compare the answers as
    /// `kind`, and return them.
    pub async fn compare(&self, kind: &str, mut make: impl FnMut(Side) -> Req) -> Both<Resp> {
        let sim = self.send(Side::Sim, make(Side::Sim)).await;
        let real = self.send(Side::Real, make(Side::Real)).await;
        let both = Both { sim, real };
        self.compare_responses(kind, &both);
        both
    }

    /// Send `req` to both without comparing (the test compares parts of the answers).
    pub async fn both(&self, req: Req) -> Both<Resp> {
        let sim = self.send(Side::Sim, req.clone()).await;
        let real = self.send(Side::Real, req).await;
        Both { sim, real }
    }

    /// [`Pair::compare`] with the same request for both.
    pub async fn same(&self, kind: &str, req: Req) -> Both<Resp> {
        self.compare(kind, |_| req.clone()).await
    }

    /// Compare two answers already received as `kind`.
    pub fn compare_responses(&self, kind: &str, both: &Both<Resp>) {
        let values = both.map(|_, r| diff::response_value(r));
        self.compare_values(kind, values);
    }

    /// Compare two values (objects from a typed client, kubectl output as JSON, facts a test
    /// computed per server) as `kind`.
    pub fn compare_values(&self, kind: &str, values: Both<Value>) {
        let values = values.map(|side, v| self.normalise(side, v));
        dump(kind, &values);
        self.record(kind, diff::compare(kind, &values.sim, &values.real));
    }

    /// The normalised form of `v` as seen on `side` (for tests that compare parts).
    pub fn normalise(&self, side: Side, v: &Value) -> Value {
        let m = self.norm.get(side);
        let mut n = m.lock().unwrap_or_else(|p| p.into_inner());
        n.value(v)
    }

    fn record(&self, kind: &str, differences: Vec<Difference>) {
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        r.compared(kind, differences);
    }

    /// Poll one server with `req` until `done` holds for the answer (within [`LONG`]).
    pub async fn wait(&self, side: Side, what: &str, mut done: impl FnMut(&Resp) -> bool, req: Req) -> Resp {
        let end = tokio::time::Instant::now() + LONG;
        loop {
            let r = self.send(side, req.clone()).await;
            if done(&r) {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{side}: timed out after {LONG:?} waiting for {what}; last answer {} {}",
                r.code,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait on both servers for `done` (see [`Pair::wait`]).
    pub async fn wait_both(&self, what: &str, mut done: impl FnMut(&Resp) -> bool, req: Req) -> Both<Resp> {
        let sim = self.wait(Side::Sim, what, &mut done, req.clone()).await;
        let real = self.wait(Side::Real, what, &mut done, req).await;
        Both { sim, real }
    }

    /// End the test: delete the namespace on the real control plane, print the test's summary
    /// line, and fail on every difference not documented.
    pub async fn finish(self) {
        let path = format!("/api/v1/namespaces/{}", self.ns);
        let r = self.send(Side::Real, Req::delete(path)).await;
        assert!(
            matches!(r.code, 200 | 202 | 404),
            "deleting namespace {}: {}",
            self.ns,
            r.body
        );
        let report = self.report.into_inner().unwrap_or_else(|p| p.into_inner());
        report.finish();
    }
}

/// With `DIFFERENTIAL_DUMP=<substring>`, print both normalised answers of the kinds that
/// contain it (for looking into a difference).
fn dump(kind: &str, values: &Both<Value>) {
    let Ok(filter) = std::env::var("DIFFERENTIAL_DUMP") else {
        return;
    };
    if kind.contains(filter.as_str()) {
        eprintln!(
            "== {kind}\n-- baton-sim:\n{}\n-- kube-apiserver:\n{}",
            serde_json::to_string_pretty(&values.sim).unwrap_or_default(),
            serde_json::to_string_pretty(&values.real).unwrap_or_default()
        );
    }
}

/// Send `req` through `client` (a raw request: kube-rs adds only credentials); `label` names the
/// server in failures.
pub async fn send_with(label: &str, client: &kube::Client, ns: &str, req: Req) -> Resp {
    let path = req.path.replace("{ns}", ns);
    let mut builder = http::Request::builder().method(req.method.clone()).uri(&path);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(kube::client::Body::from(req.body.clone()))
        .expect("a well-formed request");
    let resp = tokio::time::timeout(LONG, client.send(request))
        .await
        .unwrap_or_else(|_| panic!("{label}: {} {path}: no answer within {LONG:?}", req.method))
        .unwrap_or_else(|e| panic!("{label}: {} {path}: {e}", req.method));
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes: Bytes = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_else(|e| panic!("{label}: {} {path}: reading the body: {e}", req.method));
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Resp { code, headers, body }
}
