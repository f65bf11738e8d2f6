//! `printPod`: the pod row's ready count, status reason, restarts, IP, node and readiness gates.

use serde_json::Value;

use super::lookup::{age_of, arr_at, at, b_at, i_at, name_of, or_placeholder, s_at};
use super::timestamp::{human_duration, parse_ts};

/// A restart count and the latest time a counted container last terminated.
#[derive(Clone, Copy, Default)]
struct Restarts {
    count: i64,
    last: Option<jiff::Timestamp>,
}

impl Restarts {
    /// Counts one container status's restarts and its last termination.
    fn add(&mut self, cs: &Value) {
        self.count = self.count.saturating_add(i_at(cs, &["restartCount"]));
        if let Some(t) = parse_ts(at(cs, &["lastState", "terminated", "finishedAt"])) {
            if self.last.is_none_or(|cur| cur < t) {
                self.last = Some(t);
            }
        }
    }

    /// The Restarts cell: `N (5m ago)` once a restart time is known, else just `N`.
    fn cell(&self, now: jiff::Timestamp) -> String {
        match self.last {
            Some(t) if self.count != 0 => {
                format!("{} ({} ago)", self.count, human_duration(now.duration_since(t)))
            }
            _ => self.count.to_string(),
        }
    }
}

/// The ready count and status reason as the container statuses are walked.
struct Row {
    ready: usize,
    reason: String,
}

/// What walking the init container statuses found.
struct InitScan {
    /// Restarts of every init container.
    all: Restarts,
    /// Restarts of the restartable (sidecar) init containers only.
    restartable: Restarts,
    /// An init container has not finished yet; `reason` says which and why.
    initializing: bool,
}

pub(super) fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let init_containers = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let total = arr_at(pod, &["spec", "containers"]).len()
        + init_containers
            .iter()
            .filter(|c| s_at(c, &["restartPolicy"]) == "Always")
            .count();
    let mut row = Row {
        ready: 0,
        reason: initial_reason(pod, conditions),
    };
    let init = scan_init_containers(pod, init_containers, &mut row);
    let mut restarts = init.all;
    if !init.initializing || condition_true(conditions, "Initialized") {
        restarts = init.restartable;
        scan_containers(pod, conditions, &mut row, &mut restarts);
    }
    apply_deletion(pod, &mut row.reason);

    vec![
        name_of(pod),
        Value::String(format!("{}/{total}", row.ready)),
        Value::String(row.reason),
        Value::String(restarts.cell(now)),
        age_of(pod, now),
        Value::String(or_placeholder(pod_ip(pod), "<none>")),
        Value::String(or_placeholder(s_at(pod, &["spec", "nodeName"]), "<none>")),
        Value::String(or_placeholder(s_at(pod, &["status", "nominatedNodeName"]), "<none>")),
        Value::String(readiness_gates(pod, conditions)),
    ]
}

/// The status reason before any container is looked at: the pod's own reason, else its
/// phase, unless scheduling is gated.
fn initial_reason(pod: &Value, conditions: &[Value]) -> String {
    let status_reason = s_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        s_at(pod, &["status", "phase"]).to_string()
    } else {
        status_reason.to_string()
    };
    for c in conditions {
        if s_at(c, &["type"]) == "PodScheduled" && s_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }
    reason
}

/// True if the pod's first condition of type `type_` has status `True`.
fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| s_at(c, &["type"]) == type_)
        .is_some_and(|c| s_at(c, &["status"]) == "True")
}

/// Walks the init container statuses in order up to the first one still blocking the pod,
/// whose state becomes the `Init:` reason. Started sidecars count towards readiness.
fn scan_init_containers(pod: &Value, init_containers: &[Value], row: &mut Row) -> InitScan {
    let is_restartable = |name: &str| {
        init_containers
            .iter()
            .any(|c| s_at(c, &["name"]) == name && s_at(c, &["restartPolicy"]) == "Always")
    };
    let mut scan = InitScan {
        all: Restarts::default(),
        restartable: Restarts::default(),
        initializing: false,
    };
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        scan.all.add(cs);
        let restartable = is_restartable(s_at(cs, &["name"]));
        if restartable {
            scan.restartable.add(cs);
        }
        let terminated = at(cs, &["state", "terminated"]);
        if terminated.is_some_and(|t| i_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && b_at(cs, &["started"]) {
            if b_at(cs, &["ready"]) {
                row.ready += 1;
            }
            continue;
        }
        row.reason = init_reason(cs, i, init_containers.len());
        scan.initializing = true;
        break;
    }
    scan
}

/// The `Init:` reason for the `i`th of `n` init containers, which has not succeeded.
fn init_reason(cs: &Value, i: usize, n: usize) -> String {
    if let Some(t) = at(cs, &["state", "terminated"]) {
        let r = s_at(t, &["reason"]);
        if !r.is_empty() {
            return format!("Init:{r}");
        }
        let signal = i_at(t, &["signal"]);
        return if signal != 0 {
            format!("Init:Signal:{signal}")
        } else {
            format!("Init:ExitCode:{}", i_at(t, &["exitCode"]))
        };
    }
    let waiting = at(cs, &["state", "waiting"]).map_or("", |w| s_at(w, &["reason"]));
    if !waiting.is_empty() && waiting != "PodInitializing" {
        format!("Init:{waiting}")
    } else {
        format!("Init:{i}/{n}")
    }
}

/// Walks the app container statuses last to first, so the first container's state wins the
/// reason; a completed pod with a container still running reads Running or NotReady.
fn scan_containers(pod: &Value, conditions: &[Value], row: &mut Row, restarts: &mut Restarts) {
    let mut has_running = false;
    for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
        restarts.add(cs);
        let waiting = at(cs, &["state", "waiting"]);
        let terminated = at(cs, &["state", "terminated"]);
        if let Some(w) = waiting.filter(|w| !s_at(w, &["reason"]).is_empty()) {
            row.reason = s_at(w, &["reason"]).to_string();
        } else if let Some(t) = terminated.filter(|t| !s_at(t, &["reason"]).is_empty()) {
            row.reason = s_at(t, &["reason"]).to_string();
        } else if let Some(t) = terminated {
            let signal = i_at(t, &["signal"]);
            row.reason = if signal != 0 {
                format!("Signal:{signal}")
            } else {
                format!("ExitCode:{}", i_at(t, &["exitCode"]))
            };
        } else if b_at(cs, &["ready"]) && at(cs, &["state", "running"]).is_some() {
            has_running = true;
            row.ready += 1;
        }
    }
    if row.reason == "Completed" && has_running {
        let pod_ready = conditions
            .iter()
            .any(|c| s_at(c, &["type"]) == "Ready" && s_at(c, &["status"]) == "True");
        row.reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
    }
}

/// A pod being deleted reads Terminating (or Unknown once its node is lost) until it ends.
fn apply_deletion(pod: &Value, reason: &mut String) {
    if at(pod, &["metadata", "deletionTimestamp"]).is_none() {
        return;
    }
    let phase = s_at(pod, &["status", "phase"]);
    if s_at(pod, &["status", "reason"]) == "NodeLost" {
        *reason = "Unknown".to_string();
    } else if phase != "Succeeded" && phase != "Failed" {
        *reason = "Terminating".to_string();
    }
}

/// The first of `status.podIPs`, falling back to `status.podIP`.
fn pod_ip(pod: &Value) -> &str {
    let ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|p| s_at(p, &["ip"]))
        .unwrap_or("");
    if ip.is_empty() {
        s_at(pod, &["status", "podIP"])
    } else {
        ip
    }
}

/// `true/total` readiness gates whose condition is True, or `<none>` without gates.
fn readiness_gates(pod: &Value, conditions: &[Value]) -> String {
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let true_count = gates
        .iter()
        .filter(|g| condition_true(conditions, s_at(g, &["conditionType"])))
        .count();
    format!("{}/{}", true_count, gates.len())
}
