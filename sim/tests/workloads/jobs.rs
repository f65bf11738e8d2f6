//! `batch/v1` Jobs run by the simulated Job controller and kubelet.
use crate::common;

use std::time::Duration;

use common::{delete_in_background, send_json, sim, wait_for};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

fn job(name: &str, image: &str, completions: i32, parallelism: i32, backoff: i32) -> Job {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "completions": completions, "parallelism": parallelism, "backoffLimit": backoff,
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": image}]}}}}))
    .expect("job")
}

async fn finished(jobs: &Api<Job>, name: &str) -> Job {
    wait_for("the job to finish", LONG, || async move {
        let j = jobs.get(name).await.ok()?;
        let conds = j.status.as_ref()?.conditions.clone()?;
        conds
            .iter()
            .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .then_some(j)
    })
    .await
}

fn condition_types(j: &Job) -> Vec<(String, String)> {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_job_runs_its_completions_in_parallel_pods_and_completes() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let created = jobs
        .create(&PostParams::default(), &job("work", "busybox:1", 3, 2, 6))
        .await
        .expect("create");
    let uid = created.metadata.uid.clone().expect("uid");
    let spec = created.spec.expect("spec");
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    assert_eq!(
        spec.selector
            .and_then(|s| s.match_labels)
            .and_then(|l| l.get("batch.kubernetes.io/controller-uid").cloned()),
        Some(uid.clone())
    );
    let done = finished(&jobs, "work").await;
    assert_eq!(
        condition_types(&done),
        vec![
            ("SuccessCriteriaMet".into(), "CompletionsReached".into()),
            ("Complete".into(), "CompletionsReached".into())
        ]
    );
    let st = done.status.expect("status");
    assert_eq!((st.succeeded, st.failed, st.active), (Some(3), None, None));
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let owned = pods
        .list(&ListParams::default().labels("job-name=work"))
        .await
        .expect("pods");
    assert_eq!(owned.items.len(), 3);
    for p in &owned.items {
        assert_eq!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded"));
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Job", uid.as_str(), Some(true))
        );
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("work")
        );
    }
}

#[tokio::test]
async fn a_job_whose_pods_fail_stops_at_its_backoff_limit() {
    let sim = sim().await;
    let client = sim.client().await.expect("client");
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    jobs.create(&PostParams::default(), &job("broken", "tool-fail:1", 1, 1, 1))
        .await
        .expect("create");
    let done = finished(&jobs, "broken").await;
    assert_eq!(
        condition_types(&done),
        vec![
            ("FailureTarget".into(), "BackoffLimitExceeded".into()),
            ("Failed".into(), "BackoffLimitExceeded".into())
        ]
    );
    let failed = done
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|c| c[1].message.clone());
    assert_eq!(failed, Some(Some("Job has reached the specified backoff limit".into())));
    assert_eq!(
        done.status.and_then(|s| s.failed),
        Some(2),
        "backoffLimit 1: the second failure fails the job"
    );
    let pods: Api<Pod> = Api::default_namespaced(client);
    let owned = pods
        .list(&ListParams::default().labels("job-name=broken"))
        .await
        .expect("pods");
    assert_eq!(owned.items.len(), 2);
    for p in owned.items {
        let st = p.status.expect("status");
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        let term = st.container_statuses.expect("cs")[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!((term.exit_code, term.reason.as_deref()), (1, Some("Error")));
    }
}

#[tokio::test]
async fn a_job_needs_a_run_to_completion_restart_policy() {
    let sim = sim().await;
    let mut j = serde_json::to_value(job("always", "x:1", 1, 1, 1)).expect("json");
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let r = send_json(&sim, "POST", "/apis/batch/v1/namespaces/default/jobs", &j).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "Job.batch \"always\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );
    // Deleting a Job takes its pods (ownerReference garbage collection).
    let client = sim.client().await.expect("client");
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    jobs.create(&PostParams::default(), &job("gc", "x:1", 1, 1, 1))
        .await
        .expect("create");
    let pods: Api<Pod> = Api::default_namespaced(client);
    wait_for("the job's pod", LONG, || {
        let pods = pods.clone();
        async move {
            (!pods
                .list(&ListParams::default().labels("job-name=gc"))
                .await
                .ok()?
                .items
                .is_empty())
            .then_some(())
        }
    })
    .await;
    let r = delete_in_background(&sim, "/apis/batch/v1/namespaces/default/jobs/gc").await;
    assert_eq!(r.code, 200);
    wait_for("the job's pods to be collected", LONG, || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("job-name=gc"))
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        }
    })
    .await;
}

/// kube-apiserver validates a Job's pod template as a pod spec (`ValidatePodTemplateSpec` →
/// `validateContainerCommon`): a container without an image is refused when the Job is
/// created, not left to a Job controller whose pods would all be refused.
#[tokio::test]
async fn a_job_whose_container_has_no_image_is_refused() {
    let sim = sim().await;
    let mut j = serde_json::to_value(job("noimage", "x:1", 1, 1, 1)).expect("json");
    j["spec"]["template"]["spec"]["containers"] = json!([{"name": "c"}]);
    let r = send_json(&sim, "POST", "/apis/batch/v1/namespaces/default/jobs", &j).await;
    assert_eq!(r.code, 422);
    let body = r.json();
    assert_eq!(
        body["message"],
        "Job.batch \"noimage\" is invalid: spec.template.spec.containers[0].image: Required value"
    );
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.template.spec.containers[0].image"
    );
    j["spec"]["template"]["spec"]["containers"] = json!([]);
    let r = send_json(&sim, "POST", "/apis/batch/v1/namespaces/default/jobs", &j).await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.json()["message"],
        "Job.batch \"noimage\" is invalid: spec.template.spec.containers: Required value"
    );
    // Nothing was stored.
    let client = sim.client().await.expect("client");
    let jobs: Api<Job> = Api::default_namespaced(client);
    assert!(jobs.get_opt("noimage").await.expect("get").is_none());
}
