//! `kubectl auth can-i`, `kubectl auth whoami` and `kubectl --as` (impersonation) with real
//! kubectl against the RBAC-enforcing simulator.
use crate::common;

use baton_sim::auth::UserInfo;
use common::kubectl::Kubectl;
use common::rbac::call;
use common::{raw_with, sim};
use serde_json::{json, Value};

/// (exit code, stdout) of `kubectl auth can-i ARGS` as `k`.
async fn can_i(k: &Kubectl, args: &[&str]) -> (i32, String) {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let run = k.run(&all).await;
    (run.code, run.stdout.trim().to_string())
}

/// An admin's kubectl, after it made namespace `team` and ServiceAccount `team:viewer` bound to
/// the `view` ClusterRole there.
async fn team_viewer(sim: &baton_sim::Sim) -> Kubectl {
    let admin = Kubectl::new(sim);
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
}

#[tokio::test]
async fn kubectl_auth_can_i() {
    let sim = sim().await;
    let admin = team_viewer(&sim).await;
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
    // Another user's access through SubjectAccessReview (`--as` below).
    let run = admin
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
    assert_eq!((run.code, run.stdout.as_str()), (0, "true"));
    let list = viewer.ok(&["auth", "can-i", "--list"]).await;
    let pods_line = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(pods_line.contains("[get list watch]"), "{list}");
    let run = viewer.run(&["delete", "pod", "x"]).await;
    let (code, err) = (run.code, run.stderr);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): pods \"x\" is forbidden: User \"system:serviceaccount:team:viewer\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\""
    );
}

#[tokio::test]
async fn kubectl_as_impersonates_when_allowed() {
    let sim = sim().await;
    let admin = team_viewer(&sim).await;
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
    let run = admin.run(&["--as=jane", "get", "pods", "-n", "default"]).await;
    let (code, err) = (run.code, run.stderr);
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
