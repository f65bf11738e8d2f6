//! Hooks and the `job` check kind, with the real `baton controller`: the Job controller
//! (baton-sim's, or kube-controller-manager's) runs the hook Jobs and the kubelet (baton-sim's, or
//! kwok's stages) runs their pods: an image whose name contains `fail` exits 1, anything else
//! exits 0.

use baton::api::rollout::{labels, FailureReason, RolloutPhase};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use crate::helpers::*;
use crate::support::controller::{ControllerProc, NO_ELECTION};
use crate::support::*;

/// v2 of the 3-instance Rollout with `hooks`.
fn hooked(env: &Env, hooks: serde_json::Value) -> serde_json::Value {
    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["hooks"] = hooks;
    m
}

fn hook(image: &str) -> serde_json::Value {
    json!({"template": {"spec": {"containers": [{"name": "migrate", "image": image}]}}})
}

/// The Jobs of the Rollout (label `baton.dev/rollout`).
async fn jobs(env: &Env) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(env.client.clone(), &env.ns);
    let mut jobs = api
        .list(&ListParams::default().labels(&format!("{}={NAME}", labels::ROLLOUT)))
        .await
        .expect("listing jobs")
        .items;
    jobs.sort_by_key(|j| j.name_any());
    jobs
}

async fn wait_jobs(env: &Env, what: &str, pred: impl Fn(&[Job]) -> bool) -> Vec<Job> {
    let pred = &pred;
    wait::poll(what, LONG, wait::POLL, || async move {
        let jobs = jobs(env).await;
        if pred(&jobs) {
            Ok(jobs)
        } else {
            Err(jobs
                .iter()
                .map(|j| format!("{} {:?}", j.name_any(), j.status))
                .collect::<Vec<_>>())
        }
    })
    .await
    .unwrap_or_else(|(message, jobs)| panic!("{message}\njobs: {jobs:#?}"))
}

fn label<'a>(j: &'a Job, key: &str) -> &'a str {
    j.labels().get(key).map(String::as_str).unwrap_or("")
}

fn job_condition(j: &Job, type_: &str) -> bool {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// The pods of Job `job`.
async fn job_pods(env: &Env, job: &str) -> Vec<Pod> {
    env.pods_api()
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .expect("listing job pods")
        .items
}

/// The update revision's hash (of the Rollout's status).
fn update_hash(r: &baton::api::rollout::Rollout) -> String {
    let rev = status(r).update_revision.unwrap_or_default();
    rev.strip_prefix(&format!("{NAME}-")).unwrap_or(&rev).to_string()
}

async fn start_controller(env: &Env, id: &str) -> ControllerProc {
    env.start_controller(id, &NO_ELECTION).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_rollout_hook_runs_once_before_the_first_v2_pod() {
    let env = Env::start().await;
    let _ctrl = start_controller(&env, "ctrl").await;
    let v1 = deployed(&env, 3, "v1").await;
    assert!(jobs(&env).await.is_empty(), "v1 has no hook");

    env.apply(&hooked(&env, json!({"preRollout": hook("migrate:v2")})))
        .await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    let hash = update_hash(&r);
    let js = jobs(&env).await;
    assert_eq!(js.len(), 1, "one Job: {js:?}");
    let job = &js[0];
    assert_eq!(job.name_any(), format!("{NAME}-{hash}-pre"));
    assert_eq!(label(job, labels::HOOK), "preRollout");
    assert_eq!(label(job, labels::REVISION_HASH), hash);
    let owner = job.owner_references().first().expect("an owner");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Rollout", NAME, Some(true))
    );
    assert_eq!(owner.uid, r.uid().unwrap());
    assert!(job_condition(job, "Complete"), "{:?}", job.status);
    // Every v2 pod was created after the hook finished (times in whole seconds).
    let done = job
        .status
        .as_ref()
        .and_then(|s| s.completion_time.clone())
        .expect("completionTime")
        .0;
    let pods = env.pods(NAME).await;
    for p in &pods {
        let created = p.metadata.creation_timestamp.as_ref().expect("created").0;
        assert!(
            created >= done,
            "{} created {created} before the hook completed at {done}",
            p.name_any()
        );
    }
    assert!(v1.iter().all(|old| pods.iter().all(|p| p.uid() != old.uid())));
    let hook_started = env
        .wait_event(NAME, "HookStarted", |e| {
            e.reason.as_deref() == Some("HookStarted") && e.note.as_deref().unwrap_or("").contains(&job.name_any())
        })
        .await;
    // Batch 1 starts (its Event, once) when the hook has succeeded, not when the Job is created.
    let is_batch_one = |e: &k8s_openapi::api::events::v1::Event| {
        e.reason.as_deref() == Some("BatchStarted")
            && e.note.as_deref().unwrap_or("").contains("rolling out v2 from v1")
    };
    let batch_one = env.wait_event(NAME, "BatchStarted of v2's batch 1", is_batch_one).await;
    let at = |e: &k8s_openapi::api::events::v1::Event| e.event_time.as_ref().map(|t| t.0);
    assert!(
        at(&batch_one) > at(&hook_started),
        "batch 1 started at {:?}, before the hook did at {:?}",
        at(&batch_one),
        at(&hook_started)
    );
    let all = env.events(NAME).await;
    assert_eq!(
        all.iter().filter(|e| is_batch_one(e)).count(),
        1,
        "{}",
        describe_events(&all)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pre_rollout_hook_replaces_nothing_and_a_retry_runs_it_again() {
    let env = Env::start().await;
    let _ctrl = start_controller(&env, "ctrl").await;
    let v1 = deployed(&env, 3, "v1").await;

    env.apply(&hooked(&env, json!({"preRollout": hook("migrate-fail:v2")})))
        .await;
    let r = wait_phase(&env, "Degraded by the failed hook", RolloutPhase::Degraded).await;
    let hash = update_hash(&r);
    let job_name = format!("{NAME}-{hash}-pre");
    let st = status(&r);
    let f = st.failed_update.clone().expect("failedUpdate");
    assert_eq!(f.reason, FailureReason::HookFailed, "{f:?}");
    assert!(!f.rolled_back);
    let failed_pod = job_pods(&env, &job_name)
        .await
        .first()
        .map(|p| p.name_any())
        .expect("the hook's pod");
    for text in [&f.message, st.message.as_ref().unwrap()] {
        assert!(text.contains(&format!("Job {job_name} BackoffLimitExceeded")), "{text}");
        assert!(
            text.contains(&format!(
                "failed pod {failed_pod}: container migrate ended with exit code 1 (Error)"
            )),
            "{text}"
        );
    }
    assert_eq!(cond(&r, "Stalled"), ("True".into(), "HookFailed".into()));
    assert_eq!(cond(&r, "Ready").0, "False");
    assert!(st.message.unwrap_or_default().contains("nothing was replaced"));
    let ev = env
        .wait_event(NAME, "HookFailed Warning", |e| {
            e.reason.as_deref() == Some("HookFailed")
        })
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(ev.note.as_deref().unwrap_or("").contains(&failed_pod), "{ev:?}");
    // Nothing was replaced: the same three v1 pods.
    assert_eq!(identities(&env.pods(NAME).await), identities(&v1));
    let failed_uid = jobs(&env).await.first().and_then(|j| j.uid()).expect("the failed Job");

    // The migration is fixed and `baton rollout retry` runs it again (a new Job), then v2 goes out.
    env.apply(&hooked(&env, json!({"preRollout": hook("migrate:v2")})))
        .await;
    let kubeconfig = env.kubeconfig("user");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["rollout", "retry", NAME])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .expect("running baton rollout retry");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    env.wait_healthy(NAME, "v2", 3).await;
    let js = jobs(&env).await;
    assert_eq!(js.len(), 1, "{js:?}");
    assert_eq!(js[0].name_any(), job_name);
    assert_ne!(js[0].uid(), Some(failed_uid), "a new Job ran");
    assert!(job_condition(&js[0], "Complete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restarted_while_the_hook_runs_creates_no_second_job() {
    let env = Env::start().await;
    let mut ctrl = start_controller(&env, "ctrl").await;
    deployed(&env, 3, "v1").await;

    // The hook's pod does not finish until the test says it is done: baton-sim's kubelet runs a
    // `never-ready` Job pod until then; a scheduling gate keeps it Pending where kwok would
    // complete it (kwok's stages finish every Job pod not `fail`ing).
    let mut gated = hook("migrate-never-ready:v2");
    gated["template"]["spec"]["schedulingGates"] = json!([{"name": "baton.dev/test-hold"}]);
    env.apply(&hooked(&env, json!({"preRollout": gated}))).await;
    let r = env
        .wait_rollout(NAME, "HookRunning", LONG, |r| {
            current_generation(r) && condition(r, "Progressing").is_some_and(|c| c.reason == "HookRunning")
        })
        .await;
    let job_name = format!("{NAME}-{}-pre", update_hash(&r));
    assert!(
        status(&r)
            .message
            .unwrap_or_default()
            .contains(&format!("waiting for hook preRollout (Job {job_name})")),
        "{}",
        describe(Some(&r))
    );
    let running = wait_jobs(&env, "the hook Job's pod running", |js| js.len() == 1).await;
    let uid = running[0].uid();
    ctrl.stop().await;

    let ctrl2 = start_controller(&env, "ctrl2").await;
    // The new controller has looked at the Rollout (it reconciles every Rollout on start).
    wait_for("ctrl2 reconciled", LONG, || async {
        let text = ctrl2.scrape().await?;
        let n: f64 = ["success", "requeue", "error"]
            .iter()
            .filter_map(|r| {
                crate::support::process::metric(
                    &text,
                    &format!("baton_reconcile_total{{controller=\"rollout\",result=\"{r}\"}}"),
                )
            })
            .sum();
        (n >= 1.0).then_some(())
    })
    .await;
    let js = jobs(&env).await;
    assert_eq!(js.len(), 1, "{js:?}");
    assert_eq!(js[0].uid(), uid, "the same Job");
    assert_eq!(
        status(&env.get(NAME).await)
            .instances
            .iter()
            .filter(|i| i.version.as_deref() == Some("v2"))
            .count(),
        0
    );

    // The hook's container exits 0 (as a kubelet reports it): the rollout goes on.
    let pod = wait::poll("the hook pod", LONG, wait::POLL, || async {
        job_pods(&env, &job_name).await.into_iter().next().ok_or(())
    })
    .await
    .expect("the hook's pod");
    let done = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
        "name": "migrate", "image": "migrate-never-ready:v2", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
    env.pods_api()
        .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&done))
        .await
        .expect("completing the hook pod");
    env.wait_healthy(NAME, "v2", 3).await;
    let js = jobs(&env).await;
    assert_eq!(js.len(), 1, "{js:?}");
    assert_eq!(js[0].uid(), uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_post_rollout_hook_rolls_back() {
    let env = Env::start().await;
    let _ctrl = start_controller(&env, "ctrl").await;
    deployed(&env, 3, "v1").await;

    env.apply(&hooked(&env, json!({"postRollout": hook("smoke-fail:v2")})))
        .await;
    let (r, f) = wait_rolled_back(&env).await;
    assert_eq!(f.reason, FailureReason::HookFailed, "{f:?}");
    assert!(f.rolled_back);
    let job_name = format!("{NAME}-{}-post", update_hash(&r));
    assert!(
        f.message
            .contains(&format!("hook postRollout of v2 failed: Job {job_name}")),
        "{}",
        f.message
    );
    assert_eq!(instance_versions(&r), map(&[("v1", 3)]));
    // It ran after the last batch: every instance had been on v2.
    env.wait_event(NAME, "the last batch started", |e| {
        e.reason.as_deref() == Some("BatchStarted") && e.note.as_deref().unwrap_or("").contains("batch 3/3")
    })
    .await;
    env.wait_event(NAME, "HookFailed", |e| e.reason.as_deref() == Some("HookFailed"))
        .await;
    let js = jobs(&env).await;
    assert_eq!(js.iter().map(|j| j.name_any()).collect::<Vec<_>>(), vec![job_name]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_check_fails_its_batch() {
    let env = Env::start().await;
    let _ctrl = start_controller(&env, "ctrl").await;
    deployed(&env, 3, "v1").await;

    let mut v2 = env.manifest_v(NAME, 3, "v2");
    v2["spec"]["checks"] = json!([{"name": "smoke", "job": hook("smoke-fail:v2")}]);
    env.apply(&v2).await;
    let (r, f) = wait_rolled_back(&env).await;
    assert_eq!(f.reason, FailureReason::CheckFailed, "{f:?}");
    assert_eq!(f.batch, 1);
    let job_name = format!("{NAME}-{}-smoke-1", update_hash(&r));
    assert!(
        f.message
            .contains(&format!("check smoke failed: Job {job_name} BackoffLimitExceeded")),
        "{}",
        f.message
    );
    assert!(f.message.contains("exit code 1 (Error)"), "{}", f.message);
    assert_eq!(instance_versions(&r), map(&[("v1", 3)]));
    env.wait_event(NAME, "CheckFailed", |e| {
        e.reason.as_deref() == Some("CheckFailed") && e.note.as_deref().unwrap_or("").contains(&job_name)
    })
    .await;
    let js = jobs(&env).await;
    assert_eq!(js.len(), 1, "{js:?}");
    assert_eq!(label(&js[0], labels::CHECK), "smoke");
}

/// A hook template the CRD schema lets through but the Job API refuses (a container without an
/// image: kube-apiserver validates a Job's pod template as a pod spec) is an invalid spec:
/// InvalidSpec=True and a Warning Event with the API server's words, no Job, no v2 pod; fixing
/// the template rolls v2 out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_job_the_api_server_refuses_is_an_invalid_spec() {
    let env = Env::start().await;
    let _ctrl = start_controller(&env, "ctrl").await;
    let v1 = deployed(&env, 3, "v1").await;

    let no_image = json!({"template": {"spec": {"containers": [{"name": "migrate"}]}}});
    env.apply(&hooked(&env, json!({"preRollout": no_image}))).await;
    // The API server's words, the Job, and what to fix: in the condition and the Event.
    let needles = [
        "spec.template.spec.containers[0].image: Required value",
        "the API server refuses the Job of hook preRollout: Job.batch \"svc-",
        "fix spec.hooks.preRollout.template",
    ];
    let r = wait_invalid_spec(&env, &needles).await;
    assert!(jobs(&env).await.is_empty(), "the refused Job does not exist");
    let pods = env.pods(NAME).await;
    assert_eq!(
        pods.iter().map(|p| p.uid()).collect::<Vec<_>>(),
        v1.iter().map(|p| p.uid()).collect::<Vec<_>>(),
        "no pod replaced: {}",
        describe_pods(&pods)
    );
    assert_eq!(instance_versions(&r), map(&[("v1", 3)]));

    // Fixed: the hook runs and v2 rolls out.
    env.apply(&hooked(&env, json!({"preRollout": hook("migrate:v2")})))
        .await;
    let r = env.wait_healthy(NAME, "v2", 3).await;
    assert_eq!(cond(&r, "InvalidSpec").0, "False");
    let js = jobs(&env).await;
    assert_eq!(js.len(), 1, "{js:?}");
    assert!(job_condition(&js[0], "Complete"), "{:?}", js[0].status);
}

/// Jobs are kept while their revision is in the history and deleted with it: with
/// `revisionHistoryLimit: 1`, v1's hook Job goes when v3 prunes v1's revision; v2's stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_jobs_go_with_their_pruned_revision() {
    let env = Env::start().await;
    let _ctrl = start_controller(&env, "ctrl").await;
    let with_hook = |version: &str| {
        let mut m = env.manifest_v(NAME, 3, version);
        m["spec"]["revisionHistoryLimit"] = json!(1);
        m["spec"]["hooks"] = json!({"preRollout": hook(&format!("migrate:{version}"))});
        m
    };
    let mut hashes = Vec::new();
    for version in ["v1", "v2"] {
        env.apply(&with_hook(version)).await;
        let r = env.wait_healthy(NAME, version, 3).await;
        hashes.push(update_hash(&r));
    }
    let js = jobs(&env).await;
    let of = |js: &[Job], hash: &str| js.iter().filter(|j| label(j, labels::REVISION_HASH) == hash).count();
    assert_eq!(js.len(), 2, "v1's and v2's hook Jobs: {js:?}");
    assert_eq!((of(&js, &hashes[0]), of(&js, &hashes[1])), (1, 1));

    env.apply(&with_hook("v3")).await;
    let r = env.wait_healthy(NAME, "v3", 3).await;
    let v3 = update_hash(&r);
    let js = wait_jobs(&env, "v1's Job pruned with its revision", |js| {
        js.len() == 2 && of(js, &hashes[0]) == 0
    })
    .await;
    assert_eq!((of(&js, &hashes[1]), of(&js, &v3)), (1, 1), "{js:?}");
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let names: Vec<String> = revisions
        .list(&ListParams::default().labels(&format!("{}={NAME}", labels::ROLLOUT)))
        .await
        .expect("listing revisions")
        .items
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert!(
        !names.contains(&format!("{NAME}-{}", hashes[0])),
        "v1's revision is pruned too: {names:?}"
    );
    // The pruned Job's pods went with it.
    let v1_job = format!("{NAME}-{}-pre", hashes[0]);
    wait_for("v1's hook pods gone", LONG, || {
        let env = &env;
        let v1_job = v1_job.clone();
        async move { job_pods(env, &v1_job).await.is_empty().then_some(()) }
    })
    .await;
}
