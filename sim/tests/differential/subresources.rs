//! The status and scale subresources of baton's Rollout CRD: spec ignored on status writes and
//! status on main-resource writes, `metadata.generation` bumped by spec changes only, the
//! Scale object and its writes.

use serde_json::{json, Value};

use crate::harness::{Both, Pair, Req, Resp};
use crate::setup::install_baton_crds;

pub const ROLLOUTS: &str = "/apis/baton.dev/v1alpha1/namespaces/{ns}/rollouts";

/// A small valid Rollout.
pub fn rollout(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "version": "1.0",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]}},
        },
    })
}

fn generation(r: &Resp) -> Value {
    r.body["metadata"]["generation"].clone()
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn status_and_scale_subresources() {
    let p = Pair::start("status_and_scale_subresources").await;
    install_baton_crds(&p).await;
    let web = format!("{ROLLOUTS}/web");
    let created = p.same("crd.create", Req::post(ROLLOUTS, &rollout("web", 2))).await;
    let status_write = p
        .compare("crd.status.update-ignores-spec", |side| {
            let mut o = created.get(side).body.clone();
            o["spec"]["replicas"] = json!(9);
            o["status"] = json!({"replicas": 1, "phase": "Progressing", "observedGeneration": 1});
            Req::put(format!("{web}/status"), &o)
        })
        .await;
    p.compare_values(
        "crd.status.update-keeps-generation",
        status_write.map(|_, r| generation(r)),
    );
    let main_write = p
        .compare("crd.update-ignores-status", |side| {
            let mut o = status_write.get(side).body.clone();
            o["spec"]["version"] = json!("2.0");
            o["status"]["phase"] = json!("Healthy");
            Req::put(&web, &o)
        })
        .await;
    p.compare_values("crd.update-bumps-generation", main_write.map(|_, r| generation(r)));
    let labelled = p
        .same(
            "crd.patch.metadata-only",
            Req::patch(&web, "merge", &json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await;
    p.compare_values(
        "crd.metadata-change-keeps-generation",
        labelled.map(|_, r| generation(r)),
    );
    p.same(
        "crd.status.patch",
        Req::patch(
            format!("{web}/status"),
            "merge",
            &json!({"status": {"phase": "Healthy", "selector": "app=web"}, "spec": {"replicas": 7}}),
        ),
    )
    .await;
    p.same(
        "crd.status.apply",
        Req::patch(
            format!("{web}/status?fieldManager=status-writer"),
            "apply",
            &json!({"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
                    "status": {"replicas": 2, "updatedReplicas": 2}}),
        ),
    )
    .await;
    p.same("crd.status.get", Req::get(format!("{web}/status"))).await;
    p.same("crd.status.not-found", Req::get(format!("{ROLLOUTS}/absent/status")))
        .await;
    p.same(
        "core.status.not-served",
        Req::get("/api/v1/namespaces/{ns}/configmaps/x/status"),
    )
    .await;
    scale(&p, &web).await;
    p.finish().await;
}

async fn scale(p: &Pair, web: &str) {
    let scale = format!("{web}/scale");
    let got = p.same("crd.scale.get", Req::get(&scale)).await;
    let put = p
        .compare("crd.scale.update", |side| {
            let mut s: Value = got.get(side).body.clone();
            s["spec"]["replicas"] = json!(5);
            Req::put(&scale, &s)
        })
        .await;
    p.compare("crd.scale.update-stale", |side| {
        let mut s: Value = got.get(side).body.clone();
        s["spec"]["replicas"] = json!(6);
        Req::put(&scale, &s)
    })
    .await;
    p.same(
        "crd.scale.patch",
        Req::patch(&scale, "merge", &json!({"spec": {"replicas": 3}})),
    )
    .await;
    p.same(
        "crd.scale.patch-negative",
        Req::patch(&scale, "merge", &json!({"spec": {"replicas": -1}})),
    )
    .await;
    p.same(
        "crd.scale.update-wrong-kind",
        Req::put(
            &scale,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}}),
        ),
    )
    .await;
    let after: Both<Resp> = p.same("crd.after-scale", Req::get(web)).await;
    p.compare_values(
        "crd.scale-bumps-generation",
        Both {
            sim: json!([generation(&put.sim), generation(&after.sim)]),
            real: json!([generation(&put.real), generation(&after.real)]),
        },
    );
    p.same("crd.scale.not-found", Req::get(format!("{ROLLOUTS}/absent/scale")))
        .await;
}
