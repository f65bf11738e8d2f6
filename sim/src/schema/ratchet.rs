//! Validation ratcheting for schema errors, as kube-apiserver's `validation.WithRatcheting`
//! (feature `CRDValidationRatcheting`, on by default since 1.30, GA in 1.33): on an update,
//! an error is dropped when the value it is about did not change — more exactly, when some node
//! on its path that correlates with the old object is deep-equal to its old value. So an object
//! stored before a CRD tightened its schema can still be relabelled, or have its status
//! written, as long as the offending part is left alone.
//!
//! Correlation follows object properties and map keys from the root. kube-apiserver also
//! correlates the entries of `x-kubernetes-list-type: map` and `set` lists; here correlation
//! stops at any list index (atomic lists are not correlated there either), so an error inside a
//! changed list is kept: this side errs towards refusing.

use serde_json::Value;

use super::Cause;

/// The errors of `causes` that still stand on an update from `old` to `new`.
pub fn ratchet(causes: Vec<Cause>, old: &Value, new: &Value) -> Vec<Cause> {
    causes
        .into_iter()
        .filter(|c| !unchanged_along(&c.field, old, new))
        .collect()
}

/// Some node on `path` (dotted, as causes name fields) correlates and is equal in both.
fn unchanged_along(path: &str, old: &Value, new: &Value) -> bool {
    if path.is_empty() || path == "<nil>" {
        return false;
    }
    let (mut o, mut n, mut rest) = (old, new, path);
    loop {
        let (Some(om), Some(nm)) = (o.as_object(), n.as_object()) else {
            return false;
        };
        // Keys may hold dots (`app.kubernetes.io/name`): take the longest key of the new
        // object that the path continues with.
        let key = nm
            .keys()
            .filter(|k| {
                rest.strip_prefix(k.as_str())
                    .is_some_and(|r| r.is_empty() || r.starts_with('.') || r.starts_with('['))
            })
            .max_by_key(|k| k.len());
        let Some(key) = key else { return false };
        let (Some(ov), Some(nv)) = (om.get(key), nm.get(key)) else {
            return false;
        };
        if ov == nv {
            return true;
        }
        rest = &rest[key.len()..];
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            // The end of the path (and it changed), or a list index: no further correlation.
            None => return false,
        }
        o = ov;
        n = nv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cause(field: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: "m".into(),
            field: field.into(),
        }
    }

    fn kept(field: &str, old: Value, new: Value) -> bool {
        !ratchet(vec![cause(field)], &old, &new).is_empty()
    }

    #[test]
    fn an_unchanged_value_is_ratcheted_a_changed_one_is_not() {
        let old = json!({"spec": {"replicas": 2147483648_i64, "x": 1}, "status": {"a": 1}});
        let status_write = json!({"spec": {"replicas": 2147483648_i64, "x": 1}, "status": {"a": 2}});
        assert!(!kept("spec.replicas", old.clone(), status_write));
        let changed = json!({"spec": {"replicas": 2147483649_i64, "x": 1}});
        assert!(kept("spec.replicas", old.clone(), changed));
        let sibling = json!({"spec": {"replicas": 2147483648_i64, "x": 2}});
        assert!(!kept("spec.replicas", old, sibling));
    }

    #[test]
    fn new_values_lists_and_the_root_are_not_ratcheted() {
        assert!(kept(
            "spec.replicas",
            json!({"spec": {}}),
            json!({"spec": {"replicas": -1}})
        ));
        let old = json!({"spec": {"batches": [1, -1]}});
        assert!(kept(
            "spec.batches[1]",
            old.clone(),
            json!({"spec": {"batches": [2, -1]}})
        ));
        assert!(!kept("spec.batches[1]", old.clone(), old.clone()));
        assert!(kept("<nil>", old.clone(), old));
    }

    #[test]
    fn keys_with_dots_correlate() {
        let old = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "app": "y"}}});
        let new = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "app": "z"}}});
        assert!(!kept(
            "metadata.labels.app.kubernetes.io/name",
            old.clone(),
            new.clone()
        ));
        assert!(kept("metadata.labels.app", old, new));
    }
}
