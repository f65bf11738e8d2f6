//! `printPod`: the pod row's ready count, status reason, restarts, IP, node and readiness gates.

use serde_json::Value;

use super::lookup::{age_of, arr_at, at, b_at, i_at, name_of, or_placeholder, s_at};
use super::timestamp::{human_duration, parse_ts};

pub(super) fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let containers = arr_at(pod, &["spec", "containers"]);
    let init_containers = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let mut total = containers.len();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut last_restart: Option<jiff::Timestamp> = None;
    let mut last_restartable_restart: Option<jiff::Timestamp> = None;

    let phase = s_at(pod, &["status", "phase"]);
    let status_reason = s_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };
    for c in conditions {
        if s_at(c, &["type"]) == "PodScheduled" && s_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let is_restartable = |name: &str| {
        init_containers
            .iter()
            .any(|c| s_at(c, &["name"]) == name && s_at(c, &["restartPolicy"]) == "Always")
    };
    total += init_containers
        .iter()
        .filter(|c| s_at(c, &["restartPolicy"]) == "Always")
        .count();

    let bump = |slot: &mut Option<jiff::Timestamp>, cs: &Value| {
        if let Some(t) = parse_ts(at(cs, &["lastState", "terminated", "finishedAt"])) {
            if slot.is_none_or(|cur| cur < t) {
                *slot = Some(t);
            }
        }
    };

    let mut initializing = false;
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        restarts = restarts.saturating_add(i_at(cs, &["restartCount"]));
        bump(&mut last_restart, cs);
        let restartable = is_restartable(s_at(cs, &["name"]));
        if restartable {
            restartable_restarts = restartable_restarts.saturating_add(i_at(cs, &["restartCount"]));
            bump(&mut last_restartable_restart, cs);
        }
        let terminated = at(cs, &["state", "terminated"]);
        let waiting = at(cs, &["state", "waiting"]);
        if terminated.is_some_and(|t| i_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && b_at(cs, &["started"]) {
            if b_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = s_at(t, &["reason"]);
            reason = if r.is_empty() {
                let signal = i_at(t, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", i_at(t, &["exitCode"]))
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(w) =
            waiting.filter(|w| !s_at(w, &["reason"]).is_empty() && s_at(w, &["reason"]) != "PodInitializing")
        {
            reason = format!("Init:{}", s_at(w, &["reason"]));
        } else {
            reason = format!("Init:{}/{}", i, init_containers.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| s_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| s_at(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts = restarts.saturating_add(i_at(cs, &["restartCount"]));
            bump(&mut last_restart, cs);
            let waiting = at(cs, &["state", "waiting"]);
            let terminated = at(cs, &["state", "terminated"]);
            if let Some(w) = waiting.filter(|w| !s_at(w, &["reason"]).is_empty()) {
                reason = s_at(w, &["reason"]).to_string();
            } else if let Some(t) = terminated.filter(|t| !s_at(t, &["reason"]).is_empty()) {
                reason = s_at(t, &["reason"]).to_string();
            } else if let Some(t) = terminated {
                let signal = i_at(t, &["signal"]);
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", i_at(t, &["exitCode"]))
                };
            } else if b_at(cs, &["ready"]) && at(cs, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| s_at(c, &["type"]) == "Ready" && s_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", human_duration(now.duration_since(t)))
        }
        _ => restarts.to_string(),
    };

    let mut ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|p| s_at(p, &["ip"]))
        .unwrap_or("");
    if ip.is_empty() {
        ip = s_at(pod, &["status", "podIP"]);
    }
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                let ct = s_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| s_at(c, &["type"]) == ct)
                    .is_some_and(|c| s_at(c, &["status"]) == "True")
            })
            .count();
        format!("{}/{}", true_count, gates.len())
    };

    vec![
        name_of(pod),
        Value::String(format!("{ready}/{total}")),
        Value::String(reason),
        Value::String(restarts_str),
        age_of(pod, now),
        Value::String(or_placeholder(ip, "<none>")),
        Value::String(or_placeholder(s_at(pod, &["spec", "nodeName"]), "<none>")),
        Value::String(or_placeholder(s_at(pod, &["status", "nominatedNodeName"]), "<none>")),
        Value::String(readiness_gates),
    ]
}
