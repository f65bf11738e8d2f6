//! Issue 11 §5, notifications, with the real `baton controller` and a real HTTP receiver in the
//! test: every subscribed event arrives once per occurrence (by idempotency key) and in order, in
//! each format's shape; a receiver answering 500 first still gets the message; a receiver down
//! for 10 s gets everything afterwards; a missing Secret or a bad URL sets
//! `NotificationsReady=False`, and a message that cannot be delivered within the retry bound is
//! dropped with a Warning Event and `baton_notifications_total{result="failed"}`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::controller::{self, NO_ELECTION};
use crate::support::*;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The idempotency key.
    fn key(&self) -> String {
        self.header("idempotency-key").unwrap_or_default().to_string()
    }

    /// The event named by the message, whatever its format.
    fn event(&self) -> String {
        if let Some(t) = self.header("ce-type") {
            return t.trim_start_matches("dev.baton.rollout.").to_string();
        }
        if let Some(t) = self.body["type"].as_str() {
            return t.trim_start_matches("dev.baton.rollout.").to_string();
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
struct Receiver {
    port: u16,
    log: Arc<Mutex<Log>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Self {
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

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Down once this returns: the accept loop and its connections are gone.
    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the same port again");
        self.task = Some(tokio::spawn(serve(listener, self.log.clone())));
    }

    fn script(&self, path: &str, codes: &[u16]) {
        self.log
            .lock()
            .unwrap()
            .script
            .entry(path.to_string())
            .or_default()
            .extend(codes);
    }

    fn got(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().unwrap();
        log.got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The events delivered to `path`, once per idempotency key, in order of first arrival.
    fn events(&self, path: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.got(path)
            .into_iter()
            .filter(|r| seen.insert(r.key()))
            .map(|r| r.event())
            .collect()
    }

    async fn wait_events(&self, path: &str, want: &[&str]) -> Vec<String> {
        wait_for(&format!("{want:?} at /{path}"), Duration::from_secs(120), || async {
            let got = self.events(path);
            (got.len() >= want.len()).then_some(got)
        })
        .await
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

async fn secret(env: &Env, name: &str, url: &str, headers: Option<&str>) {
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
    let api: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let mut body = serde_json::to_value(&s).expect("secret json");
    body["apiVersion"] = json!("v1");
    body["kind"] = json!("Secret");
    api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&body))
        .await
        .unwrap_or_else(|e| panic!("applying Secret {name}: {e}"));
}

/// `version` on 3 instances with the given sinks; v2 and later in two batches, pausing between
/// them until promoted.
fn notified(version: &str, sinks: Value) -> Value {
    let mut m = manifest_v(NAME, 3, version);
    m["spec"]["notifications"] = sinks;
    if version != "v1" {
        m["spec"]["strategy"]["batches"] = json!([1, "100%"]);
        m["spec"]["strategy"]["pause"] = json!({});
    }
    m
}

const ALL: [&str; 9] = [
    "Started",
    "BatchCompleted",
    "Paused",
    "Promoted",
    "Completed",
    "Failed",
    "RolledBack",
    "Aborted",
    "CheckFailed",
];

fn sink(secret: &str, format: &str, events: &[&str]) -> Value {
    json!({"sink": {"secretRef": {"name": secret}}, "format": format, "events": events})
}

async fn promote(env: &Env, nonce: &str) {
    env.merge(NAME, json!({"metadata": {"annotations": {"baton.dev/promote": nonce}}}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_events_arrive_once_in_order_in_each_format() {
    let env = Env::start().await;
    let dir = controller::temp_dir("notify");
    let ctrl = controller::start(&env.sim, dir.path(), "ctrl", &NO_ELECTION).await;
    let rx = Receiver::start().await;
    secret(
        &env,
        "hook-json",
        &rx.url("json"),
        Some(r#"{"Authorization":"Bearer t0k"}"#),
    )
    .await;
    secret(&env, "hook-slack", &rx.url("slack"), None).await;
    secret(&env, "hook-ceb", &rx.url("ceb"), None).await;
    secret(&env, "hook-ces", &rx.url("ces"), None).await;
    let sinks = json!([
        sink("hook-json", "json", &ALL),
        sink("hook-slack", "slack", &["Completed"]),
        sink("hook-ceb", "cloudevents-binary", &["Started", "Completed"]),
        sink("hook-ces", "cloudevents-structured", &["BatchCompleted", "Promoted"]),
    ]);
    // The first delivery to the json sink is answered 500: it is retried.
    rx.script("json", &[500]);

    env.apply(&notified("v1", sinks.clone())).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let r = env
        .wait_rollout(NAME, "NotificationsReady=True", LONG, |r| {
            condition(r, "NotificationsReady").is_some_and(|c| c.status == "True")
        })
        .await;
    assert_eq!(cond(&r, "NotificationsReady").1, "SinksReady");
    env.apply(&notified("v2", sinks)).await;
    env.wait_rollout(NAME, "v2 paused after batch 1", LONG, |r| {
        current_generation(r)
            && r.status.as_ref().and_then(|s| s.phase) == Some(baton::api::rollout::RolloutPhase::Paused)
    })
    .await;
    promote(&env, "p1").await;
    env.wait_healthy(NAME, "v2", 3).await;

    let want = [
        "Started",
        "Completed",
        "Started",
        "BatchCompleted",
        "Promoted",
        "Completed",
    ];
    assert_eq!(
        rx.wait_events("json", &want).await,
        want,
        "json, in order, once per key"
    );
    assert_eq!(rx.wait_events("slack", &["Completed"; 2]).await, ["Completed"; 2]);
    let ceb = ["Started", "Completed", "Started", "Completed"];
    assert_eq!(rx.wait_events("ceb", &ceb).await, ceb);
    let ces = ["BatchCompleted", "Promoted"];
    assert_eq!(rx.wait_events("ces", &ces).await, ces);

    let uid = env.get(NAME).await.metadata.uid.expect("uid");
    assert_shapes(&rx, &uid);

    // The failed attempt is an Event and a metric.
    let ev = env
        .wait_event(NAME, "NotificationFailed", |e| {
            e.reason.as_deref() == Some("NotificationFailed")
        })
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(ev.note.as_deref().unwrap_or("").contains("HTTP 500"), "{ev:?}");
    assert!(ctrl.metric("baton_notifications_total{result=\"retried\"}").await >= Some(1.0));
    // Counted once the answer is read, which may be after the receiver logged the request.
    wait_for("14 delivered", LONG, || async {
        let n = ctrl.metric("baton_notifications_total{result=\"delivered\"}").await;
        (n == Some(14.0)).then_some(())
    })
    .await;
}

/// What each sink of [`subscribed_events_arrive_once_in_order_in_each_format`] got, in its
/// format's shape; the json sink's first message was answered 500 and retried.
fn assert_shapes(rx: &Receiver, uid: &str) {
    // The 500 was retried: the first message came twice, with one key.
    let json_got = rx.got("json");
    assert_eq!(json_got[0].key(), json_got[1].key(), "the retry carries the same key");
    for m in &json_got {
        assert_eq!(m.header("authorization"), Some("Bearer t0k"), "the Secret's headers");
        assert_eq!(m.header("content-type"), Some("application/json"));
        assert_eq!(m.body["id"].as_str(), Some(m.key().as_str()), "id = Idempotency-Key");
        assert_eq!(m.body["rollout"], NAME);
        assert_eq!(m.body["namespace"], NS);
        for field in ["version", "revision", "batch", "message", "time"] {
            assert!(m.body.get(field).is_some(), "{field} in {}", m.body);
        }
    }
    assert!(
        json_got[0].key().starts_with(&format!("{uid}-")),
        "{}",
        json_got[0].key()
    );
    let batch_completed = json_got
        .iter()
        .find(|m| m.event() == "BatchCompleted")
        .expect("BatchCompleted");
    assert_eq!(batch_completed.body["batch"], 1);
    assert_eq!(batch_completed.body["version"], "v2");

    let slack = &rx.got("slack")[0];
    assert_eq!(slack.body.as_object().map(|o| o.len()), Some(1), "{}", slack.body);
    assert!(
        slack.body["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[default/svc] Completed: "),
        "{}",
        slack.body
    );

    let ceb = &rx.got("ceb")[0];
    assert_eq!(ceb.header("ce-specversion"), Some("1.0"));
    assert_eq!(ceb.header("ce-type"), Some("dev.baton.rollout.Started"));
    assert_eq!(
        ceb.header("ce-source"),
        Some("/apis/baton.dev/v1alpha1/namespaces/default/rollouts/svc")
    );
    assert_eq!(ceb.header("ce-id").map(str::to_string), Some(ceb.key()));
    assert!(ceb.header("ce-time").is_some());
    assert_eq!(ceb.body["event"], "Started");

    let ces = &rx.got("ces")[0];
    assert_eq!(ces.header("content-type"), Some("application/cloudevents+json"));
    assert_eq!(ces.body["specversion"], "1.0");
    assert_eq!(ces.body["type"], "dev.baton.rollout.BatchCompleted");
    assert_eq!(
        ces.body["source"],
        "/apis/baton.dev/v1alpha1/namespaces/default/rollouts/svc"
    );
    assert_eq!(ces.body["id"].as_str(), Some(ces.key().as_str()));
    assert_eq!(ces.body["data"]["batch"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_ten_seconds_gets_everything_afterwards() {
    let env = Env::start().await;
    let dir = controller::temp_dir("notify-down");
    let _ctrl = controller::start(&env.sim, dir.path(), "ctrl", &NO_ELECTION).await;
    let mut rx = Receiver::start().await;
    secret(&env, "hook", &rx.url("json"), None).await;
    let sinks = json!([sink("hook", "json", &ALL)]);
    env.apply(&notified("v1", sinks.clone())).await;
    env.wait_healthy(NAME, "v1", 3).await;
    rx.wait_events("json", &["Started", "Completed"]).await;

    // Down while v2 rolls out, promoted, to the end: every message waits.
    rx.down().await;
    let down_at = Instant::now();
    env.apply(&notified("v2", sinks)).await;
    env.wait_rollout(NAME, "v2 paused after batch 1", LONG, |r| {
        current_generation(r)
            && r.status.as_ref().and_then(|s| s.phase) == Some(baton::api::rollout::RolloutPhase::Paused)
    })
    .await;
    promote(&env, "p1").await;
    env.wait_healthy(NAME, "v2", 3).await;
    let before = rx.got("json").len();
    // The outage is what is measured: it lasts 10 s from when the receiver went down.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed())).await;
    assert_eq!(rx.got("json").len(), before, "nothing arrived while down");
    rx.up().await;

    let want = [
        "Started",
        "Completed",
        "Started",
        "BatchCompleted",
        "Promoted",
        "Completed",
    ];
    assert_eq!(rx.wait_events("json", &want).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_or_a_bad_url_sets_notifications_ready_false() {
    let env = Env::start().await;
    let dir = controller::temp_dir("notify-bad");
    let _ctrl = controller::start(&env.sim, dir.path(), "ctrl", &NO_ELECTION).await;
    let rx = Receiver::start().await;
    env.apply(&notified("v1", json!([sink("hook", "json", &ALL)]))).await;
    let not_ready = |needle: &'static str| {
        move |r: &baton::api::rollout::Rollout| {
            condition(r, "NotificationsReady").is_some_and(|c| c.status == "False" && c.message.contains(needle))
        }
    };
    let r = env
        .wait_rollout(
            NAME,
            "NotificationsReady=False (no Secret)",
            LONG,
            not_ready("does not exist"),
        )
        .await;
    let (status, reason) = cond(&r, "NotificationsReady");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SinkInvalid"));
    assert!(
        condition(&r, "NotificationsReady")
            .unwrap()
            .message
            .contains("Secret default/hook does not exist"),
        "{:?}",
        condition(&r, "NotificationsReady")
    );
    // The rollout itself goes on.
    env.wait_healthy(NAME, "v1", 3).await;

    secret(&env, "hook", "not a url", None).await;
    env.wait_rollout(
        NAME,
        "NotificationsReady=False (bad URL)",
        LONG,
        not_ready("is not a URL"),
    )
    .await;

    // Fixed within the retry bound: the messages queued meanwhile arrive.
    secret(&env, "hook", &rx.url("json"), None).await;
    env.wait_rollout(NAME, "NotificationsReady=True", LONG, |r| {
        condition(r, "NotificationsReady").is_some_and(|c| c.status == "True")
    })
    .await;
    assert_eq!(
        rx.wait_events("json", &["Started", "Completed"]).await,
        ["Started", "Completed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_delivered_within_the_bound_is_dropped_and_reported() {
    let env = Env::start().await;
    let dir = controller::temp_dir("notify-drop");
    let extra = [NO_ELECTION[0], NO_ELECTION[1], "--notification-retry-seconds", "3"];
    let ctrl = controller::start(&env.sim, dir.path(), "ctrl", &extra).await;
    let rx = Receiver::start().await;
    rx.script("json", &[503; 1000]);
    secret(&env, "hook", &rx.url("json"), None).await;
    env.apply(&notified("v1", json!([sink("hook", "json", &["Started"])])))
        .await;
    let ev = env
        .wait_event(NAME, "NotificationFailed (dropped)", |e| {
            e.reason.as_deref() == Some("NotificationFailed") && e.note.as_deref().unwrap_or("").contains("dropped")
        })
        .await;
    assert!(ev.note.as_deref().unwrap_or("").contains("HTTP 503"), "{ev:?}");
    wait_for("baton_notifications_total{result=\"failed\"} 1", LONG, || async {
        (ctrl.metric("baton_notifications_total{result=\"failed\"}").await == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(
        ctrl.metric("baton_notifications_total{result=\"delivered\"}").await,
        None
    );
    assert!(rx.got("json").len() >= 2, "retried before it was dropped");
}
