//! kstatus, the library Flux judges an object's health with, written in Rust for the tests, and
//! Flux's wait on top of it.
//!
//! The rules are those of `sigs.k8s.io/cli-utils/pkg/kstatus/status` (repository
//! kubernetes-sigs/cli-utils; Flux builds against its fork fluxcd/cli-utils, whose rules are the
//! same), for custom resources:
//!
//! * `status.go`, `Compute`: the generic rules first; then, when they decide nothing, the
//!   `Ready` condition (`checkReadyCondition`); else `Current`, "Resource is current".
//! * `generic.go`, `checkGenericProperties`: `metadata.deletionTimestamp` set → `Terminating`;
//!   `checkGeneration`: `status.observedGeneration` present and not `metadata.generation` →
//!   `InProgress` (reason `LatestGenerationNotObserved`); then the first condition, in the
//!   order the object lists them, that is `Reconciling=True` (→ `InProgress`, its reason and
//!   message) or `Stalled=True` (→ `Failed`, its message, a `Stalled` condition with its reason).
//! * `status.go`, `checkReadyCondition`: the first `Ready` condition whose status is `True`
//!   (→ `Current`, "Resource is Ready"), `False` or `Unknown` (→ `InProgress`, its reason and
//!   message); `Ready` with any other status is skipped.
//! * `util.go`, `GetObjectWithConditions` (how conditions are read; a field of the wrong type
//!   is an error, which Flux reports as status `Unknown`), `newInProgressStatus`; and
//!   apimachinery's `unstructured.NestedString`/`NestedInt64` for the metadata fields.
//!
//! The per-kind rules of `core.go` (`GetLegacyConditionsFn`: Deployment, Pod, Job, …) are left
//! out: [`compute`] refuses those kinds rather than judge them wrongly.
//!
//! Flux's wait ([`flux_wait`], [`flux_timeout`]) follows fluxcd/pkg `ssa/manager_wait.go`,
//! `WaitForSetWithContext`, with cli-utils' `polling/aggregator` `AggregateStatus`: it passes
//! when every object is `Current`; it stops with an error as soon as an object is `Failed`
//! (kustomize-controller's default fail-fast) or when every object is `Failed` or `Current`;
//! otherwise it polls again until its timeout. Objects are named as `ssa/utils/fmt.go`,
//! `FmtObjMetadata`, names them: `Kind/namespace/name`.
#![allow(dead_code)]

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::Value;

/// kstatus's verdict on an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Failed,
    Current,
    Terminating,
    NotFound,
    Unknown,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::InProgress => "InProgress",
            Status::Failed => "Failed",
            Status::Current => "Current",
            Status::Terminating => "Terminating",
            Status::NotFound => "NotFound",
            Status::Unknown => "Unknown",
        })
    }
}

/// A condition as kstatus reads it (or adds it to its verdict: `Reconciling`, `Stalled`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// What kstatus computes for an object: its status, a message, and the standard condition
/// (`Reconciling` or `Stalled`) that goes with an `InProgress` or `Failed` verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub conditions: Vec<Condition>,
}

impl Outcome {
    /// Reason of the verdict's `Reconciling`/`Stalled` condition ("" for none).
    pub fn reason(&self) -> &str {
        self.conditions.first().map_or("", |c| c.reason.as_str())
    }
}

/// Group/kind keys of the kinds kstatus judges with rules of their own (`core.go`).
const PER_KIND_RULES: &[&str] = &[
    "Service",
    "Pod",
    "Secret",
    "PersistentVolumeClaim",
    "ConfigMap",
    "apps/StatefulSet",
    "apps/DaemonSet",
    "extensions/DaemonSet",
    "apps/Deployment",
    "extensions/Deployment",
    "apps/ReplicaSet",
    "extensions/ReplicaSet",
    "policy/PodDisruptionBudget",
    "batch/CronJob",
    "batch/Job",
    "apiextensions.k8s.io/CustomResourceDefinition",
];

/// kstatus's `Compute` on `obj` (the object as the API server serves it). `Err` is what
/// kstatus fails with (a field of the wrong type); Flux then shows status `Unknown`.
pub fn compute(obj: &Value) -> Result<Outcome, String> {
    if let Some(outcome) = generic(obj)? {
        return Ok(outcome);
    }
    let key = group_kind(obj);
    if PER_KIND_RULES.contains(&key.as_str()) {
        return Err(format!("{key} has kstatus rules of its own, not written here"));
    }
    if let Some(outcome) = ready(obj)? {
        return Ok(outcome);
    }
    Ok(Outcome {
        status: Status::Current,
        message: "Resource is current".into(),
        conditions: Vec::new(),
    })
}

/// `group/Kind`, or `Kind` for the core group, as kstatus keys its per-kind rules.
fn group_kind(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("");
    match api_version.split_once('/') {
        Some((group, _)) if !group.is_empty() => format!("{group}/{kind}"),
        _ => kind.to_string(),
    }
}

/// The field at `path`: `None` when it or a parent is absent or a parent is null; an error
/// when a parent is not an object.
fn nested<'a>(obj: &'a Value, path: &[&str]) -> Result<Option<&'a Value>, String> {
    let mut at = obj;
    for (i, field) in path.iter().enumerate() {
        match at {
            Value::Null => return Ok(None),
            Value::Object(map) => match map.get(*field) {
                Some(v) => at = v,
                None => return Ok(None),
            },
            other => {
                return Err(format!(
                    ".{} accessor error: {other} is not an object",
                    path[..=i].join(".")
                ))
            }
        }
    }
    Ok(Some(at))
}

fn nested_str<'a>(obj: &'a Value, path: &[&str]) -> Result<Option<&'a str>, String> {
    match nested(obj, path)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(".{} accessor error: {other} is not a string", path.join("."))),
    }
}

fn nested_i64(obj: &Value, path: &[&str]) -> Result<Option<i64>, String> {
    match nested(obj, path)? {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!(".{} accessor error: {v} is not an int64", path.join("."))),
    }
}

/// `status.conditions`, each with `type`, `status`, `reason` and `message` ("" when absent).
fn conditions(obj: &Value) -> Result<Vec<Condition>, String> {
    let items = match nested(obj, &["status", "conditions"])? {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("status.conditions is not a list: {other}")),
    };
    items.iter().map(condition).collect()
}

fn condition(item: &Value) -> Result<Condition, String> {
    let field = |name: &str| match &item[name] {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("condition field {name} is not a string: {other}")),
    };
    match item {
        Value::Null | Value::Object(_) => Ok(Condition {
            type_: field("type")?,
            status: field("status")?,
            reason: field("reason")?,
            message: field("message")?,
        }),
        other => Err(format!("a condition is not an object: {other}")),
    }
}

fn in_progress(reason: &str, message: &str) -> Outcome {
    Outcome {
        status: Status::InProgress,
        message: message.to_string(),
        conditions: vec![Condition {
            type_: "Reconciling".into(),
            status: "True".into(),
            reason: reason.to_string(),
            message: message.to_string(),
        }],
    }
}

/// `checkGenericProperties`: deletion, generation, `Reconciling`, `Stalled`.
fn generic(obj: &Value) -> Result<Option<Outcome>, String> {
    if nested_str(obj, &["metadata", "deletionTimestamp"])?.is_some_and(|t| !t.is_empty()) {
        return Ok(Some(Outcome {
            status: Status::Terminating,
            message: "Resource scheduled for deletion".into(),
            conditions: Vec::new(),
        }));
    }
    if let Some(generation) = nested_i64(obj, &["metadata", "generation"])? {
        if let Some(observed) = nested_i64(obj, &["status", "observedGeneration"])? {
            if observed != generation {
                let kind = obj["kind"].as_str().unwrap_or("");
                let message =
                    format!("{kind} generation is {generation}, but latest observed generation is {observed}");
                return Ok(Some(in_progress("LatestGenerationNotObserved", &message)));
            }
        }
    }
    for c in conditions(obj)? {
        if c.type_ == "Reconciling" && c.status == "True" {
            return Ok(Some(in_progress(&c.reason, &c.message)));
        }
        if c.type_ == "Stalled" && c.status == "True" {
            return Ok(Some(Outcome {
                status: Status::Failed,
                message: c.message.clone(),
                conditions: vec![Condition {
                    type_: "Stalled".into(),
                    ..c
                }],
            }));
        }
    }
    Ok(None)
}

/// `checkReadyCondition`.
fn ready(obj: &Value) -> Result<Option<Outcome>, String> {
    for c in conditions(obj)? {
        if c.type_ != "Ready" {
            continue;
        }
        match c.status.as_str() {
            "True" => {
                return Ok(Some(Outcome {
                    status: Status::Current,
                    message: "Resource is Ready".into(),
                    conditions: Vec::new(),
                }))
            }
            "False" | "Unknown" => return Ok(Some(in_progress(&c.reason, &c.message))),
            _ => {}
        }
    }
    Ok(None)
}

/// An object as one poll of Flux's wait sees it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `Kind/namespace/name`.
    pub id: String,
    pub status: Status,
    /// kstatus's error, for status `Unknown`.
    pub error: Option<String>,
}

impl Seen {
    pub fn of(obj: &Value) -> Seen {
        let meta = &obj["metadata"];
        let mut id = format!("{}/", obj["kind"].as_str().unwrap_or(""));
        if let Some(ns) = meta["namespace"].as_str().filter(|ns| !ns.is_empty()) {
            id.push_str(&format!("{ns}/"));
        }
        id.push_str(meta["name"].as_str().unwrap_or(""));
        let (status, error) = match compute(obj) {
            Ok(o) => (o.status, None),
            Err(e) => (Status::Unknown, Some(e)),
        };
        Seen { id, status, error }
    }

    fn describe(&self) -> String {
        match &self.error {
            Some(e) => format!("{} status: '{}': {e}", self.id, self.status),
            None => format!("{} status: '{}'", self.id, self.status),
        }
    }
}

/// What one poll of Flux's wait concludes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FluxWait {
    /// Every object is `Current`: the health check passes.
    Passed,
    /// The wait stops with this error (the Kustomization's `Ready=False`, after
    /// "health check failed after …: ").
    FailedEarly(String),
    /// Flux polls again; at the timeout it fails with [`flux_timeout`].
    Waiting,
}

/// Flux's wait after a poll that saw `objects` (kustomize-controller's default: fail fast).
pub fn flux_wait(objects: &[Seen]) -> FluxWait {
    let failed: Vec<String> = objects
        .iter()
        .filter(|o| o.status == Status::Failed)
        .map(Seen::describe)
        .collect();
    let all_current = objects.iter().all(|o| o.status == Status::Current);
    let terminal = objects
        .iter()
        .all(|o| matches!(o.status, Status::Failed | Status::Current));
    if !(all_current || !failed.is_empty() || terminal) {
        return FluxWait::Waiting;
    }
    if failed.is_empty() {
        return FluxWait::Passed;
    }
    FluxWait::FailedEarly(format!(
        "failed early due to stalled resources: [{}]",
        failed.join(", ")
    ))
}

/// Flux's error when its timeout ends a wait whose last poll saw `objects`.
pub fn flux_timeout(objects: &[Seen]) -> String {
    let late: Vec<String> = objects
        .iter()
        .filter(|o| o.status != Status::Current)
        .map(Seen::describe)
        .collect();
    format!("timeout waiting for: [{}]", late.join(", "))
}

/// Watch object `name` of `api` as Flux's poller reads it (the API server's JSON, not a typed
/// copy) until `pred` holds; panics after `deadline` with the last one seen.
pub async fn watch_until(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    deadline: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let json = |o: &DynamicObject| serde_json::to_value(o).expect("an object as JSON");
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).default_backoff().applied_objects());
    let end = tokio::time::Instant::now() + deadline;
    let mut last = api.get_opt(name).await.ok().flatten().map(|o| json(&o));
    if let Some(v) = last.as_ref().filter(|v| pred(v)) {
        return v.clone();
    }
    loop {
        match tokio::time::timeout_at(end, stream.next()).await {
            Ok(Some(Ok(o))) => {
                let v = json(&o);
                if pred(&v) {
                    return v;
                }
                last = Some(v);
            }
            Ok(Some(Err(_))) => {}
            Ok(None) => panic!("the watch of {name} ended while waiting for {what}"),
            Err(_) => panic!(
                "timed out after {deadline:?} waiting for {name}: {what}\nlast seen: {}",
                last.map_or("<none>".into(), |v| v["status"].to_string())
            ),
        }
    }
}

/// kstatus on `v` (the object Flux names `id`, `Kind/namespace/name`) in `state`: asserts its
/// status and the reason of its verdict, and that Flux's wait passes on `Current`, fails at once on
/// `Failed` and keeps waiting, failing at its timeout, otherwise. Prints a row of the table.
pub fn judge(state: &str, v: &Value, id: &str, (want, reason): (Status, &str)) -> Outcome {
    let o = compute(v).unwrap_or_else(|e| panic!("{state}: kstatus failed: {e}"));
    let seen = [Seen::of(v)];
    let wait = flux_wait(&seen);
    println!("| {state} | {} | {} | {} | {wait:?} |", o.status, o.reason(), o.message);
    assert_eq!(
        (o.status, o.reason()),
        (want, reason),
        "{state}: kstatus on status {}",
        v["status"]
    );
    let expected = match want {
        Status::Current => FluxWait::Passed,
        Status::Failed => FluxWait::FailedEarly(format!(
            "failed early due to stalled resources: [{id} status: 'Failed']"
        )),
        _ => FluxWait::Waiting,
    };
    assert_eq!(wait, expected, "{state}");
    if want == Status::InProgress {
        assert_eq!(
            flux_timeout(&seen),
            format!("timeout waiting for: [{id} status: 'InProgress']")
        );
    }
    o
}
