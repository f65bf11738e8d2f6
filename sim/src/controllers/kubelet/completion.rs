//! Pods that run to completion: Job pods (restartPolicy `Never` or `OnFailure`) exit after
//! `run_duration`, with exit code 0 — or 1 when an image name contains `fail`. `Never` makes
//! the pod `Succeeded` or `Failed`; `OnFailure` restarts a failed container (restartCount
//! grows), as a kubelet does.
use serde_json::{json, Value};

use super::{now, Kubelet};

/// How a pod ends: None = it runs until deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Completion {
    pub(super) success: bool,
    pub(super) restart_on_failure: bool,
}

/// Whether (and how) a pod runs to completion.
pub(super) fn completion(pod: &Value) -> Option<Completion> {
    let policy = pod
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy == "Always" {
        return None;
    }
    let fails = super::pod::images_of(pod).iter().any(|i| i.contains("fail"));
    let job_owned = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("kind").and_then(Value::as_str) == Some("Job")
                    && r.get("controller").and_then(Value::as_bool) == Some(true)
            })
        });
    (fails || job_owned).then_some(Completion {
        success: !fails,
        restart_on_failure: policy == "OnFailure",
    })
}

fn terminated(exit_code: i64) -> Value {
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    json!({"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now(), "finishedAt": now()}})
}

impl Kubelet {
    /// The container's process ends after `run_duration`.
    pub(super) async fn run_to_completion(&self, ns: &str, name: &str, uid: &str, c: Completion) {
        loop {
            tokio::time::sleep(self.config().run_duration).await;
            if !c.success && c.restart_on_failure {
                let alive = self.set_status(ns, name, uid, |st| {
                    if let Some(Value::Array(cs)) = st.get_mut("containerStatuses") {
                        for cs in cs.iter_mut() {
                            let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
                            cs["restartCount"] = json!(restarts + 1);
                            cs["lastState"] = terminated(1);
                            cs["state"] = json!({"running": {"startedAt": now()}});
                        }
                    }
                });
                if !alive {
                    return;
                }
                continue;
            }
            let (exit, phase) = if c.success { (0, "Succeeded") } else { (1, "Failed") };
            self.set_status(ns, name, uid, |st| {
                st["phase"] = json!(phase);
                if let Some(Value::Array(cs)) = st.get_mut("containerStatuses") {
                    for cs in cs.iter_mut() {
                        cs["ready"] = json!(false);
                        cs["started"] = json!(false);
                        cs["state"] = terminated(exit);
                    }
                }
                if let Some(Value::Array(conds)) = st.get_mut("conditions") {
                    for cond in conds.iter_mut() {
                        let ty = cond.get("type").and_then(Value::as_str).unwrap_or("").to_string();
                        if ty == "Ready" || ty == "ContainersReady" {
                            cond["status"] = json!("False");
                            cond["reason"] = json!("PodCompleted");
                            cond["lastTransitionTime"] = json!(now());
                        }
                    }
                }
            });
            return;
        }
    }
}
