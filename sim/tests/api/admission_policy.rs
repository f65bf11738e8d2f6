//! ValidatingAdmissionPolicy and its bindings as kube-apiserver enforces them: CEL with
//! `object`, `oldObject`, `request.userInfo` (and its `extra`), `variables`, match conditions,
//! selectors, `validationActions` Deny and Warn, `messageExpression`, `reason`, failure policy;
//! 422/403 in kube-apiserver's words; policies that do not compile are refused.
use crate::common;

use baton_sim::auth::UserInfo;
use baton_sim::Sim;
use common::kubectl::Kubectl;
use common::{raw_with, sim, RawResponse};
use serde_json::{json, Value};

/// A JSON request as `token`.
async fn send(sim: &Sim, method: &str, token: &str, path: &str, body: &Value) -> RawResponse {
    raw_with(
        sim,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

async fn post(sim: &Sim, token: &str, path: &str, body: &Value) -> RawResponse {
    send(sim, "POST", token, path, body).await
}

async fn put(sim: &Sim, token: &str, path: &str, body: &Value) -> RawResponse {
    send(sim, "PUT", token, path, body).await
}

/// User `username` (token `token`) in group `group`, which is bound to cluster-admin.
async fn group_admin(sim: &Sim, token: &str, username: &str, group: &str) {
    sim.register_user(
        token,
        UserInfo {
            username: username.into(),
            groups: vec![group.into()],
            ..Default::default()
        },
    );
    let r = post(sim, baton_sim::ADMIN, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &json!({
        "metadata": {"name": format!("{group}-admin")}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": group}]})).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
}

const POLICIES: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const BINDINGS: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn install(sim: &Sim, policy: Value, actions: Value) {
    let name = policy["metadata"]["name"].clone();
    let r = post(sim, baton_sim::ADMIN, POLICIES, &policy).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let binding = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": format!("{}-binding", name.as_str().unwrap())},
        "spec": {"policyName": name, "validationActions": actions}});
    let r = post(sim, baton_sim::ADMIN, BINDINGS, &binding).await;
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn configmap_policy(name: &str, spec_extra: Value) -> Value {
    let mut spec = json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["configmaps"]}]}});
    if let (Some(s), Value::Object(extra)) = (spec.as_object_mut(), spec_extra) {
        s.extend(extra);
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name}, "spec": spec})
}

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"team": "a"}}, "data": data})
}

#[tokio::test]
async fn deny_with_messages_reasons_and_user_info() {
    let sim = sim().await;
    group_admin(&sim, "jane-token", "jane", "devs").await;
    install(&sim, configmap_policy("size-limit", json!({
        "matchConditions": [{"name": "not-admins", "expression": "!('system:masters' in request.userInfo.groups)"}],
        "variables": [{"name": "size", "expression": "has(object.data) ? size(object.data) : 0"}],
        "validations": [
            {"expression": "request.operation != 'DELETE'", "message": "configmaps are forever", "reason": "Forbidden"},
            {"expression": "variables.size <= 2", "messageExpression": "'too many keys: ' + string(variables.size) + ' for ' + request.userInfo.username"},
            {"expression": "oldObject == null || object.data == oldObject.data || object.metadata.labels.team == 'a'"}
        ]})), json!(["Deny"])).await;
    let three_keys = json!({"a": "1", "b": "2", "c": "3"});
    // Allowed.
    assert_eq!(
        post(&sim, "jane-token", CONFIGMAPS, &cm("small", json!({"a": "1"})))
            .await
            .code,
        201
    );
    // messageExpression; reason Invalid by default: 422.
    let r = post(&sim, "jane-token", CONFIGMAPS, &cm("big", three_keys.clone())).await;
    assert_eq!(r.code, 422);
    let msg = "configmaps \"big\" is forbidden: ValidatingAdmissionPolicy 'size-limit' with binding 'size-limit-binding' denied request: too many keys: 3 for jane";
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": msg, "reason": "Invalid",
            "details": {"name": "big", "kind": "configmaps", "causes": [{"message": "ValidatingAdmissionPolicy 'size-limit' with binding 'size-limit-binding' denied request: too many keys: 3 for jane"}]},
            "code": 422})
    );
    // reason Forbidden: 403; DELETE sees oldObject.
    let r = raw_with(
        &sim,
        "DELETE",
        &format!("{CONFIGMAPS}/small"),
        &[("Authorization", "Bearer jane-token")],
        b"",
    )
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(r.json()["message"], "configmaps \"small\" is forbidden: ValidatingAdmissionPolicy 'size-limit' with binding 'size-limit-binding' denied request: configmaps are forever");
    // No message: `failed expression: <expression>`, on updates with oldObject.
    let mut changed = cm("small", json!({"a": "2"}));
    changed["metadata"]["labels"]["team"] = json!("b");
    let r = put(&sim, "jane-token", &format!("{CONFIGMAPS}/small"), &changed).await;
    assert_eq!(r.code, 422);
    assert!(r.json()["message"].as_str().unwrap().ends_with("denied request: failed expression: oldObject == null || object.data == oldObject.data || object.metadata.labels.team == 'a'"), "{}", r.json());
    // The match condition exempts system:masters.
    assert_eq!(
        post(&sim, baton_sim::ADMIN, CONFIGMAPS, &cm("big", three_keys.clone()))
            .await
            .code,
        201
    );
    // Dry runs are judged too.
    let r = post(
        &sim,
        "jane-token",
        &format!("{CONFIGMAPS}?dryRun=All"),
        &cm("huge", three_keys.clone()),
    )
    .await;
    assert_eq!(r.code, 422);
}

#[tokio::test]
async fn extra_of_pod_bound_tokens_and_warnings() {
    let sim = sim().await;
    post(
        &sim,
        baton_sim::ADMIN,
        "/api/v1/namespaces/default/serviceaccounts",
        &json!({"metadata": {"name": "app"}}),
    )
    .await;
    post(&sim, baton_sim::ADMIN, "/api/v1/namespaces/default/pods", &json!({"metadata": {"name": "app-0"}, "spec": {"serviceAccountName": "app", "containers": [{"name": "c", "image": "i"}]}})).await;
    post(&sim, baton_sim::ADMIN, "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", &json!({
        "metadata": {"name": "app-edit"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "default"}]})).await;
    install(&sim, configmap_policy("named-after-pod", json!({
        "validations": [{"expression": "has(request.userInfo.extra) && 'authentication.kubernetes.io/pod-name' in request.userInfo.extra && object.metadata.name.startsWith(request.userInfo.extra['authentication.kubernetes.io/pod-name'][0])",
                         "message": "name it after your pod"}]})), json!(["Warn"])).await;
    let bound = sim.service_account_token("default", "app", Some("app-0")).unwrap();
    let unbound = sim.service_account_token("default", "app", None).unwrap();
    // Warn: admitted, with kube-apiserver's warning.
    let r = post(&sim, &unbound, CONFIGMAPS, &cm("other", json!({}))).await;
    assert_eq!(r.code, 201);
    assert_eq!(
        r.header("Warning"),
        Some("299 - \"Validation failed for ValidatingAdmissionPolicy 'named-after-pod' with binding 'named-after-pod-binding': name it after your pod\"")
    );
    let r = post(&sim, &bound, CONFIGMAPS, &cm("app-0-config", json!({}))).await;
    assert_eq!((r.code, r.header("Warning")), (201, None));
}

#[tokio::test]
async fn failure_policy_selectors_and_excludes() {
    let sim = sim().await;
    post(
        &sim,
        baton_sim::ADMIN,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": "guarded", "labels": {"guard": "on"}}}),
    )
    .await;
    group_admin(&sim, "u", "u", "g").await;
    // An expression that errors (no such key) under failurePolicy Fail denies, only in
    // namespaces labelled guard=on and for objects labelled team.
    let mut p = configmap_policy(
        "strict",
        json!({"validations": [{"expression": "object.data.required == 'yes'"}]}),
    );
    p["spec"]["matchConstraints"]["namespaceSelector"] = json!({"matchLabels": {"guard": "on"}});
    p["spec"]["matchConstraints"]["objectSelector"] =
        json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]});
    install(&sim, p, json!(["Deny"])).await;
    let guarded = "/api/v1/namespaces/guarded/configmaps";
    let r = post(&sim, "u", guarded, &cm("x", json!({"other": "1"}))).await;
    assert_eq!(r.code, 422);
    assert!(
        r.json()["message"].as_str().unwrap().ends_with(
            "denied request: expression 'object.data.required == 'yes'' resulted in error: no such key: required"
        ),
        "{}",
        r.json()
    );
    assert_eq!(
        post(&sim, "u", CONFIGMAPS, &cm("x", json!({"other": "1"}))).await.code,
        201
    );
    let unlabelled = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "data": {}});
    assert_eq!(post(&sim, "u", guarded, &unlabelled).await.code, 201);
    // failurePolicy Ignore admits on errors.
    let mut p = configmap_policy(
        "lenient",
        json!({"failurePolicy": "Ignore", "validations": [{"expression": "object.data.missing == 'x'"}]}),
    );
    p["spec"]["matchConstraints"]["excludeResourceRules"] = json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["configmaps"], "resourceNames": ["excluded"]}]);
    install(&sim, p, json!(["Deny"])).await;
    assert_eq!(post(&sim, "u", CONFIGMAPS, &cm("z", json!({}))).await.code, 201);
    // The stored policy shows kube-apiserver's defaults.
    let stored = raw_with(&sim, "GET", &format!("{POLICIES}/strict"), &[], b"")
        .await
        .json();
    assert_eq!(stored["spec"]["failurePolicy"], "Fail");
    assert_eq!(stored["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
    assert_eq!(stored["spec"]["matchConstraints"]["resourceRules"][0]["scope"], "*");
}

#[tokio::test]
async fn bad_policies_and_bindings_are_refused() {
    let sim = sim().await;
    let p = configmap_policy(
        "broken",
        json!({"failurePolicy": "Sometimes", "validations": [
        {"expression": "objekt.data.size() < 3"}, {"expression": "1 + 1", "reason": "Teapot"}]}),
    );
    let r = post(&sim, baton_sim::ADMIN, POLICIES, &p).await;
    assert_eq!(r.code, 422);
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("ValidatingAdmissionPolicy.admissionregistration.k8s.io \"broken\" is invalid: ["),
        "{msg}"
    );
    assert!(
        msg.contains("spec.failurePolicy: Unsupported value: \"Sometimes\": supported values: \"Fail\", \"Ignore\""),
        "{msg}"
    );
    assert!(msg.contains("spec.validations[0].expression: Invalid value: \"objekt.data.size() < 3\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'objekt'"), "{msg}");
    assert!(
        msg.contains(
            "spec.validations[1].expression: Invalid value: \"1 + 1\": cel expression must evaluate to a bool"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("spec.validations[1].reason: Unsupported value: \"Teapot\""),
        "{msg}"
    );
    let r = post(
        &sim,
        baton_sim::ADMIN,
        POLICIES,
        &json!({"metadata": {"name": "empty"}, "spec": {}}),
    )
    .await;
    assert_eq!(r.code, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("spec.matchConstraints: Required value"),
        "{}",
        r.json()
    );
    let b = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny", "Warn"]}});
    let r = post(&sim, baton_sim::ADMIN, BINDINGS, &b).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io \"b\" is invalid: spec.validationActions: Invalid value: []string{\"Deny\", \"Warn\"}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"
    );
}

#[tokio::test]
async fn kubectl_shows_the_denial() {
    let sim = sim().await;
    sim.register_user(
        "jane-token",
        UserInfo {
            username: "jane".into(),
            groups: vec!["devs".into()],
            ..Default::default()
        },
    );
    let admin = Kubectl::new(&sim);
    admin
        .ok(&[
            "create",
            "clusterrolebinding",
            "devs-edit",
            "--clusterrole=edit",
            "--group=devs",
        ])
        .await;
    let p = configmap_policy(
        "no-debug",
        json!({"validations": [{"expression": "!has(object.data) || !('debug' in object.data)", "message": "no debug flags"}]}),
    );
    admin.ok(&["apply", "-f", &admin.file("p.json", &p)]).await;
    let b = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "no-debug"},
        "spec": {"policyName": "no-debug", "validationActions": ["Deny"]}});
    admin.ok(&["apply", "-f", &admin.file("b.json", &b)]).await;
    let jane = admin.home().join("jane.kubeconfig");
    sim.kubeconfig_with_token("jane", "jane-token", &jane).unwrap();
    let k = Kubectl::with_kubeconfig(jane);
    let run = k.run(&["create", "configmap", "c", "--from-literal=debug=1"]).await;
    let (code, err) = (run.code, run.stderr);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "error: failed to create configmap: configmaps \"c\" is forbidden: ValidatingAdmissionPolicy 'no-debug' with binding 'no-debug' denied request: no debug flags"
    );
    k.ok(&["create", "configmap", "c", "--from-literal=level=info"]).await;
}
