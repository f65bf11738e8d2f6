//! People, as the built-in roles the chart aggregates into make them: a user in a group bound
//! to `view` reads Rollouts but cannot promote one (the API server's words through `baton
//! rollout promote`, exit 5, and `kubectl auth can-i`); one bound to `edit` promotes.
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::harness::{helm_available, Cluster};
use super::scenario::{self, NAME};
use crate::support::{self, wait_for, LONG};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn view_cannot_promote_edit_can() {
    if !helm_available().await {
        return;
    }
    let mut c = Cluster::install(super::values(json!({"replicaCount": 1}), false), false).await;
    c.start_controller(0).await;
    let apps = c.apps.clone();
    let rb = |name: &str, role: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": apps},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    };
    let bindings: Api<k8s_openapi::api::rbac::v1::RoleBinding> = Api::namespaced(c.admin.clone(), &apps);
    for (n, r, g) in [("viewers", "view", "viewers"), ("editors", "edit", "editors")] {
        bindings
            .create(&Default::default(), &serde_json::from_value(rb(n, r, g)).unwrap())
            .await
            .unwrap();
    }
    // People: a user in group viewers, one in editors (client certificates on the real control
    // plane, static tokens on baton-sim).
    let jane = c.w.dir.path().join("jane.kubeconfig");
    c.w.user_kubeconfig("jane", Some("viewers"), &apps, &jane);
    let bob = c.w.dir.path().join("bob.kubeconfig");
    c.w.user_kubeconfig("bob", Some("editors"), &apps, &bob);
    // A rollout that waits for promotion after its first batch.
    let mut r = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": NAME, "namespace": apps},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "version": "v1",
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:v1"}]}},
                 "strategy": {"batches": [1, "100%"], "pause": {}}}});
    let rollouts: Api<baton::api::rollout::Rollout> = Api::namespaced(c.admin.clone(), &apps);
    rollouts
        .patch(NAME, &PatchParams::apply("user").force(), &Patch::Apply(&r))
        .await
        .unwrap();
    wait_for("v1 healthy", LONG, || async {
        rollouts
            .get(NAME)
            .await
            .ok()
            .filter(|r| support::healthy_on(r, "v1", 2))
    })
    .await;
    r["spec"]["version"] = json!("v2");
    r["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:v2");
    rollouts
        .patch(NAME, &PatchParams::apply("user").force(), &Patch::Apply(&r))
        .await
        .unwrap();
    wait_for("paused after the first batch", LONG, || async {
        let r = rollouts.get(NAME).await.ok()?;
        (r.status?.phase == Some(baton::api::rollout::RolloutPhase::Paused)).then_some(())
    })
    .await;
    let out = scenario::baton(&c, &jane, &["promote", NAME]).await;
    // The API server refused: exit 5, kubectl's words.
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("Error from server (Forbidden): rollouts.baton.dev \"{NAME}\" is forbidden: User \"jane\" cannot patch resource \"rollouts\" in API group \"baton.dev\" in the namespace \"{apps}\"")
    );
    // kubectl agrees: view may read rollouts but not patch them; edit may.
    let kubectl = |kc: std::path::PathBuf, args: Vec<String>| {
        let home = c.w.dir.path().join("kubectl-home");
        async move {
            let out = tokio::process::Command::new("/usr/bin/kubectl")
                .env("HOME", &home)
                .arg("--kubeconfig")
                .arg(kc)
                .args(args)
                .output()
                .await
                .expect("kubectl runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )
        }
    };
    let can = |verb: &str| {
        vec![
            "auth".into(),
            "can-i".into(),
            verb.into(),
            "rollouts.baton.dev".into(),
            "-n".into(),
            apps.clone(),
        ]
    };
    assert_eq!(kubectl(jane.clone(), can("get")).await, (Some(0), "yes".into()));
    assert_eq!(kubectl(jane.clone(), can("patch")).await, (Some(1), "no".into()));
    assert_eq!(kubectl(bob.clone(), can("patch")).await, (Some(0), "yes".into()));
    let out = scenario::baton(&c, &bob, &["promote", NAME]).await;
    assert!(
        out.status.success(),
        "edit promotes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("v2 healthy after the promotion", LONG, || async {
        rollouts
            .get(NAME)
            .await
            .ok()
            .filter(|r| support::healthy_on(r, "v2", 2))
    })
    .await;
}
