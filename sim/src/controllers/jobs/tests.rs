//! The Job controller's decisions, stepped through by hand.
use super::*;

const NOW: &str = "2026-01-01T00:00:00Z";

fn job(completions: Option<i64>, parallelism: i64, backoff: i64) -> Value {
    let mut j = json!({"metadata": {"name": "j"}, "spec": {"parallelism": parallelism, "backoffLimit": backoff,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}});
    if let Some(c) = completions {
        j["spec"]["completions"] = json!(c);
    }
    j
}

fn pod(name: &str, phase: &str) -> JobPod {
    JobPod {
        name: name.into(),
        phase: phase.into(),
        deleting: false,
        ready: phase == "Running",
        restarts: 0,
    }
}

fn types(status: &Value) -> Vec<String> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["type"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn starts_up_to_parallelism_pods_but_no_more_than_remaining_completions() {
    let p = plan(&job(Some(3), 2, 6), &[], NOW);
    assert_eq!((p.create, p.delete.len()), (2, 0));
    assert_eq!(p.status["active"], 2);
    let p = plan(
        &job(Some(3), 2, 6),
        &[pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c", "Running")],
        NOW,
    );
    assert_eq!(p.create, 0, "one more completion needed and one pod runs");
    let p = plan(&job(Some(3), 5, 6), &[pod("a", "Succeeded")], NOW);
    assert_eq!(p.create, 2);
}

#[test]
fn completes_when_enough_pods_succeeded() {
    let p = plan(
        &job(Some(2), 1, 6),
        &[pod("a", "Succeeded"), pod("b", "Succeeded")],
        NOW,
    );
    assert_eq!(types(&p.status), vec!["SuccessCriteriaMet", "Complete"]);
    assert_eq!(p.status["conditions"][1]["reason"], "CompletionsReached");
    assert_eq!(p.status["succeeded"], 2);
    assert_eq!(p.status["completionTime"], NOW);
    assert!(p.status.get("active").is_none());
    // Finished jobs start nothing.
    let mut done = job(Some(2), 1, 6);
    done["status"] = p.status.clone();
    assert_eq!(
        plan(&done, &[pod("a", "Succeeded"), pod("b", "Succeeded")], NOW).create,
        0
    );
}

#[test]
fn fails_once_failures_exceed_the_backoff_limit() {
    let p = plan(&job(Some(1), 1, 1), &[pod("a", "Failed")], NOW);
    assert_eq!(p.create, 1, "one failure is within backoffLimit 1: retry");
    let p = plan(
        &job(Some(1), 1, 1),
        &[pod("a", "Failed"), pod("b", "Failed"), pod("c", "Running")],
        NOW,
    );
    assert_eq!(types(&p.status), vec!["FailureTarget", "Failed"]);
    assert_eq!(p.status["conditions"][1]["reason"], "BackoffLimitExceeded");
    assert_eq!(
        p.status["conditions"][1]["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(p.delete, vec!["c".to_string()], "active pods are deleted");
    assert_eq!(p.status["failed"], 2);
}

#[test]
fn on_failure_restarts_count_against_the_backoff_limit() {
    let mut j = job(Some(1), 1, 2);
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    let mut p1 = pod("a", "Running");
    p1.restarts = 1;
    assert_eq!(types(&plan(&j, &[p1.clone()], NOW).status), Vec::<String>::new());
    p1.restarts = 2;
    assert_eq!(types(&plan(&j, &[p1], NOW).status), vec!["FailureTarget", "Failed"]);
}

#[test]
fn a_work_queue_job_completes_when_one_pod_succeeded_and_none_runs() {
    let p = plan(&job(None, 2, 6), &[], NOW);
    assert_eq!(p.create, 2);
    let p = plan(&job(None, 2, 6), &[pod("a", "Succeeded"), pod("b", "Running")], NOW);
    assert_eq!(p.create, 0);
    assert!(types(&p.status).is_empty());
    let p = plan(&job(None, 2, 6), &[pod("a", "Succeeded"), pod("b", "Succeeded")], NOW);
    assert_eq!(types(&p.status), vec!["SuccessCriteriaMet", "Complete"]);
}
