//! What a write changes: the paths added, modified and removed between two objects.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use super::fieldset::{added_subtree, is_ignored, item_pe, map_atomic, with_name, FieldSet, Path, Pe};
use super::{ListType, ListTypes};

#[derive(Default)]
pub(super) struct Comparison {
    pub(super) added: FieldSet,
    pub(super) modified: FieldSet,
    pub(super) removed: FieldSet,
}

impl Comparison {
    /// Whether an owner of `p` loses it to the writer: it was added or modified, or an
    /// ancestor was modified (replaced as a whole).
    pub(super) fn changes(&self, p: &[Pe]) -> bool {
        self.added.contains(p) || (1..=p.len()).any(|i| self.modified.contains(&p[..i]))
    }
    /// Whether `p` (or an ancestor) was removed.
    pub(super) fn removes(&self, p: &[Pe]) -> bool {
        (1..=p.len()).any(|i| self.removed.contains(&p[..i]))
    }
}

pub(super) fn compare_objects(lhs: &Value, rhs: &Value, lt: &dyn ListTypes) -> Comparison {
    let mut cmp = Comparison::default();
    compare(Some(lhs), Some(rhs), &mut Vec::new(), &mut Vec::new(), lt, &mut cmp);
    let custom = lt.custom();
    cmp.added.retain(|p| !is_ignored(p, custom));
    cmp.modified.retain(|p| !is_ignored(p, custom));
    cmp.removed.retain(|p| !is_ignored(p, custom));
    cmp
}

fn compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
    cmp: &mut Comparison,
) {
    match (lhs, rhs) {
        (None, None) => {}
        (None, Some(r)) => added_subtree(r, path, names, lt, &mut cmp.added),
        (Some(_), None) => {
            if !path.is_empty() {
                cmp.removed.insert(path.clone());
            }
        }
        (Some(Value::Object(l)), Some(Value::Object(r)))
            if !map_atomic(names, lt) && (!l.is_empty() || !r.is_empty()) =>
        {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for k in keys {
                path.push(Pe::Field(k.clone()));
                with_name(names, k, |names| compare(l.get(k), r.get(k), path, names, lt, cmp));
                path.pop();
            }
        }
        (Some(Value::Array(l)), Some(Value::Array(r))) if lt.list_type(&names.join(".")) != ListType::Atomic => {
            let list_type = lt.list_type(&names.join("."));
            let lpes: Vec<Pe> = l.iter().enumerate().map(|(i, v)| item_pe(v, &list_type, i)).collect();
            let rpes: Vec<Pe> = r.iter().enumerate().map(|(i, v)| item_pe(v, &list_type, i)).collect();
            // Each element's first item on either side, found by lookup: a list of n items
            // costs O(n log n), not a scan per item.
            let (lfirst, rfirst) = (first_of(&lpes), first_of(&rpes));
            let mut seen = BTreeSet::new();
            for pe in lpes.iter().chain(rpes.iter()) {
                if !seen.insert(pe) {
                    continue;
                }
                let li = lfirst.get(pe).and_then(|i| l.get(*i));
                let ri = rfirst.get(pe).and_then(|i| r.get(*i));
                path.push(pe.clone());
                compare(li, ri, path, names, lt, cmp);
                path.pop();
            }
        }
        (Some(l), Some(r)) => {
            if !values_equal(l, r) && !path.is_empty() {
                cmp.modified.insert(path.clone());
            }
        }
    }
}

/// Where each path element first occurs in `pes`.
fn first_of(pes: &[Pe]) -> BTreeMap<&Pe, usize> {
    let mut first = BTreeMap::new();
    for (i, pe) in pes.iter().enumerate() {
        first.entry(pe).or_insert(i);
    }
    first
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}
