//! The arithmetic and bookkeeping of pkg/controller/deployment/util: surge and unavailability
//! bounds, the pod-template hash, template equality, the replica and revision annotations, and
//! the orders ReplicaSets are walked in.
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{
    Deployment, IntOrPercent, ReplicaSet, Strategy, DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, REVISION,
    REVISION_HISTORY,
};

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, a percentage of `total` rounded up
/// or down. Err for a string that is not a percentage.
pub fn scaled(v: &IntOrPercent, total: i64, round_up: bool) -> Result<i64, String> {
    match v {
        IntOrPercent::Int(n) => Ok(*n),
        IntOrPercent::Str(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .ok_or_else(|| {
                    format!("invalid value for IntOrString: invalid type: string is not a percentage: {s:?}")
                })?
                .parse()
                .map_err(|_| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let x = (pct * total) as f64 / 100.0;
            Ok(if round_up { x.ceil() } else { x.floor() } as i64)
        }
    }
}

/// `ResolveFenceposts`: surge rounds up, unavailability down; when both come to zero,
/// unavailability is one (surge might be impossible, e.g. under a quota). Values that are not
/// counts or percentages (validation rejects them) count as zero.
pub fn resolve_fenceposts(surge: &IntOrPercent, unavailable: &IntOrPercent, desired: i64) -> (i64, i64) {
    let s = scaled(surge, desired, true).unwrap_or(0);
    let u = scaled(unavailable, desired, false).unwrap_or(0);
    if s == 0 && u == 0 {
        return (0, 1);
    }
    (s, u)
}

/// `MaxUnavailable`: never more than the desired replicas; zero for Recreate.
pub fn max_unavailable(d: &Deployment) -> i64 {
    match &d.strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } if d.replicas != 0 => resolve_fenceposts(max_surge, max_unavailable, d.replicas)
            .1
            .min(d.replicas),
        _ => 0,
    }
}

/// `MaxSurge`: zero for Recreate.
pub fn max_surge(d: &Deployment) -> i64 {
    match &d.strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => resolve_fenceposts(max_surge, max_unavailable, d.replicas).0,
        Strategy::Recreate => 0,
    }
}

/// `NewRSNewReplicas`: how far the new ReplicaSet may grow now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i64 {
    match &d.strategy {
        Strategy::Recreate => d.replicas,
        Strategy::RollingUpdate { max_surge, .. } => {
            let surge = scaled(max_surge, d.replicas, true).unwrap_or(0);
            let current: i64 = all.iter().map(|r| r.replicas).sum();
            let max_total = d.replicas + surge;
            if current >= max_total {
                return new.replicas;
            }
            new.replicas + (max_total - current).min(d.replicas - new.replicas)
        }
    }
}

/// `IsSaturated`: the new ReplicaSet has all the Deployment's replicas, available.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let desired = rs.annotations.get(DESIRED_REPLICAS).and_then(|s| s.parse::<i64>().ok());
    desired == Some(d.replicas) && rs.replicas == d.replicas && rs.available_replicas == d.replicas
}

/// Fields whose zero value means something (pointers in Go: `false` or `0` is not "unset").
const MEANINGFUL_ZERO: &[&str] = &[
    "activeDeadlineSeconds",
    "allowPrivilegeEscalation",
    "automountServiceAccountToken",
    "defaultMode",
    "enableServiceLinks",
    "fsGroup",
    "hostUsers",
    "mode",
    "optional",
    "privileged",
    "readOnlyRootFilesystem",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "terminationGracePeriodSeconds",
];

fn zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A copy of `v` without what Go's typed objects cannot tell from absent: nulls, empty objects
/// and arrays, and the zero values of fields that are not pointers (`apiequality.Semantic`
/// takes nil and empty as equal, an absent field decodes as its zero value). So a template that
/// went through a client's types — `kubectl rollout undo` sends `resources: {}`; a protobuf
/// body carries `stdin: false` — is still the same template.
pub fn normalized(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m
                .iter()
                .filter(|(k, v)| !zero(v) || MEANINGFUL_ZERO.contains(&k.as_str()))
                .filter_map(|(k, v)| Some((k.clone(), normalized(v)?)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => Some(Value::Array(
            a.iter().map(|v| normalized(v).unwrap_or(Value::Null)).collect(),
        )),
        other => Some(other.clone()),
    }
}

/// A pod template without its `pod-template-hash` label (nor a creation time: a template has
/// none, `null` when a client sent one), normalized.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
        if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove(HASH_LABEL);
        }
    }
    normalized(&t).unwrap_or(Value::Null)
}

/// `EqualIgnoreHash`: the same template but for the `pod-template-hash` label.
pub fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

/// JSON with object keys sorted, whatever the map's own order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// FNV-1a, 32 bits (Go's `hash/fnv.New32a`).
pub fn fnv32a(data: &[u8]) -> u32 {
    data.iter()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

/// `rand.SafeEncodeString`: each byte as a character of an alphabet without vowels (no words)
/// and without look-alikes.
pub fn safe_encode(s: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a template: kube's `ComputeHash` is FNV-32a over a Go dump of the
/// template, then the collision count's four little-endian bytes, its decimal value encoded by
/// [`safe_encode`]. The dump cannot be reproduced outside Go, so this hashes the normalized
/// template's canonical JSON instead: the same shape of name, not the same name.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(&without_hash(template), &mut text);
    let mut bytes = text.into_bytes();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Annotations a ReplicaSet does not take from its Deployment (`annotationsToSkip`).
pub fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

/// `SetReplicasAnnotations`: true when either changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i64, max: i64) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        if rs.annotations.get(k) != Some(&v.to_string()) {
            rs.annotations.insert(k.to_string(), v.to_string());
            changed = true;
        }
    }
    changed
}

/// `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i64, max: i64) -> bool {
    rs.annotations.get(DESIRED_REPLICAS) != Some(&desired.to_string())
        || rs.annotations.get(MAX_REPLICAS) != Some(&max.to_string())
}

/// kube keeps `deployment.kubernetes.io/revision-history` under this many characters.
const MAX_REV_HISTORY_CHARS: usize = 2000;

/// Append `old` to the revisions a reused ReplicaSet had before (a rollback to it).
fn push_revision_history(annotations: &mut BTreeMap<String, String>, old: &str) {
    let history = annotations.get(REVISION_HISTORY).cloned().unwrap_or_default();
    let parts: Vec<&str> = history.split(',').collect();
    if parts[0].is_empty() {
        annotations.insert(REVISION_HISTORY.into(), old.to_string());
        return;
    }
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
        total -= parts[start].len() + 1;
        start += 1;
    }
    if total <= MAX_REV_HISTORY_CHARS {
        let mut kept: Vec<&str> = parts[start..].to_vec();
        kept.push(old);
        annotations.insert(REVISION_HISTORY.into(), kept.join(","));
    }
}

/// `SetNewReplicaSetAnnotations`: copy the Deployment's annotations, raise the revision to
/// `new_revision` (remembering the one it replaces), and for a ReplicaSet about to be created
/// set the replica annotations. True when anything changed.
pub fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
    let mut changed = false;
    for (k, v) in &d.annotations {
        if skip_copy(k) || rs.annotations.get(k) == Some(v) {
            continue;
        }
        rs.annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = rs.annotations.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        rs.annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            push_revision_history(&mut rs.annotations, &old);
        }
    }
    if !exists && set_replicas_annotations(rs, d.replicas, d.replicas + max_surge(d)) {
        changed = true;
    }
    changed
}

/// `ReplicaSetsByCreationTimestamp`: older first, then by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name))
}

/// `ReplicaSetsBySizeNewer`: larger first, then newer first.
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    b.replicas.cmp(&a.replicas).then_with(|| by_creation(b, a))
}

/// `ReplicaSetsBySizeOlder`: larger first, then older first.
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    b.replicas.cmp(&a.replicas).then_with(|| by_creation(a, b))
}

/// `ReplicaSetsByRevision`: lower revision first; by creation when either is not a number or
/// both are equal.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (a.revision(), b.revision()) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        _ => by_creation(a, b),
    }
}
