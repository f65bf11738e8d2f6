//! Who changed a Rollout's spec, and why: read from `metadata.managedFields` and the
//! `kubernetes.io/change-cause` annotation. A new revision is credited to the field manager that
//! owns the fields that differ from the revision before it (`spec.version`, a field of
//! `spec.template`, the restart annotation); when several do, to the one that also owns the
//! change cause. The cause counts only when that same manager set it: a cause left behind by an
//! earlier command is not credited to a later change. Times decide only what ownership cannot:
//! a change that only removed fields (a removed field has no owner) goes to the newest writer.
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta, Time};
use serde_json::Value;

use super::annotations;

mod fields;
#[cfg(test)]
mod tests;

pub use fields::RevisionFields;

/// The origin of a revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecOrigin {
    /// `kubernetes.io/change-cause`, when set with the change.
    pub change_cause: Option<String>,
    /// The field manager of the change (`kubectl-client-side-apply`, `baton`, `helm`, …).
    pub changed_by: Option<String>,
}

/// A field manager that owns a field a revision is made of, or the change cause.
#[derive(Clone, Debug, PartialEq)]
struct Writer {
    manager: String,
    time: Option<Timestamp>,
    /// What it owns of those fields: a `fieldsV1` tree (see [`fields::restricted`]).
    fields: Value,
}

/// What of a Rollout's metadata says who changed its spec ([`SpecOwners::of`]), to decide the
/// origin of a revision from ([`SpecOwners::origin`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecOwners {
    /// An origin decided already, whatever the revisions.
    decided: Option<SpecOrigin>,
    cause: Option<String>,
    /// The writers of the revision fields and the change cause, in the API server's order.
    writers: Vec<Writer>,
}

impl From<SpecOrigin> for SpecOwners {
    fn from(o: SpecOrigin) -> Self {
        SpecOwners {
            decided: Some(o),
            ..SpecOwners::default()
        }
    }
}

/// The `fieldsType` of the managedFields entries a cached Rollout keeps (see
/// [`prune_for_cache`]): `fieldsV1` is the restricted tree as compact JSON text. An API server
/// accepts only `FieldsV1`, so no stored object has it.
const CACHED_FIELDS: &str = "baton.dev/revision-fields";

fn main_resource(e: &ManagedFieldsEntry) -> bool {
    e.subresource.as_deref().is_none_or(str::is_empty)
}

/// The writer an entry is, if it owns a revision field or the cause.
fn writer(e: &ManagedFieldsEntry) -> Option<Writer> {
    let raw = &e.fields_v1.as_ref()?.0;
    let fields = if e.fields_type.as_deref() == Some(CACHED_FIELDS) {
        serde_json::from_str(raw.as_str()?).ok()?
    } else {
        fields::restricted(raw)?
    };
    Some(Writer {
        manager: e.manager.clone()?,
        time: e.time.as_ref().map(|t| t.0),
        fields,
    })
}

impl SpecOwners {
    /// The owners of `meta`, a Rollout's metadata (as stored, or as [`prune_for_cache`] left it).
    pub fn of(meta: &ObjectMeta) -> SpecOwners {
        let cause = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotations::CHANGE_CAUSE))
            .filter(|c| !c.is_empty())
            .cloned();
        let writers = meta
            .managed_fields
            .iter()
            .flatten()
            .filter(|e| main_resource(e))
            .filter_map(writer)
            .collect();
        SpecOwners {
            decided: None,
            cause,
            writers,
        }
    }

    /// The origin of revision `after`, made from the spec that named revision `before` (None:
    /// the first revision, or one no longer kept).
    pub fn origin(&self, before: Option<RevisionFields<'_>>, after: RevisionFields<'_>) -> SpecOrigin {
        if let Some(o) = &self.decided {
            return o.clone();
        }
        let (cause, writers) = (&self.cause, &self.writers);
        if writers.is_empty() {
            // No manager owns those fields (a server that tracks no field managers): the
            // annotation is all there is.
            return SpecOrigin {
                change_cause: cause.clone(),
                changed_by: None,
            };
        }
        let (before, after) = (before.map(fields::rollout_view), fields::rollout_view(after));
        let revision_writers: Vec<&Writer> = writers
            .iter()
            .filter(|w| fields::owns_revision_field(&w.fields))
            .collect();
        let changers: Vec<&Writer> = revision_writers
            .iter()
            .copied()
            .filter(|w| fields::differs(&w.fields, before.as_ref(), Some(&after)))
            .collect();
        let changer = if changers.is_empty() {
            // Nobody owns what changed (fields were only removed): the newest writer.
            newest(revision_writers.iter().copied())
        } else {
            newest(changers.iter().copied().filter(|w| fields::owns_cause(&w.fields)))
                .or_else(|| newest(changers.iter().copied()))
        };
        SpecOrigin {
            change_cause: cause
                .clone()
                .filter(|_| changer.is_some_and(|w| fields::owns_cause(&w.fields))),
            changed_by: changer.map(|w| w.manager.clone()),
        }
    }

    /// As [`prune_for_cache`] keeps them: one entry per writer, its tree as compact text.
    fn cached_entries(&self) -> Option<Vec<ManagedFieldsEntry>> {
        let entries: Vec<ManagedFieldsEntry> = self
            .writers
            .iter()
            .map(|w| ManagedFieldsEntry {
                manager: Some(w.manager.clone()),
                time: w.time.map(Time),
                fields_type: Some(CACHED_FIELDS.into()),
                fields_v1: Some(FieldsV1(Value::String(w.fields.to_string()))),
                ..ManagedFieldsEntry::default()
            })
            .collect();
        (!entries.is_empty()).then_some(entries)
    }
}

/// The newest of `writers` (the API server keeps entries in order of operation, time and manager
/// name, so of equal times the last one: only a tie-break, where ownership has decided nothing).
fn newest<'a>(writers: impl Iterator<Item = &'a Writer>) -> Option<&'a Writer> {
    writers.enumerate().max_by_key(|(i, w)| (w.time, *i)).map(|(_, w)| w)
}

/// A Rollout's metadata as the controller's cache keeps it: of managedFields (a tree of every
/// field of every writer) only what [`SpecOwners`] reads — the entries of the managers that own
/// a field a revision is made of or the change cause, each cut to those fields and kept as
/// compact text; the change cause only when it can be credited (a manager owns it, or no managers
/// are tracked); and without kubectl's copy of the whole object
/// ([`crate::LAST_APPLIED_ANNOTATION`], left by client-side `kubectl apply`), which nothing
/// in the controller reads. The owners of the result decide every origin as those of the object.
pub fn prune_for_cache(meta: &mut ObjectMeta) {
    let owners = SpecOwners::of(meta);
    // Without writers the annotation is all there is; with them it counts only when one owns it.
    let cause_counts = owners.writers.is_empty() || owners.writers.iter().any(|w| fields::owns_cause(&w.fields));
    meta.managed_fields = owners.cached_entries();
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(crate::LAST_APPLIED_ANNOTATION);
        if !cause_counts {
            a.remove(annotations::CHANGE_CAUSE);
        }
        if a.is_empty() {
            // An emptied map still holds its node.
            meta.annotations = None;
        }
    }
}
