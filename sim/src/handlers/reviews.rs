//! The create-only review APIs: SelfSubjectAccessReview (`kubectl auth can-i`),
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), SubjectAccessReview and
//! LocalSubjectAccessReview (another user's access), SelfSubjectReview (`kubectl auth whoami`)
//! and TokenReview. Each answers 201 with the request and its `status`; nothing is stored.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Core, Reply};
use crate::error::{ApiError, StatusCause};

use crate::auth::rbac::PolicyRule;
use crate::auth::token::now_seconds;
use crate::auth::token::API_AUDIENCE;
use crate::auth::{RequestInfo, UserInfo};

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The request attributes a review's spec asks about.
fn attributes_of(kind: &str, spec: &Value) -> Result<RequestInfo, ApiError> {
    match (spec.get("resourceAttributes"), spec.get("nonResourceAttributes")) {
        (Some(r), None) if r.is_object() => Ok(RequestInfo {
            resource_request: true,
            path: String::new(),
            verb: s(r, "verb"),
            api_group: s(r, "group"),
            api_version: s(r, "version"),
            namespace: s(r, "namespace"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            name: s(r, "name"),
        }),
        (None, Some(n)) if n.is_object() => Ok(RequestInfo {
            resource_request: false,
            path: s(n, "path"),
            verb: s(n, "verb"),
            ..RequestInfo::default()
        }),
        (r, _) => Err(ApiError::invalid(
            kind,
            "authorization.k8s.io",
            "",
            vec![StatusCause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {}: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    if r.is_some() { "\"object\"" } else { "\"null\"" }
                ),
                field: "spec.resourceAttributes".into(),
            }],
        )),
    }
}

fn answer(mut body: Value, status: Value) -> Reply {
    if let Some(o) = body.as_object_mut() {
        o.insert("status".into(), status);
        let meta = o.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert("creationTimestamp".into(), Value::Null);
        }
    }
    Reply {
        code: 201,
        body,
        warnings: vec![],
    }
}

fn user_from_spec(spec: &Value) -> UserInfo {
    let list = |k: &str| -> Vec<String> {
        spec.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    UserInfo {
        username: s(spec, "user"),
        uid: s(spec, "uid"),
        groups: list("groups"),
        extra,
    }
}

impl Core {
    /// Answer a review of kind `kind` (`plural` of its group) posted by `user` to namespace `ns`.
    pub fn review(&self, plural: &str, ns: &str, mut body: Value, user: &UserInfo) -> Result<Reply, ApiError> {
        let spec = body.get("spec").cloned().unwrap_or(Value::Null);
        match plural {
            "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews" => {
                let kind = match plural {
                    "selfsubjectaccessreviews" => "SelfSubjectAccessReview",
                    "subjectaccessreviews" => "SubjectAccessReview",
                    _ => "LocalSubjectAccessReview",
                };
                let mut attrs = attributes_of(kind, &spec)?;
                if plural == "localsubjectaccessreviews" {
                    if attrs.resource_request && !attrs.namespace.is_empty() && attrs.namespace != ns {
                        return Err(ApiError::bad_request(format!(
                            "spec.resourceAttributes.namespace must match namespace: {ns}"
                        )));
                    }
                    attrs.namespace = ns.to_string();
                    if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.insert("namespace".into(), json!(ns));
                    }
                }
                let subject = if plural == "selfsubjectaccessreviews" {
                    user.clone()
                } else {
                    user_from_spec(&spec)
                };
                let d = self.authorize(&subject, &attrs);
                let mut status = json!({"allowed": d.allowed});
                if !d.reason.is_empty() {
                    status["reason"] = json!(d.reason);
                }
                Ok(answer(body, status))
            }
            "selfsubjectrulesreviews" => {
                let namespace = s(&spec, "namespace");
                let (rules, errors) = self.rbac().rules_for(user, &namespace);
                let mut status = rules_status(&rules);
                status["incomplete"] = json!(!errors.is_empty());
                if !errors.is_empty() {
                    status["evaluationError"] = json!(errors.join(", "));
                }
                Ok(answer(body, status))
            }
            "selfsubjectreviews" => Ok(answer(body, json!({"userInfo": user.to_json()}))),
            "tokenreviews" => {
                let token = s(&spec, "token");
                let audiences: Vec<String> = spec
                    .get("audiences")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .filter(|a: &Vec<String>| !a.is_empty())
                    .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
                let status = match self.auth.static_user(&token) {
                    Some(u) => json!({"authenticated": true, "user": u.to_json(), "audiences": [API_AUDIENCE]}),
                    None => match self.token_user(&token, now_seconds(), &audiences) {
                        Ok(u) => json!({"authenticated": true, "user": u.to_json(), "audiences": audiences}),
                        Err(e) => json!({"user": {}, "error": e}),
                    },
                };
                Ok(answer(body, status))
            }
            _ => Err(ApiError::no_route()),
        }
    }
}

/// `status` of a SelfSubjectRulesReview: resource and non-resource rules.
fn rules_status(rules: &[PolicyRule]) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if !r.non_resource_urls.is_empty() {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
        if !r.resources.is_empty() {
            let mut v = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(v);
        }
    }
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
}
