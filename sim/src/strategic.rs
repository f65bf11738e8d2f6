//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
//!
//! A port of the apply half of `k8s.io/apimachinery/pkg/util/strategicpatch`
//! (`StrategicMergeMapPatch` with `MergeParallelList` and `IgnoreUnmatchedNulls`).
//! Instead of Go struct tags, the patch strategy of a list is looked up in a small
//! table of the `patchStrategy`/`patchMergeKey` tags of `k8s.io/api` (see
//! [`list_strategy`]).
//!
//! Supported: recursive map merge, `null` deletes a key, keyed list merge with
//! the real element ordering rules, primitive "merge" lists (set union),
//! `$patch: replace|delete` on maps and on keyed list elements, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.

use serde_json::{Map, Value};

const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// No patch strategy: the patch list replaces the original.
    Replace,
    /// `patchStrategy:"merge"`; `Some(key)` for lists of objects merged by that key,
    /// `None` for lists of primitives merged as a set.
    Merge(Option<&'static str>),
}

/// Apply a strategic merge patch (`application/strategic-merge-patch+json`) to `original`.
/// `kind` is the object's kind (e.g. "Pod"); it selects merge keys that differ between kinds
/// (e.g. `ports` is keyed by `port` in a Service and by `containerPort` in a container).
pub fn strategic_merge_patch(original: &Value, patch: &Value, kind: &str) -> Result<Value, String> {
    let patch = match patch {
        Value::Object(m) => m.clone(),
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_json_type(other)
            ))
        }
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_json_type(other)
            ))
        }
    };
    let ctx = Ctx { kind };
    let merged = merge_map(original, patch, &mut Vec::new(), &ctx)?;
    Ok(Value::Object(merged))
}

struct Ctx<'a> {
    kind: &'a str,
}

/// The patch strategy of the list field `field` inside the object at `path`
/// (field names from the root, list indices omitted), from the `k8s.io/api` struct tags.
fn list_strategy(kind: &str, path: &[String], field: &str) -> ListStrategy {
    use ListStrategy::{Merge, Replace};
    let parent = path.last().map(String::as_str).unwrap_or("");
    let in_container = matches!(parent, "containers" | "initContainers" | "ephemeralContainers");
    let at = |p: &[&str]| path.len() == p.len() && path.iter().zip(p).all(|(a, b)| a == b);
    match field {
        // ObjectMeta
        "ownerReferences" if parent == "metadata" => Merge(Some("uid")),
        "finalizers" if parent == "metadata" => Merge(None),
        // PodSpec (also inside pod templates)
        "containers" | "initContainers" | "ephemeralContainers" if parent == "spec" => Merge(Some("name")),
        "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" if parent == "spec" => {
            Merge(Some("name"))
        }
        "hostAliases" if parent == "spec" => Merge(Some("ip")),
        "topologySpreadConstraints" if parent == "spec" => Merge(Some("topologyKey")),
        // Container / EphemeralContainer
        "env" if in_container => Merge(Some("name")),
        "ports" if in_container => Merge(Some("containerPort")),
        "volumeMounts" if in_container => Merge(Some("mountPath")),
        "volumeDevices" if in_container => Merge(Some("devicePath")),
        // ServiceSpec
        "ports" if kind == "Service" && at(&["spec"]) => Merge(Some("port")),
        // Statuses (PodStatus, NodeStatus, DeploymentStatus, JobStatus, ...)
        "conditions" if parent == "status" => Merge(Some("type")),
        "podIPs" | "hostIPs" if parent == "status" => Merge(Some("ip")),
        "resourceClaimStatuses" if parent == "status" => Merge(Some("name")),
        "addresses" if kind == "Node" && at(&["status"]) => Merge(Some("type")),
        // NodeSpec
        "podCIDRs" if kind == "Node" && at(&["spec"]) => Merge(None),
        // ServiceAccount
        "secrets" if kind == "ServiceAccount" && path.is_empty() => Merge(Some("name")),
        // ValidatingAdmissionPolicy
        "matchConditions" if kind == "ValidatingAdmissionPolicy" && at(&["spec"]) => Merge(Some("name")),
        _ => Replace,
    }
}

fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn err_bad_arg_type(expected: &str, actual: &Value) -> String {
    format!("expected a {expected}, but received a {}", go_type_name(actual))
}

fn err_no_merge_key(m: &Map<String, Value>, key: &str) -> String {
    format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(m.clone())
    )
}

fn err_bad_patch_type(t: &Value, m: &Map<String, Value>) -> String {
    let t = match t {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("unknown patch type: {t} in map: {}", Value::Object(m.clone()))
}

/// Equality as Go's `==` on decoded JSON (numbers compare as float64).
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    path: &mut Vec<String>,
    ctx: &Ctx,
) -> Result<Map<String, Value>, String> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE_MARKER);
                // Process nested directives of the replacement against nothing.
                merge_map(Map::new(), patch, path, ctx)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(err_bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, path, ctx)?;

    // Regular keys first, then deletions from primitive lists (deterministic order).
    let mut deletions = Vec::new();
    for (key, patch_value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            if field.is_empty() {
                return Err(ERR_PRIMITIVE_LIST.to_string());
            }
            deletions.push((field.to_string(), patch_value));
            continue;
        }
        if key.starts_with('$') {
            return Err(format!("unknown patch directive {key:?}"));
        }
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let merged = match (original.remove(&key), patch_value) {
            (Some(Value::Object(orig)), Value::Object(p)) => {
                path.push(key.clone());
                let r = merge_map(orig, p, path, ctx);
                path.pop();
                Value::Object(r?)
            }
            (Some(Value::Array(orig)), Value::Array(p)) => {
                let strategy = list_strategy(ctx.kind, path, &key);
                path.push(key.clone());
                let r = merge_list(orig, p, strategy, path, ctx);
                path.pop();
                Value::Array(r?)
            }
            // Absent in the original, or of another type: take the patch value
            // (with its directives processed).
            (_, patch_value) => {
                let strategy = list_strategy(ctx.kind, path, &key);
                path.push(key.clone());
                let r = clean_new_value(patch_value, strategy, path, ctx);
                path.pop();
                r?
            }
        };
        original.insert(key, merged);
    }

    for (field, to_delete) in deletions {
        let Value::Array(to_delete) = to_delete else {
            return Err(ERR_PRIMITIVE_LIST.to_string());
        };
        if let Some(Value::Array(current)) = original.get_mut(&field) {
            if current.iter().any(|v| v.is_object() || v.is_array())
                || to_delete.iter().any(|v| v.is_object() || v.is_array())
            {
                return Err(ERR_PRIMITIVE_LIST.to_string());
            }
            current.retain(|v| !to_delete.iter().any(|d| scalar_eq(v, d)));
        }
    }
    Ok(original)
}

/// A patch value for a key absent from the original: process its directives against an
/// empty original so that no `$patch`/`$retainKeys`/... keys leak into the result.
fn clean_new_value(value: Value, strategy: ListStrategy, path: &mut Vec<String>, ctx: &Ctx) -> Result<Value, String> {
    match value {
        Value::Object(m) => Ok(Value::Object(merge_map(Map::new(), m, path, ctx)?)),
        Value::Array(items) if strategy != ListStrategy::Replace => {
            Ok(Value::Array(merge_list(Vec::new(), items, strategy, path, ctx)?))
        }
        other => Ok(other),
    }
}

fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), String> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(ERR_RETAIN_KEYS.to_string());
    };
    let retained = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if !retained(k) {
            return Err(ERR_RETAIN_KEYS.to_string());
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge `<field>` and order the result as the directive says
/// (precedence: `$setElementOrder` > order in the patch > order in the live list).
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: &mut Vec<String>,
    ctx: &Ctx,
) -> Result<(), String> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(err_bad_arg_type("[]interface {}", &order));
        };
        let field = match key.strip_prefix(SET_ELEMENT_ORDER) {
            Some(f) if !f.is_empty() => f.to_string(),
            _ => return Err(ERR_SET_ELEMENT_ORDER.to_string()),
        };
        let orig_list = match original.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.remove(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", &other)),
        };
        let strategy = list_strategy(ctx.kind, path, &field);
        let merge_key = match strategy {
            ListStrategy::Merge(k) => k,
            ListStrategy::Replace => None,
        };
        if let Some(p) = &patch_list {
            validate_patch_with_set_order_list(p, &order, merge_key)?;
        }
        path.push(field.clone());
        let merged = match (&orig_list, patch_list) {
            (None, None) => {
                path.pop();
                continue;
            }
            (Some(o), None) => Ok(o.clone()),
            (None, Some(p)) => match strategy {
                ListStrategy::Replace => Ok(p),
                _ => merge_list(Vec::new(), p, strategy, path, ctx),
            },
            (Some(o), Some(p)) => merge_list(o.clone(), p, strategy, path, ctx),
        };
        path.pop();
        let merged = merged?;
        if strategy == ListStrategy::Replace || merged.is_empty() {
            original.insert(field, Value::Array(merged));
            continue;
        }
        let (patch_items, server_only) = partition(merged, &order, merge_key)?;
        let server_order = orig_list.unwrap_or_default();
        let both = normalize_element_order(patch_items, server_only, &order, &server_order, merge_key)?;
        original.insert(field, Value::Array(both));
    }
    Ok(())
}

fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), String> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = match merge_key {
        Some(_) => {
            let mut v = Vec::new();
            for item in patch_list {
                let Value::Object(m) = item else {
                    return Err(err_bad_arg_type("map[string]interface {}", item));
                };
                if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some("delete") {
                    v.push(item);
                }
            }
            v
        }
        None => patch_list.iter().collect(),
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        ));
    }
    Ok(())
}

fn merge_key_value_equal(a: &Value, b: &Value, merge_key: Option<&str>) -> Result<bool, String> {
    let Some(key) = merge_key else {
        return Ok(scalar_eq(a, b));
    };
    let (Value::Object(am), Value::Object(bm)) = (a, b) else {
        let bad = if a.is_object() { b } else { a };
        return Err(err_bad_arg_type("map[string]interface {}", bad));
    };
    let av = am.get(key).ok_or_else(|| err_no_merge_key(am, key))?;
    let bv = bm.get(key).ok_or_else(|| err_no_merge_key(bm, key))?;
    Ok(scalar_eq(av, bv))
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    strategy: ListStrategy,
    path: &mut Vec<String>,
    ctx: &Ctx,
) -> Result<Vec<Value>, String> {
    let ListStrategy::Merge(merge_key) = strategy else {
        return Ok(patch);
    };
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let elements_are_maps = check_element_types(&original, &patch)?;
    if !elements_are_maps {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| scalar_eq(m, v)) {
                merged.push(v.clone());
            }
        }
        let (patch_items, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(patch_items, server_only, &patch, &original, None);
    }
    let Some(key) = merge_key else {
        return Err("cannot merge lists without merge key for type struct".to_string());
    };

    // Special elements ($patch: delete / replace).
    let mut original = original;
    let mut plain_patch = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = item else {
            return Err(err_bad_arg_type("map[string]interface {}", &item));
        };
        match m.get(DIRECTIVE_MARKER) {
            None => plain_patch.push(m),
            Some(directive) => match directive.as_str() {
                Some("delete") => {
                    let value = m.get(key).ok_or_else(|| err_no_merge_key(&m, key))?;
                    original.retain(|o| {
                        !o.as_object()
                            .and_then(|om| om.get(key))
                            .is_some_and(|ov| scalar_eq(ov, value))
                    });
                }
                Some("replace") => replace = true,
                Some("merge") => return Err("merging lists cannot yet be specified in the patch".to_string()),
                _ => return Err(err_bad_patch_type(directive, &m)),
            },
        }
    }
    if replace {
        let mut out = Vec::with_capacity(plain_patch.len());
        for m in plain_patch {
            out.push(Value::Object(merge_map(Map::new(), m, path, ctx)?));
        }
        return Ok(out);
    }

    // Merge the remaining elements by key.
    let mut merged = original.clone();
    for m in &plain_patch {
        let value = m.get(key).ok_or_else(|| err_no_merge_key(m, key))?;
        let pos = merged.iter().position(|o| {
            o.as_object()
                .and_then(|om| om.get(key))
                .is_some_and(|ov| scalar_eq(ov, value))
        });
        match pos {
            Some(i) => {
                let orig = match std::mem::take(&mut merged[i]) {
                    Value::Object(om) => om,
                    _ => Map::new(),
                };
                merged[i] = Value::Object(merge_map(orig, m.clone(), path, ctx)?);
            }
            None => merged.push(Value::Object(merge_map(Map::new(), m.clone(), path, ctx)?)),
        }
    }
    let patch_values: Vec<Value> = plain_patch.into_iter().map(Value::Object).collect();
    let (patch_items, server_only) = partition(merged, &patch_values, Some(key))?;
    normalize_element_order(patch_items, server_only, &patch_values, &original, Some(key))
}

/// Checks that all elements have the same JSON type and are not lists; returns whether
/// they are maps.
fn check_element_types(a: &[Value], b: &[Value]) -> Result<bool, String> {
    let mut first: Option<&Value> = None;
    for v in a.iter().chain(b.iter()) {
        match first {
            None => {
                if v.is_array() {
                    return Err("lists of lists are not supported".to_string());
                }
                first = Some(v);
            }
            Some(f) => {
                if go_type_name(f) != go_type_name(v) {
                    return Err(format!(
                        "list element types are not identical: [{} {}]",
                        Value::Array(a.to_vec()),
                        Value::Array(b.to_vec())
                    ));
                }
            }
        }
    }
    Ok(first.is_some_and(Value::is_object))
}

/// The value an element is identified by: its merge key value for maps, itself otherwise.
fn identity<'v>(v: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(k) => v.as_object().and_then(|m| m.get(k)),
        None => Some(v),
    }
}

fn index_of(list: &[Value], v: &Value, merge_key: Option<&str>) -> Option<usize> {
    let id = identity(v, merge_key)?;
    list.iter()
        .position(|x| identity(x, merge_key).is_some_and(|xid| scalar_eq(xid, id)))
}

/// Splits `merged` into the items present in `by` and the others.
fn partition(merged: Vec<Value>, by: &[Value], merge_key: Option<&str>) -> Result<(Vec<Value>, Vec<Value>), String> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        if let (Some(k), Value::Object(m)) = (merge_key, &v) {
            if !m.contains_key(k) {
                return Err(err_no_merge_key(m, k));
            }
        }
        if index_of(by, &v, merge_key).is_some() {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

/// Sorts `patch` by `patch_order` and `server_only` by `server_order`, then interleaves them
/// (as `normalizeElementOrder` + `mergeSortedSlice` in strategicpatch).
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, String> {
    let patch = sort_by_order(patch, patch_order, merge_key);
    let server_only = sort_by_order(server_only, server_order, merge_key);
    let (left, right) = (server_only, patch);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        let take_left = if i >= left.len() {
            false
        } else if j >= right.len() {
            true
        } else {
            match (
                index_of(server_order, &left[i], merge_key),
                index_of(server_order, &right[j], merge_key),
            ) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            }
        };
        if take_left {
            out.push(left[i].clone());
            i += 1;
        } else {
            out.push(right[j].clone());
            j += 1;
        }
    }
    Ok(out)
}

/// Stable sort of `items` by their position in `order`; items not in `order` keep
/// their relative place after the ordered ones.
fn sort_by_order(items: Vec<Value>, order: &[Value], merge_key: Option<&str>) -> Vec<Value> {
    let mut keyed: Vec<(usize, usize, Value)> = items
        .into_iter()
        .enumerate()
        .map(|(pos, v)| (index_of(order, &v, merge_key).unwrap_or(usize::MAX), pos, v))
        .collect();
    keyed.sort_by_key(|(idx, pos, _)| (*idx, *pos));
    keyed.into_iter().map(|(_, _, v)| v).collect()
}

#[cfg(test)]
pub(crate) mod tests;
