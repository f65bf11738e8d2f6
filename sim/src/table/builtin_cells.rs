//! Cells of the built-in printers (`pkg/printers/internalversion/printers.go`), one function per
//! kind; pods have their own module.

use serde_json::{json, Value};

use super::lookup::{age_of, arr_at, at, b_at, i_at, name_of, obj_len, or_placeholder, s_at, string_map};
use super::pod_cells::pod_cells;
use super::timestamp::{human_duration, parse_ts, rfc3339_utc, translate_timestamp_since};

/// Cells for one object of a built-in kind: its printer's, or the default convertor's
/// (`Name`, `Created At`) for kinds without one.
pub(super) fn builtin_cells(kind: &str, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    match kind {
        "Pod" => pod_cells(obj, now),
        "Namespace" => vec![
            name_of(obj),
            Value::String(s_at(obj, &["status", "phase"]).to_string()),
            age_of(obj, now),
        ],
        "Lease" => vec![
            name_of(obj),
            Value::String(s_at(obj, &["spec", "holderIdentity"]).to_string()),
            age_of(obj, now),
        ],
        "Event" => event_cells(obj, now),
        "ConfigMap" => vec![
            name_of(obj),
            json!((obj_len(obj, &["data"]) + obj_len(obj, &["binaryData"])) as i64),
            age_of(obj, now),
        ],
        "Secret" => vec![
            name_of(obj),
            Value::String(s_at(obj, &["type"]).to_string()),
            json!(obj_len(obj, &["data"]) as i64),
            age_of(obj, now),
        ],
        "Service" => service_cells(obj, now),
        "ServiceAccount" => vec![
            name_of(obj),
            json!(arr_at(obj, &["secrets"]).len() as i64),
            age_of(obj, now),
        ],
        "ControllerRevision" => controller_revision_cells(obj, now),
        "Node" => node_cells(obj, now),
        "Deployment" => deployment_cells(obj, now),
        "Job" => job_cells(obj, now),
        "ReplicaSet" => {
            let (names, images) = layout_containers(arr_at(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name_of(obj),
                json!(at(obj, &["spec", "replicas"]).and_then(Value::as_i64).unwrap_or(1)),
                json!(i_at(obj, &["status", "replicas"])),
                json!(i_at(obj, &["status", "readyReplicas"])),
                age_of(obj, now),
                Value::String(names),
                Value::String(images),
                Value::String(selector_string(obj.get("spec").and_then(|s| s.get("selector")), true)),
            ]
        }
        "StatefulSet" => {
            let (names, images) = layout_containers(arr_at(obj, &["spec", "template", "spec", "containers"]));
            let desired = at(obj, &["spec", "replicas"]).and_then(Value::as_i64).unwrap_or(1);
            vec![
                name_of(obj),
                Value::String(format!("{}/{}", i_at(obj, &["status", "readyReplicas"]), desired)),
                age_of(obj, now),
                Value::String(names),
                Value::String(images),
            ]
        }
        _ => vec![
            name_of(obj),
            Value::String(rfc3339_utc(
                obj.get("metadata").and_then(|m| m.get("creationTimestamp")),
            )),
        ],
    }
}

/// `layoutContainerCells`.
fn layout_containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| s_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `metav1.FormatLabelSelector` (format = true) or `LabelSelectorAsSelector(..).String()`
/// with `<invalid>` on error (format = false, as printDeployment does).
fn selector_string(sel: Option<&Value>, format: bool) -> String {
    let sel = sel.unwrap_or(&Value::Null);
    if format {
        crate::selector::format_label_selector_json(sel)
    } else {
        match crate::selector::from_label_selector_json(sel) {
            Ok(s) => crate::selector::to_selector_string(&s),
            Err(_) => "<invalid>".to_string(),
        }
    }
}

/// printEvent (wide). Accepts both core/v1 and events.k8s.io/v1 shapes.
fn event_cells(ev: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let pick = |a: &str, b: &str| at(ev, &[a]).or_else(|| at(ev, &[b]));
    let first_ts = pick("firstTimestamp", "deprecatedFirstTimestamp");
    let first = if parse_ts(first_ts).is_some() {
        translate_timestamp_since(first_ts, now)
    } else {
        translate_timestamp_since(at(ev, &["eventTime"]), now)
    };
    let last_ts = pick("lastTimestamp", "deprecatedLastTimestamp");
    let mut last = if parse_ts(last_ts).is_some() {
        translate_timestamp_since(last_ts, now)
    } else {
        first.clone()
    };
    let mut count = pick("count", "deprecatedCount").and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = at(ev, &["series"]) {
        last = translate_timestamp_since(at(series, &["lastObservedTime"]), now);
        count = i_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let involved = pick("involvedObject", "regarding").unwrap_or(&Value::Null);
    let kind = s_at(involved, &["kind"]).to_lowercase();
    let name = s_at(involved, &["name"]);
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let source = pick("source", "deprecatedSource").unwrap_or(&Value::Null);
    let first_non_empty = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
    // core/v1 serializes ReportingController as `reportingComponent`; events.k8s.io/v1
    // as `reportingController`.
    let reporting_controller = first_non_empty(s_at(ev, &["reportingComponent"]), s_at(ev, &["reportingController"]));
    let component = first_non_empty(s_at(source, &["component"]), &reporting_controller);
    let instance = first_non_empty(s_at(source, &["host"]), s_at(ev, &["reportingInstance"]));
    let source_str = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    let message = pick("message", "note")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    vec![
        Value::String(last),
        Value::String(s_at(ev, &["type"]).to_string()),
        Value::String(s_at(ev, &["reason"]).to_string()),
        Value::String(target),
        Value::String(s_at(involved, &["fieldPath"]).to_string()),
        Value::String(source_str),
        Value::String(message),
        Value::String(first),
        json!(count),
        name_of(ev),
    ]
}

fn service_cells(svc: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let svc_type = s_at(svc, &["spec", "type"]);
    let mut internal_ip = arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if internal_ip.is_empty() {
        internal_ip = or_placeholder(s_at(svc, &["spec", "clusterIP"]), "<none>");
    }
    let external_ips: Vec<&str> = arr_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb: Vec<&str> = arr_at(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .filter_map(|i| {
                    let ip = s_at(i, &["ip"]);
                    let host = s_at(i, &["hostname"]);
                    if !ip.is_empty() {
                        Some(ip)
                    } else if !host.is_empty() {
                        Some(host)
                    } else {
                        None
                    }
                })
                .collect();
            lb.sort_unstable();
            lb.dedup();
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = lb.clone();
                all.extend(external_ips.iter().copied());
                all.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => s_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = i_at(p, &["port"]);
            let node_port = i_at(p, &["nodePort"]);
            let proto = or_placeholder(s_at(p, &["protocol"]), "TCP");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name_of(svc),
        Value::String(svc_type.to_string()),
        Value::String(internal_ip),
        Value::String(external),
        Value::String(ports),
        age_of(svc, now),
        Value::String(crate::selector::format_labels(&string_map(at(
            svc,
            &["spec", "selector"],
        )))),
    ]
}

fn controller_revision_cells(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let controller = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| b_at(r, &["controller"]))
        .map(|r| {
            let api_version = s_at(r, &["apiVersion"]);
            let group = match api_version.split_once('/') {
                Some((g, _)) => g,
                None => "",
            };
            let kind = s_at(r, &["kind"]);
            let name = s_at(r, &["name"]);
            if kind.is_empty() && group.is_empty() {
                name.to_string()
            } else if group.is_empty() {
                format!("{}/{}", kind.to_lowercase(), name)
            } else {
                format!("{}.{}/{}", kind.to_lowercase(), group.to_lowercase(), name)
            }
        })
        .unwrap_or_else(|| "<none>".to_string());
    vec![
        name_of(obj),
        Value::String(controller),
        json!(i_at(obj, &["revision"])),
        age_of(obj, now),
    ]
}

fn node_cells(node: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(c) = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| s_at(c, &["type"]) == "Ready")
    {
        status.push(if s_at(c, &["status"]) == "True" {
            "Ready".to_string()
        } else {
            "NotReady".to_string()
        });
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if b_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in string_map(at(node, &["metadata", "labels"])) {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.push(v);
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |t: &str| {
        arr_at(node, &["status", "addresses"])
            .iter()
            .find(|a| s_at(a, &["type"]) == t)
            .map(|a| s_at(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let info = |k: &str| or_placeholder(s_at(node, &["status", "nodeInfo", k]), "<unknown>");
    vec![
        name_of(node),
        Value::String(status.join(",")),
        Value::String(roles),
        age_of(node, now),
        Value::String(s_at(node, &["status", "nodeInfo", "kubeletVersion"]).to_string()),
        Value::String(address("InternalIP")),
        Value::String(address("ExternalIP")),
        Value::String(info("osImage")),
        Value::String(info("kernelVersion")),
        Value::String(info("containerRuntimeVersion")),
    ]
}

fn deployment_cells(d: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let desired = at(d, &["spec", "replicas"]).and_then(Value::as_i64).unwrap_or(1);
    let (names, images) = layout_containers(arr_at(d, &["spec", "template", "spec", "containers"]));
    vec![
        name_of(d),
        Value::String(format!("{}/{}", i_at(d, &["status", "readyReplicas"]), desired)),
        json!(i_at(d, &["status", "updatedReplicas"])),
        json!(i_at(d, &["status", "availableReplicas"])),
        age_of(d, now),
        Value::String(names),
        Value::String(images),
        Value::String(selector_string(d.get("spec").and_then(|s| s.get("selector")), false)),
    ]
}

/// `printJob`: what the Job came to (its first true condition in the printer's order), how many
/// pods succeeded of how many wanted, and how long it took or has taken so far.
fn job_cells(job: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let has = |kind: &str| {
        arr_at(job, &["status", "conditions"])
            .iter()
            .any(|c| s_at(c, &["type"]) == kind && s_at(c, &["status"]) == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null()) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let succeeded = i_at(job, &["status", "succeeded"]);
    let completions = match at(job, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match i_at(job, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let started = parse_ts(at(job, &["status", "startTime"]));
    let duration = match (started, parse_ts(at(job, &["status", "completionTime"]))) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.duration_since(s)),
        (Some(s), Some(c)) => human_duration(c.duration_since(s)),
    };
    let (names, images) = layout_containers(arr_at(job, &["spec", "template", "spec", "containers"]));
    vec![
        name_of(job),
        json!(status),
        Value::String(completions),
        Value::String(duration),
        age_of(job, now),
        Value::String(names),
        Value::String(images),
        Value::String(selector_string(job.get("spec").and_then(|s| s.get("selector")), true)),
    ]
}
