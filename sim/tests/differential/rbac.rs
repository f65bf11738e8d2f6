//! Authorization: a user with no rights, then one Role; anonymous requests; the 403 answers
//! word for word.

use serde_json::json;

use crate::harness::{send_with, Both, Pair, Req, Resp, Side, SIDES};
use crate::setup::{anonymous, unprivileged};

/// Send `req` as the user of `clients` to both servers and compare the answers as `kind`.
async fn as_user(p: &Pair, clients: &Both<kube::Client>, kind: &str, req: Req) -> Both<Resp> {
    let sim = send_with("baton-sim", clients.get(Side::Sim), &p.ns, req.clone()).await;
    let real = send_with("kube-apiserver", clients.get(Side::Real), &p.ns, req).await;
    let both = Both { sim, real };
    p.compare_responses(kind, &both);
    both
}

/// As [`as_user`], comparing the codes only (`/version` differs by design).
async fn codes(p: &Pair, clients: &Both<kube::Client>, kind: &str, req: Req) {
    let sim = send_with("baton-sim", clients.get(Side::Sim), &p.ns, req.clone()).await;
    let real = send_with("kube-apiserver", clients.get(Side::Real), &p.ns, req).await;
    p.compare_values(
        kind,
        Both {
            sim: json!(sim.code),
            real: json!(real.code),
        },
    );
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn rbac_denials() {
    let p = Pair::start("rbac_denials").await;
    let user = format!("nobody-{}", p.ns);
    let nobody = unprivileged(&p, &user).await;
    let cms = "/api/v1/namespaces/{ns}/configmaps";
    as_user(&p, &nobody, "rbac.get-denied", Req::get(format!("{cms}/x"))).await;
    as_user(&p, &nobody, "rbac.list-denied", Req::get(cms)).await;
    as_user(
        &p,
        &nobody,
        "rbac.list-cluster-scope-denied",
        Req::get("/api/v1/configmaps"),
    )
    .await;
    as_user(
        &p,
        &nobody,
        "rbac.create-denied",
        Req::post(cms, &json!({"metadata": {"name": "x"}})),
    )
    .await;
    as_user(&p, &nobody, "rbac.delete-denied", Req::delete(format!("{cms}/x"))).await;
    as_user(
        &p,
        &nobody,
        "rbac.patch-denied",
        Req::patch(format!("{cms}/x"), "merge", &json!({"data": {}})),
    )
    .await;
    as_user(
        &p,
        &nobody,
        "rbac.subresource-denied",
        Req::get("/apis/apps/v1/namespaces/{ns}/deployments/d/scale"),
    )
    .await;
    as_user(&p, &nobody, "rbac.cluster-resource-denied", Req::get("/api/v1/nodes/n")).await;
    as_user(
        &p,
        &nobody,
        "rbac.group-resource-denied",
        Req::get("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"),
    )
    .await;
    as_user(
        &p,
        &nobody,
        "rbac.watch-denied",
        Req::get(format!("{cms}?watch=true&timeoutSeconds=1")),
    )
    .await;
    as_user(&p, &nobody, "rbac.non-resource-denied", Req::get("/metrics")).await;
    as_user(
        &p,
        &nobody,
        "rbac.discovery-allowed",
        Req::get("/apis/coordination.k8s.io"),
    )
    .await;
    codes(&p, &nobody, "rbac.version-allowed", Req::get("/version")).await;
    as_user(
        &p,
        &nobody,
        "rbac.self-subject-access-review",
        Req::post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": {"namespace": p.ns, "verb": "list", "resource": "configmaps"}}}),
        ),
    )
    .await;
    granted(&p, &nobody, &user).await;
    let anon = anonymous(&p).await;
    as_user(&p, &anon, "rbac.anonymous-denied", Req::get("/api/v1/namespaces")).await;
    codes(&p, &anon, "rbac.anonymous-version", Req::get("/version")).await;
    p.finish().await;
}

/// One Role granting `get` on configmaps: get allowed, list still denied.
async fn granted(p: &Pair, nobody: &Both<kube::Client>, user: &str) {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]});
    p.same(
        "rbac.role.create",
        Req::post("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", &role),
    )
    .await;
    p.same(
        "rbac.rolebinding.create",
        Req::post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
            &binding,
        ),
    )
    .await;
    let cms = "/api/v1/namespaces/{ns}/configmaps";
    for side in SIDES {
        let r = p
            .send(side, Req::post(cms, &json!({"metadata": {"name": "readable"}})))
            .await;
        assert_eq!(r.code, 201, "{side}: {}", r.body);
        // The real authorizer reads RBAC objects from an informer: allowed a moment later.
        let client = nobody.get(side).clone();
        let ns = p.ns.clone();
        let end = tokio::time::Instant::now() + crate::harness::LONG;
        loop {
            let r = send_with(&side.to_string(), &client, &ns, Req::get(format!("{cms}/readable"))).await;
            if r.code == 200 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{side}: the Role never took effect: {}",
                r.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    as_user(p, nobody, "rbac.get-granted", Req::get(format!("{cms}/readable"))).await;
    as_user(p, nobody, "rbac.list-still-denied", Req::get(cms)).await;
    p.same(
        "rbac.rolebinding.missing-role",
        Req::post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
            &json!({"metadata": {"name": "dangling"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "no-such-role"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}),
        ),
    )
    .await;
}
