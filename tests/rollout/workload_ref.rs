//! `spec.workloadRef`: a Rollout that takes its pod template from a Deployment and scales that
//! Deployment down as its own instances become available (the migration docs/rollouts.md
//! describes), with kubectl as a user types it.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::*;

/// The Deployment the Rollout takes over.
const DEPLOYMENT: &str = "web";

/// Deployment `web`: 3 replicas of `image`, selecting (and labelling its pods) `app: svc`.
fn deployment(env: &Env, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": env.ns},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

/// Rollout `svc` of 3 instances with the same selector as the Deployment, its template taken
/// from Deployment `name`, scaled down `scale_down`.
fn referencing(env: &Env, name: &str, scale_down: &str) -> Value {
    referencing_with(env, name, scale_down, 3)
}

fn referencing_with(env: &Env, name: &str, scale_down: &str, replicas: i32) -> Value {
    let mut m = env.manifest_v(NAME, replicas, "v1");
    m["spec"].as_object_mut().expect("a spec").remove("template");
    m["spec"]["workloadRef"] =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "scaleDown": scale_down});
    m
}

async fn apply(k: &crate::support::kubectl::Kubectl, file: &str, manifest: &Value) {
    k.ok(&["apply", "-f", &k.file(file, manifest)]).await;
}

fn deployments(env: &Env) -> Api<Deployment> {
    Api::namespaced(env.client.clone(), &env.ns)
}

fn image(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .unwrap_or("")
}

fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Follows Deployment `web` until its `spec.replicas` is `until`: at every version seen, its
/// replicas and the Rollout's Ready pods (read just after, never fewer than when it was scaled)
/// add up to at least 3. Returns the replicas seen, in order.
async fn follow_scale_down(env: &Env, until: i32) -> Vec<i32> {
    let api = deployments(env);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={DEPLOYMENT}"));
    let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff().applied_objects());
    let mut seen: Vec<i32> = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    while seen.last() != Some(&until) {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let d = match next {
            Ok(Some(Ok(d))) => d,
            Ok(Some(Err(e))) => panic!("watching the Deployment: {e}"),
            Ok(None) | Err(_) => panic!("the Deployment was not scaled to {until}; replicas seen: {seen:?}"),
        };
        let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(1);
        let pods = env.pods(NAME).await;
        let serving = i32::try_from(pods.iter().filter(|p| ready(p)).count()).unwrap_or(0);
        assert!(
            replicas + serving >= 3,
            "Deployment at {replicas} replicas while {serving} of the Rollout's pods are Ready: {}",
            describe_pods(&pods)
        );
        if seen.last() != Some(&replicas) {
            seen.push(replicas);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_takes_over_a_deployment_progressively_and_follows_its_template() {
    let (env, op, k) = with_operator().await;
    apply(&k, "deployment.json", &deployment(&env, "svc:v1")).await;
    // One instance first: the Deployment gives up one pod for it and keeps the other two.
    apply(
        &k,
        "rollout.json",
        &referencing_with(&env, DEPLOYMENT, "progressively", 1),
    )
    .await;
    let first = follow_scale_down(&env, 2).await;
    assert_eq!(first, [3, 2]);
    env.wait_healthy(NAME, "v1", 1).await;
    // The Rollout scaled up: the Deployment goes down as its instances become available.
    k.ok(&["scale", &format!("rollout/{NAME}"), "--replicas=3"]).await;
    let seen = follow_scale_down(&env, 0).await;
    assert_eq!(seen.first(), Some(&2), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "only ever scaled down: {seen:?}");
    let r = env.wait_healthy(NAME, "v1", 3).await;
    let w = status(&r).workload_ref.expect("status.workloadRef");
    assert_eq!((w.name.as_str(), w.original_replicas), (DEPLOYMENT, Some(3)));
    env.wait_rollout(NAME, "status.workloadRef.replicas 0", LONG, |r| {
        status(r).workload_ref.is_some_and(|w| w.replicas == 0)
    })
    .await;
    env.wait_event(NAME, "WorkloadScaled", |e| {
        e.reason.as_deref() == Some("WorkloadScaled")
            && e.note.as_deref()
                == Some("scaled Deployment web from 3 to 2 replicas: 1 of the Rollout's instances available, 3 replicas before the migration")
    })
    .await;

    // The Rollout's pods are made from the Deployment's template, with the Rollout's labels,
    // and owned by the Rollout (not by the Deployment's ReplicaSets).
    let pods = env.pods(NAME).await;
    assert_eq!(pods.len(), 3, "{}", describe_pods(&pods));
    for p in &pods {
        assert_eq!(image(p), "svc:v1");
        assert_eq!(pod_label(p, "app"), NAME);
        let owner = p
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .cloned();
        assert_eq!(owner.map(|o| (o.kind, o.name)), Some(("Rollout".into(), NAME.into())));
    }

    // A new image in the Deployment is a new revision of the Rollout, rolled out.
    let before = status(&r).update_revision.expect("an update revision");
    k.ok(&["set", "image", &format!("deployment/{DEPLOYMENT}"), "app=svc:v2"])
        .await;
    env.wait_rollout(NAME, "a new revision Healthy", LONG, |r| {
        let s = status(r);
        s.phase == Some(baton::api::rollout::RolloutPhase::Healthy)
            && s.update_revision.is_some_and(|u| u != before)
            && s.instances.len() == 3
            && s.instances.iter().all(|i| i.ready && i.revision == 2)
    })
    .await;
    let pods = env
        .wait_pods(NAME, "3 pods on svc:v2", |pods| {
            pods.len() == 3 && pods.iter().all(|p| image(p) == "svc:v2" && ready(p))
        })
        .await;
    assert!(
        pods.iter().all(|p| pod_version(p) == "v1"),
        "spec.version is the Rollout's"
    );
    let revisions: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let revs = revisions.list(&ListParams::default()).await.unwrap().items;
    let ours = revs.iter().filter(|r| pod_label_of(r) == NAME).count();
    assert_eq!(ours, 2, "one revision per template");
    let d = deployments(&env).get(DEPLOYMENT).await.unwrap();
    assert_eq!(
        d.spec.and_then(|s| s.replicas),
        Some(0),
        "the Deployment stays scaled down"
    );
    op.stop().await;
}

fn pod_label_of(r: &ControllerRevision) -> &str {
    r.labels()
        .get(baton::api::rollout::labels::ROLLOUT)
        .map_or("", String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_deployment_is_an_invalid_spec_until_it_exists() {
    let (env, op, k) = with_operator().await;
    apply(&k, "rollout.json", &referencing(&env, DEPLOYMENT, "progressively")).await;
    let needle = format!(
        "spec.workloadRef names Deployment web, which is not in namespace {}",
        env.ns
    );
    wait_invalid_spec(&env, &[&needle]).await;
    assert!(env.pods(NAME).await.is_empty(), "nothing is made without a template");

    apply(&k, "deployment.json", &deployment(&env, "svc:v1")).await;
    let r = env.wait_healthy(NAME, "v1", 3).await;
    assert_eq!(cond(&r, "InvalidSpec"), ("False".into(), "SpecValid".into()));
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_never_leaves_the_deployment_alone() {
    let (env, op, k) = with_operator().await;
    apply(&k, "deployment.json", &deployment(&env, "svc:v1")).await;
    let generation = deployments(&env).get(DEPLOYMENT).await.unwrap().metadata.generation;
    apply(&k, "rollout.json", &referencing(&env, DEPLOYMENT, "never")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let r = env
        .wait_rollout(NAME, "status.workloadRef", LONG, |r| status(r).workload_ref.is_some())
        .await;
    let w = status(&r).workload_ref.unwrap();
    assert_eq!((w.replicas, w.original_replicas), (3, None));
    let d = deployments(&env).get(DEPLOYMENT).await.unwrap();
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        d.metadata.generation, generation,
        "the Deployment's spec was never written"
    );
    assert!(
        !event_reasons(&env.events(NAME).await)
            .iter()
            .any(|r| r == "WorkloadScaled"),
        "nothing was scaled"
    );
    op.stop().await;
}

/// The API server refuses a Rollout with both a template and a workloadRef, with neither, or
/// naming another kind than a Deployment (the CRD's CEL rules and schema).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_both_neither_or_another_kind() {
    let env = Env::start().await;
    let mut both = referencing(&env, DEPLOYMENT, "progressively");
    both["spec"]["template"] = env.manifest_v(NAME, 3, "v1")["spec"]["template"].clone();
    let mut neither = referencing(&env, DEPLOYMENT, "progressively");
    neither["spec"].as_object_mut().unwrap().remove("workloadRef");
    let mut statefulset = referencing(&env, DEPLOYMENT, "progressively");
    statefulset["spec"]["workloadRef"]["kind"] = json!("StatefulSet");
    let mut scale_down = referencing(&env, DEPLOYMENT, "progressively");
    scale_down["spec"]["workloadRef"]["scaleDown"] = json!("Progressively");
    let cases = [
        (both, "spec.template and spec.workloadRef are both set"),
        (neither, "spec.template or spec.workloadRef is required"),
        (statefulset, "spec.workloadRef.kind: Unsupported value: \"StatefulSet\""),
        (
            scale_down,
            "spec.workloadRef.scaleDown: Unsupported value: \"Progressively\"",
        ),
    ];
    for (manifest, needle) in cases {
        let err = env
            .rollouts()
            .patch(NAME, &PatchParams::apply("test").force(), &Patch::Apply(&manifest))
            .await
            .expect_err("refused");
        match &err {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 422, "{s:?}");
                assert!(s.message.contains(needle), "{needle:?} not in {}", s.message);
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    }
    // A `workloadRef: null` (a Helm value left empty) created as Helm 3 and a client-side
    // `kubectl apply` send it is no workloadRef at all: the API server prunes the null of a field
    // that is not nullable. (A server-side apply of it is refused by kube-apiserver: "must be of
    // type object".)
    let mut with_null = env.manifest_v(NAME, 3, "v1");
    with_null["spec"]["workloadRef"] = Value::Null;
    let k = env.kubectl();
    k.ok(&["apply", "-f", &k.file("rollout.json", &with_null)]).await;
    assert_eq!(env.get(NAME).await.spec.workload_ref, None);
}
