//! Notifications, with the real `baton controller` and a real HTTP receiver in the
//! test: every subscribed event arrives once per occurrence (by idempotency key) and in order, in
//! each format's shape; a receiver answering 500 first still gets the message; a receiver down
//! for 10 s gets everything afterwards; a missing Secret or a bad URL sets
//! `NotificationsReady=False`, and a message that cannot be delivered within the retry bound is
//! dropped with a Warning Event and `baton_notifications_total{result="failed"}`.

use std::time::{Duration, Instant};

use baton::api::rollout::RolloutPhase;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::controller::NO_ELECTION;
use crate::support::receiver::Receiver;
use crate::support::*;

async fn secret(env: &Env, name: &str, url: &str, headers: Option<&str>) {
    crate::support::receiver::apply_sink_secret(&env.client, &env.ns, name, url, headers).await;
}

/// `version` on 3 instances with the given sinks; v2 and later in two batches, pausing between
/// them until promoted.
fn notified(env: &Env, version: &str, sinks: Value) -> Value {
    let mut m = env.manifest_v(NAME, 3, version);
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

/// What a sink subscribed to every event hears from v1's deploy and then v2's (paused after
/// batch 1 and promoted, as [`v2_promoted`] does).
const V1_THEN_V2: [&str; 6] = [
    "Started",
    "Completed",
    "Started",
    "BatchCompleted",
    "Promoted",
    "Completed",
];

/// Applies v2 with `sinks`, waits for it to pause after batch 1, promotes it and waits until it
/// is Healthy.
async fn v2_promoted(env: &Env, sinks: Value) {
    env.apply(&notified(env, "v2", sinks)).await;
    wait_phase(env, "v2 paused after batch 1", RolloutPhase::Paused).await;
    env.merge(NAME, json!({"metadata": {"annotations": {"baton.dev/promote": "p1"}}}))
        .await;
    env.wait_healthy(NAME, "v2", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_events_arrive_once_in_order_in_each_format() {
    let env = Env::start().await;
    let ctrl = env.controller().await;
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

    env.apply(&notified(&env, "v1", sinks.clone())).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let r = env
        .wait_rollout(NAME, "NotificationsReady=True", LONG, |r| {
            condition(r, "NotificationsReady").is_some_and(|c| c.status == "True")
        })
        .await;
    assert_eq!(cond(&r, "NotificationsReady").1, "SinksReady");
    v2_promoted(&env, sinks).await;

    assert_eq!(
        rx.wait_events("json", &V1_THEN_V2).await,
        V1_THEN_V2,
        "json, in order, once per key"
    );
    assert_eq!(rx.wait_events("slack", &["Completed"; 2]).await, ["Completed"; 2]);
    let ceb = ["Started", "Completed", "Started", "Completed"];
    assert_eq!(rx.wait_events("ceb", &ceb).await, ceb);
    let ces = ["BatchCompleted", "Promoted"];
    assert_eq!(rx.wait_events("ces", &ces).await, ces);

    let uid = env.get(NAME).await.metadata.uid.expect("uid");
    assert_shapes(&rx, &env.ns, &uid);

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
fn assert_shapes(rx: &Receiver, ns: &str, uid: &str) {
    // The 500 was retried: the first message came twice, with one key.
    let json_got = rx.got("json");
    assert_eq!(json_got[0].key(), json_got[1].key(), "the retry carries the same key");
    for m in &json_got {
        assert_eq!(m.header("authorization"), Some("Bearer t0k"), "the Secret's headers");
        assert_eq!(m.header("content-type"), Some("application/json"));
        assert_eq!(m.body["id"].as_str(), Some(m.key().as_str()), "id = Idempotency-Key");
        assert_eq!(m.body["rollout"], NAME);
        assert_eq!(m.body["namespace"], ns);
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
            .starts_with(&format!("[{ns}/svc] Completed: ")),
        "{}",
        slack.body
    );

    let ceb = &rx.got("ceb")[0];
    assert_eq!(ceb.header("ce-specversion"), Some("1.0"));
    assert_eq!(ceb.header("ce-type"), Some("dev.baton.rollout.Started"));
    assert_eq!(
        ceb.header("ce-source"),
        Some(format!("/apis/baton.dev/v1alpha1/namespaces/{ns}/rollouts/svc").as_str())
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
        format!("/apis/baton.dev/v1alpha1/namespaces/{ns}/rollouts/svc")
    );
    assert_eq!(ces.body["id"].as_str(), Some(ces.key().as_str()));
    assert_eq!(ces.body["data"]["batch"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_ten_seconds_gets_everything_afterwards() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    let mut rx = Receiver::start().await;
    secret(&env, "hook", &rx.url("json"), None).await;
    let sinks = json!([sink("hook", "json", &ALL)]);
    env.apply(&notified(&env, "v1", sinks.clone())).await;
    env.wait_healthy(NAME, "v1", 3).await;
    rx.wait_events("json", &["Started", "Completed"]).await;

    // Down while v2 rolls out, promoted, to the end: every message waits.
    rx.down().await;
    let down_at = Instant::now();
    v2_promoted(&env, sinks).await;
    let before = rx.got("json").len();
    // The outage is what is measured: it lasts 10 s from when the receiver went down.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed())).await;
    assert_eq!(rx.got("json").len(), before, "nothing arrived while down");
    rx.up().await;

    assert_eq!(rx.wait_events("json", &V1_THEN_V2).await, V1_THEN_V2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_or_a_bad_url_sets_notifications_ready_false() {
    let env = Env::start().await;
    let _ctrl = env.controller().await;
    let rx = Receiver::start().await;
    env.apply(&notified(&env, "v1", json!([sink("hook", "json", &ALL)])))
        .await;
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
            .contains(&format!("Secret {}/hook does not exist", env.ns)),
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
    let extra = [NO_ELECTION[0], NO_ELECTION[1], "--notification-retry-seconds", "3"];
    let ctrl = env.start_controller("ctrl", &extra).await;
    let rx = Receiver::start().await;
    rx.script("json", &[503; 1000]);
    secret(&env, "hook", &rx.url("json"), None).await;
    env.apply(&notified(&env, "v1", json!([sink("hook", "json", &["Started"])])))
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
