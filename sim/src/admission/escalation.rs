//! RBAC's escalation prevention (pkg/registry/rbac/*/policybased): a user may create or change
//! a Role or ClusterRole only with rules they already hold (or the `escalate` verb on it), and a
//! RoleBinding or ClusterRoleBinding only to a role whose rules they hold (or the `bind` verb on
//! it). `system:masters` members may do anything. Writes that leave the rules (roles) or the
//! role reference and subjects (bindings) unchanged are not checked.

use std::sync::Arc;

use serde_json::Value;

use crate::admission::{Attributes, Check, Stage};
use crate::auth::rbac::rules::{compact, missing};
use crate::auth::rbac::{binding_of, rules_of, PolicyRule, Snapshot, GROUP};
use crate::auth::{RequestInfo, UserInfo, MASTERS};
use crate::error::ApiError;
use crate::resources::ResourceType;

/// The RBAC state the request was authorized against (the write runs with the store locked
/// and cannot read it).
#[derive(Debug)]
pub struct Escalation {
    pub rbac: Arc<Snapshot>,
}

impl Check for Escalation {
    fn stage(&self) -> Stage {
        Stage::Registry
    }

    fn admit(&self, a: &Attributes<'_>, user: &UserInfo) -> Result<Vec<String>, ApiError> {
        match a.object {
            Some(new) => check_escalation(a.rt, &self.rbac, user, a.old_object, new).map(|()| Vec::new()),
            None => Ok(Vec::new()),
        }
    }
}

fn full_authority() -> Vec<PolicyRule> {
    let star = vec!["*".to_string()];
    vec![
        PolicyRule {
            verbs: star.clone(),
            api_groups: star.clone(),
            resources: star.clone(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: star.clone(),
            non_resource_urls: star,
            ..PolicyRule::default()
        },
    ]
}

fn may(snapshot: &Snapshot, user: &UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
    snapshot.allows(
        user,
        &RequestInfo {
            resource_request: true,
            verb: verb.into(),
            api_group: GROUP.into(),
            api_version: "v1".into(),
            namespace: ns.into(),
            resource: resource.into(),
            name: name.into(),
            ..RequestInfo::default()
        },
    )
}

/// `ConfirmNoEscalation`: Err names the rules `user` would grant without holding them.
fn confirm(snapshot: &Snapshot, user: &UserInfo, ns: &str, wanted: &[PolicyRule]) -> Result<(), String> {
    let (owner, errors) = snapshot.rules_for(user, ns);
    let miss = missing(&owner, wanted);
    if miss.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(miss).iter().map(PolicyRule::compact_string).collect();
    lines.sort();
    lines.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut msg = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        groups.join(" "),
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

/// Check a write of `new` (over `old`) to an RBAC resource by the request's user.
fn check_escalation(
    rt: &ResourceType,
    snapshot: &Snapshot,
    user: &UserInfo,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    if rt.group != GROUP || user.in_group(MASTERS) {
        return Ok(());
    }
    let meta = |k: &str| {
        new.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (name, ns) = (meta("name"), meta("namespace"));
    let forbidden = |msg: String| ApiError::forbidden(GROUP, &rt.plural, &name, msg);
    match rt.plural.as_str() {
        "roles" | "clusterroles" => {
            let aggregated = new.get("aggregationRule").is_some_and(|a| !a.is_null());
            if let Some(o) = old {
                let same_rules = rules_of(o) == rules_of(new);
                let same_aggregation = o.get("aggregationRule") == new.get("aggregationRule");
                if same_rules && same_aggregation {
                    return Ok(());
                }
            }
            if may(snapshot, user, "escalate", &rt.plural, &ns, &name) {
                return Ok(());
            }
            let wanted = if aggregated { full_authority() } else { rules_of(new) };
            confirm(snapshot, user, &ns, &wanted).map_err(forbidden)
        }
        "rolebindings" | "clusterrolebindings" => {
            let b = binding_of(new, &name, &ns);
            if let Some(o) = old {
                let unchanged = ["roleRef", "subjects"].iter().all(|k| o.get(*k) == new.get(*k));
                if unchanged {
                    return Ok(());
                }
            }
            let role_resource = if b.role_ref.kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if may(snapshot, user, "bind", role_resource, &ns, &b.role_ref.name) {
                return Ok(());
            }
            let rules = snapshot.role_rules(&b).map_err(|_| {
                ApiError::not_found(
                    &format!("{}.{GROUP}", b.role_ref.kind.to_ascii_lowercase()),
                    &b.role_ref.name,
                )
            })?;
            confirm(snapshot, user, &ns, &rules).map_err(forbidden)
        }
        _ => Ok(()),
    }
}
