//! Server-side `meta.k8s.io/v1` Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
//!
//! Built-in kinds follow `pkg/printers/internalversion/printers.go` as served by the
//! apiserver (which always generates the wide, priority-1 columns too); custom resources
//! follow `apiextensions-apiserver/pkg/registry/customresource/tableconvertor`; anything
//! else gets the default convertor's `Name` + `Created At` columns.

use crate::jsonpath;
use serde_json::{json, Map, Value};

/// One table column definition. `json_path` is set for CRD printer columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// "string" | "integer" | "number" | "boolean" | "date"
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: Option<String>,
}

/// `metav1.ObjectMeta{}.SwaggerDoc()["name"]`.
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]`.
pub const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn col(name: &str, type_: &str, description: &str, priority: i32) -> Column {
    Column {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description: description.to_string(),
        priority,
        json_path: None,
    }
}

fn name_col() -> Column {
    Column {
        format: "name".to_string(),
        ..col("Name", "string", NAME_DESCRIPTION, 0)
    }
}

fn age_col() -> Column {
    col("Age", "string", CREATION_TIMESTAMP_DESCRIPTION, 0)
}

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

/// Columns for a CRD version from its `additionalPrinterColumns` JSON array. `Name` is
/// prepended; with no columns declared the server serves `Age` (`.metadata.creationTimestamp`).
pub fn crd_columns(printer_columns: &Value) -> Vec<Column> {
    let mut cols = vec![name_col()];
    let declared: &[Value] = printer_columns.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if declared.is_empty() {
        cols.push(Column {
            json_path: Some(".metadata.creationTimestamp".to_string()),
            ..col("Age", "date", CREATION_TIMESTAMP_DESCRIPTION, 0)
        });
        return cols;
    }
    for c in declared {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let path = s("jsonPath");
        let mut description = s("description");
        if description.is_empty() {
            description = format!("Custom resource definition column (in JSONPath format): {path}");
        }
        let priority = c
            .get("priority")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0);
        cols.push(Column {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description,
            priority,
            json_path: Some(path),
        });
    }
    cols
}

/// Columns for built-in kinds (by kind name), as the apiserver serves them. Kinds without
/// a dedicated printer get the default convertor's `Name`, `Created At`.
pub fn builtin_columns(kind: &str) -> Vec<Column> {
    match kind {
        "Pod" => vec![
            name_col(),
            col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0),
            col("Status", "string", "The aggregate status of the containers in this pod.", 0),
            col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
            age_col(),
            col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
            col("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename", 1),
            col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.", 1),
            col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates", 1),
        ],
        "Namespace" => vec![
            name_col(),
            col("Status", "string", "The status of the namespace", 0),
            age_col(),
        ],
        "Lease" => vec![
            name_col(),
            col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0),
            age_col(),
        ],
        "Event" => vec![
            col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.", 0),
            col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future", 0),
            col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0),
            col("Object", "string", "The object that this event is about.", 0),
            col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.", 1),
            col("Source", "string", "The component reporting this event. Should be a short machine understandable string.", 1),
            col("Message", "string", "A human-readable description of the status of this operation.", 0),
            col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
            col("Count", "string", "The number of times this event has occurred.", 1),
            Column {
                priority: 1,
                ..name_col()
            },
        ],
        "ConfigMap" => vec![
            name_col(),
            col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0),
            age_col(),
        ],
        "Secret" => vec![
            name_col(),
            col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0),
            col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", 0),
            age_col(),
        ],
        "Service" => vec![
            name_col(),
            col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.", 0),
            col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly.", 0),
            col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.", 0),
            col("Port(s)", "string", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies", 0),
            age_col(),
            col("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.", 1),
        ],
        "ServiceAccount" => vec![
            name_col(),
            col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.", 0),
            age_col(),
        ],
        "ControllerRevision" => vec![
            name_col(),
            col("Controller", "string", "Controller of the object", 0),
            col("Revision", "string", "Revision indicates the revision of the state represented by Data.", 0),
            age_col(),
        ],
        "Node" => vec![
            name_col(),
            col("Status", "string", "The status of the node", 0),
            col("Roles", "string", "The roles of the node", 0),
            age_col(),
            col("Version", "string", "Kubelet Version reported by the node.", 0),
            col("Internal-IP", "string", "List of addresses reachable to the node.", 1),
            col("External-IP", "string", "List of addresses reachable to the node.", 1),
            col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
            col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
            col("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
        ],
        "Deployment" => vec![
            name_col(),
            col("Ready", "string", "Number of the pod with ready state", 0),
            col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
            col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
            age_col(),
            col("Containers", "string", CONTAINERS_DESC, 1),
            col("Images", "string", IMAGES_DESC, 1),
            col("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
        ],
        "ReplicaSet" => vec![
            name_col(),
            col("Desired", "integer", "Replicas is the number of desired replicas.", 0),
            col("Current", "integer", "Replicas is the most recently observed number of replicas.", 0),
            col("Ready", "integer", "The number of ready replicas for this replica set.", 0),
            age_col(),
            col("Containers", "string", CONTAINERS_DESC, 1),
            col("Images", "string", IMAGES_DESC, 1),
            col("Selector", "string", "Selector is a label query over pods that should match the replica count.", 1),
        ],
        "StatefulSet" => vec![
            name_col(),
            col("Ready", "string", "Number of the pod with ready state", 0),
            age_col(),
            col("Containers", "string", CONTAINERS_DESC, 1),
            col("Images", "string", IMAGES_DESC, 1),
        ],
        _ => default_columns(),
    }
}

/// The default table convertor's columns (`rest.NewDefaultTableConvertor`).
fn default_columns() -> Vec<Column> {
    vec![name_col(), col("Created At", "date", CREATION_TIMESTAMP_DESCRIPTION, 0)]
}

/// True if `kind` has a dedicated built-in printer here.
pub fn has_builtin_printer(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Namespace"
            | "Lease"
            | "Event"
            | "ConfigMap"
            | "Secret"
            | "Service"
            | "ServiceAccount"
            | "ControllerRevision"
            | "Node"
            | "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
    )
}

// ---------------------------------------------------------------------------
// Durations and timestamps
// ---------------------------------------------------------------------------

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(d: jiff::SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// `duration.ShortHumanDuration`.
pub fn short_human_duration(d: jiff::SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        "<invalid>".to_string()
    } else if seconds < 0 {
        "0s".to_string()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds / 60 < 60 {
        format!("{}m", seconds / 60)
    } else if seconds / 3600 < 24 {
        format!("{}h", seconds / 3600)
    } else if seconds / 3600 < 24 * 365 {
        format!("{}d", seconds / 3600 / 24)
    } else {
        format!("{}y", seconds / 3600 / 24 / 365)
    }
}

fn parse_ts(v: Option<&Value>) -> Option<jiff::Timestamp> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
}

/// `translateTimestampSince`: `<unknown>` for a missing/zero timestamp.
pub fn translate_timestamp_since(ts: Option<&Value>, now: jiff::Timestamp) -> String {
    match parse_ts(ts) {
        None => "<unknown>".to_string(),
        Some(t) => human_duration(now.duration_since(t)),
    }
}

/// `metatable.ConvertToHumanReadableDateType` on a CRD `date` column value.
fn date_cell(s: &str, now: jiff::Timestamp) -> Value {
    if s.is_empty() || s == "null" {
        return Value::String("<unknown>".to_string());
    }
    match s.parse::<jiff::Timestamp>() {
        Ok(t) => Value::String(human_duration(now.duration_since(t))),
        Err(_) => Value::String("<invalid>".to_string()),
    }
}

fn rfc3339_utc(v: Option<&Value>) -> String {
    match parse_ts(v) {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

// ---------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

fn s_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn i_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn b_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn obj_len(v: &Value, path: &[&str]) -> usize {
    at(v, path).and_then(Value::as_object).map_or(0, Map::len)
}

fn or_placeholder(s: &str, placeholder: &str) -> String {
    if s.is_empty() {
        placeholder.to_string()
    } else {
        s.to_string()
    }
}

fn name_of(obj: &Value) -> Value {
    Value::String(s_at(obj, &["metadata", "name"]).to_string())
}

fn age_of(obj: &Value, now: jiff::Timestamp) -> Value {
    Value::String(translate_timestamp_since(
        obj.get("metadata").and_then(|m| m.get("creationTimestamp")),
        now,
    ))
}

fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `layoutContainerCells`.
fn layout_containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| s_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

// ---------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------

/// Cells for one object. Columns carrying a `json_path` (CRD columns) are evaluated with
/// the CRD table convertor's rules; otherwise the built-in printer for `kind` is used
/// (the default convertor for kinds without one). `now` is used for ages.
pub fn cells(kind: &str, columns: &[Column], obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    if columns.iter().any(|c| c.json_path.is_some()) {
        return crd_cells(columns, obj, now);
    }
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

/// CRD table convertor cells: the name, then the first result of each column's JSONPath.
fn crd_cells(columns: &[Column], obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    columns
        .iter()
        .map(|c| match &c.json_path {
            None => {
                if c.name == "Name" || c.format == "name" {
                    name_of(obj)
                } else {
                    Value::Null
                }
            }
            Some(path) => {
                let first = match jsonpath::eval_results(obj, &format!("{{{path}}}")) {
                    Ok(segments) => segments.into_iter().next().and_then(|s| s.into_iter().next()),
                    Err(_) => None,
                };
                match first {
                    None => Value::Null,
                    Some(v) => cell_for_json_value(&c.type_, v, now),
                }
            }
        })
        .collect()
}

/// `cellForJSONValue`, plus the `string` branch of `ConvertToTable` (which prints the
/// value with the JSONPath printer).
fn cell_for_json_value(type_: &str, v: Value, now: jiff::Timestamp) -> Value {
    if type_ == "string" {
        return match v {
            Value::Null => Value::String("<no value>".to_string()),
            Value::String(_) => v,
            other => Value::String(jsonpath::to_text(&other)),
        };
    }
    match (type_, &v) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else {
                // Go: int64(float64) truncates.
                json!(n.as_f64().unwrap_or(0.0) as i64)
            }
        }
        ("number", Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            // Go marshals float64(3) as `3`.
            if f.fract() == 0.0 && f.abs() < 1e15 {
                json!(f as i64)
            } else {
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        ("boolean", Value::Bool(_)) => v,
        ("date", Value::String(s)) => date_cell(s, now),
        _ => Value::Null,
    }
}

fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
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

// ---------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------

/// True if `v` is an accepted `includeObject` value (`""`, `None`, `Metadata`, `Object`);
/// the real server answers 400 `unrecognized includeObject value: "..."` otherwise.
pub fn valid_include_object(v: &str) -> bool {
    matches!(v, "" | "None" | "Metadata" | "Object")
}

/// Column definitions as serialized in a Table.
pub fn column_definitions(columns: &[Column]) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

fn row_conditions(obj: &Value) -> Option<Value> {
    if obj.get("kind").and_then(Value::as_str) != Some("Pod") {
        return None;
    }
    match s_at(obj, &["status", "phase"]) {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    }
}

/// Build a `meta.k8s.io/v1` Table. `include_object` is the `includeObject` query
/// parameter: `"None"` (row object `null`), `"Metadata"`/`""` (default; a
/// PartialObjectMetadata) or `"Object"` (the whole object). Unknown values are treated
/// as `Metadata` (see [`valid_include_object`]).
pub fn table(
    columns: &[Column],
    rows: &[(Vec<Value>, &Value)],
    resource_version: &str,
    continue_token: Option<&str>,
    include_object: &str,
) -> Value {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert(
            "resourceVersion".to_string(),
            Value::String(resource_version.to_string()),
        );
    }
    if let Some(c) = continue_token.filter(|c| !c.is_empty()) {
        metadata.insert("continue".to_string(), Value::String(c.to_string()));
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|(cells, obj)| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => (*obj).clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            let mut row = Map::new();
            row.insert("cells".to_string(), Value::Array(cells.clone()));
            if let Some(conds) = row_conditions(obj) {
                row.insert("conditions".to_string(), conds);
            }
            row.insert("object".to_string(), object);
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": Value::Object(metadata),
        "columnDefinitions": column_definitions(columns),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests;
