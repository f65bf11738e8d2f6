use std::sync::Arc;

use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;
use crate::api::rollout::RolloutPhase;
use crate::metrics::Metrics;

fn rollout(ns: &str, name: &str, status: serde_json::Value) -> Rollout {
    let mut r = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": name}}, "version": "v2",
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "web:v2"}]}},
        }
    });
    if !status.is_null() {
        r["status"] = status;
    }
    serde_json::from_value(r).expect("a Rollout")
}

fn listener_set(ns: &str, name: &str) -> ListenerSet {
    serde_json::from_value(json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": name}}, "listeners": [{"id": "l0"}]},
        "status": {"listeners": 4, "running": 2, "starting": 1, "pending": 1},
    }))
    .expect("a ListenerSet")
}

/// Metrics watching a Rollout store with `a/web` (Progressing, in batch 1 of 2) and `b/api`
/// (no status yet), and a ListenerSet store with `a/ls` (a handover, a fencing conflict and
/// a handover gap counted).
fn metrics() -> (Metrics, Writer<Rollout>, Writer<ListenerSet>) {
    let m = Metrics::default();
    let (rollouts, mut rw) = reflector::store();
    let (sets, mut sw) = reflector::store();
    rw.apply_watcher_event(&Event::Apply(rollout(
        "a",
        "web",
        json!({
            "phase": "Progressing", "version": "v1", "currentRevision": "r1", "updateRevision": "r2",
            "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2,
            "batch": {"current": 1, "total": 2}, "versions": {"v1": 2, "v2": 1},
        }),
    )));
    rw.apply_watcher_event(&Event::Apply(rollout("b", "api", serde_json::Value::Null)));
    sw.apply_watcher_event(&Event::Apply(listener_set("a", "ls")));
    m.watch_rollouts(rollouts);
    m.objects.watch_listener_sets(sets);
    m.watch_pods(Arc::new(|| 7));
    m.objects.listener_assigned("a", "ls", EVENT_HANDOVER);
    m.objects.fencing_conflict("a", "ls");
    observe_gap(&m.objects, "a", "ls", 0.1);
    (m, rw, sw)
}

fn observe_gap(o: &Objects, ns: &str, set: &str, seconds: f64) {
    o.counted(ns, set);
    o.0.gap.get_or_create(&object(ns, set)).observe(seconds);
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn the_per_object_series_are_those_of_the_stores() {
    let (m, mut rw, mut sw) = metrics();
    let text = m.render();
    let l = lines(&text);
    let web = r#"namespace="a",name="web""#;
    let api = r#"namespace="b",name="api""#;
    for want in [
        "baton_rollouts{phase=\"Progressing\"} 1".to_string(),
        "baton_rollouts{phase=\"Pending\"} 1".into(),
        "baton_cached_pods 7".into(),
        format!(
            r#"baton_rollout_info{{{web},version="v1",target_version="v2",current_revision="r1",update_revision="r2"}} 1"#
        ),
        format!(
            r#"baton_rollout_info{{{api},version="",target_version="v2",current_revision="",update_revision=""}} 1"#
        ),
        format!(r#"baton_rollout_phase{{{web},phase="Progressing"}} 1"#),
        format!(r#"baton_rollout_phase{{{web},phase="Healthy"}} 0"#),
        // Pending (no status yet) is not one of the phases of the family: all read 0.
        format!(r#"baton_rollout_phase{{{api},phase="Healthy"}} 0"#),
        format!(r#"baton_rollout_instances{{{web},version="v1"}} 2"#),
        format!(r#"baton_rollout_instances{{{web},version="v2"}} 1"#),
        format!(r#"baton_rollout_replicas{{{web},state="desired"}} 3"#),
        format!(r#"baton_rollout_replicas{{{web},state="updated"}} 1"#),
        format!(r#"baton_rollout_replicas{{{api},state="current"}} 0"#),
        format!(r#"baton_rollout_batch{{{web}}} 1"#),
        format!(r#"baton_rollout_batches{{{web}}} 2"#),
        r#"baton_listenerset_listeners{namespace="a",name="ls",state="running"} 2"#.into(),
        r#"baton_listenerset_listeners{namespace="a",name="ls",state="orphaned"} 0"#.into(),
        r#"baton_listener_handovers_total{namespace="a",name="ls"} 1"#.into(),
        r#"baton_listener_fencing_conflicts_total{namespace="a",name="ls"} 1"#.into(),
        r#"baton_listener_handover_gap_seconds_count{namespace="a",name="ls"} 1"#.into(),
    ] {
        assert!(l.contains(&want.as_str()), "{want} in\n{text}");
    }
    let phases = RolloutPhase::ALL.len();
    let count = |prefix: &str| l.iter().filter(|s| s.starts_with(prefix)).count();
    assert_eq!(count("baton_rollout_phase{"), 2 * phases);
    assert_eq!(count(&format!("baton_rollout_phase{{{api},")), phases);
    assert!(!l
        .iter()
        .any(|s| s.starts_with(&format!("baton_rollout_phase{{{api},")) && s.ends_with(" 1")));
    assert_eq!(count("baton_rollout_phase_seconds{"), 2);
    assert_eq!(
        count(&format!(r#"baton_rollout_phase_seconds{{{web},phase="Progressing"}} "#)),
        1
    );
    assert_eq!(
        count(&format!(r#"baton_rollout_phase_seconds{{{api},phase="Pending"}} "#)),
        1
    );
    assert_eq!(count("baton_rollout_batch{"), 1, "no batch before the first status");
    assert_eq!(count("baton_rollout_replicas{"), 10);
    assert_eq!(count("baton_rollout_instances{"), 2);
    assert_eq!(count("baton_listenerset_listeners{"), 5);
    assert_eq!(count("baton_listener_takeovers_total{"), 0, "none counted");

    // A second scrape reads the same; the phase's start is kept.
    assert_eq!(count("# TYPE baton_rollout_phase "), 1);
    let again = m.render();
    assert_eq!(
        lines(&again)
            .iter()
            .filter(|s| !s.starts_with("baton_rollout_phase_seconds") && !s.starts_with("process_"))
            .count(),
        l.iter()
            .filter(|s| !s.starts_with("baton_rollout_phase_seconds") && !s.starts_with("process_"))
            .count()
    );

    // Deleted objects' series go.
    rw.apply_watcher_event(&Event::Delete(rollout("a", "web", serde_json::Value::Null)));
    sw.apply_watcher_event(&Event::Delete(listener_set("a", "ls")));
    let text = m.render();
    assert!(!text.contains(web), "{text}");
    assert!(!text.contains(r#"name="ls""#), "{text}");
    assert!(!text.contains("phase=\"Progressing\"} 1"), "{text}");
    assert!(text.contains("baton_rollouts{phase=\"Pending\"} 1"), "{text}");
    assert_eq!(
        lines(&text)
            .iter()
            .filter(|s| s.starts_with("baton_rollout_phase{"))
            .count(),
        phases
    );
    assert!(
        !text.contains("# TYPE baton_rollout_batch "),
        "an empty family is left out:\n{text}"
    );
    assert!(!text.contains("# TYPE baton_listener_handovers "), "{text}");
    assert!(
        m.objects.0.phases.lock().map(|p| p.len()).unwrap_or(0) == 1,
        "the phase of web is forgotten"
    );
}

/// A controller watching several namespaces has a store of each kind per namespace: a scrape
/// reads them all, and counts the pods of every cache.
#[test]
fn the_stores_of_each_watched_namespace_are_read_together() {
    let m = Metrics::default();
    for (ns, pods) in [("a", 3), ("b", 4)] {
        let (rollouts, mut rw) = reflector::store();
        rw.apply_watcher_event(&Event::Apply(rollout(ns, "web", serde_json::Value::Null)));
        let (sets, mut sw) = reflector::store();
        sw.apply_watcher_event(&Event::Apply(listener_set(ns, "ls")));
        m.watch_rollouts(rollouts);
        m.objects.watch_listener_sets(sets);
        m.watch_pods(Arc::new(move || pods));
    }
    let text = m.render();
    let l = lines(&text);
    assert!(l.contains(&"baton_rollouts{phase=\"Pending\"} 2"), "{text}");
    assert!(l.contains(&"baton_cached_pods 7"), "{text}");
    for ns in ["a", "b"] {
        let running = format!(r#"baton_listenerset_listeners{{namespace="{ns}",name="ls",state="running"}} 2"#);
        assert!(l.contains(&running.as_str()), "{running} in\n{text}");
    }
}
