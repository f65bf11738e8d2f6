//! Real kubectl's `rollout`, `set image` and `scale` against Deployments run by the simulated
//! controllers: each test asserts what kubectl prints and what the cluster then holds.
use std::collections::BTreeSet;

use super::common::kubectl::Kubectl;
use super::common::{sim, wait_for};
use super::*;

/// kubectl against a new simulator, after `kubectl apply` of Deployment `x` (3 × `app:v1`)
/// and `kubectl rollout status` saying it rolled out.
async fn rolled_out_x(sim: &baton_sim::Sim) -> Kubectl {
    let k = Kubectl::new(sim);
    let f = k.file(
        "x.json",
        &deployment("x", 3, "app:v1", rolling(json!("25%"), json!("25%"))),
    );
    assert!(k.ok(&["apply", "-f", &f]).await.contains("deployment.apps/x created"));
    rollout_status_ok(&k).await;
    k
}

async fn rollout_status_ok(k: &Kubectl) {
    let out = k.ok(&["rollout", "status", "deployment/x", "--timeout=60s"]).await;
    assert!(out.contains("deployment \"x\" successfully rolled out"), "{out}");
}

/// The revisions `kubectl rollout history` lists, with their change causes.
async fn history(k: &Kubectl) -> Vec<(String, String)> {
    let out = k.ok(&["rollout", "history", "deployment/x"]).await;
    assert!(out.contains("REVISION  CHANGE-CAUSE"), "{out}");
    out.lines()
        .filter_map(|l| {
            let (rev, cause) = l.trim().split_once(char::is_whitespace)?;
            rev.parse::<u32>().ok()?;
            Some((rev.to_string(), cause.trim().to_string()))
        })
        .collect()
}

fn image(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn kubectl_set_image_rolls_out_and_rollout_status_reports_it() {
    let sim = sim().await;
    let k = rolled_out_x(&sim).await;
    let out = k.ok(&["set", "image", "deployment/x", "app=app:v2"]).await;
    assert!(out.contains("deployment.apps/x image updated"), "{out}");
    rollout_status_ok(&k).await;
    let a = apis(&sim).await;
    let d = a.deploys.get("x").await.expect("get");
    let st = d.status.clone().expect("status");
    assert_eq!((st.updated_replicas, st.available_replicas), (Some(3), Some(3)));
    let rses = owned(&a, &d).await;
    let sizes: Vec<Option<i32>> = rses
        .iter()
        .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas))
        .collect();
    assert_eq!(sizes, [Some(0), Some(3)]);
}

#[tokio::test]
async fn kubectl_rollout_history_and_undo_bring_back_the_old_replica_set() {
    let sim = sim().await;
    let k = rolled_out_x(&sim).await;
    let a = apis(&sim).await;
    let d = a.deploys.get("x").await.expect("get");
    let v1 = owned(&a, &d).await.remove(0).metadata.name.expect("name");
    k.ok(&["set", "image", "deployment/x", "app=app:v2"]).await;
    k.ok(&["annotate", "deployment/x", "kubernetes.io/change-cause=image v2"])
        .await;
    rollout_status_ok(&k).await;
    let cause = wait_for("the change cause on the new ReplicaSet", LONG, || async {
        let h = history(&k).await;
        (h.len() == 2 && h[1].1 == "image v2").then_some(h)
    })
    .await;
    assert_eq!(cause[0], ("1".to_string(), "<none>".to_string()));
    let out = k.ok(&["rollout", "undo", "deployment/x"]).await;
    assert!(out.contains("deployment.apps/x rolled back"), "{out}");
    rollout_status_ok(&k).await;
    let d = a.deploys.get("x").await.expect("get");
    assert_eq!(image(&d), "app:v1");
    let rses = owned(&a, &d).await;
    assert_eq!(rses.len(), 2, "the old ReplicaSet is reused, not a new one made");
    let reused = &rses[1];
    assert_eq!(reused.metadata.name.as_deref(), Some(v1.as_str()));
    assert_eq!(
        annotation(reused, "deployment.kubernetes.io/revision").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(reused, "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    assert_eq!(reused.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|m| m.get("deployment.kubernetes.io/revision").cloned());
    assert_eq!(revision.as_deref(), Some("3"));
    let revisions: Vec<String> = history(&k).await.into_iter().map(|(r, _)| r).collect();
    assert_eq!(revisions, ["2", "3"]);
}

#[tokio::test]
async fn kubectl_rollout_restart_replaces_every_pod() {
    let sim = sim().await;
    let k = rolled_out_x(&sim).await;
    let a = apis(&sim).await;
    let names = |pods: &[Pod]| -> BTreeSet<String> { pods.iter().filter_map(|p| p.metadata.name.clone()).collect() };
    let before = names(
        &a.pods
            .list(&ListParams::default().labels("app=x"))
            .await
            .expect("pods")
            .items,
    );
    assert_eq!(before.len(), 3);
    let out = k.ok(&["rollout", "restart", "deployment/x"]).await;
    assert!(out.contains("deployment.apps/x restarted"), "{out}");
    rollout_status_ok(&k).await;
    let after = wait_for("only new pods left", LONG, || async {
        let pods = a.pods.list(&ListParams::default().labels("app=x")).await.ok()?.items;
        let after = names(&pods);
        (after.len() == 3 && after.is_disjoint(&before) && pods.iter().all(ready)).then_some(after)
    })
    .await;
    assert_eq!(after.len(), 3);
    let d = a.deploys.get("x").await.expect("get");
    let restarted = d
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|m| m.get("kubectl.kubernetes.io/restartedAt").cloned());
    assert!(restarted.is_some());
}

#[tokio::test]
async fn kubectl_rollout_pause_holds_a_new_template_and_resume_rolls_it_out() {
    let sim = sim().await;
    let k = rolled_out_x(&sim).await;
    let a = apis(&sim).await;
    assert!(k
        .ok(&["rollout", "pause", "deployment/x"])
        .await
        .contains("deployment.apps/x paused"));
    k.ok(&["set", "image", "deployment/x", "app=app:v2"]).await;
    let out = k.ok(&["scale", "deployment/x", "--replicas=5"]).await;
    assert!(out.contains("deployment.apps/x scaled"), "{out}");
    let generation = a
        .deploys
        .get("x")
        .await
        .expect("get")
        .metadata
        .generation
        .expect("generation");
    let d = wait_for("the paused deployment scaled", LONG, || async {
        let d = a.deploys.get("x").await.ok()?;
        let st = d.status.clone()?;
        (st.observed_generation == Some(generation) && st.available_replicas == Some(5)).then_some(d)
    })
    .await;
    assert_eq!(reason(&d, "Progressing"), "DeploymentPaused");
    assert_eq!(owned(&a, &d).await.len(), 1, "no rollout while paused");
    let pods = a
        .pods
        .list(&ListParams::default().labels("app=x"))
        .await
        .expect("pods")
        .items;
    assert!(pods.iter().all(|p| {
        let spec = p.spec.as_ref();
        spec.and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref()) == Some("app:v1")
    }));
    assert!(k
        .ok(&["rollout", "resume", "deployment/x"])
        .await
        .contains("deployment.apps/x resumed"));
    rollout_status_ok(&k).await;
    let d = a.deploys.get("x").await.expect("get");
    let rses = owned(&a, &d).await;
    let sizes: Vec<Option<i32>> = rses
        .iter()
        .map(|rs| rs.spec.as_ref().and_then(|s| s.replicas))
        .collect();
    assert_eq!(sizes, [Some(0), Some(5)]);
    assert_eq!(image(&d), "app:v2");
}

#[tokio::test]
async fn kubectl_rollout_status_fails_once_the_progress_deadline_is_exceeded() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let mut d = deployment("x", 2, "app:never-ready", rolling(json!("25%"), json!("25%")));
    d["spec"]["progressDeadlineSeconds"] = json!(2);
    let f = k.file("x.json", &d);
    k.ok(&["apply", "-f", &f]).await;
    let run = k.run(&["rollout", "status", "deployment/x", "--timeout=60s"]).await;
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr
            .contains("error: deployment \"x\" exceeded its progress deadline"),
        "{run}"
    );
}

async fn pod_names(a: &Apis) -> BTreeSet<String> {
    let pods = a.pods.list(&ListParams::default()).await.expect("pods").items;
    pods.iter().filter_map(|p| p.metadata.name.clone()).collect()
}

#[tokio::test]
async fn a_pod_relabelled_out_of_its_replica_set_is_released_and_replaced() {
    let sim = sim().await;
    let k = rolled_out_x(&sim).await;
    let a = apis(&sim).await;
    let before = pod_names(&a).await;
    let taken = before.iter().next().cloned().expect("a pod");
    let out = k.ok(&["label", "pod", &taken, "app=debug", "--overwrite"]).await;
    assert!(out.contains(&format!("pod/{taken} labeled")), "{out}");
    let replaced = wait_for("a replacement pod Ready", LONG, || async {
        let pods = a.pods.list(&ListParams::default().labels("app=x")).await.ok()?.items;
        (pods.len() == 3 && pods.iter().all(ready)).then_some(pods)
    })
    .await;
    assert!(replaced
        .iter()
        .all(|p| p.metadata.name.as_deref() != Some(taken.as_str())));
    let released = a.pods.get(&taken).await.expect("the relabelled pod stays");
    assert_eq!(released.metadata.owner_references, None, "no longer owned");
    assert!(ready(&released) && !terminating(&released));
}

#[tokio::test]
async fn a_deployment_recreated_after_an_orphaning_delete_adopts_its_replica_set() {
    let sim = sim().await;
    let k = rolled_out_x(&sim).await;
    let a = apis(&sim).await;
    let old = a.deploys.get("x").await.expect("get");
    let rs = owned(&a, &old).await.remove(0).metadata.name.expect("name");
    let before = pod_names(&a).await;
    k.ok(&["delete", "deployment", "x", "--cascade=orphan"]).await;
    wait_for("the ReplicaSet orphaned", LONG, || async {
        let r = a.rses.get(&rs).await.ok()?;
        (r.metadata.owner_references.is_none() && a.deploys.get_opt("x").await.ok()?.is_none()).then_some(())
    })
    .await;
    let f = k.file(
        "again.json",
        &deployment("x", 3, "app:v1", rolling(json!("25%"), json!("25%"))),
    );
    k.ok(&["apply", "-f", &f]).await;
    rollout_status_ok(&k).await;
    let d = a.deploys.get("x").await.expect("get");
    let rses = owned(&a, &d).await;
    assert_eq!(rses.len(), 1);
    assert_eq!(
        rses[0].metadata.name.as_deref(),
        Some(rs.as_str()),
        "adopted, not made anew"
    );
    assert_eq!(pod_names(&a).await, before, "the same pods");
}
