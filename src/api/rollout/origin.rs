//! Who changed a Rollout's spec, and why: read from `metadata.managedFields` (the field manager
//! that last set `spec.version`, `spec.template` or the restart annotation) and the
//! `kubernetes.io/change-cause` annotation, which counts only when that same manager set it —
//! a cause left behind by an earlier command is not credited to a later change.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use serde_json::Value;

use super::annotations;

/// The origin of the current spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecOrigin {
    /// `kubernetes.io/change-cause`, when set with the change.
    pub change_cause: Option<String>,
    /// The field manager of the change (`kubectl-client-side-apply`, `baton`, `helm`, …).
    pub changed_by: Option<String>,
}

/// The managed paths that make a new revision: `(["f:spec", "f:version"], …)`.
fn revision_paths() -> [[String; 2]; 3] {
    [
        ["f:spec".into(), "f:version".into()],
        ["f:spec".into(), "f:template".into()],
        ["f:metadata".into(), "f:annotations".into()],
    ]
}

fn annotation_key(name: &str) -> String {
    format!("f:{name}")
}

fn owns(fields: &Value, path: &[String]) -> Option<Value> {
    let mut cur = fields;
    for p in path {
        cur = cur.get(p)?;
    }
    Some(cur.clone())
}

/// Does the entry own a field whose change makes a new revision?
fn changes_revision(fields: &Value) -> bool {
    let [version, template, annos] = revision_paths();
    owns(fields, &version).is_some()
        || owns(fields, &template).is_some()
        || owns(fields, &annos).is_some_and(|a| a.get(annotation_key(annotations::RESTARTED_AT)).is_some())
}

fn owns_cause(fields: &Value) -> bool {
    let [_, _, annos] = revision_paths();
    owns(fields, &annos).is_some_and(|a| a.get(annotation_key(annotations::CHANGE_CAUSE)).is_some())
}

fn main_resource(e: &ManagedFieldsEntry) -> bool {
    e.subresource.as_deref().is_none_or(str::is_empty)
}

fn fields(e: &ManagedFieldsEntry) -> Value {
    e.fields_v1.as_ref().map(|f| f.0.clone()).unwrap_or(Value::Null)
}

/// Who changed the spec last, and the change cause if they set it.
pub fn spec_origin(meta: &ObjectMeta) -> SpecOrigin {
    let cause = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::CHANGE_CAUSE))
        .filter(|c| !c.is_empty())
        .cloned();
    if let Some(cached) = cached_origin(meta, cause.clone()) {
        return cached;
    }
    let entries: Vec<&ManagedFieldsEntry> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| main_resource(e))
        .collect();
    if entries.is_empty() {
        // A server that tracks no field managers: the annotation is all there is.
        return SpecOrigin {
            change_cause: cause,
            changed_by: None,
        };
    }
    // The newest writer of a revision field (later entries win ties: the API server keeps them
    // in the order they were last updated).
    let changer = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| changes_revision(&fields(e)))
        .max_by_key(|(i, e)| (e.time.as_ref().map(|t| t.0), *i))
        .map(|(_, e)| *e);
    let cause_owners: Vec<&str> = entries
        .iter()
        .filter(|e| owns_cause(&fields(e)))
        .filter_map(|e| e.manager.as_deref())
        .collect();
    let changed_by = changer.and_then(|e| e.manager.clone());
    let change_cause = match &changed_by {
        Some(m) if !cause_owners.contains(&m.as_str()) => None,
        _ => cause,
    };
    SpecOrigin {
        change_cause,
        changed_by,
    }
}

/// The `fieldsType` of the one managedFields entry a cached Rollout keeps (see
/// [`prune_for_cache`]); an API server accepts only `FieldsV1`, so no stored object has it.
const CACHED_ORIGIN: &str = "baton.dev/cached-origin";

/// The origin as [`prune_for_cache`] left it, if it did.
fn cached_origin(meta: &ObjectMeta, cause: Option<String>) -> Option<SpecOrigin> {
    let entries = meta.managed_fields.as_deref()?;
    let [e] = entries else {
        return None;
    };
    (e.fields_type.as_deref() == Some(CACHED_ORIGIN)).then(|| SpecOrigin {
        change_cause: cause,
        changed_by: e.manager.clone(),
    })
}

/// A Rollout's metadata as the controller's cache keeps it: the origin decided once, as it is
/// cached (managedFields, a tree of every field of every writer, become one entry naming who
/// changed the spec: ~2 KB less per Rollout; the change cause stays only when it is credited),
/// and without kubectl's copy of the whole object ([`crate::api::LAST_APPLIED_ANNOTATION`], left
/// by client-side `kubectl apply`), which nothing in the controller reads. [`spec_origin`] of
/// the result is [`spec_origin`] of the object.
pub fn prune_for_cache(meta: &mut ObjectMeta) {
    let origin = spec_origin(meta);
    meta.managed_fields = origin.changed_by.map(|manager| {
        vec![ManagedFieldsEntry {
            manager: Some(manager),
            fields_type: Some(CACHED_ORIGIN.into()),
            ..ManagedFieldsEntry::default()
        }]
    });
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(crate::api::LAST_APPLIED_ANNOTATION);
        if origin.change_cause.is_none() {
            a.remove(annotations::CHANGE_CAUSE);
        }
        if a.is_empty() {
            // An emptied map still holds its node.
            meta.annotations = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn entry(manager: &str, secs: i64, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            time: Some(Time(jiff::Timestamp::from_second(secs).unwrap())),
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

    fn spec_and_cause() -> Value {
        json!({"f:metadata": {"f:annotations": {"f:kubernetes.io/change-cause": {}}}, "f:spec": {"f:template": {"f:spec": {}}}})
    }

    #[test]
    fn the_newest_spec_writer_changed_it_and_its_cause_counts() {
        let m = meta(
            Some("baton rollout set image svc app=svc:v2"),
            vec![
                entry(
                    "kubectl-client-side-apply",
                    100,
                    json!({"f:spec": {"f:version": {}, "f:replicas": {}}}),
                ),
                entry("baton", 200, spec_and_cause()),
            ],
        );
        assert_eq!(
            spec_origin(&m),
            SpecOrigin {
                change_cause: Some("baton rollout set image svc app=svc:v2".into()),
                changed_by: Some("baton".into()),
            }
        );
    }

    #[test]
    fn a_cause_left_by_an_earlier_writer_is_not_credited() {
        let m = meta(
            Some("baton rollout set image svc app=svc:v2"),
            vec![
                entry("baton", 100, spec_and_cause()),
                entry("kubectl-edit", 300, json!({"f:spec": {"f:template": {}}})),
            ],
        );
        assert_eq!(
            spec_origin(&m),
            SpecOrigin {
                change_cause: None,
                changed_by: Some("kubectl-edit".into()),
            }
        );
    }

    #[test]
    fn status_writers_and_other_fields_do_not_count() {
        let mut status = entry("baton-rollout", 900, json!({"f:status": {}}));
        status.subresource = Some("status".into());
        let m = meta(
            None,
            vec![
                entry("helm", 100, json!({"f:spec": {"f:version": {}}})),
                entry("kubectl-scale", 500, json!({"f:spec": {"f:replicas": {}}})),
                status,
            ],
        );
        assert_eq!(spec_origin(&m).changed_by.as_deref(), Some("helm"));
    }

    #[test]
    fn the_cache_keeps_the_origin_in_one_small_entry() {
        let writers = || {
            vec![
                entry(
                    "kubectl-client-side-apply",
                    100,
                    json!({"f:spec": {"f:version": {}, "f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}),
                ),
                entry("kubectl-scale", 500, json!({"f:spec": {"f:replicas": {}}})),
                entry("baton", 200, spec_and_cause()),
            ]
        };
        // Credited cause, cause of an earlier writer, no cause, no managers at all.
        let mut later = writers();
        later.push(entry("kubectl-edit", 600, json!({"f:spec": {"f:template": {}}})));
        for (cause, entries) in [
            (Some("why"), writers()),
            (Some("why"), later),
            (None, writers()),
            (Some("why"), Vec::new()),
        ] {
            let mut m = meta(cause, entries);
            let before = spec_origin(&m);
            prune_for_cache(&mut m);
            assert_eq!(spec_origin(&m), before);
            let kept = m.managed_fields.clone().unwrap_or_default();
            assert!(
                kept.len() <= 1 && kept.iter().all(|e| e.fields_v1.is_none()),
                "{kept:?}"
            );
            // Pruning the pruned changes nothing.
            let once = m.clone();
            prune_for_cache(&mut m);
            assert_eq!(m, once);
        }
    }

    #[test]
    fn the_cache_drops_kubectls_copy_and_keeps_the_rest() {
        let mut m = meta(Some("why"), vec![entry("baton", 200, spec_and_cause())]);
        let annotations = m.annotations.get_or_insert_with(Default::default);
        annotations.insert(
            crate::api::LAST_APPLIED_ANNOTATION.into(),
            "{\"kind\":\"Rollout\"}".into(),
        );
        annotations.insert(annotations::PROMOTE.into(), "1".into());
        let before = spec_origin(&m);
        prune_for_cache(&mut m);
        let kept = m.annotations.as_ref().unwrap();
        assert!(!kept.contains_key(crate::api::LAST_APPLIED_ANNOTATION));
        assert!(kept.contains_key(annotations::PROMOTE) && kept.contains_key(annotations::CHANGE_CAUSE));
        assert_eq!(spec_origin(&m), before);
        // With kubectl's copy the only annotation, none are left (not an empty map).
        let mut m = meta(None, Vec::new());
        m.annotations = Some([(crate::api::LAST_APPLIED_ANNOTATION.to_string(), "{}".to_string())].into());
        prune_for_cache(&mut m);
        assert_eq!(m.annotations, None);
    }
}
