//! ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1), enforced as kube-apiserver's
//! validating admission plugin does on every create, update and delete of a user's request:
//! each policy that matches (`matchConstraints`) is run once per binding that matches
//! (`matchResources`), with `object`, `oldObject`, `request` (its `userInfo` with `extra`),
//! `namespaceObject` and `variables`; a failed validation (or an error under
//! `failurePolicy: Fail`) denies when the binding's `validationActions` say `Deny` — 422
//! Invalid unless the validation names another `reason` — and warns with `Warn`.
//!
//! Submodules: `compile` (policies and bindings from their objects), `matching`, `evaluate`
//! (one policy on one request), `validation` (422s for bad policy and binding objects).
//! The simulator's own controllers (kubelet, garbage collector, ...) are not subject to them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::admission::{Attributes, Check, Stage};
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::resources::ResKey;
use crate::store::Store;

pub mod compile;
pub mod evaluate;
pub mod matching;
pub mod validation;

use compile::{Binding, Policy};
use evaluate::Decision;

pub const GROUP: &str = "admissionregistration.k8s.io";

fn key(plural: &str) -> ResKey {
    ResKey {
        group: GROUP.into(),
        plural: plural.into(),
    }
}

/// The policies and bindings at one point in time, compiled.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: [u64; 2],
    policies: Vec<Policy>,
    bindings: Vec<Binding>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// The last compiled snapshot, kept until a policy or binding changes.
#[derive(Default)]
pub struct Cache(Mutex<Option<Arc<Snapshot>>>);

impl Cache {
    /// The current admission policies (recompiled when a policy or binding changed).
    pub fn snapshot(&self, store: &Store) -> Arc<Snapshot> {
        let version =
            ["validatingadmissionpolicies", "validatingadmissionpolicybindings"].map(|p| store.changed_at(&key(p)));
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = g.as_ref().filter(|s| s.version == version) {
            return s.clone();
        }
        let mut policies: Vec<Policy> = store
            .list(&key("validatingadmissionpolicies"), None)
            .0
            .iter()
            .map(|o| Policy::of(&o.value()))
            .collect();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        let bindings = store
            .list(&key("validatingadmissionpolicybindings"), None)
            .0
            .iter()
            .map(|o| Binding::of(&o.value()))
            .collect();
        let s = Arc::new(Snapshot {
            version,
            policies,
            bindings,
        });
        *g = Some(s.clone());
        s
    }
}

fn reason_code(reason: &str) -> (&'static str, u16) {
    match reason {
        "Forbidden" => ("Forbidden", 403),
        "Unauthorized" => ("Unauthorized", 401),
        "RequestEntityTooLarge" => ("RequestEntityTooLarge", 413),
        _ => ("Invalid", 422),
    }
}

/// A denial as the dispatcher words it (`admission.NewForbidden`, then the decision's reason
/// and code, the message as a cause).
fn denial(a: &Attributes, policy: &str, binding: Option<&str>, message: &str, reason: Option<&str>) -> ApiError {
    let message = match binding {
        Some(b) => format!("ValidatingAdmissionPolicy '{policy}' with binding '{b}' denied request: {message}"),
        None => format!("ValidatingAdmissionPolicy '{policy}' denied request: {message}"),
    };
    let mut e = ApiError::forbidden(&a.rt.group, &a.rt.plural, a.name, &message);
    let (reason, code) = reason_code(reason.unwrap_or("Invalid"));
    e.reason = reason;
    e.code = code;
    if let Some(Value::Object(d)) = e.details.as_mut() {
        d.insert("causes".into(), json!([{"message": message}]));
    }
    e
}

/// The policies as they were when a request arrived, and the namespace they may select on.
#[derive(Debug)]
pub struct Admission {
    pub snapshot: Arc<Snapshot>,
    pub namespace_object: Option<Value>,
}

impl Check for Admission {
    fn stage(&self) -> Stage {
        Stage::Validating
    }

    fn admit(&self, a: &Attributes<'_>, user: &UserInfo) -> Result<Vec<String>, ApiError> {
        admit(&self.snapshot, self.namespace_object.as_ref(), a, user)
    }
}

/// Run the policies of `snapshot` on `a`: Err for the first denial, else the warnings (`Warn`
/// bindings).
fn admit(
    snapshot: &Snapshot,
    namespace_object: Option<&Value>,
    a: &Attributes,
    user: &UserInfo,
) -> Result<Vec<String>, ApiError> {
    if snapshot.is_empty() {
        return Ok(Vec::new());
    }
    let ns_labels: Option<BTreeMap<String, String>> = namespace_object
        .and_then(|n| n.pointer("/metadata/labels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok());
    let mut warnings = Vec::new();
    for p in &snapshot.policies {
        if !matching::matches(&p.matching, a, ns_labels.as_ref()) {
            continue;
        }
        if let Some(e) = &p.config_error {
            if p.fail_closed {
                return Err(denial(
                    a,
                    &p.name,
                    None,
                    &format!("failed to configure policy: {e}"),
                    None,
                ));
            }
            continue;
        }
        for b in snapshot.bindings.iter().filter(|b| b.policy == p.name) {
            if let Some(e) = &b.config_error {
                if p.fail_closed {
                    return Err(denial(
                        a,
                        &p.name,
                        Some(&b.name),
                        &format!("failed to configure binding: {e}"),
                        None,
                    ));
                }
                continue;
            }
            if b.matching
                .as_ref()
                .is_some_and(|m| !matching::matches(m, a, ns_labels.as_ref()))
            {
                continue;
            }
            for d in evaluate::evaluate(p, a, user, namespace_object) {
                let (message, reason) = match d {
                    Decision::Deny { message, reason } => (message, reason),
                    Decision::Error(_) if !p.fail_closed => continue,
                    Decision::Error(message) => (message, None),
                };
                for action in &b.actions {
                    match action.as_str() {
                        "Deny" => return Err(denial(a, &p.name, Some(&b.name), &message, reason.as_deref())),
                        "Warn" => warnings.push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                            p.name, b.name
                        )),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(warnings)
}
