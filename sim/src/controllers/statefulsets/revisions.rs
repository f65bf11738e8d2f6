//! A StatefulSet's history as ControllerRevisions (`pkg/controller/history` and the revision
//! half of `stateful_set_control.go`): each revision's `data` is the strategic merge patch
//! that puts its pod template back (`getPatch`), which is what `kubectl rollout undo` applies
//! and `kubectl rollout history` reads.
use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::view::SetView;

/// The label with a revision's hash (`history.ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The alphabet of `rand.SafeEncodeString` (no vowels, no 0/1/3: no words in names).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stored ControllerRevision of the set.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionView {
    pub name: String,
    pub revision: i64,
    pub data: Value,
    pub created: String,
}

impl RevisionView {
    pub fn of(v: &Value) -> RevisionView {
        RevisionView {
            name: v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            revision: v.get("revision").and_then(Value::as_i64).unwrap_or(0),
            data: v.get("data").cloned().unwrap_or(Value::Null),
            created: v
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }
}

/// Revisions in history order (`history.SortControllerRevisions`): by number, then by creation
/// time, then by name.
pub fn sort(revisions: &mut [RevisionView]) {
    revisions.sort_by(|a, b| (a.revision, &a.created, &a.name).cmp(&(b.revision, &b.created, &b.name)));
}

/// The revision data of the set's current template (`getPatch`): `{"spec":{"template":…}}`
/// with `"$patch":"replace"`, so applying it replaces the whole template. The template's
/// metadata carries `creationTimestamp: null`, as Go's encoding of a PodTemplateSpec does,
/// so the data equals what kubectl computes when it checks whether a rollback changes
/// anything.
pub fn patch_data(set: &SetView) -> Value {
    let mut template = set.template.clone();
    if !template.is_object() {
        template = json!({});
    }
    let meta = template
        .as_object_mut()
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(m)) = meta {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

/// Go's `hash/fnv` `New32` (FNV-1, 32 bits), which `HashControllerRevision` uses.
pub(super) fn fnv1_32(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in *part {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    }
    h
}

/// `data` as Go's `json.Marshal` writes a map: compact, keys sorted, and `<`, `>`, `&`,
/// U+2028 and U+2029 escaped (they can only occur inside strings).
fn go_json(data: &Value) -> Vec<u8> {
    let s = serde_json::to_string(data).unwrap_or_default();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// `HashControllerRevision`: FNV-1 over the data's JSON as Go writes it and the decimal
/// collision count, printed in decimal and encoded with `rand.SafeEncodeString`.
pub fn hash(data: &Value, collision_count: i64) -> String {
    let raw = go_json(data);
    let probe = collision_count.to_string();
    let sum = fnv1_32(&[&raw, probe.as_bytes()]).to_string();
    sum.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// `ControllerRevisionName`: `<set>-<hash>`, the set's name cut to 223 bytes.
pub fn revision_name(set_name: &str, hash: &str) -> String {
    let mut cut = set_name.len().min(223);
    while !set_name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &set_name[..cut])
}

/// A new ControllerRevision of the set's template, numbered `revision`, named for
/// `collision_count` (`newRevision` + `NewControllerRevision`): the template's labels plus
/// the hash label, the set's annotations, a controller reference to the set.
pub fn new_revision(set: &SetView, revision: i64, collision_count: i64) -> Value {
    let data = patch_data(set);
    let h = hash(&data, collision_count);
    let mut labels = serde_json::Map::new();
    for (k, v) in set.template_labels() {
        labels.insert(k, json!(v));
    }
    labels.insert(HASH_LABEL.into(), json!(h));
    let mut meta = json!({
        "name": revision_name(&set.name, &h),
        "namespace": set.namespace,
        "labels": labels,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": set.name, "uid": set.uid, "controller": true, "blockOwnerDeletion": true}],
    });
    if !set.annotations.is_empty() {
        meta["annotations"] = Value::Object(set.annotations.clone());
    }
    json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, "data": data, "revision": revision})
}

/// Which revision the set's template is at (`getStatefulSetRevisions`).
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateRevision {
    /// The newest revision already holds the template.
    Latest(String),
    /// An older revision holds it (a rollback): it is renumbered to come last.
    Renumber { name: String, revision: i64 },
    /// No revision holds it: one is created with this number.
    Create { revision: i64 },
}

/// The update revision for `set` among its `revisions` (sorted): equal revisions are those
/// with the same data (`history.EqualRevision`; kube's hash labels are not numbers, so only the
/// data decides).
pub fn choose(set: &SetView, revisions: &[RevisionView]) -> UpdateRevision {
    let data = patch_data(set);
    let next = revisions.last().map_or(1, |r| r.revision + 1);
    let equal = revisions.iter().rfind(|r| r.data == data);
    match (equal, revisions.last()) {
        (Some(e), Some(last)) if e.name == last.name => UpdateRevision::Latest(e.name.clone()),
        (Some(e), _) => UpdateRevision::Renumber {
            name: e.name.clone(),
            revision: next,
        },
        (None, _) => UpdateRevision::Create { revision: next },
    }
}

/// The pod template a revision's data restores on `set` (`ApplyRevision`): the data applied to
/// the set's template as a strategic merge patch.
pub fn template_of(set: &SetView, data: &Value) -> Result<Value, String> {
    let original = json!({"spec": {"template": set.template}});
    let patched = crate::strategic::strategic_merge_patch(&original, data, "StatefulSet")?;
    Ok(patched.pointer("/spec/template").cloned().unwrap_or_else(|| json!({})))
}

/// The revisions to delete so that at most `limit` remain that are not live
/// (`truncateHistory`): live are the current and update revisions and every pod's; the
/// oldest of the others go first. A negative limit keeps everything.
pub fn prune(limit: i64, revisions: &[RevisionView], live: &BTreeSet<&str>) -> Vec<String> {
    let history: Vec<&RevisionView> = revisions.iter().filter(|r| !live.contains(r.name.as_str())).collect();
    let Ok(limit) = usize::try_from(limit) else {
        return Vec::new();
    };
    if history.len() <= limit {
        return Vec::new();
    }
    history[..history.len() - limit]
        .iter()
        .map(|r| r.name.clone())
        .collect()
}
