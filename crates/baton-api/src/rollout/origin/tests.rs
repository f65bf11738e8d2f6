use super::*;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::json;

fn entry(manager: &str, secs: i64, fields: Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some("Update".into()),
        time: Some(Time(Timestamp::from_second(secs).unwrap())),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1(fields)),
        ..Default::default()
    }
}

fn meta(cause: Option<&str>, entries: Vec<ManagedFieldsEntry>) -> ObjectMeta {
    ObjectMeta {
        annotations: cause.map(|c| [(annotations::CHANGE_CAUSE.to_string(), c.to_string())].into()),
        managed_fields: Some(entries),
        ..Default::default()
    }
}

/// A pod template of one container `app` running `image`, with `env`.
fn template(image: &str, env: &[(&str, &str)]) -> PodTemplateSpec {
    let env: Vec<Value> = env.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
    serde_json::from_value(json!({
        "metadata": {"labels": {"app": "svc"}},
        "spec": {"containers": [{"name": "app", "image": image, "env": env}]}
    }))
    .unwrap()
}

fn rev<'a>(version: &'a str, template: &'a PodTemplateSpec) -> RevisionFields<'a> {
    RevisionFields { version, template }
}

/// What `kubectl apply` of the whole Rollout owns once `baton rollout set image` took the
/// version and the image: everything else of the template (and fields outside the revision).
fn applied_rest() -> Value {
    json!({
        "f:metadata": {"f:labels": {"f:team": {}}, "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:env": {}}}}}}
    })
}

/// What `baton rollout set image` owns: the version, the image and the change cause.
fn set_image() -> Value {
    json!({
        "f:metadata": {"f:annotations": {"f:kubernetes.io/change-cause": {}}},
        "f:spec": {"f:version": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:image": {}}}}}}
    })
}

const CAUSE: &str = "baton rollout set image svc app=svc:v2";

fn origin(cause: Option<&str>, by: &str) -> SpecOrigin {
    SpecOrigin {
        change_cause: cause.map(String::from),
        changed_by: Some(by.into()),
    }
}

#[test]
fn the_owner_of_what_changed_is_credited_whatever_the_times() {
    let (v1, v2) = (template("svc:v1", &[]), template("svc:v2", &[]));
    // `kubectl apply` (a label) and `set image` in the same second: the API server orders equal
    // times by manager name, so kubectl's entry comes last; a second later, baton's does.
    for (kubectl_at, baton_at) in [(100, 100), (100, 101), (101, 100)] {
        let m = meta(
            Some(CAUSE),
            vec![
                entry("baton", baton_at, set_image()),
                entry("kubectl-client-side-apply", kubectl_at, applied_rest()),
            ],
        );
        assert_eq!(
            SpecOwners::of(&m).origin(Some(rev("v1", &v1)), rev("v2", &v2)),
            origin(Some(CAUSE), "baton"),
            "kubectl at {kubectl_at}, baton at {baton_at}"
        );
    }
}

#[test]
fn a_cause_left_by_an_earlier_writer_is_not_credited() {
    // baton set the image and its cause; then kubectl-edit changed an env var (as late, or in
    // the same second).
    let (v2, edited) = (template("svc:v2", &[]), template("svc:v2", &[("A", "1")]));
    let edit = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:env": {}}}}}}});
    for edit_at in [100, 300] {
        let m = meta(
            Some(CAUSE),
            vec![
                entry("baton", 300, set_image()),
                entry("kubectl-edit", edit_at, edit.clone()),
            ],
        );
        assert_eq!(
            SpecOwners::of(&m).origin(Some(rev("v2", &v2)), rev("v2", &edited)),
            origin(None, "kubectl-edit"),
            "edit at {edit_at}"
        );
    }
}

#[test]
fn of_several_changers_the_cause_owner_then_the_newest() {
    let (v1, v2) = (template("svc:v1", &[]), template("svc:v2", &[("A", "1")]));
    let env = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:env": {}}}}}}});
    let m = meta(
        Some(CAUSE),
        vec![
            entry("baton", 100, set_image()),
            entry("kubectl-edit", 200, env.clone()),
        ],
    );
    let owners = SpecOwners::of(&m);
    assert_eq!(
        owners.origin(Some(rev("v1", &v1)), rev("v2", &v2)),
        origin(Some(CAUSE), "baton")
    );
    // The first revision: everything changed.
    assert_eq!(owners.origin(None, rev("v2", &v2)), origin(Some(CAUSE), "baton"));
    // No cause owner among them: the newest.
    let image = json!({"f:spec": {"f:version": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:image": {}}}}}}});
    let m = meta(None, vec![entry("kubectl-edit", 200, env), entry("helm", 100, image)]);
    assert_eq!(
        SpecOwners::of(&m).origin(Some(rev("v1", &v1)), rev("v2", &v2)),
        origin(None, "kubectl-edit")
    );
}

#[test]
fn a_restart_is_credited_to_the_owner_of_its_annotation() {
    let plain = template("svc:v1", &[]);
    let mut restarted = plain.clone();
    restarted
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(annotations::RESTARTED_AT.into(), "2025-01-01T00:00:00Z".into());
    let restart =
        json!({"f:metadata": {"f:annotations": {"f:baton.dev/restartedAt": {}, "f:kubernetes.io/change-cause": {}}}});
    let m = meta(
        Some("baton rollout restart svc"),
        vec![
            entry("baton", 100, restart),
            entry("kubectl-client-side-apply", 100, applied_rest()),
        ],
    );
    assert_eq!(
        SpecOwners::of(&m).origin(Some(rev("v1", &plain)), rev("v1", &restarted)),
        origin(Some("baton rollout restart svc"), "baton")
    );
}

#[test]
fn a_removal_nobody_owns_goes_to_the_newest_writer() {
    // An env var removed: a removed field has no owner.
    let (with, without) = (template("svc:v1", &[("A", "1")]), template("svc:v1", &[]));
    let labels = json!({"f:spec": {"f:template": {"f:metadata": {"f:labels": {"f:app": {}}}}}});
    let m = meta(
        Some(CAUSE),
        vec![entry("baton", 100, set_image()), entry("kubectl-edit", 200, labels)],
    );
    assert_eq!(
        SpecOwners::of(&m).origin(Some(rev("v1", &with)), rev("v1", &without)),
        origin(None, "kubectl-edit")
    );
}

#[test]
fn status_writers_and_other_fields_do_not_count() {
    let mut status = entry(
        "baton-rollout",
        900,
        json!({"f:status": {}, "f:spec": {"f:version": {}}}),
    );
    status.subresource = Some("status".into());
    let m = meta(
        None,
        vec![
            entry("helm", 100, json!({"f:spec": {"f:version": {}}})),
            entry("kubectl-scale", 500, json!({"f:spec": {"f:replicas": {}}})),
            status,
        ],
    );
    let t = template("svc:v1", &[]);
    assert_eq!(
        SpecOwners::of(&m).origin(Some(rev("v1", &t)), rev("v2", &t)),
        origin(None, "helm")
    );
}

#[test]
fn list_items_are_found_by_key_value_and_index() {
    let view = json!({"c": [{"name": "a", "port": 80, "x": 1}, {"name": "b", "port": 81, "x": 2}], "s": ["p", "q"]});
    let other = json!({"c": [{"name": "b", "port": 81, "x": 3}, {"name": "a", "port": 80, "x": 1}], "s": ["q"]});
    let differs = |owned: Value| fields::differs(&owned, Some(&view), Some(&other));
    assert!(!differs(
        json!({"f:c": {"k:{\"name\":\"a\",\"port\":80}": {".": {}, "f:x": {}}}})
    ));
    assert!(differs(json!({"f:c": {"k:{\"name\":\"b\",\"port\":81}": {"f:x": {}}}})));
    assert!(!differs(json!({"f:s": {"v:\"q\"": {}}})));
    assert!(differs(json!({"f:s": {"v:\"p\"": {}}})));
    assert!(differs(json!({"f:c": {"i:0": {"f:name": {}}}})));
    assert!(!differs(json!({"f:c": {"i:5": {}}})));
    // Garbage in a key is no field.
    assert!(!differs(json!({"f:c": {"k:{not json": {}}, "z:?": {}})));
}

#[test]
fn no_field_managers_leave_the_annotation_all_there_is() {
    let t = template("svc:v1", &[]);
    let m = meta(Some("why"), Vec::new());
    assert_eq!(
        SpecOwners::of(&m).origin(None, rev("v1", &t)),
        SpecOrigin {
            change_cause: Some("why".into()),
            changed_by: None,
        }
    );
}

#[test]
fn the_cache_keeps_what_decides_the_origin_and_no_more() {
    let (v1, v2) = (template("svc:v1", &[]), template("svc:v2", &[("A", "1")]));
    let mut status = entry("baton-rollout", 900, json!({"f:status": {"f:phase": {}}}));
    status.subresource = Some("status".into());
    let writers = || {
        vec![
            entry("baton", 100, set_image()),
            entry("kubectl-client-side-apply", 100, applied_rest()),
            entry("kubectl-scale", 500, json!({"f:spec": {"f:replicas": {}}})),
            status.clone(),
        ]
    };
    let mut later = writers();
    later.push(entry(
        "kubectl-edit",
        600,
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:env": {}}}}}}}),
    ));
    let mut uncaused = writers();
    uncaused[0] = entry("baton", 100, json!({"f:spec": {"f:version": {}}}));
    for (cause, entries) in [
        (Some("why"), writers()),
        (Some("why"), later),
        (Some("why"), uncaused),
        (None, writers()),
        (Some("why"), Vec::new()),
    ] {
        let mut m = meta(cause, entries);
        let decide = |m: &ObjectMeta| {
            let owners = SpecOwners::of(m);
            [
                owners.origin(Some(rev("v1", &v1)), rev("v2", &v2)),
                owners.origin(None, rev("v1", &v1)),
                owners.origin(Some(rev("v2", &v2)), rev("v2", &v1)),
            ]
        };
        let before = decide(&m);
        prune_for_cache(&mut m);
        assert_eq!(decide(&m), before);
        let kept = m.managed_fields.clone().unwrap_or_default();
        // Only the writers of revision fields or the cause, as text.
        assert!(
            kept.iter().all(|e| e.fields_type.as_deref() == Some(CACHED_FIELDS)
                && e.fields_v1.as_ref().is_some_and(|f| f.0.is_string())
                && !["kubectl-scale", "baton-rollout"].contains(&e.manager.as_deref().unwrap_or(""))),
            "{kept:?}"
        );
        for e in &kept {
            let text = e.fields_v1.as_ref().and_then(|f| f.0.as_str()).unwrap_or("");
            for other in ["f:replicas", "f:team", "last-applied", "f:status"] {
                assert!(!text.contains(other), "{other} kept: {text}");
            }
        }
        // Pruning the pruned changes nothing.
        let once = m.clone();
        prune_for_cache(&mut m);
        assert_eq!(m, once);
    }
}

#[test]
fn the_cache_drops_kubectls_copy_and_a_cause_nobody_can_be_credited_with() {
    let mut m = meta(Some("why"), vec![entry("baton", 200, set_image())]);
    let annotations = m.annotations.get_or_insert_with(Default::default);
    annotations.insert(crate::LAST_APPLIED_ANNOTATION.into(), "{\"kind\":\"Rollout\"}".into());
    annotations.insert(annotations::PROMOTE.into(), "1".into());
    prune_for_cache(&mut m);
    let kept = m.annotations.as_ref().unwrap();
    assert!(!kept.contains_key(crate::LAST_APPLIED_ANNOTATION));
    assert!(kept.contains_key(annotations::PROMOTE) && kept.contains_key(annotations::CHANGE_CAUSE));
    // A cause whose writer left no entry can never be credited.
    let mut m = meta(
        Some("why"),
        vec![entry("helm", 200, json!({"f:spec": {"f:version": {}}}))],
    );
    prune_for_cache(&mut m);
    assert_eq!(m.annotations, None);
    // With kubectl's copy the only annotation, none are left (not an empty map).
    let mut m = meta(None, Vec::new());
    m.annotations = Some([(crate::LAST_APPLIED_ANNOTATION.to_string(), "{}".to_string())].into());
    prune_for_cache(&mut m);
    assert_eq!(m.annotations, None);
}
