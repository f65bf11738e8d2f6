//! The pages as pure functions: what they show, what they escape, which actions they offer.
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::json;

use super::rollout::{fragment, RolloutView};
use super::*;
use crate::api::rollout::Rollout;

const HOSTILE: &str = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;

fn rollout(status: serde_json::Value) -> Rollout {
    serde_json::from_value(json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "prod", "uid": "u1", "generation": 2,
                     "creationTimestamp": "2026-11-01T10:00:00Z"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "version": "v2",
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:v2"}]}},
            "strategy": {"batches": [1, "100%"], "pause": {}}
        },
        "status": status
    }))
    .expect("a Rollout")
}

fn paused_at_batch_one() -> Rollout {
    rollout(json!({
        "observedGeneration": 2, "phase": "Paused",
        "currentRevision": "web-a", "updateRevision": "web-b", "version": "v1",
        "replicas": 2, "readyReplicas": 2, "updatedReplicas": 1, "availableReplicas": 2,
        "batch": {"current": 1, "total": 2},
        "progress": {"total": 2, "completed": 1, "failed": 0, "pending": 1},
        "instances": [
            {"name": "web-0", "pod": "web-0-b", "version": "v2", "revision": 2, "ready": true, "since": "2026-11-01T10:05:00Z"},
            {"name": "web-1", "pod": "web-1-a", "version": "v1", "revision": 1, "ready": true, "pinned": true, "pinnedVersion": "v1"}
        ],
        "versions": {"v1": 1, "v2": 1},
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "BatchPaused", "message": HOSTILE,
             "lastTransitionTime": "2026-11-01T10:05:00Z", "observedGeneration": 2}
        ],
        "message": "batch 1/2 healthy; paused until promoted"
    }))
}

fn revision(n: i64, name: &str, version: &str, cause: &str) -> ControllerRevision {
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("prod".into()),
            labels: Some([("app.kubernetes.io/version".to_string(), version.to_string())].into()),
            annotations: Some([("kubernetes.io/change-cause".to_string(), cause.to_string())].into()),
            owner_references: Some(vec![OwnerReference {
                uid: "u1".into(),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        revision: n,
        data: Some(RawExtension(json!({"version": version}))),
    }
}

fn event(note: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some("e1".into()),
            namespace: Some("prod".into()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            kind: Some("Rollout".into()),
            name: Some("web".into()),
            namespace: Some("prod".into()),
            ..ObjectReference::default()
        },
        reason: Some("BatchPaused".into()),
        message: Some(note.into()),
        type_: Some("Normal".into()),
        ..Event::default()
    }
}

fn render(r: &Rollout, revisions: &[ControllerRevision], events: &[Event], read_only: bool) -> String {
    fragment(&RolloutView {
        rollout: r,
        revisions: revisions.iter().collect(),
        events: events.iter().collect(),
        read_only,
    })
    .into_string()
}

#[test]
fn everything_from_the_cluster_is_escaped() {
    let r = paused_at_batch_one();
    let revs = [revision(1, "web-a", "v1", HOSTILE), revision(2, "web-b", "v2", "apply")];
    let html = render(&r, &revs, &[event(HOSTILE)], false);
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    // Shown, as text: in the condition, the change cause and the event.
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;";
    assert_eq!(html.matches(escaped).count(), 3, "{html}");
}

#[test]
fn one_tile_per_instance_with_version_revision_ready_and_pin() {
    let html = render(&paused_at_batch_one(), &[], &[], false);
    assert_eq!(html.matches("<li class=\"tile").count(), 2);
    assert!(html.contains(
        r#"data-instance="web-0" data-version="v2" data-revision="2" data-ready="true" data-pinned="false""#
    ));
    assert!(html
        .contains(r#"data-instance="web-1" data-version="v1" data-revision="1" data-ready="true" data-pinned="true""#));
    assert!(html.contains("pinned to v1"));
    assert!(html.contains(r#"<progress max="2" value="1">"#), "{html}");
    assert!(html.contains(r#"data-current="1" data-total="2""#));
}

#[test]
fn actions_are_judged_as_the_cli_judges_them() {
    let html = render(&paused_at_batch_one(), &[], &[], false);
    // Paused between batches: promote is offered; retry is not (nothing failed).
    let promote = html.split("data-action=\"promote\"").nth(1).expect("a promote button");
    let promote = &promote[..promote.find('>').expect("end of tag")];
    assert!(!promote.contains("disabled"), "{promote}");
    let retry = html.split("data-action=\"retry\"").nth(1).expect("a retry button");
    let retry = &retry[..retry.find('>').expect("end of tag")];
    assert!(
        retry.contains("disabled") && retry.contains("no failed rollout to retry"),
        "{retry}"
    );
    // The unpinned instance offers pin (with the history's versions), the pinned one unpin.
    assert!(html.contains(r#"data-action="unpin""#));
    assert!(html.contains(r#"data-action="pin""#));
}

#[test]
fn read_only_offers_no_action() {
    let html = render(&paused_at_batch_one(), &[revision(1, "web-a", "v1", "x")], &[], true);
    assert!(!html.contains("data-action"), "{html}");
}

#[test]
fn undo_is_offered_for_every_revision_but_the_one_rolling_out() {
    let revs = [revision(1, "web-a", "v1", "a"), revision(2, "web-b", "v2", "b")];
    let html = render(&paused_at_batch_one(), &revs, &[], false);
    assert_eq!(html.matches(r#"data-action="undo""#).count(), 1);
    assert!(html.contains(r#"data-body="{&quot;revision&quot;:1}""#), "{html}");
}

#[test]
fn the_list_shows_phase_version_batch_and_age() {
    let r = paused_at_batch_one();
    let html = list::fragment(&[&r], &[]).into_string();
    assert!(
        html.contains(r#"data-name="web" data-namespace="prod" data-phase="Paused""#),
        "{html}"
    );
    assert!(html.contains(r#"<a href="/rollouts/prod/web">web</a>"#));
    assert!(html.contains(r#"<time datetime="2026-11-01T10:00:00Z">"#));
    assert!(html.contains("No ListenerSets."));
}

#[test]
fn paths_are_percent_encoded() {
    assert_eq!(rollout_href("a b", "x/../y"), "/rollouts/a%20b/x%2F..%2Fy");
}

#[test]
fn listeners_sort_naturally() {
    let mut ids = vec!["listener10", "listener2", "a", "listener1", "b7c", "b10c"];
    ids.sort_by_cached_key(|id| listenerset::natural(id));
    assert_eq!(ids, ["a", "b7c", "b10c", "listener1", "listener2", "listener10"]);
}
