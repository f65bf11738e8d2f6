//! The RBAC authorizer (plugin/pkg/auth/authorizer/rbac): a request is allowed when a rule of a
//! role bound to the user allows it — ClusterRoleBindings everywhere, RoleBindings (to a Role of
//! their namespace or a ClusterRole) in their namespace. Bindings to roles that do not exist are
//! skipped and named in the reason, as kube-apiserver does.
//!
//! The roles and bindings are read into a [`Snapshot`], rebuilt when any of them changed
//! (the store's per-resource change version), so a request costs no JSON parsing.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::resources::ResKey;
use crate::store::Store;

use super::{Decision, RequestInfo, UserInfo, MASTERS};

pub mod rules;

pub use rules::PolicyRule;

pub const GROUP: &str = "rbac.authorization.k8s.io";
pub const RESOURCES: [&str; 4] = ["roles", "rolebindings", "clusterroles", "clusterrolebindings"];

pub(crate) fn rkey(plural: &str) -> ResKey {
    ResKey {
        group: GROUP.into(),
        plural: plural.into(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoleRef {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct Binding {
    pub name: String,
    /// Empty for ClusterRoleBindings.
    pub namespace: String,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct BindingBody {
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// The roles and bindings at one point in time.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: [u64; 4],
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    cluster_bindings: Vec<Binding>,
    role_bindings: HashMap<String, Vec<Binding>>,
}

/// The `rules` of a role object (unparseable rules count as none).
pub fn rules_of(v: &Value) -> Vec<PolicyRule> {
    v.get("rules")
        .and_then(|r| serde_json::from_value::<Option<Vec<PolicyRule>>>(r.clone()).ok())
        .flatten()
        .unwrap_or_default()
}

pub(crate) fn binding_of(v: &Value, name: &str, namespace: &str) -> Binding {
    let b: BindingBody = serde_json::from_value(v.clone()).unwrap_or_default();
    Binding {
        name: name.to_string(),
        namespace: namespace.to_string(),
        role_ref: b.role_ref,
        subjects: b.subjects,
    }
}

/// `appliesToUser`.
fn applies(s: &Subject, user: &UserInfo, binding_ns: &str) -> bool {
    match s.kind.as_str() {
        "User" => user.username == s.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() {
                binding_ns
            } else {
                &s.namespace
            };
            !ns.is_empty() && user.username == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    }
}

/// `describeSubject`.
fn describe(s: &Subject, binding_ns: &str) -> String {
    if s.kind == "ServiceAccount" {
        let ns = if s.namespace.is_empty() {
            binding_ns
        } else {
            &s.namespace
        };
        format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
    } else {
        format!("{} {:?}", s.kind, s.name)
    }
}

impl Snapshot {
    /// The store's change versions of the four RBAC resources this snapshot was read at.
    pub fn version(&self) -> [u64; 4] {
        self.version
    }

    /// The roles and bindings in `store`, read at the store's `version` of them.
    pub fn build(store: &Store, version: [u64; 4]) -> Snapshot {
        let mut s = Snapshot {
            version,
            ..Snapshot::default()
        };
        for o in store.list(&rkey("clusterroles"), None).0 {
            s.cluster_roles.insert(o.name.clone(), Arc::new(rules_of(&o.value())));
        }
        for o in store.list(&rkey("roles"), None).0 {
            s.roles
                .insert((o.namespace.clone(), o.name.clone()), Arc::new(rules_of(&o.value())));
        }
        for o in store.list(&rkey("clusterrolebindings"), None).0 {
            s.cluster_bindings.push(binding_of(&o.value(), &o.name, ""));
        }
        for o in store.list(&rkey("rolebindings"), None).0 {
            let b = binding_of(&o.value(), &o.name, &o.namespace);
            s.role_bindings.entry(o.namespace.clone()).or_default().push(b);
        }
        s
    }

    /// The rules a binding grants, or the lister's not-found error.
    pub(crate) fn role_rules(&self, b: &Binding) -> Result<Arc<Vec<PolicyRule>>, String> {
        let found = match b.role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&b.role_ref.name),
            "Role" if !b.namespace.is_empty() => self.roles.get(&(b.namespace.clone(), b.role_ref.name.clone())),
            _ => None,
        };
        found.cloned().ok_or_else(|| {
            format!(
                "{}.{GROUP} {:?} not found",
                b.role_ref.kind.to_ascii_lowercase(),
                b.role_ref.name
            )
        })
    }

    /// Visit every (binding, subject, rules) that applies to `user` in `namespace` (cluster-wide
    /// bindings first); `visit` returns false to stop. Missing roles are collected.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        errors: &mut Vec<String>,
        mut visit: impl FnMut(&Binding, &Subject, &[PolicyRule]) -> bool,
    ) {
        let local = if namespace.is_empty() {
            None
        } else {
            self.role_bindings.get(namespace)
        };
        for b in self.cluster_bindings.iter().chain(local.into_iter().flatten()) {
            let Some(subject) = b.subjects.iter().find(|s| applies(s, user, &b.namespace)) else {
                continue;
            };
            match self.role_rules(b) {
                Ok(rules) => {
                    if !visit(b, subject, &rules) {
                        return;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }

    /// RBAC's decision on a request of `user`.
    pub fn authorize(&self, user: &UserInfo, req: &RequestInfo) -> Decision {
        let mut errors = Vec::new();
        let mut allowed_by = None;
        self.visit(user, &req.namespace, &mut errors, |b, s, rules| {
            if rules.iter().any(|r| r.allows(req)) {
                allowed_by = Some(if b.namespace.is_empty() {
                    format!(
                        "ClusterRoleBinding {:?} of {} {:?} to {}",
                        b.name,
                        b.role_ref.kind,
                        b.role_ref.name,
                        describe(s, "")
                    )
                } else {
                    format!(
                        "RoleBinding {:?} of {} {:?} to {}",
                        format!("{}/{}", b.name, b.namespace),
                        b.role_ref.kind,
                        b.role_ref.name,
                        describe(s, &b.namespace)
                    )
                });
                return false;
            }
            true
        });
        match allowed_by {
            Some(by) => Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {by}"),
            },
            None => Decision {
                allowed: false,
                // utilerrors.NewAggregate: one error as it is, several in brackets.
                reason: match errors.len() {
                    0 => String::new(),
                    1 => format!("RBAC: {}", errors[0]),
                    _ => format!("RBAC: [{}]", errors.join(", ")),
                },
            },
        }
    }

    /// Every rule granted to `user` in `namespace` (cluster-wide grants included), and the
    /// errors resolving its bindings (`RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, &mut errors, |_, _, rules| {
            out.extend(rules.iter().cloned());
            true
        });
        (out, errors)
    }

    /// Whether `user` may do `verb` on `resource` (RBAC only, masters included).
    pub fn allows(&self, user: &UserInfo, req: &RequestInfo) -> bool {
        user.in_group(MASTERS) || self.authorize(user, req).allowed
    }
}
