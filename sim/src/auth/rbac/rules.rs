//! RBAC policy rules: whether one allows a request (`RuleAllows`, k8s.io/component-helpers
//! auth/rbac and plugin/pkg/auth/authorizer/rbac), whether a set of rules covers another
//! (escalation checks, `validation.Covers`), and their compact text (`CompactString`).

use serde::{Deserialize, Serialize};

use crate::auth::attributes::RequestInfo;

/// `rbac.authorization.k8s.io/v1` PolicyRule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyRule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

fn has(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == s)
}

impl PolicyRule {
    pub fn verb_matches(&self, verb: &str) -> bool {
        has(&self.verbs, "*") || has(&self.verbs, verb)
    }

    pub fn group_matches(&self, group: &str) -> bool {
        has(&self.api_groups, "*") || has(&self.api_groups, group)
    }

    /// `resource` is `pods` or `pods/status`; a rule's `*/status` matches every status.
    pub fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty()
                    && r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    pub fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || has(&self.resource_names, name)
    }

    pub fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls
            .iter()
            .any(|u| u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, r: &RequestInfo) -> bool {
        if r.resource_request {
            self.verb_matches(&r.verb)
                && self.group_matches(&r.api_group)
                && self.resource_matches(&r.combined_resource(), &r.subresource)
                && self.name_matches(&r.name)
        } else {
            self.verb_matches(&r.verb) && self.url_matches(&r.path)
        }
    }

    /// kube's `CompactString`: `{APIGroups:["" "apps"], Resources:["pods"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        fn q(list: &[String]) -> String {
            let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(" "))
        }
        let mut parts = Vec::new();
        for (name, list) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !list.is_empty() {
                parts.push(format!("{name}:{}", q(list)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// One rule per verb × group × resource × name (or verb × URL), as `BreakdownRule` splits.
    pub fn breakdown(&self) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        let one = |s: &String| vec![s.clone()];
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    if self.resource_names.is_empty() {
                        out.push(PolicyRule {
                            verbs: one(verb),
                            api_groups: one(group),
                            resources: one(resource),
                            ..PolicyRule::default()
                        });
                    }
                    for name in &self.resource_names {
                        out.push(PolicyRule {
                            verbs: one(verb),
                            api_groups: one(group),
                            resources: one(resource),
                            resource_names: one(name),
                            ..PolicyRule::default()
                        });
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(PolicyRule {
                    verbs: one(verb),
                    non_resource_urls: one(url),
                    ..PolicyRule::default()
                });
            }
        }
        out
    }
}

fn has_all(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(owner, w))
}

fn resource_covers_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|w| {
        // `*/status` covers `pods/status`.
        w.split_once('/')
            .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn urls_cover_all(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| {
        owner
            .iter()
            .any(|o| o == w || (o.ends_with('*') && w.starts_with(o.trim_end_matches('*'))))
    })
}

/// `ruleCovers`: whether `owner` grants everything `sub` (a broken-down rule) grants.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = urls_cover_all(&owner.non_resource_urls, &sub.non_resource_urls);
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && names && urls
}

/// `validation.Covers`: the broken-down rules of `wanted` that `owner` does not grant.
pub fn missing(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    for w in wanted {
        for sub in w.breakdown() {
            if !owner.iter().any(|o| rule_covers(o, &sub)) && !out.contains(&sub) {
                out.push(sub);
            }
        }
    }
    out
}

/// `CompactRules`: single-verb rules of the same group, resource and names merged into one.
pub fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    for r in rules {
        let simple = r.api_groups.len() == 1 && r.resources.len() == 1 && r.non_resource_urls.is_empty();
        let merged = simple
            && out.iter_mut().any(|o| {
                let same = o.api_groups == r.api_groups
                    && o.resources == r.resources
                    && o.resource_names == r.resource_names
                    && o.non_resource_urls.is_empty();
                if same {
                    for v in &r.verbs {
                        if !has(&o.verbs, v) {
                            o.verbs.push(v.clone());
                        }
                    }
                }
                same
            });
        if !merged {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            ..PolicyRule::default()
        }
    }

    fn req(method: &str, path: &str) -> RequestInfo {
        RequestInfo::new(method, path, &HashMap::new())
    }

    #[test]
    fn matching() {
        let r = rule(&["baton.dev"], &["rollouts", "rollouts/status"], &["get", "patch"]);
        assert!(r.allows(&req("GET", "/apis/baton.dev/v1alpha1/namespaces/a/rollouts/x")));
        assert!(r.allows(&req("PATCH", "/apis/baton.dev/v1alpha1/namespaces/a/rollouts/x/status")));
        assert!(!r.allows(&req("PATCH", "/apis/baton.dev/v1alpha1/namespaces/a/rollouts/x/scale")));
        assert!(!r.allows(&req("GET", "/apis/baton.dev/v1alpha1/namespaces/a/rollouts")));
        let star_status = rule(&["*"], &["*/status"], &["update"]);
        assert!(star_status.allows(&req("PUT", "/api/v1/namespaces/a/pods/p/status")));
        assert!(!star_status.allows(&req("PUT", "/api/v1/namespaces/a/pods/p")));
        let mut named = rule(&["coordination.k8s.io"], &["leases"], &["get", "update"]);
        named.resource_names = vec!["baton-controller".into()];
        assert!(named.allows(&req(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/s/leases/baton-controller"
        )));
        assert!(!named.allows(&req("PUT", "/apis/coordination.k8s.io/v1/namespaces/s/leases/other")));
        let urls = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into(), "/apis/*".into()],
            ..PolicyRule::default()
        };
        assert!(urls.allows(&req("GET", "/healthz")));
        assert!(urls.allows(&req("GET", "/apis/apps")));
        assert!(!urls.allows(&req("GET", "/version")));
    }

    #[test]
    fn covers_and_compact_text() {
        let owner = vec![
            rule(&[""], &["pods"], &["get", "list"]),
            rule(&["*"], &["*/status"], &["get"]),
        ];
        assert!(missing(&owner, &[rule(&[""], &["pods", "pods/status"], &["get"])]).is_empty());
        let miss = missing(&owner, &[rule(&[""], &["pods"], &["get", "delete", "create"])]);
        let text: Vec<String> = compact(miss).iter().map(PolicyRule::compact_string).collect();
        assert_eq!(
            text,
            vec![r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "create"]}"#]
        );
    }
}
