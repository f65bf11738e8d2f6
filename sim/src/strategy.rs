//! Per-kind defaulting and validation of built-in kinds (what kube-apiserver's registry
//! strategies do), kept to what clients of the simulator can observe.
use base64::Engine;
use serde_json::{json, Value};

use crate::error::{ApiError, StatusCause};
use crate::resources::{Registry, ResourceType};
use crate::store::Store;

mod apps;
pub mod crd_status;

fn cause(reason: &str, field: &str, message: impl Into<String>) -> StatusCause {
    StatusCause {
        reason: reason.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// Default and validate `new` (with `old` on updates). Returns field errors; `Err` for errors
/// that are not field errors.
pub fn admit(
    store: &Store,
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
) -> Result<Vec<StatusCause>, ApiError> {
    if rt.group == "batch" && rt.plural == "jobs" {
        let causes = job(old, new);
        return Ok(if causes.is_empty() {
            typed_check(rt, new)
        } else {
            causes
        });
    }
    if rt.group == crate::admission::policy::GROUP {
        let causes = match rt.plural.as_str() {
            "validatingadmissionpolicies" => crate::admission::policy::validation::policy(new),
            "validatingadmissionpolicybindings" => crate::admission::policy::validation::binding(new),
            _ => Vec::new(),
        };
        return Ok(if causes.is_empty() {
            typed_check(rt, new)
        } else {
            causes
        });
    }
    if rt.group == "apps" && rt.plural != "controllerrevisions" {
        let causes = apps::workload(&rt.plural, old, new);
        return Ok(if causes.is_empty() {
            typed_check(rt, new)
        } else {
            causes
        });
    }
    if !rt.group.is_empty() && rt.group != "apiextensions.k8s.io" {
        return Ok(typed_check(rt, new));
    }
    let causes = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => pod(old, new),
        ("", "namespaces") => {
            if old.is_none() || new.pointer("/status/phase").is_none() {
                crate::meta::set_pointer(new, "/status/phase", json!("Active"));
            }
            // The namespace lifecycle finalizer kube-apiserver adds on create.
            if old.is_none() && new.pointer("/spec/finalizers").is_none() {
                crate::meta::set_pointer(new, "/spec/finalizers", json!(["kubernetes"]));
            }
            Vec::new()
        }
        ("", "secrets") => secret(new),
        ("", "configmaps") => configmap(new),
        ("", "services") => service(store, old, new),
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd(old, new),
        _ => Vec::new(),
    };
    let mut causes = causes;
    if causes.is_empty() {
        causes.extend(typed_check(rt, new));
    }
    Ok(causes)
}

/// Decode a built-in object into its k8s-openapi type: a wrongly typed field is rejected
/// the way the real server's decoder rejects it.
fn typed_check(rt: &ResourceType, v: &Value) -> Vec<StatusCause> {
    use k8s_openapi::api as k;
    fn check<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<StatusCause> {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(_) => Vec::new(),
            Err(e) => vec![cause("FieldValueTypeInvalid", "", format!("Invalid value: {e}"))],
        }
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => check::<k::core::v1::Pod>(v),
        ("", "Secret") => check::<k::core::v1::Secret>(v),
        ("", "ConfigMap") => check::<k::core::v1::ConfigMap>(v),
        ("", "Service") => check::<k::core::v1::Service>(v),
        ("", "ServiceAccount") => check::<k::core::v1::ServiceAccount>(v),
        ("", "Namespace") => check::<k::core::v1::Namespace>(v),
        ("", "Event") => check::<k::core::v1::Event>(v),
        ("coordination.k8s.io", "Lease") => check::<k::coordination::v1::Lease>(v),
        ("apps", "ControllerRevision") => check::<k::apps::v1::ControllerRevision>(v),
        ("apps", "Deployment") => check::<k::apps::v1::Deployment>(v),
        ("apps", "ReplicaSet") => check::<k::apps::v1::ReplicaSet>(v),
        ("apps", "StatefulSet") => check::<k::apps::v1::StatefulSet>(v),
        ("batch", "Job") => check::<k::batch::v1::Job>(v),
        ("events.k8s.io", "Event") => check::<k::events::v1::Event>(v),
        ("rbac.authorization.k8s.io", "Role") => check::<k::rbac::v1::Role>(v),
        ("rbac.authorization.k8s.io", "ClusterRole") => check::<k::rbac::v1::ClusterRole>(v),
        ("rbac.authorization.k8s.io", "RoleBinding") => check::<k::rbac::v1::RoleBinding>(v),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => check::<k::rbac::v1::ClusterRoleBinding>(v),
        ("policy", "PodDisruptionBudget") => check::<k::policy::v1::PodDisruptionBudget>(v),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            check::<k::admissionregistration::v1::ValidatingAdmissionPolicy>(v)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            check::<k::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(v)
        }
        _ => Vec::new(),
    }
}

/// The containers of the pod spec `spec` (at field path `at`), as kube-apiserver's
/// `validateContainerCommon` sees them: at least one, each with a name and an image, and valid
/// ports. Pods and the pod templates of Jobs alike.
fn containers(at: &str, spec: Option<&Value>) -> Vec<StatusCause> {
    let mut out = Vec::new();
    match spec.and_then(|s| s.get("containers")).and_then(Value::as_array) {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                if c.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
                    out.push(cause(
                        "FieldValueRequired",
                        &format!("{at}.containers[{i}].name"),
                        "Required value",
                    ));
                }
                if c.get("image").and_then(Value::as_str).is_none_or(str::is_empty) {
                    out.push(cause(
                        "FieldValueRequired",
                        &format!("{at}.containers[{i}].image"),
                        "Required value",
                    ));
                }
                out.extend(container_ports(at, i, c));
            }
        }
        _ => out.push(cause(
            "FieldValueRequired",
            &format!("{at}.containers"),
            "Required value",
        )),
    }
    out
}

fn pod(old: Option<&Value>, new: &mut Value) -> Vec<StatusCause> {
    let mut out = containers("spec", new.get("spec"));
    if !out.is_empty() {
        return out;
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return out;
    };
    default_pod_spec(spec);
    // What admission adds to a pod, not to a pod template: its service account, priority and
    // service links.
    spec.entry("serviceAccountName").or_insert(json!("default"));
    spec.entry("enableServiceLinks").or_insert(json!(true));
    spec.entry("preemptionPolicy").or_insert(json!("PreemptLowerPriority"));
    spec.entry("priority").or_insert(json!(0));
    match old {
        None => {
            if new.pointer("/status/phase").is_none() {
                crate::meta::set_pointer(new, "/status/phase", json!("Pending"));
                crate::meta::set_pointer(new, "/status/qosClass", json!("BestEffort"));
            }
        }
        Some(old) => {
            // Pod spec is immutable but for images and a few fields, as on the real server.
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
                for list in ["containers", "initContainers"] {
                    if let Some(Value::Array(cs)) = s.get_mut(list) {
                        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                            c.remove("image");
                        }
                    }
                }
                if let Some(o) = s.as_object_mut() {
                    o.remove("activeDeadlineSeconds");
                    o.remove("tolerations");
                    o.remove("terminationGracePeriodSeconds");
                    if old.pointer("/spec/nodeName").is_none() {
                        o.remove("nodeName");
                    }
                }
                s
            };
            if strip(old) != strip(new) {
                out.push(cause("FieldValueForbidden", "spec", "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
            }
        }
    }
    out
}

/// `SetDefaults_PodSpec` and the container defaults: what a pod and a workload's pod template
/// both get.
fn default_pod_spec(spec: &mut serde_json::Map<String, Value>) {
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("schedulerName").or_insert(json!("default-scheduler"));
    spec.entry("securityContext").or_insert(json!({}));
    if let Some(Value::Array(cs)) = spec.get_mut("containers") {
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let latest = c
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| !i.contains(':') || i.ends_with(":latest"));
            c.entry("imagePullPolicy")
                .or_insert(json!(if latest { "Always" } else { "IfNotPresent" }));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
        }
    }
}

/// `spec.containers[i].ports[j].containerPort` is a port number, as kube-apiserver's
/// `validateContainerPorts` requires (`IsValidPortNum`: 1–65535).
fn container_ports(at: &str, i: usize, c: &Value) -> Vec<StatusCause> {
    let Some(ports) = c.get("ports").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (j, p) in ports.iter().enumerate() {
        let field = format!("{at}.containers[{i}].ports[{j}].containerPort");
        match p.get("containerPort") {
            None | Some(Value::Null) => out.push(cause("FieldValueRequired", &field, "Required value")),
            Some(v) if v.as_i64() == Some(0) => out.push(cause("FieldValueRequired", &field, "Required value")),
            Some(v) if v.as_i64().is_some_and(|n| (1..=65535).contains(&n)) => {}
            Some(v) => out.push(cause(
                "FieldValueInvalid",
                &field,
                format!("Invalid value: {v}: must be between 1 and 65535, inclusive"),
            )),
        }
    }
    out
}

/// Job defaults and validation (`pkg/apis/batch/v1/defaults.go`, `validation.go`), kept to
/// what the simulated Job controller uses.
fn job(old: Option<&Value>, new: &mut Value) -> Vec<StatusCause> {
    let uid = new
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match new.pointer("/spec/template/spec/restartPolicy").and_then(Value::as_str) {
        Some("OnFailure" | "Never") => {}
        None | Some("") => {
            return vec![cause(
                "FieldValueRequired",
                "spec.template.spec.restartPolicy",
                "Required value: valid values: \"OnFailure\", \"Never\"",
            )]
        }
        Some(other) => {
            return vec![cause(
                "FieldValueNotSupported",
                "spec.template.spec.restartPolicy",
                format!("Unsupported value: {other:?}: supported values: \"OnFailure\", \"Never\""),
            )]
        }
    }
    // The pod template is validated as a pod spec (`ValidatePodTemplateSpec`): a container
    // without an image is refused here, not when the Job controller creates its pod.
    let template = containers("spec.template.spec", new.pointer("/spec/template/spec"));
    if !template.is_empty() {
        return template;
    }
    if old.is_some() {
        return Vec::new();
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return vec![cause("FieldValueRequired", "spec.template", "Required value")];
    };
    if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
        spec.insert("completions".into(), json!(1));
    }
    spec.entry("parallelism").or_insert(json!(1));
    spec.entry("backoffLimit").or_insert(json!(6));
    spec.entry("completionMode").or_insert(json!("NonIndexed"));
    spec.entry("suspend").or_insert(json!(false));
    spec.entry("podReplacementPolicy")
        .or_insert(json!("TerminatingOrFailed"));
    if spec.get("manualSelector").and_then(Value::as_bool) != Some(true) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let labels = [
            ("batch.kubernetes.io/controller-uid", uid.as_str()),
            ("batch.kubernetes.io/job-name", name.as_str()),
            ("controller-uid", uid.as_str()),
            ("job-name", name.as_str()),
        ];
        if new.pointer("/spec/template/metadata").is_none_or(|m| !m.is_object()) {
            crate::meta::set_pointer(new, "/spec/template/metadata", json!({}));
        }
        if let Some(meta) = new
            .pointer_mut("/spec/template/metadata")
            .and_then(Value::as_object_mut)
        {
            let l = meta.entry("labels").or_insert_with(|| json!({}));
            if !l.is_object() {
                *l = json!({});
            }
            for (k, v) in labels {
                l[k] = json!(v);
            }
        }
    }
    Vec::new()
}

fn secret(new: &mut Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let Some(obj) = new.as_object_mut() else { return out };
    obj.entry("type").or_insert(json!("Opaque"));
    if let Some(Value::Object(sd)) = obj.remove("stringData") {
        let data = obj.entry("data").or_insert(json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default();
                d.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(s)));
            }
        }
    }
    if let Some(Value::Object(d)) = obj.get("data") {
        for (k, v) in d {
            let ok = v
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                out.push(cause(
                    "FieldValueInvalid",
                    &format!("data[{k}]"),
                    "Invalid value: illegal base64 data",
                ));
            }
            if !config_key_ok(k) {
                out.push(cause(
                    "FieldValueInvalid",
                    &format!("data[{k}]"),
                    format!("Invalid value: {k:?}: {CONFIG_KEY_ERR}"),
                ));
            }
        }
    }
    out
}

/// apimachinery's `IsConfigMapKey` regex error, with its examples and pattern.
const CONFIG_KEY_ERR: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn config_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn configmap(new: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    for field in ["data", "binaryData"] {
        if let Some(Value::Object(d)) = new.get(field) {
            for k in d.keys().filter(|k| !config_key_ok(k)) {
                out.push(cause(
                    "FieldValueInvalid",
                    &format!("{field}[{k}]"),
                    format!("Invalid value: {k:?}: {CONFIG_KEY_ERR}"),
                ));
            }
        }
    }
    out
}

fn service(store: &Store, old: Option<&Value>, new: &mut Value) -> Vec<StatusCause> {
    let prior_ip = old.and_then(|o| o.pointer("/spec/clusterIP")).cloned();
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return vec![cause("FieldValueRequired", "spec.ports", "Required value")];
    };
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    if let Some(ip) = prior_ip {
        spec.insert("clusterIP".into(), ip);
    } else if spec.get("clusterIP").is_none() && spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
        let n = store.current_rv();
        spec.insert(
            "clusterIP".into(),
            json!(format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 1)),
        );
    }
    // What the service REST storage fills in (single-stack IPv4 cluster).
    let headless_or_external = matches!(spec.get("type").and_then(Value::as_str), Some("ExternalName"));
    if !headless_or_external {
        if let Some(ip) = spec.get("clusterIP").cloned() {
            spec.entry("clusterIPs").or_insert(json!([ip]));
        }
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
    }
    if matches!(
        spec.get("type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    ) {
        spec.entry("externalTrafficPolicy").or_insert(json!("Cluster"));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
    if new.pointer("/status/loadBalancer").is_none() {
        crate::meta::set_pointer(new, "/status/loadBalancer", json!({}));
    }
    Vec::new()
}

fn crd(old: Option<&Value>, new: &mut Value) -> Vec<StatusCause> {
    let types = match Registry::types_from_crd(new) {
        Ok(t) => t,
        Err(e) => return vec![cause("FieldValueInvalid", "spec", e)],
    };
    let Some(first) = types.first() else {
        return vec![cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: must have at least one served version",
        )];
    };
    let expected = format!("{}.{}", first.plural, first.group);
    let name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if name != expected {
        return vec![cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        )];
    }
    let storage: Vec<String> = new
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if storage.len() != 1 {
        return vec![cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        )];
    }
    let rule_errors = crate::cel::check_crd(new);
    if !rule_errors.is_empty() {
        return rule_errors;
    }
    let names = new.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let now = crate::meta::now_rfc3339();
    let mut status = json!({
        "acceptedNames": names,
        "storedVersions": storage,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
    // An update keeps what the conditions said (a CRD being deleted stays Terminating).
    crd_status::keep_conditions(old, &mut status);
    if let Some(o) = new.as_object_mut() {
        o.insert("status".into(), status);
    }
    Vec::new()
}
