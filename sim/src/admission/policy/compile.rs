//! ValidatingAdmissionPolicies and their bindings as the dispatcher uses them: match criteria,
//! compiled match conditions, variables and validations. A policy whose expressions do not
//! compile (stored before it was validated, or by another server) carries a configuration error,
//! which its failure policy turns into a denial, as kube-apiserver's `hook.ConfigurationError`.

use serde_json::Value;

use crate::cel::expr::{compile_dyn, DynExpr, Expect};
use crate::selector::{from_label_selector_json, LabelSelector};

/// Variables every policy expression may use.
pub const VARS: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "variables",
];

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn string(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// One `resourceRules`/`excludeResourceRules` entry (`NamedRuleWithOperations`).
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub operations: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub scope: String,
}

impl Rule {
    fn of(v: &Value) -> Rule {
        Rule {
            api_groups: strings(v, "apiGroups"),
            api_versions: strings(v, "apiVersions"),
            operations: strings(v, "operations"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            scope: v.get("scope").and_then(Value::as_str).unwrap_or("*").to_string(),
        }
    }
}

/// `MatchResources`: which requests a policy (or binding) applies to.
#[derive(Debug, Clone, Default)]
pub struct MatchResources {
    pub rules: Vec<Rule>,
    pub exclude: Vec<Rule>,
    /// None: every namespace (an absent or empty selector).
    pub namespace_selector: Option<LabelSelector>,
    pub object_selector: Option<LabelSelector>,
}

fn selector(v: Option<&Value>) -> Result<Option<LabelSelector>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(s) => from_label_selector_json(s).map(Some),
    }
}

impl MatchResources {
    pub fn of(v: &Value) -> Result<MatchResources, String> {
        let rules = |k: &str| {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Rule::of).collect())
                .unwrap_or_default()
        };
        Ok(MatchResources {
            rules: rules("resourceRules"),
            exclude: rules("excludeResourceRules"),
            namespace_selector: selector(v.get("namespaceSelector"))?,
            object_selector: selector(v.get("objectSelector"))?,
        })
    }
}

/// A named expression (match condition or variable).
#[derive(Debug)]
pub struct Named {
    pub name: String,
    pub expr: DynExpr,
}

#[derive(Debug)]
pub struct Validation {
    pub expr: DynExpr,
    pub message: String,
    pub message_expr: Option<DynExpr>,
    pub reason: Option<String>,
}

#[derive(Debug)]
pub struct Policy {
    pub name: String,
    /// `failurePolicy: Fail` (the default): errors deny.
    pub fail_closed: bool,
    pub matching: MatchResources,
    pub conditions: Vec<Named>,
    pub variables: Vec<Named>,
    pub validations: Vec<Validation>,
    /// Why the policy cannot run (an expression that does not compile, params).
    pub config_error: Option<String>,
}

#[derive(Debug)]
pub struct Binding {
    pub name: String,
    pub policy: String,
    pub actions: Vec<String>,
    pub matching: Option<MatchResources>,
    pub config_error: Option<String>,
}

fn compile_named(v: &Value, key: &str, expect: Expect, errors: &mut Vec<String>) -> Vec<Named> {
    let mut out = Vec::new();
    for item in v.get(key).and_then(Value::as_array).into_iter().flatten() {
        let source = string(item, "expression");
        match compile_dyn(&source, VARS, expect) {
            Ok(expr) => out.push(Named {
                name: string(item, "name"),
                expr,
            }),
            Err(e) => errors.push(e),
        }
    }
    out
}

impl Policy {
    pub fn of(obj: &Value) -> Policy {
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        let mut errors = Vec::new();
        let matching = MatchResources::of(spec.get("matchConstraints").unwrap_or(&Value::Null)).unwrap_or_else(|e| {
            errors.push(e);
            MatchResources::default()
        });
        let conditions = compile_named(&spec, "matchConditions", Expect::Bool, &mut errors);
        let variables = compile_named(&spec, "variables", Expect::Any, &mut errors);
        let mut validations = Vec::new();
        for v in spec.get("validations").and_then(Value::as_array).into_iter().flatten() {
            let expr = match compile_dyn(&string(v, "expression"), VARS, Expect::Bool) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let message_expr = match string(v, "messageExpression").as_str() {
                "" => None,
                m => compile_dyn(m, VARS, Expect::String).map_err(|e| errors.push(e)).ok(),
            };
            validations.push(Validation {
                expr,
                message: string(v, "message"),
                message_expr,
                reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
            });
        }
        if spec.get("paramKind").is_some_and(|p| !p.is_null()) {
            errors.push("params (spec.paramKind) are not supported by baton-sim".into());
        }
        Policy {
            name: obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            fail_closed: spec.get("failurePolicy").and_then(Value::as_str) != Some("Ignore"),
            matching,
            conditions,
            variables,
            validations,
            config_error: (!errors.is_empty()).then(|| errors.join("; ")),
        }
    }
}

impl Binding {
    pub fn of(obj: &Value) -> Binding {
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        let (matching, config_error) = match spec.get("matchResources") {
            None | Some(Value::Null) => (None, None),
            Some(m) => match MatchResources::of(m) {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(e)),
            },
        };
        Binding {
            name: obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            policy: string(&spec, "policyName"),
            actions: strings(&spec, "validationActions"),
            matching,
            config_error,
        }
    }
}
