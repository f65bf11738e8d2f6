//! A simulated Job controller for `batch/v1` Jobs (non-indexed completion mode): it keeps up to
//! `parallelism` pods running until `completions` have succeeded, counts failures against
//! `backoffLimit`, and sets the conditions kube-controller-manager 1.32 sets —
//! `SuccessCriteriaMet` + `Complete`, or `FailureTarget` + `Failed` (`BackoffLimitExceeded`).
//! Pods carry the Job's labels and a controller ownerReference; the kubelet runs them to
//! completion (an image name containing `fail` exits non-zero, see `super::kubelet`).
//!
//! The decision is a pure function ([`plan`]) of the Job and its pods; [`run`] is the shell
//! that feeds it from the store's event stream and applies its plan.
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::handlers::{Core, DeleteOpts, Opts};
use crate::resources::ResKey;
use crate::store::{Event, Write};

/// What the controller needs to know of one of a Job's pods.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPod {
    pub name: String,
    pub phase: String,
    pub deleting: bool,
    pub ready: bool,
    pub restarts: i64,
}

impl JobPod {
    fn of(v: &Value) -> JobPod {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        let statuses = v.pointer("/status/containerStatuses").and_then(Value::as_array);
        JobPod {
            name: s("/metadata/name"),
            phase: s("/status/phase"),
            deleting: v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            ready: statuses.is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["ready"] == json!(true))),
            restarts: statuses
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                        .sum()
                })
                .unwrap_or(0),
        }
    }
}

/// What to do for one Job.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub create: usize,
    pub delete: Vec<String>,
    /// The Job's new status (written only when it differs).
    pub status: Value,
}

fn condition(ty: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": ty, "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now})
}

fn has_condition(status: &Value, ty: &str) -> bool {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// The Job controller's decision for `job` given its pods, at `now` (RFC 3339).
pub fn plan(job: &Value, pods: &[JobPod], now: &str) -> Plan {
    let int = |p: &str| job.pointer(p).and_then(Value::as_i64);
    let parallelism = int("/spec/parallelism").unwrap_or(1).max(0) as usize;
    let completions = int("/spec/completions").map(|c| c.max(0) as usize);
    let backoff_limit = int("/spec/backoffLimit").unwrap_or(6).max(0);
    let on_failure = job.pointer("/spec/template/spec/restartPolicy").and_then(Value::as_str) == Some("OnFailure");
    let mut status = job
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let live: Vec<&JobPod> = pods
        .iter()
        .filter(|p| !p.deleting && p.phase != "Succeeded" && p.phase != "Failed")
        .collect();
    let succeeded = pods.iter().filter(|p| p.phase == "Succeeded").count();
    let failed = pods.iter().filter(|p| p.phase == "Failed").count();
    let restarts: i64 = if on_failure {
        live.iter().map(|p| p.restarts).sum()
    } else {
        0
    };
    let finished = has_condition(&status, "Complete") || has_condition(&status, "Failed");
    let mut delete = Vec::new();
    let mut create = 0;
    if !finished {
        let mut conditions = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let done = match completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && live.is_empty(),
        };
        if failed as i64 > backoff_limit || (on_failure && restarts > 0 && restarts >= backoff_limit.max(1)) {
            let msg = "Job has reached the specified backoff limit";
            conditions.push(condition("FailureTarget", "BackoffLimitExceeded", msg, now));
            conditions.push(condition("Failed", "BackoffLimitExceeded", msg, now));
            delete = live.iter().map(|p| p.name.clone()).collect();
        } else if done {
            let msg = "Reached expected number of succeeded pods";
            conditions.push(condition("SuccessCriteriaMet", "CompletionsReached", msg, now));
            conditions.push(condition("Complete", "CompletionsReached", msg, now));
            status["completionTime"] = json!(now);
            delete = live.iter().map(|p| p.name.clone()).collect();
        } else {
            let want = match completions {
                Some(c) => parallelism.min(c.saturating_sub(succeeded)),
                None if succeeded > 0 => 0,
                None => parallelism,
            };
            if live.len() < want {
                create = want - live.len();
            } else {
                delete = live.iter().skip(want).map(|p| p.name.clone()).collect();
            }
        }
        if !conditions.is_empty() {
            status["conditions"] = json!(conditions);
        }
    } else {
        delete = live.iter().map(|p| p.name.clone()).collect();
    }
    if status.get("startTime").is_none() {
        status["startTime"] = json!(now);
    }
    let active = (live.len() - delete.len().min(live.len())) + create;
    let set_count = |status: &mut Value, key: &str, n: usize| {
        if n > 0 {
            status[key] = json!(n);
        } else if let Some(o) = status.as_object_mut() {
            o.remove(key);
        }
    };
    set_count(&mut status, "active", active);
    set_count(&mut status, "succeeded", succeeded);
    set_count(&mut status, "failed", failed);
    status["ready"] = json!(live.iter().filter(|p| p.ready).count());
    status["terminating"] = json!(pods.iter().filter(|p| p.deleting).count());
    status["uncountedTerminatedPods"] = json!({});
    Plan { create, delete, status }
}

fn jobs_key() -> ResKey {
    ResKey {
        group: "batch".into(),
        plural: "jobs".into(),
    }
}

/// Run the controller until shutdown.
pub async fn run(core: Arc<Core>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = core.store.subscribe();
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => on_event(&core, &ev),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (jobs, _) = core.store.list(&jobs_key(), None);
                    for j in jobs {
                        reconcile(&core, &j.namespace, &j.name);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

fn on_event(core: &Core, ev: &Event) {
    if ev.key == jobs_key() {
        if ev.kind != crate::store::EventKind::Deleted && !ev.obj.deleting {
            reconcile(core, &ev.obj.namespace, &ev.obj.name);
        }
        return;
    }
    if ev.key.group.is_empty() && ev.key.plural == "pods" {
        let owners = ev.prev.as_ref().map(|p| p.owners.clone()).unwrap_or_default();
        for o in ev.obj.owners.iter().chain(owners.iter()) {
            if let Some((key, ns, name)) = core.store.lookup_uid(&o.uid) {
                if key == jobs_key() {
                    reconcile(core, &ns, &name);
                }
            }
        }
    }
}

fn reconcile(core: &Core, ns: &str, name: &str) {
    let Some(job) = core.store.get(&jobs_key(), ns, name) else {
        return;
    };
    if job.deleting {
        return;
    }
    let job_v = job.value();
    let pods_key = ResKey {
        group: String::new(),
        plural: "pods".into(),
    };
    let pods: Vec<JobPod> = core
        .store
        .dependents_of(&job.uid)
        .into_iter()
        .filter(|(k, _, _)| *k == pods_key)
        .filter_map(|(k, ns, n)| core.store.get(&k, &ns, &n))
        .map(|p| JobPod::of(&p.value()))
        .collect();
    let p = plan(&job_v, &pods, &crate::meta::now_rfc3339());
    let Some(pods_rt) = core.resource("", "pods") else {
        return;
    };
    for n in &p.delete {
        let _ = core.delete(&pods_rt, ns, n, &DeleteOpts::default());
    }
    for _ in 0..p.create {
        let _ = core.create(
            &pods_rt,
            Some(ns),
            pod_for(&job_v, name, &job.uid),
            &Opts {
                field_manager: "kube-controller-manager".into(),
                ..Opts::default()
            },
        );
    }
    if job_v.get("status") != Some(&p.status) {
        let _ = core.store.write(&jobs_key(), ns, name, false, |cur| {
            let Some(cur) = cur.filter(|c| c.uid == job.uid) else {
                return Ok(Write::Keep);
            };
            let mut v = cur.value();
            if v.get("status") == Some(&p.status) {
                return Ok(Write::Keep);
            }
            v["status"] = p.status.clone();
            Ok(Write::Put(v))
        });
    }
}

/// A pod from the Job's template, labelled and owned as the Job controller does it.
fn pod_for(job: &Value, name: &str, uid: &str) -> Value {
    let template = job.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut meta = template
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut labels = meta
        .get("labels")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ] {
        labels[k] = json!(v);
    }
    meta["labels"] = labels;
    meta["generateName"] = json!(format!("{name}-"));
    if let Some(o) = meta.as_object_mut() {
        o.remove("name");
        o.remove("namespace");
    }
    meta["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

#[cfg(test)]
mod tests;
