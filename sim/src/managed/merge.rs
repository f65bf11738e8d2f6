//! Merging an applied configuration into the live object, and pruning what an applier no
//! longer sets.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::fieldset::{item_pe, map_atomic, with_name, FieldSet, Pe};
use super::{ListType, ListTypes};

/// Merge an applied configuration into the live value (SMD `Merge`): maps merge, null
/// removes, map/set lists merge by item (configuration order, live-only items kept in
/// place), anything else is replaced.
pub(super) fn merge_values(live: Option<&Value>, cfg: &Value, names: &mut Vec<String>, lt: &dyn ListTypes) -> Value {
    match (live, cfg) {
        (live, Value::Object(c)) if !map_atomic(names, lt) => {
            let mut out = match live {
                Some(Value::Object(l)) => l.clone(),
                _ => Map::new(),
            };
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = with_name(names, k, |names| merge_values(out.get(k), cv, names, lt));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(c)) => {
            let list_type = lt.list_type(&names.join("."));
            if list_type == ListType::Atomic {
                return cfg.clone();
            }
            Value::Array(merge_lists(l, c, &list_type, names, lt))
        }
        _ => cfg.clone(),
    }
}

fn merge_lists(
    live: &[Value],
    cfg: &[Value],
    list_type: &ListType,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
) -> Vec<Value> {
    let lpes: Vec<Pe> = live.iter().enumerate().map(|(i, v)| item_pe(v, list_type, i)).collect();
    let rpes: Vec<Pe> = cfg.iter().enumerate().map(|(i, v)| item_pe(v, list_type, i)).collect();
    let mut out = Vec::with_capacity(live.len().max(cfg.len()));
    let mut emitted: BTreeSet<Pe> = BTreeSet::new();
    let mut next = 0;
    let mut emit_cfg_upto = |end: usize, next: &mut usize, out: &mut Vec<Value>, names: &mut Vec<String>| {
        while *next <= end && *next < cfg.len() {
            let pe = &rpes[*next];
            if emitted.insert(pe.clone()) {
                let l = lpes.iter().position(|p| p == pe).and_then(|i| live.get(i));
                out.push(merge_values(l, &cfg[*next], names, lt));
            }
            *next += 1;
        }
    };
    for (li, lpe) in lpes.iter().enumerate() {
        match rpes.iter().position(|p| p == lpe) {
            Some(pos) => emit_cfg_upto(pos, &mut next, &mut out, names),
            None => out.push(live[li].clone()),
        }
    }
    if !cfg.is_empty() {
        emit_cfg_upto(cfg.len() - 1, &mut next, &mut out, names);
    }
    out
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Remove the field or item at `path[depth..]` from `v`. Containers left empty are removed
/// too unless someone owns them; key fields of list items are never removed.
pub(super) fn remove_at(
    v: &mut Value,
    path: &[Pe],
    depth: usize,
    names: &mut Vec<String>,
    lt: &dyn ListTypes,
    owned: &FieldSet,
    key_fields: Option<&[String]>,
) {
    let Some(pe) = path.get(depth) else {
        return;
    };
    let last = depth + 1 == path.len();
    match v {
        Value::Object(m) => {
            let Pe::Field(name) = pe else {
                return;
            };
            if last {
                if !key_fields.is_some_and(|k| k.contains(name)) {
                    m.remove(name);
                }
                return;
            }
            let Some(child) = m.get_mut(name) else {
                return;
            };
            with_name(names, name, |names| {
                remove_at(child, path, depth + 1, names, lt, owned, None)
            });
            if is_empty_container(child) && !owned.contains(&path[..=depth]) {
                m.remove(name);
            }
        }
        Value::Array(items) => {
            let list_type = lt.list_type(&names.join("."));
            let Some(idx) = items
                .iter()
                .enumerate()
                .position(|(i, it)| item_pe(it, &list_type, i) == *pe)
            else {
                return;
            };
            if last {
                items.remove(idx);
                return;
            }
            let keys = match &list_type {
                ListType::Map(k) => Some(k.as_slice()),
                _ => None,
            };
            remove_at(&mut items[idx], path, depth + 1, names, lt, owned, keys);
            if is_empty_container(&items[idx]) && !owned.contains(&path[..=depth]) {
                items.remove(idx);
            }
        }
        _ => {}
    }
}
