//! A CustomResourceDefinition's conditions, kept as apiextensions-apiserver's helpers keep them
//! (`SetCRDCondition`, `IsCRDConditionTrue`), and the finalizer a CRD's deletion goes through.
use serde_json::{json, Value};

/// The finalizer kube-apiserver adds to a CRD on its first DELETE: the CRD stays, `Terminating`,
/// until every custom resource it defines is gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The condition a CRD being deleted carries.
pub const TERMINATING: &str = "Terminating";

/// The conditions a CRD's status is given afresh on every write (names and establishment).
const COMPUTED: [&str; 2] = ["NamesAccepted", "Established"];

fn conditions(crd: &Value) -> &[Value] {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Whether condition `type_` of `crd` has status `True`.
pub fn condition_true(crd: &Value, type_: &str) -> bool {
    conditions(crd)
        .iter()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

/// Set condition `type_`: a new one is appended; an existing one takes the new status, reason
/// and message, and a new `lastTransitionTime` only when its status changes. False when the
/// condition already said exactly this (nothing to write).
pub fn set_condition(crd: &mut Value, type_: &str, status: &str, reason: &str, message: &str) -> bool {
    let now = crate::meta::now_rfc3339();
    if !crd.get("status").is_some_and(Value::is_object) {
        crate::meta::set_pointer(crd, "/status", json!({}));
    }
    if !crd.pointer("/status/conditions").is_some_and(Value::is_array) {
        crate::meta::set_pointer(crd, "/status/conditions", json!([]));
    }
    let Some(list) = crd.pointer_mut("/status/conditions").and_then(Value::as_array_mut) else {
        return false;
    };
    let fresh =
        json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
    let Some(c) = list.iter_mut().find(|c| c["type"] == type_) else {
        list.push(fresh);
        return true;
    };
    if c["status"] == status && c["reason"] == reason && c["message"] == message {
        return false;
    }
    if c["status"] != status || !c["lastTransitionTime"].is_string() {
        c["lastTransitionTime"] = json!(now);
    }
    c["status"] = json!(status);
    c["reason"] = json!(reason);
    c["message"] = json!(message);
    true
}

/// On an update of a CRD, whose names and establishment are computed afresh into `status`:
/// keep what the CRD's conditions said before — the `lastTransitionTime` of a computed condition
/// whose status did not change, and every other condition (`Terminating`) as it was.
pub fn keep_conditions(old: Option<&Value>, status: &mut Value) {
    let Some(old) = old else { return };
    let Some(fresh) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    for before in conditions(old) {
        let type_ = before["type"].as_str().unwrap_or_default();
        if !COMPUTED.contains(&type_) {
            fresh.push(before.clone());
            continue;
        }
        if let Some(c) = fresh
            .iter_mut()
            .find(|c| c["type"] == type_ && c["status"] == before["status"])
        {
            c["lastTransitionTime"] = before["lastTransitionTime"].clone();
        }
    }
}

/// `metadata.finalizers` of `obj`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Store `list` as `metadata.finalizers` (removed when empty).
pub fn set_finalizers(obj: &mut Value, list: &[String]) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("finalizers");
        } else {
            m.insert("finalizers".into(), json!(list));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_changes_its_transition_time_only_with_its_status() {
        let mut crd = json!({"status": {"conditions": [
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "m", "lastTransitionTime": "t0"}
        ]}});
        assert!(set_condition(
            &mut crd,
            TERMINATING,
            "True",
            "InstanceDeletionPending",
            "pending"
        ));
        assert!(condition_true(&crd, TERMINATING));
        let first = crd["status"]["conditions"][1]["lastTransitionTime"].clone();
        assert!(!set_condition(
            &mut crd,
            TERMINATING,
            "True",
            "InstanceDeletionPending",
            "pending"
        ));
        crd["status"]["conditions"][1]["lastTransitionTime"] = json!("t1");
        assert!(set_condition(
            &mut crd,
            TERMINATING,
            "True",
            "InstanceDeletionInProgress",
            "in progress"
        ));
        assert_eq!(crd["status"]["conditions"][1]["lastTransitionTime"], "t1");
        assert!(set_condition(
            &mut crd,
            TERMINATING,
            "False",
            "InstanceDeletionCompleted",
            "done"
        ));
        assert_ne!(crd["status"]["conditions"][1]["lastTransitionTime"], "t1");
        assert!(!condition_true(&crd, TERMINATING));
        assert!(first.is_string());
    }

    #[test]
    fn an_update_keeps_terminating_and_unchanged_transition_times() {
        let old = json!({"status": {"conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "t0"},
            {"type": "Established", "status": "True", "lastTransitionTime": "t0"},
            {"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "lastTransitionTime": "t1"}
        ]}});
        let mut status = json!({"conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "now"},
            {"type": "Established", "status": "True", "lastTransitionTime": "now"}
        ]});
        keep_conditions(Some(&old), &mut status);
        let c = status["conditions"].as_array().cloned().unwrap_or_default();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0]["lastTransitionTime"], "t0");
        assert_eq!(c[2]["reason"], "InstanceDeletionInProgress");
    }
}
