//! RBAC authorization as kube-apiserver's: Roles and ClusterRoles through their bindings,
//! `resourceNames`, subresources, `nonResourceURLs`, wildcards, aggregated ClusterRoles, the
//! default admin/edit/view roles, `system:masters`, escalation prevention, and 403s in
//! kube-apiserver's words (kubectl: rbac_kubectl.rs).
use crate::common;

use baton_sim::auth::UserInfo;
use common::rbac::{admin_create, answers, bind, call, cluster_role, grant_cluster_role, role, sa, sa_subject};
use common::{raw_with, sim, widget_crd};
use serde_json::json;

/// ClusterRole `name` as stored (read as the admin).
async fn stored_cluster_role(sim: &baton_sim::Sim, name: &str) -> serde_json::Value {
    let path = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}");
    raw_with(sim, "GET", &path, &[], b"").await.json()
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
    answers(&sim, &t, "GET", "/api/v1/namespaces/default/pods/p", 200).await;
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
    answers(&sim, &t, "GET", "/api/v1/namespaces/default/pods", 200).await;
    answers(&sim, &t, "GET", "/api/v1/namespaces/kube-system/pods", 403).await;
    // Namespaces are in their own namespace: a RoleBinding in `default` lets view get it.
    answers(&sim, &t, "GET", "/api/v1/namespaces/default", 200).await;
    answers(&sim, &t, "GET", "/api/v1/namespaces/kube-system", 403).await;
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
    answers(&sim, &t, "GET", "/openapi/v3", 200).await;
    let anon = raw_with(&sim, "GET", "/openapi/v3", &[("Authorization", "")], b"").await;
    assert_eq!(
        anon.json()["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/openapi/v3\""
    );
    grant_cluster_role(
        &sim,
        "",
        "openapi-anon",
        "openapi-reader",
        json!([{"nonResourceURLs": ["/openapi/*"], "verbs": ["get"]}]),
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
    grant_cluster_role(
        &sim,
        "",
        "ctl-apps",
        "all-apps",
        json!([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]),
        sa_subject("default", "ctl"),
    )
    .await;
    answers(&sim, &t, "GET", "/apis/apps/v1/controllerrevisions", 200).await;
    answers(&sim, &t, "DELETE", "/apis/apps/v1/namespaces/default/deployments", 200).await;
    answers(&sim, &t, "GET", "/apis/batch/v1/jobs", 403).await;
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
    answers(&sim, &viewer, "GET", "/api/v1/namespaces/team/secrets", 403).await;
    assert_eq!(call(&sim, &editor, "POST", pods, Some(pod)).await.0, 201);
    answers(&sim, &editor, "GET", "/api/v1/namespaces/team/secrets", 200).await;
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
    let view = stored_cluster_role(&sim, "view").await;
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
    let m = stored_cluster_role(&sim, "monitoring").await;
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
    let m = stored_cluster_role(&sim, "monitoring").await;
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
    grant_cluster_role(&sim, "team", "lead-binder", "binder", json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["cluster-admin"], "verbs": ["bind"]}]), sa_subject("team", "lead")).await;
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
    grant_cluster_role(
        &sim,
        "team",
        "lead2-esc",
        "escalator",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]),
        sa_subject("team", "lead2"),
    )
    .await;
    assert_eq!(call(&sim, &t2, "POST", roles, Some(bad)).await.0, 201);
}
