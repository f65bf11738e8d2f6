//! RBAC authorization as kube-apiserver's: Roles and ClusterRoles through their bindings,
//! `resourceNames`, subresources, `nonResourceURLs`, wildcards, aggregated ClusterRoles, the
//! default admin/edit/view roles, `system:masters`, escalation prevention, and 403s in
//! kube-apiserver's words; SelfSubjectAccessReview and `kubectl auth can-i` with real kubectl.
mod common;

use baton_sim::auth::UserInfo;
use baton_sim::Sim;
use common::kubectl::Kubectl;
use common::{raw_with, sim, widget_crd};
use serde_json::{json, Value};

/// An admin write of `body` to `path` (POST); panics unless 201.
async fn admin_create(sim: &Sim, path: &str, body: Value) {
    let r = raw_with(
        sim,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.code, 201, "POST {path}: {}", String::from_utf8_lossy(&r.body));
}

async fn sa(sim: &Sim, ns: &str, name: &str) -> String {
    if ns != "default" {
        let _ = raw_with(
            sim,
            "POST",
            "/api/v1/namespaces",
            &[("Content-Type", "application/json")],
            json!({"metadata": {"name": ns}}).to_string().as_bytes(),
        )
        .await;
    }
    admin_create(
        sim,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        json!({"metadata": {"name": name}}),
    )
    .await;
    sim.service_account_token(ns, name, None).expect("token")
}

async fn role(sim: &Sim, ns: &str, name: &str, rules: Value) {
    admin_create(
        sim,
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
        json!({"metadata": {"name": name}, "rules": rules}),
    )
    .await;
}

async fn cluster_role(sim: &Sim, name: &str, labels: Value, rules: Value) {
    admin_create(
        sim,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": name, "labels": labels}, "rules": rules}),
    )
    .await;
}

/// Bind `role_kind/role` to ServiceAccount `sa_ns/sa` in `ns` ("" = a ClusterRoleBinding).
async fn bind(sim: &Sim, ns: &str, name: &str, role_kind: &str, role: &str, subject: Value) {
    let (path, meta) = if ns.is_empty() {
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_string(),
            json!({"name": name}),
        )
    } else {
        (
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            json!({"name": name}),
        )
    };
    admin_create(
        sim,
        &path,
        json!({"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": [subject]}),
    )
    .await;
}

fn sa_subject(ns: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
}

/// (code, message) of a request with bearer `token`.
async fn call(sim: &Sim, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let ct = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let r = raw_with(
        sim,
        method,
        path,
        &[("Authorization", &format!("Bearer {token}")), ("Content-Type", ct)],
        body.as_bytes(),
    )
    .await;
    let msg = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    (r.code, msg)
}

#[tokio::test]
async fn roles_bindings_and_forbidden_messages() {
    let sim = sim().await;
    let t = sa(&sim, "baton-system", "baton").await;
    role(
        &sim,
        "default",
        "pod-reader",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    )
    .await;
    bind(
        &sim,
        "default",
        "read",
        "Role",
        "pod-reader",
        sa_subject("baton-system", "baton"),
    )
    .await;
    admin_create(
        &sim,
        "/api/v1/namespaces/default/pods",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    assert_eq!(
        call(&sim, &t, "GET", "/api/v1/namespaces/default/pods/p", None).await.0,
        200
    );
    assert_eq!(
        call(&sim, &t, "GET", "/api/v1/namespaces/default/pods", None).await,
        (403, "pods is forbidden: User \"system:serviceaccount:baton-system:baton\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"".into())
    );
    assert_eq!(
        call(&sim, &t, "DELETE", "/api/v1/namespaces/default/pods/p", None).await,
        (403, "pods \"p\" is forbidden: User \"system:serviceaccount:baton-system:baton\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\"".into())
    );
    assert_eq!(
        call(&sim, &t, "GET", "/api/v1/nodes", None).await,
        (403, "nodes is forbidden: User \"system:serviceaccount:baton-system:baton\" cannot list resource \"nodes\" in API group \"\" at the cluster scope".into())
    );
    // A binding to a role that does not exist is named in the reason.
    bind(
        &sim,
        "default",
        "dangling",
        "ClusterRole",
        "missing",
        sa_subject("baton-system", "baton"),
    )
    .await;
    let (code, msg) = call(&sim, &t, "GET", "/api/v1/namespaces/default/configmaps", None).await;
    assert_eq!(code, 403);
    assert!(
        msg.ends_with(": RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found"),
        "{msg}"
    );
    // A ClusterRole bound by a RoleBinding grants in that namespace only.
    bind(
        &sim,
        "default",
        "view",
        "ClusterRole",
        "view",
        sa_subject("baton-system", "baton"),
    )
    .await;
    assert_eq!(
        call(&sim, &t, "GET", "/api/v1/namespaces/default/pods", None).await.0,
        200
    );
    assert_eq!(
        call(&sim, &t, "GET", "/api/v1/namespaces/kube-system/pods", None)
            .await
            .0,
        403
    );
    // Namespaces are in their own namespace: a RoleBinding in `default` lets view get it.
    assert_eq!(call(&sim, &t, "GET", "/api/v1/namespaces/default", None).await.0, 200);
    assert_eq!(
        call(&sim, &t, "GET", "/api/v1/namespaces/kube-system", None).await.0,
        403
    );
    // The audit saw both kinds of answers for this identity.
    let user = "system:serviceaccount:baton-system:baton";
    assert_eq!(sim.core.auth.audit.count_code(user, 403), 6);
    assert_eq!(sim.core.auth.audit.count_code(user, 200), 3);
}

#[tokio::test]
async fn resource_names_subresources_urls_and_wildcards() {
    let sim = sim().await;
    let t = sa(&sim, "default", "ctl").await;
    admin_create(
        &sim,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        widget_crd(),
    )
    .await;
    admin_create(&sim, "/apis/test.baton.dev/v1/namespaces/default/widgets", json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red"}})).await;
    role(
        &sim,
        "default",
        "narrow",
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["leader"], "verbs": ["get", "update", "watch", "list"]},
            {"apiGroups": ["test.baton.dev"], "resources": ["widgets/status"], "verbs": ["update", "patch"]},
            {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}
        ]),
    )
    .await;
    bind(
        &sim,
        "default",
        "narrow",
        "Role",
        "narrow",
        sa_subject("default", "ctl"),
    )
    .await;
    admin_create(
        &sim,
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        json!({"metadata": {"name": "leader"}, "spec": {}}),
    )
    .await;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    assert_eq!(call(&sim, &t, "GET", &format!("{leases}/leader"), None).await.0, 200);
    assert_eq!(call(&sim, &t, "GET", &format!("{leases}/other"), None).await.0, 403);
    // A list or watch of that one object by field selector is allowed; of all, not.
    assert_eq!(
        call(
            &sim,
            &t,
            "GET",
            &format!("{leases}?fieldSelector=metadata.name%3Dleader"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(call(&sim, &t, "GET", leases, None).await.0, 403);
    // create has no name: resourceNames cannot grant it.
    let (code, msg) = call(&sim, &t, "POST", leases, Some(json!({"metadata": {"name": "leader2"}}))).await;
    assert_eq!((code, msg.as_str()), (403, "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:default:ctl\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\""));
    let w = "/apis/test.baton.dev/v1/namespaces/default/widgets/w";
    let status = Some(json!({"status": {"phase": "Ready"}}));
    assert_eq!(
        call(&sim, &t, "PATCH", &format!("{w}/status"), status.clone()).await.0,
        200
    );
    let (code, msg) = call(&sim, &t, "PATCH", w, status).await;
    assert_eq!((code, msg.as_str()), (403, "widgets.test.baton.dev \"w\" is forbidden: User \"system:serviceaccount:default:ctl\" cannot patch resource \"widgets\" in API group \"test.baton.dev\" in the namespace \"default\""));
    assert_eq!(call(&sim, &t, "GET", &format!("{w}/scale"), None).await.0, 200);
    let (code, msg) = call(&sim, &t, "PUT", &format!("{w}/scale"), Some(json!({}))).await;
    assert_eq!(code, 403);
    assert!(msg.contains("cannot update resource \"widgets/scale\""), "{msg}");
    // Non-resource URLs: /openapi/v3 is for authenticated users (system:discovery); a custom
    // grant to anonymous.
    assert_eq!(call(&sim, &t, "GET", "/openapi/v3", None).await.0, 200);
    let anon = raw_with(&sim, "GET", "/openapi/v3", &[("Authorization", "")], b"").await;
    assert_eq!(
        anon.json()["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/openapi/v3\""
    );
    cluster_role(
        &sim,
        "openapi-reader",
        json!({}),
        json!([{"nonResourceURLs": ["/openapi/*"], "verbs": ["get"]}]),
    )
    .await;
    bind(
        &sim,
        "",
        "openapi-anon",
        "ClusterRole",
        "openapi-reader",
        json!({"kind": "Group", "name": "system:unauthenticated"}),
    )
    .await;
    assert_eq!(
        raw_with(&sim, "GET", "/openapi/v3", &[("Authorization", "")], b"")
            .await
            .code,
        200
    );
    // Wildcards: every verb on every resource of a group.
    cluster_role(
        &sim,
        "all-apps",
        json!({}),
        json!([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]),
    )
    .await;
    bind(
        &sim,
        "",
        "ctl-apps",
        "ClusterRole",
        "all-apps",
        sa_subject("default", "ctl"),
    )
    .await;
    assert_eq!(
        call(&sim, &t, "GET", "/apis/apps/v1/controllerrevisions", None).await.0,
        200
    );
    assert_eq!(
        call(&sim, &t, "DELETE", "/apis/apps/v1/namespaces/default/deployments", None)
            .await
            .0,
        200
    );
    assert_eq!(call(&sim, &t, "GET", "/apis/batch/v1/jobs", None).await.0, 403);
}

#[tokio::test]
async fn default_roles_aggregation_and_masters() {
    let sim = sim().await;
    let (viewer, editor, admin) = (
        sa(&sim, "team", "viewer").await,
        sa(&sim, "team", "editor").await,
        sa(&sim, "team", "owner").await,
    );
    bind(&sim, "team", "v", "ClusterRole", "view", sa_subject("team", "viewer")).await;
    bind(&sim, "team", "e", "ClusterRole", "edit", sa_subject("team", "editor")).await;
    bind(&sim, "team", "a", "ClusterRole", "admin", sa_subject("team", "owner")).await;
    let pods = "/api/v1/namespaces/team/pods";
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    assert_eq!(call(&sim, &viewer, "GET", pods, None).await.0, 200);
    assert_eq!(call(&sim, &viewer, "POST", pods, Some(pod.clone())).await.0, 403);
    assert_eq!(
        call(&sim, &viewer, "GET", "/api/v1/namespaces/team/secrets", None)
            .await
            .0,
        403
    );
    assert_eq!(call(&sim, &editor, "POST", pods, Some(pod)).await.0, 201);
    assert_eq!(
        call(&sim, &editor, "GET", "/api/v1/namespaces/team/secrets", None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &sim,
            &editor,
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles",
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &sim,
            &admin,
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles",
            None
        )
        .await
        .0,
        200
    );
    // A new ClusterRole labelled aggregate-to-view is in view, and so in edit and admin.
    admin_create(
        &sim,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        widget_crd(),
    )
    .await;
    let widgets = "/apis/test.baton.dev/v1/namespaces/team/widgets";
    assert_eq!(call(&sim, &viewer, "GET", widgets, None).await.0, 403);
    cluster_role(
        &sim,
        "widget-view",
        json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        json!([{"apiGroups": ["test.baton.dev"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}]),
    )
    .await;
    for t in [&viewer, &editor, &admin] {
        assert_eq!(call(&sim, t, "GET", widgets, None).await.0, 200);
    }
    let view = raw_with(
        &sim,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
        &[],
        b"",
    )
    .await
    .json();
    assert!(
        view["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["apiGroups"] == json!(["test.baton.dev"])),
        "{view}"
    );
    // A custom aggregated role follows its selector; deleting a part removes its rules.
    admin_create(
        &sim,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": "monitoring"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/monitoring": "true"}}]}}),
    )
    .await;
    cluster_role(
        &sim,
        "monitoring-pods",
        json!({"example.com/monitoring": "true"}),
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
    )
    .await;
    let m = raw_with(
        &sim,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/monitoring",
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(
        m["rules"],
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    );
    raw_with(
        &sim,
        "DELETE",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/monitoring-pods",
        &[],
        b"",
    )
    .await;
    let m = raw_with(
        &sim,
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/monitoring",
        &[],
        b"",
    )
    .await
    .json();
    assert_eq!(m["rules"], json!([]));
    // system:masters members need no binding.
    let mut root = UserInfo::admin("root");
    root.groups = vec!["system:masters".into()];
    sim.register_user("root-token", root);
    assert_eq!(call(&sim, "root-token", "GET", "/api/v1/nodes", None).await.0, 200);
    sim.register_user(
        "jane-token",
        UserInfo {
            username: "jane".into(),
            groups: vec!["devs".into()],
            ..UserInfo::default()
        },
    );
    assert_eq!(call(&sim, "jane-token", "GET", "/api/v1/nodes", None).await.0, 403);
    bind(
        &sim,
        "",
        "devs-view",
        "ClusterRole",
        "view",
        json!({"kind": "Group", "name": "devs"}),
    )
    .await;
    assert_eq!(
        call(&sim, "jane-token", "GET", "/api/v1/namespaces/team/pods", None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn escalation_is_refused() {
    let sim = sim().await;
    let t = sa(&sim, "team", "lead").await;
    bind(
        &sim,
        "team",
        "lead-admin",
        "ClusterRole",
        "admin",
        sa_subject("team", "lead"),
    )
    .await;
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings";
    // Within what admin holds: fine.
    let ok_role = json!({"metadata": {"name": "pods"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"]}]});
    assert_eq!(call(&sim, &t, "POST", roles, Some(ok_role)).await.0, 201);
    // Nodes are cluster-scoped: admin cannot grant them, even in its namespace.
    let bad = json!({"metadata": {"name": "nodes"}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]});
    let (code, msg) = call(&sim, &t, "POST", roles, Some(bad.clone())).await;
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        "roles.rbac.authorization.k8s.io \"nodes\" is forbidden: user \"system:serviceaccount:team:lead\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\" \"list\"]}"
    );
    // Binding cluster-admin in its namespace grants more than admin: refused; `bind` on it allows.
    let b = json!({"metadata": {"name": "ca"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [sa_subject("team", "lead")]});
    let (code, msg) = call(&sim, &t, "POST", bindings, Some(b.clone())).await;
    assert_eq!(code, 403);
    assert!(
        msg.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"ca\" is forbidden: user \"system:serviceaccount:team:lead\""
        ),
        "{msg}"
    );
    cluster_role(&sim, "binder", json!({}), json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["cluster-admin"], "verbs": ["bind"]}])).await;
    bind(
        &sim,
        "team",
        "lead-binder",
        "ClusterRole",
        "binder",
        sa_subject("team", "lead"),
    )
    .await;
    assert_eq!(call(&sim, &t, "POST", bindings, Some(b)).await.0, 201);
    // The `escalate` verb lifts the check on roles.
    let t2 = sa(&sim, "team", "lead2").await;
    bind(
        &sim,
        "team",
        "lead2-admin",
        "ClusterRole",
        "admin",
        sa_subject("team", "lead2"),
    )
    .await;
    assert_eq!(call(&sim, &t2, "POST", roles, Some(bad.clone())).await.0, 403);
    cluster_role(
        &sim,
        "escalator",
        json!({}),
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]),
    )
    .await;
    bind(
        &sim,
        "team",
        "lead2-esc",
        "ClusterRole",
        "escalator",
        sa_subject("team", "lead2"),
    )
    .await;
    assert_eq!(call(&sim, &t2, "POST", roles, Some(bad)).await.0, 201);
}

/// (exit code, stdout) of `kubectl auth can-i ARGS` as `k`.
async fn can_i(k: &Kubectl, args: &[&str]) -> (i32, String) {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let (code, out, _) = k.run(&all).await;
    (code, out.trim().to_string())
}

#[tokio::test]
async fn kubectl_auth_can_i() {
    let sim = sim().await;
    let admin = Kubectl::new(&sim);
    admin.ok(&["create", "namespace", "team"]).await;
    admin.ok(&["create", "serviceaccount", "viewer", "-n", "team"]).await;
    admin
        .ok(&[
            "create",
            "rolebinding",
            "viewer",
            "-n",
            "team",
            "--clusterrole=view",
            "--serviceaccount=team:viewer",
        ])
        .await;
    assert_eq!(can_i(&admin, &["delete", "nodes"]).await, (0, "yes".into()));
    let viewer = Kubectl::as_service_account(&sim, "team", "viewer", None);
    assert_eq!(can_i(&viewer, &["list", "pods"]).await, (0, "yes".into()));
    assert_eq!(can_i(&viewer, &["delete", "pods"]).await, (1, "no".into()));
    assert_eq!(
        can_i(&viewer, &["list", "pods", "-n", "default"]).await,
        (1, "no".into())
    );
    assert_eq!(can_i(&viewer, &["get", "pods/status"]).await, (0, "yes".into()));
    assert_eq!(can_i(&viewer, &["get", "/healthz"]).await, (0, "yes".into()));
    // Another user's access through SubjectAccessReview (`--as` is impersonation, not served).
    let (code, out, _) = admin
        .run(&[
            "create",
            "-o",
            "jsonpath={.status.allowed}",
            "-f",
            &admin.file(
                "sar.json",
                &json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "system:serviceaccount:team:viewer", "groups": ["system:serviceaccounts"],
                     "resourceAttributes": {"namespace": "team", "verb": "list", "resource": "pods"}}}),
            ),
        ])
        .await;
    assert_eq!((code, out.as_str()), (0, "true"));
    let list = viewer.ok(&["auth", "can-i", "--list"]).await;
    let pods_line = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(pods_line.contains("[get list watch]"), "{list}");
    let (code, _, err) = viewer.run(&["delete", "pod", "x"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): pods \"x\" is forbidden: User \"system:serviceaccount:team:viewer\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\""
    );
}

#[tokio::test]
async fn kubectl_as_impersonates_when_allowed() {
    let sim = sim().await;
    let admin = Kubectl::new(&sim);
    admin.ok(&["create", "namespace", "team"]).await;
    admin.ok(&["create", "serviceaccount", "viewer", "-n", "team"]).await;
    admin
        .ok(&[
            "create",
            "rolebinding",
            "viewer",
            "-n",
            "team",
            "--clusterrole=view",
            "--serviceaccount=team:viewer",
        ])
        .await;
    admin
        .ok(&[
            "create",
            "rolebinding",
            "jane",
            "-n",
            "team",
            "--clusterrole=edit",
            "--user=jane",
        ])
        .await;
    // An admin may impersonate anyone: the request runs as them.
    let sa = "--as=system:serviceaccount:team:viewer";
    assert_eq!(
        can_i(&admin, &[sa, "list", "pods", "-n", "team"]).await,
        (0, "yes".into())
    );
    assert_eq!(
        can_i(&admin, &[sa, "delete", "pods", "-n", "team"]).await,
        (1, "no".into())
    );
    let me: Value = serde_json::from_str(&admin.ok(&[sa, "auth", "whoami", "-o", "json"]).await).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:team:viewer"
    );
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated"
        ])
    );
    let (code, _, err) = admin.run(&["--as=jane", "get", "pods", "-n", "default"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""), "{err}");
    // Others need the impersonate verb: edit has it on ServiceAccounts of its namespace only.
    let t = sim.service_account_token("team", "viewer", None).unwrap();
    sim.register_user(
        "jane-token",
        UserInfo {
            username: "jane".into(),
            ..UserInfo::default()
        },
    );
    let (code, msg) = call(&sim, &t, "GET", "/api/v1/namespaces/team/pods", None).await;
    assert_eq!(code, 200, "{msg}");
    let r = raw_with(
        &sim,
        "GET",
        "/api/v1/namespaces/team/pods",
        &[("Authorization", "Bearer jane-token"), ("Impersonate-User", "root")],
        b"",
    )
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(r.json()["message"], "users \"root\" is forbidden: User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope");
    let r = raw_with(
        &sim,
        "GET",
        "/api/v1/namespaces/team/pods",
        &[
            ("Authorization", "Bearer jane-token"),
            ("Impersonate-User", "system:serviceaccount:team:viewer"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = raw_with(
        &sim,
        "GET",
        "/api/v1/namespaces/team/pods",
        &[
            ("Authorization", "Bearer jane-token"),
            ("Impersonate-Group", "system:masters"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.code, 400);
}
