//! Revision hashes, object names, pruning and rebuilding lost status from the revisions.

use super::*;

#[test]
fn revision_hash_is_stable_short_and_sensitive() {
    let s = spec("v1", 3);
    let h = revision_hash(&s.template, "v1");
    assert_eq!(h.len(), 10);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(h, revision_hash(&s.clone().template, "v1"));
    assert_ne!(h, revision_hash(&s.template, "v2"));
    assert_ne!(h, revision_hash(&spec("v2", 3).template, "v1"));
    let restarted = effective_template(&s, Some("2024-01-01T00:00:00Z"));
    assert_ne!(h, revision_hash(&restarted, "v1"));
    // Known values, computed before the hash came from the fnv crate: the names of existing
    // revisions and pods must not change across releases.
    assert_eq!(h, "9b48ef58ab");
    let web: PodTemplateSpec = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "web:1.2.3"}]}
    }))
    .unwrap();
    assert_eq!(revision_hash(&web, "1.2.3"), "3fb9f21507");
}

#[test]
fn names_and_slots() {
    assert_eq!(slot_name("a", 3), "a-3");
    assert_eq!(pod_name("a", 3, "ff"), "a-3-ff");
    assert_eq!(revision_name("a", "ff"), "a-ff");
    assert_eq!(parse_slot("a", "a-12"), Some(12));
    assert_eq!(parse_slot("a", "a-012"), None);
    assert_eq!(parse_slot("a", "b-1"), None);
    assert_eq!(parse_slot("a", "a-"), None);
    let l = pod_labels("a", 2, "ff", "v1");
    assert_eq!(l[labels::SLOT], "2");
    assert_eq!(l[labels::VERSION], "v1");
}

#[test]
fn old_revisions_are_pruned_but_never_in_use_ones() {
    let mut inp = healthy("v5", 2);
    inp.spec.revision_history_limit = 1;
    inp.revisions = vec![rev("v1", 1), rev("v2", 2), rev("v3", 3), rev("v4", 4), rev("v5", 5)];
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-1".into()],
        version: "v1".into(),
    }];
    inp.pods.push(ready_pod(0, "v2", at(0)));
    let p = plan(&inp);
    let pruned: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRevision { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    // v5 target/current, v1 pinned, v2 has a pod, v4 kept by the limit.
    assert_eq!(pruned, vec![rev("v3", 3).name.as_str()]);
}

#[test]
fn lost_status_is_rebuilt_from_the_cluster() {
    let mut inp = healthy("v1", 3);
    inp.status = None;
    inp.spec = spec("v2", 3);
    let p = plan(&inp);
    // Batched, not all at once: the running revision is taken as the healthy one.
    assert_eq!(p.status.current_revision, Some(rev("v1", 1).name));
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
}

/// A created pod carries its revision's template and labels: the update revision's for a new
/// pod, the stored (older) revision's when a slot returns to it; the revision's labels are the
/// pod's less the slot's.
#[test]
fn created_pods_carry_their_revisions_template_and_labels() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let p = plan(&inp);
    let Some(Action::CreateRevision {
        labels: rev_labels,
        template,
        ..
    }) = p.actions.first()
    else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(**template, spec("v2", 3).template);
    let Some(Action::CreatePod {
        labels: pod_labels,
        template: pod_template,
        slot,
        ..
    }) = p.actions.iter().find(|a| matches!(a, Action::CreatePod { .. }))
    else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(pod_template, template);
    assert_eq!(pod_labels["app"], NAME, "the template's labels are kept");
    assert_eq!(pod_labels[labels::SLOT], slot.to_string());
    assert_eq!(pod_labels[labels::VERSION], "v2");
    for (k, v) in rev_labels {
        assert_eq!(pod_labels.get(k), Some(v), "revision label {k}");
    }
    assert!(!rev_labels.contains_key(labels::SLOT));

    // Paused on v2 with slot 2's pod gone: it comes back from v1's stored template.
    let mut inp = healthy("v1", 3);
    inp.pods.retain(|p| p.slot != 2);
    inp.spec = spec("v2", 3);
    inp.spec.paused = true;
    let p = plan(&inp);
    let created: Vec<_> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod {
                slot, template, labels, ..
            } => Some((*slot, template.clone(), labels.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{:?}", p.actions);
    assert_eq!(created[0].0, 2);
    assert_eq!(*created[0].1, spec("v1", 3).template);
    assert_eq!(created[0].2[labels::VERSION], "v1");
}
