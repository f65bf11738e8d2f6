//! What kube-apiserver checks of `x-kubernetes-validations` when a CRD is written
//! (apiextensions `validation.ValidateCustomResourceDefinitionOpenAPISchema`): each rule's
//! fields, that it compiles, that its estimated cost (times how often the node can repeat) stays
//! within `StaticEstimatedCostLimit`, and that the schema's total stays within
//! `StaticEstimatedCRDCostLimit`.

use std::sync::Arc;

use serde_json::Value as Json;

use super::compile::{compile, Compiled, RuleSpec};
use super::decl::{decl_of, max_cardinality, Decl};
use crate::error::StatusCause;
use crate::schema::go_quote;

/// apiextensions `StaticEstimatedCostLimit`: the most one rule may cost (after multiplying by
/// the cardinality of its node).
pub const RULE_COST_LIMIT: u64 = 10_000_000;
/// apiextensions `StaticEstimatedCRDCostLimit`: the most all rules of a schema may cost.
pub const TOTAL_COST_LIMIT: u64 = 100_000_000;

const REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// One rule's (or messageExpression's) estimated cost, with its field path in the CRD.
#[derive(Debug, Clone)]
pub struct RuleCost {
    pub path: String,
    pub rule: String,
    pub cost: u64,
}

#[derive(Default)]
struct Walk {
    schema_errs: Vec<StatusCause>,
    cel_errs: Vec<StatusCause>,
    total: u64,
    most_expensive: Vec<(String, u64)>,
    costs: Vec<RuleCost>,
}

fn cause(reason: &str, field: String, message: String) -> StatusCause {
    StatusCause {
        reason: reason.into(),
        field,
        message,
    }
}

/// `getCostErrorMessage`.
fn cost_message(name: &str, cost: u64, limit: u64) -> String {
    let f = cost as f64 / limit as f64;
    let factor = if f > 100.0 {
        "more than 100x".to_string()
    } else if f < 1.5 {
        format!("{f:.6}x")
    } else {
        format!("{f:.1}x")
    };
    format!("{name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)")
}

/// The rule as kube-apiserver prints it in an `Invalid value` (Go's `%#v` of the internal
/// `apiextensions.ValidationRule`; a set pointer prints an address there, `0xc000000000` here).
fn render_rule(r: &RuleSpec) -> String {
    let reason = match &r.reason {
        Some(_) => "(*apiextensions.FieldValueErrorReason)(0xc000000000)",
        None => "(*apiextensions.FieldValueErrorReason)(nil)",
    };
    let old = match r.optional_old_self {
        Some(_) => "(*bool)(0xc000000000)",
        None => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{old}}}",
        go_quote(&r.rule),
        go_quote(&r.message),
        go_quote(&r.message_expression),
        go_quote(&r.field_path)
    )
}

fn flag(s: &Json, k: &str) -> bool {
    s.get(k).and_then(Json::as_bool) == Some(true)
}

fn max_elements(s: &Json) -> Option<u64> {
    let n = |k: &str| s.get(k).and_then(Json::as_i64).map(|v| v.max(0) as u64);
    match s.get("type").and_then(Json::as_str) {
        Some("object") if s.get("additionalProperties").is_some() => n("maxProperties"),
        Some("array") => n("maxItems"),
        _ => Some(1),
    }
}

impl Walk {
    fn observe(&mut self, path: String, rule: &str, cost: u64) {
        self.total = self.total.saturating_add(cost);
        self.costs.push(RuleCost {
            path: path.clone(),
            rule: rule.to_string(),
            cost,
        });
        if cost < TOTAL_COST_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path, cost));
        self.most_expensive.sort_by_key(|b| std::cmp::Reverse(b.1));
        self.most_expensive.truncate(4);
    }

    fn node(&mut self, s: &Json, path: &str, card: Option<u64>, forbid_old: Option<&str>, root: bool, depth: usize) {
        if depth > super::MAX_DEPTH || !s.is_object() {
            return;
        }
        let schema_errs_before = self.schema_errs.len();
        self.children(s, path, card, forbid_old, depth);
        let Some(rules) = s.get("x-kubernetes-validations").and_then(Json::as_array) else {
            return;
        };
        let specs: Vec<RuleSpec> = rules.iter().map(RuleSpec::from_json).collect();
        for (i, r) in specs.iter().enumerate() {
            self.rule_fields(s, &format!("{path}.x-kubernetes-validations[{i}]"), r);
        }
        // A schema error anywhere below (or in these rules' fields) leaves the rules uncompiled.
        if self.schema_errs.len() != schema_errs_before {
            return;
        }
        let Some(decl) = decl_of(s, root || flag(s, super::EMBEDDED_RESOURCE)) else {
            self.cel_errs.push(cause(
                "InternalError",
                format!("{path}.x-kubernetes-validations"),
                "Internal error: internal error: failed to retrieve type information for x-kubernetes-validations"
                    .into(),
            ));
            return;
        };
        let cardinality = card.unwrap_or_else(|| max_cardinality(decl.min_size));
        for (i, spec) in specs.into_iter().enumerate() {
            let base = format!("{path}.x-kubernetes-validations[{i}]");
            self.rule(s, &decl, &base, spec, cardinality, forbid_old);
        }
    }

    /// Walks the node's child schemas. They repeat up to `max_elements` times each, and below an
    /// atomic map or a list that is not a map list `oldSelf` cannot be correlated.
    fn children(&mut self, s: &Json, path: &str, card: Option<u64>, forbid_old: Option<&str>, depth: usize) {
        let child_card = card.and_then(|c| max_elements(s).map(|m| c.saturating_mul(m)));
        let atomic_map = s
            .get("x-kubernetes-map-type")
            .and_then(Json::as_str)
            .is_some_and(|t| t != "granular");
        if let Some(add) = s.get("additionalProperties").filter(|a| a.is_object()) {
            let add_path = format!("{path}.additionalProperties");
            self.node(add, &add_path, child_card, forbid_old, false, depth + 1);
        }
        if let Some(props) = s.get("properties").and_then(Json::as_object) {
            let mut names: Vec<&String> = props.keys().collect();
            names.sort();
            for name in names {
                let forbid = forbid_old.or(atomic_map.then_some(path));
                let prop_path = format!("{path}.properties[{name}]");
                self.node(&props[name], &prop_path, child_card, forbid, false, depth + 1);
            }
        }
        if let Some(items) = s.get("items").filter(|i| i.is_object()) {
            let map_list = s.get("x-kubernetes-list-type").and_then(Json::as_str) == Some("map");
            let forbid = forbid_old.or((!map_list).then_some(path));
            self.node(items, &format!("{path}.items"), child_card, forbid, false, depth + 1);
        }
    }

    /// Compiles one rule at `base`: its cost (times `cardinality`) and its messageExpression's
    /// against the per-rule limit, compile errors, and oldSelf use.
    fn rule(
        &mut self,
        s: &Json,
        decl: &Arc<Decl>,
        base: &str,
        spec: RuleSpec,
        cardinality: u64,
        forbid_old: Option<&str>,
    ) {
        let rendered = render_rule(&spec);
        let c = compile(spec, decl, s);
        let cost = if c.max_cost == 0 {
            0
        } else {
            c.max_cost.saturating_mul(cardinality)
        };
        if cost > RULE_COST_LIMIT {
            let msg = cost_message("estimated rule cost", cost, RULE_COST_LIMIT);
            self.cel_errs.push(cause(
                "FieldValueForbidden",
                format!("{base}.rule"),
                format!("Forbidden: {msg}"),
            ));
        }
        self.observe(format!("{base}.rule"), &c.spec.rule, cost);
        if let Some(e) = &c.error {
            self.cel_errs.push(cause(
                "FieldValueInvalid",
                format!("{base}.rule"),
                format!("Invalid value: {rendered}: {e}"),
            ));
        }
        if let Some(e) = &c.message_error {
            self.cel_errs.push(cause(
                "FieldValueInvalid",
                format!("{base}.messageExpression"),
                format!("Invalid value: {rendered}: {e}"),
            ));
        } else if c.message_program.is_some() {
            if c.message_cost > RULE_COST_LIMIT {
                let msg = cost_message("estimated messageExpression cost", c.message_cost, RULE_COST_LIMIT);
                self.cel_errs.push(cause(
                    "FieldValueForbidden",
                    format!("{base}.messageExpression"),
                    format!("Forbidden: {msg}"),
                ));
            }
            self.observe(
                format!("{base}.messageExpression"),
                &c.spec.message_expression,
                c.message_cost,
            );
        }
        self.old_self_use(base, &c, forbid_old);
    }

    /// oldSelf may not be used where it cannot be correlated (`forbid_old` names where), and
    /// `optionalOldSelf` only with a rule that uses it.
    fn old_self_use(&mut self, base: &str, c: &Compiled, forbid_old: Option<&str>) {
        if c.uses_old_self {
            if let Some(p) = forbid_old {
                self.cel_errs.push(cause(
                    "FieldValueInvalid",
                    format!("{base}.rule"),
                    format!(
                        "Invalid value: {}: oldSelf cannot be used on the uncorrelatable portion of the schema within {p}",
                        go_quote(&c.spec.rule)
                    ),
                ));
            }
        } else if let Some(b) = c.spec.optional_old_self {
            if c.error.is_none() {
                self.cel_errs.push(cause(
                    "FieldValueInvalid",
                    format!("{base}.optionalOldSelf"),
                    format!("Invalid value: {b}: may not be set if oldSelf is not used in rule"),
                ));
            }
        }
    }

    fn rule_fields(&mut self, s: &Json, base: &str, r: &RuleSpec) {
        let has_newline = |x: &str| x.contains('\n') || x.contains('\r');
        let (rule, msg) = (r.rule.trim(), r.message.trim());
        if rule.is_empty() {
            self.schema_errs.push(cause(
                "FieldValueRequired",
                format!("{base}.rule"),
                "Required value: rule is not specified".into(),
            ));
        } else if !r.message.is_empty() && msg.is_empty() {
            self.schema_errs.push(cause(
                "FieldValueInvalid",
                format!("{base}.message"),
                format!(
                    "Invalid value: {}: message must be non-empty if specified",
                    go_quote(&r.message)
                ),
            ));
        } else if has_newline(msg) {
            self.schema_errs.push(cause(
                "FieldValueInvalid",
                format!("{base}.message"),
                format!(
                    "Invalid value: {}: message must not contain line breaks",
                    go_quote(&r.message)
                ),
            ));
        } else if has_newline(rule) && msg.is_empty() {
            self.schema_errs.push(cause(
                "FieldValueRequired",
                format!("{base}.message"),
                "Required value: message must be specified if rule contains line breaks".into(),
            ));
        }
        if !r.message_expression.is_empty() && r.message_expression.trim().is_empty() {
            self.schema_errs.push(cause(
                "FieldValueRequired",
                format!("{base}.messageExpression"),
                "Required value: messageExpression must be non-empty if specified".into(),
            ));
        }
        if let Some(reason) = &r.reason {
            if !REASONS.contains(&reason.as_str()) {
                let supported: Vec<String> = REASONS.iter().map(|x| go_quote(x)).collect();
                self.schema_errs.push(cause(
                    "FieldValueNotSupported",
                    format!("{base}.reason"),
                    format!(
                        "Unsupported value: {}: supported values: {}",
                        go_quote(reason),
                        supported.join(", ")
                    ),
                ));
            }
        }
        let fp = &r.field_path;
        let invalid_fp = |detail: &str| {
            cause(
                "FieldValueInvalid",
                format!("{base}.fieldPath"),
                format!("Invalid value: {}: {detail}", go_quote(fp)),
            )
        };
        if !fp.is_empty() && fp.trim().is_empty() {
            self.schema_errs
                .push(invalid_fp("fieldPath must be non-empty if specified"));
        }
        if has_newline(fp) {
            self.schema_errs
                .push(invalid_fp("fieldPath must not contain line breaks"));
        }
        if !fp.is_empty() && super::fieldpath::valid_field_path(fp, s).is_err() {
            self.schema_errs.push(invalid_fp("fieldPath must be a valid path"));
        }
    }

    fn finish(&mut self, schema_path: &str) {
        if self.total <= TOTAL_COST_LIMIT {
            return;
        }
        for (path, _) in std::mem::take(&mut self.most_expensive) {
            self.cel_errs.push(cause(
                "FieldValueForbidden",
                path,
                "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
                    .into(),
            ));
        }
        let msg = cost_message(
            "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
            self.total,
            TOTAL_COST_LIMIT,
        );
        self.cel_errs.push(cause(
            "FieldValueForbidden",
            schema_path.to_string(),
            format!("Forbidden: {msg}"),
        ));
    }
}

/// The schemas of a CRD with the field path kube-apiserver reports them under: identical
/// per-version schemas are validated once, as `spec.validation.openAPIV3Schema` (the internal
/// version kube-apiserver validates hoists them there).
fn schemas(crd: &Json) -> Vec<(String, &Json)> {
    let versions: Vec<(usize, &Json)> = crd
        .pointer("/spec/versions")
        .and_then(Json::as_array)
        .map(|vs| {
            vs.iter()
                .enumerate()
                .filter_map(|(i, v)| v.pointer("/schema/openAPIV3Schema").map(|s| (i, s)))
                .collect()
        })
        .unwrap_or_default();
    let total = crd
        .pointer("/spec/versions")
        .and_then(Json::as_array)
        .map_or(0, Vec::len);
    let identical = versions.len() == total && versions.windows(2).all(|w| w[0].1 == w[1].1);
    if identical {
        return versions
            .first()
            .map(|(_, s)| vec![("spec.validation.openAPIV3Schema".to_string(), *s)])
            .unwrap_or_default();
    }
    versions
        .into_iter()
        .map(|(i, s)| (format!("spec.versions[{i}].schema.openAPIV3Schema"), s))
        .collect()
}

fn walk(crd: &Json) -> Vec<Walk> {
    schemas(crd)
        .into_iter()
        .map(|(path, s)| {
            let mut w = Walk::default();
            w.node(s, &path, Some(1), None, true, 0);
            w.finish(&path);
            w
        })
        .collect()
}

/// Field errors kube-apiserver reports for the rules of a CRD being written.
pub fn check_crd(crd: &Json) -> Vec<StatusCause> {
    walk(crd)
        .into_iter()
        .flat_map(|w| w.schema_errs.into_iter().chain(w.cel_errs))
        .collect()
}

/// Every rule's (and messageExpression's) estimated cost, as the CRD check computes it.
pub fn rule_costs(crd: &Json) -> Vec<RuleCost> {
    walk(crd).into_iter().flat_map(|w| w.costs).collect()
}
