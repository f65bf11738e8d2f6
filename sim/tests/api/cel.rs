//! CEL validation rules and list-type uniqueness on custom resources, and the checks kube-apiserver
//! makes of rules when a CRD is written — exact codes, messages and field paths.
use crate::common;

use serde_json::{json, Value};

use common::{crd, raw, RawResponse};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn crd_with(spec: Value, status: Value) -> Value {
    crd(
        "example.com",
        "Widget",
        json!({
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec, "status": status}}},
        }),
    )
}

async fn send(sim: &baton_sim::Sim, method: &str, path: &str, body: &Value) -> RawResponse {
    raw(sim, method, path, Some("application/json"), body.to_string().as_bytes()).await
}

async fn install(sim: &baton_sim::Sim, crd: &Value) {
    let r = send(sim, "POST", CRDS, crd).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

fn causes(r: &RawResponse) -> Vec<(String, String, String)> {
    let v = r.json();
    v["details"]["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
                    (s("reason"), s("field"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn c(reason: &str, field: &str, message: &str) -> (String, String, String) {
    (reason.into(), field.into(), message.into())
}

fn rules_spec() -> Value {
    json!({
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.min <= self.max", "message": "min must not exceed max"},
            {"rule": "size(self.tags) <= 3", "messageExpression": "size(self.tags) > 5 ? 'far too many tags' : 'at most 3 tags'"},
            {"rule": "!has(self.forbidden)", "reason": "FieldValueForbidden", "fieldPath": ".forbidden", "message": "forbidden is not allowed"},
        ],
        "properties": {
            "min": {"type": "integer"},
            "max": {"type": "integer"},
            "forbidden": {"type": "string"},
            "tags": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10,
                "x-kubernetes-validations": [{"rule": "self.lowerAscii() == self"}]}},
            "labels": {"type": "object", "maxProperties": 5, "additionalProperties": {"type": "string", "maxLength": 20,
                "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')", "message": "lower-case letters only"}]}},
            "mode": {"x-kubernetes-int-or-string": true,
                "x-kubernetes-validations": [{"rule": "type(self) == string ? self in ['fast', 'slow'] : self > 0", "message": "a positive count or fast/slow"}]},
        },
    })
}

#[tokio::test]
async fn rules_run_at_their_node_and_failures_are_422_in_kube_apiserver_words() {
    let sim = common::sim().await;
    install(&sim, &crd_with(rules_spec(), json!({"type": "object"}))).await;
    let ok = widget(
        "ok",
        json!({"min": 1, "max": 2, "tags": ["a", "b"], "labels": {"x": "abc"}, "mode": "fast"}),
    );
    let r = send(&sim, "POST", WIDGETS, &ok).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));

    let bad = widget(
        "bad",
        json!({"min": 3, "max": 2, "tags": ["a", "B", "c", "d"], "labels": {"x": "ABC"}, "forbidden": "x", "mode": 0}),
    );
    let r = send(&sim, "POST", WIDGETS, &bad).await;
    assert_eq!(r.code, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["reason"], "Invalid");
    assert_eq!(
        causes(&r),
        vec![
            c(
                "FieldValueInvalid",
                "spec",
                "Invalid value: \"object\": min must not exceed max"
            ),
            c("FieldValueInvalid", "spec", "Invalid value: \"object\": at most 3 tags"),
            c(
                "FieldValueForbidden",
                "spec.forbidden",
                "Forbidden: forbidden is not allowed"
            ),
            c(
                "FieldValueInvalid",
                "spec.labels[x]",
                "Invalid value: \"string\": lower-case letters only"
            ),
            c(
                "FieldValueInvalid",
                "spec.mode",
                "Invalid value: \"\": a positive count or fast/slow"
            ),
            c(
                "FieldValueInvalid",
                "spec.tags[1]",
                "Invalid value: \"string\": failed rule: self.lowerAscii() == self"
            ),
        ]
    );
    let msg = r.json()["message"].as_str().unwrap_or("").to_string();
    assert!(
        msg.starts_with(
            "Widget.example.com \"bad\" is invalid: [spec: Invalid value: \"object\": min must not exceed max, "
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn evaluation_errors_and_blocking_schema_errors() {
    let sim = common::sim().await;
    let spec = json!({"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.b > 0"}]},
        "c": {"type": "string", "enum": ["x"]},
    }});
    install(&sim, &crd_with(spec, json!({"type": "object"}))).await;
    let r = send(&sim, "POST", WIDGETS, &widget("w", json!({"a": {}}))).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        causes(&r),
        vec![c(
            "FieldValueInvalid",
            "spec.a",
            "Invalid value: \"object\": no such key: b evaluating rule: self.b > 0"
        )]
    );
    // A schema error that leaves the object's shape in doubt skips the rules.
    let r = send(&sim, "POST", WIDGETS, &widget("w", json!({"a": {"b": 0}, "c": "y"}))).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        causes(&r),
        vec![
            c("FieldValueNotSupported", "spec.c", "Unsupported value: \"y\": supported values: \"x\""),
            c(
                "FieldValueInvalid",
                "<nil>",
                "Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
            ),
        ]
    );
}

#[tokio::test]
async fn transition_rules_run_only_with_an_old_value_and_status_writes_are_checked() {
    let sim = common::sim().await;
    let spec = json!({"type": "object", "properties": {
        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]},
        "size": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true, "message": "size may only grow"}]},
    }});
    let status = json!({"type": "object", "properties": {"ready": {"type": "integer",
        "x-kubernetes-validations": [{"rule": "self >= 0", "message": "ready is a count", "reason": "FieldValueRequired"}]}}});
    install(&sim, &crd_with(spec, status)).await;
    let r = send(&sim, "POST", WIDGETS, &widget("w", json!({"name": "a", "size": 2}))).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let mut obj = r.json();

    obj["spec"] = json!({"name": "b", "size": 1});
    let r = send(&sim, "PUT", &format!("{WIDGETS}/w"), &obj).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        causes(&r),
        vec![
            c(
                "FieldValueInvalid",
                "spec.name",
                "Invalid value: \"string\": name is immutable"
            ),
            c(
                "FieldValueInvalid",
                "spec.size",
                "Invalid value: \"integer\": size may only grow"
            ),
        ]
    );
    obj["spec"] = json!({"name": "a", "size": 3});
    let r = send(&sim, "PUT", &format!("{WIDGETS}/w"), &obj).await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut obj = r.json();

    obj["status"] = json!({"ready": -1});
    let r = send(&sim, "PUT", &format!("{WIDGETS}/w/status"), &obj).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        causes(&r),
        vec![c(
            "FieldValueRequired",
            "status.ready",
            "Required value: ready is a count"
        )]
    );
    obj["status"] = json!({"ready": 1});
    let r = send(&sim, "PUT", &format!("{WIDGETS}/w/status"), &obj).await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn unchanged_values_that_fail_a_new_rule_are_ratcheted_to_warnings() {
    let sim = common::sim().await;
    let plain = json!({"type": "object", "properties": {"n": {"type": "integer"}, "m": {"type": "integer"}}});
    install(&sim, &crd_with(plain, json!({"type": "object"}))).await;
    let r = send(&sim, "POST", WIDGETS, &widget("w", json!({"n": 5, "m": 1}))).await;
    assert_eq!(r.code, 201);
    let mut obj = r.json();
    // The CRD gains a rule the stored object breaks.
    let mut crd = send(&sim, "GET", &format!("{CRDS}/widgets.example.com"), &json!({}))
        .await
        .json();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["n"]
        ["x-kubernetes-validations"] = json!([{"rule": "self < 3", "message": "n must be below 3"}]);
    let r = send(&sim, "PUT", &format!("{CRDS}/widgets.example.com"), &crd).await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    // Changing another field keeps working; the unchanged n is only warned about.
    obj["spec"]["m"] = json!(2);
    let r = send(&sim, "PUT", &format!("{WIDGETS}/w"), &obj).await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let warning = r.header("Warning").unwrap_or("");
    assert!(
        warning.contains("spec.n: Invalid value: \\\"integer\\\": n must be below 3")
            || warning.contains("spec.n: Invalid value: \"integer\": n must be below 3"),
        "{warning:?}"
    );
    let mut obj = r.json();
    obj["spec"]["n"] = json!(4);
    let r = send(&sim, "PUT", &format!("{WIDGETS}/w"), &obj).await;
    assert_eq!(r.code, 422);
}

#[tokio::test]
async fn list_type_map_and_set_repeats_are_duplicate_values() {
    let sim = common::sim().await;
    let spec = json!({"type": "object", "properties": {
        "listeners": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
            "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    }});
    install(&sim, &crd_with(spec, json!({"type": "object"}))).await;
    let w = widget(
        "w",
        json!({"listeners": [{"id": "a"}, {"id": "b"}, {"id": "a"}], "tags": ["x", "y", "x"]}),
    );
    let r = send(&sim, "POST", WIDGETS, &w).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        causes(&r),
        vec![
            c(
                "FieldValueDuplicate",
                "spec.listeners[2]",
                "Duplicate value: map[string]interface {}{\"id\":\"a\"}"
            ),
            c("FieldValueDuplicate", "spec.tags[2]", "Duplicate value: \"x\""),
        ]
    );
    assert_eq!(
        r.json()["message"],
        "Widget.example.com \"w\" is invalid: [spec.listeners[2]: Duplicate value: map[string]interface {}{\"id\":\"a\"}, spec.tags[2]: Duplicate value: \"x\"]"
    );
}

fn crd_error(r: &RawResponse) -> Vec<(String, String, String)> {
    assert_eq!(r.code, 422, "{}", String::from_utf8_lossy(&r.body));
    causes(r)
}

#[tokio::test]
async fn crds_whose_rules_do_not_compile_are_refused() {
    let sim = common::sim().await;
    let spec = json!({"type": "object", "properties": {"n": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.m > 0"}, {"rule": "self.n", "optionalOldSelf": true}, {"rule": "", "reason": "Bogus"}]});
    let r = send(&sim, "POST", CRDS, &crd_with(spec, json!({"type": "object"}))).await;
    let base = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations";
    assert_eq!(
        crd_error(&r),
        vec![
            c("FieldValueRequired", &format!("{base}[2].rule"), "Required value: rule is not specified"),
            c(
                "FieldValueNotSupported",
                &format!("{base}[2].reason"),
                "Unsupported value: \"Bogus\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
            ),
        ]
    );
    let spec = json!({"type": "object", "properties": {"n": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.m > 0"}, {"rule": "self.n"}]});
    let r = send(&sim, "POST", CRDS, &crd_with(spec, json!({"type": "object"}))).await;
    assert_eq!(
        crd_error(&r),
        vec![
            c(
                "FieldValueInvalid",
                &format!("{base}[0].rule"),
                "Invalid value: apiextensions.ValidationRule{Rule:\"self.m > 0\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: undefined field 'm'\n | self.m > 0\n | ....^"
            ),
            c(
                "FieldValueInvalid",
                &format!("{base}[1].rule"),
                "Invalid value: apiextensions.ValidationRule{Rule:\"self.n\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: cel expression must evaluate to a bool"
            ),
        ]
    );
    let spec = json!({"type": "object", "properties": {"l": {"type": "array", "maxItems": 3,
        "items": {"type": "integer", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}});
    let r = send(&sim, "POST", CRDS, &crd_with(spec, json!({"type": "object"}))).await;
    assert_eq!(
        crd_error(&r),
        vec![c(
            "FieldValueInvalid",
            "spec.validation.openAPIV3Schema.properties[spec].properties[l].items.x-kubernetes-validations[0].rule",
            "Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.validation.openAPIV3Schema.properties[spec].properties[l]"
        )]
    );
}

#[tokio::test]
async fn crds_over_the_cost_budget_are_refused_with_kube_apiserver_messages() {
    let sim = common::sim().await;
    // One rule over budget: a regex over every item of an unbounded list of unbounded strings.
    let spec = json!({"type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self.all(n, n.matches('^[a-z]+$'))"}]}}});
    let r = send(&sim, "POST", CRDS, &crd_with(spec, json!({"type": "object"}))).await;
    let rule = "spec.validation.openAPIV3Schema.properties[spec].properties[names].x-kubernetes-validations[0].rule";
    let got = crd_error(&r);
    assert_eq!(got[0], c("FieldValueForbidden", rule, "Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"));
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: ["));
    // Bounded, the same rule is accepted.
    let spec = json!({"type": "object", "properties": {"names": {"type": "array", "maxItems": 10,
        "items": {"type": "string", "maxLength": 20},
        "x-kubernetes-validations": [{"rule": "self.all(n, n.matches('^[a-z]+$'))"}]}}});
    install(&sim, &crd_with(spec, json!({"type": "object"}))).await;

    // Each rule under budget (9,000,002: a 7,500-character string searched for itself), twelve
    // of them over the schema's total.
    let rules: Vec<Value> = (0..12).map(|_| json!({"rule": "self.contains(self)"})).collect();
    let big = json!({"type": "object", "properties": {"s": {"type": "string", "maxLength": 7500,
        "x-kubernetes-validations": rules}}});
    let mut crd = crd_with(big, json!({"type": "object"}));
    crd["metadata"]["name"] = json!("gadgets.example.com");
    crd["spec"]["names"] = json!({"plural": "gadgets", "kind": "Gadget"});
    let r = send(&sim, "POST", CRDS, &crd).await;
    let got = crd_error(&r);
    let last = got.last().cloned().unwrap_or_default();
    assert_eq!(
        last,
        c(
            "FieldValueForbidden",
            "spec.validation.openAPIV3Schema",
            "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of 1.080000x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        )
    );
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got[..4].iter().all(|(reason, _, m)| reason == "FieldValueForbidden"
        && m
            == "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"));
}
