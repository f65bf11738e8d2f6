//! The chart's dashboard (`dashboard.enabled`) run as the chart makes it: `baton dashboard` with
//! the Deployment's args, as its own ServiceAccount. With the `view` role (and the Lease read
//! the chart adds) it shows every page with no 403; it acts only with `dashboard.actions`.
use serde_json::{json, Value};

use super::harness::{helm_available, Cluster, APP_SA};
use crate::dashboard_harness::Dashboard;
use crate::support::{wait_for, LONG};

const NAME: &str = "web";

fn dashboard_user(c: &Cluster) -> String {
    format!("system:serviceaccount:{}:{}-dashboard", c.release_ns(), c.fullname())
}

/// A Rollout of two instances that pauses after its first batch until promoted.
fn rollout(ns: &str, version: &str) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout",
        "metadata": {"name": NAME, "namespace": ns},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": APP_SA}}, "version": version,
            "template": {"metadata": {"labels": {"app": APP_SA}},
                         "spec": {"serviceAccountName": APP_SA, "containers": [{"name": "app", "image": format!("web:{version}")}]}},
            "strategy": {"batches": [1, "100%"], "pause": {}, "maxSurge": 1, "maxUnavailable": 0}
        }
    })
}

async fn apply(c: &Cluster, m: &Value) {
    let api: kube::Api<baton::api::rollout::Rollout> = kube::Api::namespaced(c.admin.clone(), &c.apps);
    api.patch(
        NAME,
        &kube::api::PatchParams::apply("user").force(),
        &kube::api::Patch::Apply(m),
    )
    .await
    .expect("applying the Rollout");
}

/// What the dashboard's ServiceAccount was refused, in the API server's words (its reads too on
/// baton-sim; on the real control plane, whose audit log records writes only, the pages say
/// what the dashboard could not read).
fn denials(c: &Cluster) -> Vec<String> {
    c.refused(&dashboard_user(c), &[401, 403])
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

async fn served(c: &Cluster) -> Dashboard {
    let (proc, addr) = c.start_dashboard().await;
    Dashboard { proc, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_charts_dashboard_shows_everything_with_view_and_acts_on_nothing() {
    if !helm_available().await {
        return;
    }
    let mut c = Cluster::install(super::values(json!({"dashboard": {"enabled": true}}), false), false).await;
    c.start_controller(0).await;
    c.attach_agents("sxt");
    apply(&c, &rollout(&c.apps, "v1")).await;
    let set = json!({"apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet", "metadata": {"name": "sxt", "namespace": c.apps},
        "spec": {"selector": {"matchLabels": {"app": APP_SA}}, "listeners": [{"id": "a"}, {"id": "b"}], "leaseDurationSeconds": 10}});
    let sets: kube::Api<baton::api::listenerset::ListenerSet> = kube::Api::namespaced(c.admin.clone(), &c.apps);
    sets.patch(
        "sxt",
        &kube::api::PatchParams::apply("user").force(),
        &kube::api::Patch::Apply(&set),
    )
    .await
    .expect("applying the ListenerSet");
    let d = served(&c).await;
    wait_for("the Rollout Healthy on the list", LONG, || async {
        let page = d.get("/").await.text();
        page.contains(&format!(
            r#"data-name="web" data-namespace="{}" data-phase="Healthy""#,
            c.apps
        ))
        .then_some(())
    })
    .await;
    let page = wait_for("both listeners running, with their Lease holders", LONG, || async {
        let r = d.get(&format!("/listenersets/{}/sxt", c.apps)).await;
        let text = r.text();
        (r.code == 200 && text.matches(r#"data-state="running""#).count() == 2).then_some(text)
    })
    .await;
    assert!(
        !page.contains("problem"),
        "the dashboard could not show everything: {page}"
    );
    let rollout = d.get(&format!("/rollouts/{}/web", c.apps)).await;
    assert_eq!(rollout.code, 200);
    assert!(rollout.text().contains(r#"id="revisions""#) && !rollout.text().contains("data-action"));
    let (code, body) = d.act_in(&c.apps, NAME, "restart", json!({})).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(denials(&c), Vec::<String>::new(), "what the dashboard was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_charts_dashboard_acts_with_dashboard_actions() {
    if !helm_available().await {
        return;
    }
    let values = super::values(json!({"dashboard": {"enabled": true, "actions": true}}), false);
    let mut c = Cluster::install(values, false).await;
    c.start_controller(0).await;
    apply(&c, &rollout(&c.apps, "v1")).await;
    let api: kube::Api<baton::api::rollout::Rollout> = kube::Api::namespaced(c.admin.clone(), &c.apps);
    let paused = |r: &baton::api::rollout::Rollout| {
        r.status.as_ref().is_some_and(|s| {
            s.observed_generation == r.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Progressing" && c.reason == "BatchPaused")
        })
    };
    wait_for("v1 Healthy", LONG, || async {
        let r = api.get(NAME).await.ok()?;
        crate::support::healthy_on(&r, "v1", 2).then_some(())
    })
    .await;
    apply(&c, &rollout(&c.apps, "v2")).await;
    wait_for("v2 paused after batch 1", LONG, || async {
        paused(&api.get(NAME).await.ok()?).then_some(())
    })
    .await;
    let d = served(&c).await;
    let (code, body) = d.act_in(&c.apps, NAME, "promote", json!({})).await;
    assert_eq!(code, 200, "{body}");
    wait_for("v2 on both instances", LONG, || async {
        let r = api.get(NAME).await.ok()?;
        crate::support::healthy_on(&r, "v2", 2).then_some(())
    })
    .await;
    assert_eq!(denials(&c), Vec::<String>::new(), "what the dashboard was refused");
}
