//! What the kubelet reads of a pod (its images' behaviour, the fields its lifecycle needs) and
//! how it writes a pod's container states.
use std::time::Duration;

use serde_json::{json, Value};

use super::KubeletConfig;

/// How a pod's containers react to SIGTERM when no process is attached.
pub(super) fn stop_delay(pod: &Value, cfg: &KubeletConfig) -> Option<Duration> {
    let images = images_of(pod);
    if images.iter().any(|i| i.contains("ignore-sigterm")) {
        None
    } else if images.iter().any(|i| i.contains("slow-stop")) {
        Some(cfg.stop_delay * cfg.slow_factor.max(1))
    } else {
        Some(cfg.stop_delay)
    }
}

pub(super) fn images_of(pod: &Value) -> Vec<&str> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("image").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Behaviour {
    Normal,
    NeverReady,
    Crash,
    Slow,
}

pub(super) fn behaviour(pod: &Value) -> Behaviour {
    let images = images_of(pod);
    if images.iter().any(|i| i.contains("crash")) {
        Behaviour::Crash
    } else if images.iter().any(|i| i.contains("never-ready")) {
        Behaviour::NeverReady
    } else if images.iter().any(|i| i.contains("slow-start")) {
        Behaviour::Slow
    } else {
        Behaviour::Normal
    }
}

/// What the lifecycle reads of a pod (`spec.nodeName`, `spec.containers`, `spec.restartPolicy`,
/// `status.phase`, `metadata.ownerReferences`), decoded from the stored bytes as a pod-shaped
/// value with only those fields: the rest is skipped by the parser rather than built.
pub(super) fn lifecycle_view(raw: &[u8]) -> Value {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Pod {
        metadata: Meta,
        spec: Spec,
        status: Status,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Meta {
        owner_references: Option<Value>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Spec {
        node_name: Option<Value>,
        containers: Option<Value>,
        restart_policy: Option<Value>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Status {
        phase: Option<Value>,
    }
    let Ok(pod) = serde_json::from_slice::<Pod>(raw) else {
        return Value::Null;
    };
    let mut v = json!({"metadata": {}, "spec": {}, "status": {}});
    let mut put = |at: &str, key: &str, field: Option<Value>| {
        if let (Some(field), Some(obj)) = (field, v.get_mut(at).and_then(Value::as_object_mut)) {
            obj.insert(key.to_string(), field);
        }
    };
    put("metadata", "ownerReferences", pod.metadata.owner_references);
    put("spec", "nodeName", pod.spec.node_name);
    put("spec", "containers", pod.spec.containers);
    put("spec", "restartPolicy", pod.spec.restart_policy);
    put("status", "phase", pod.status.phase);
    v
}

/// Deterministic pod IP from the uid.
pub(super) fn pod_ip(uid: &str) -> String {
    let h = uid
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (h >> 8) % 250, h % 250 + 2)
}

pub(super) fn set_container_state(st: &mut Value, ready: bool, state: Value, add_restarts: i64) {
    let t = super::now();
    if let Some(Value::Array(cs)) = st.get_mut("containerStatuses") {
        for c in cs.iter_mut() {
            c["ready"] = json!(ready);
            c["state"] = state.clone();
            let r = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            c["restartCount"] = json!(r + add_restarts);
        }
    }
    if let Some(Value::Array(conds)) = st.get_mut("conditions") {
        for c in conds.iter_mut() {
            let ty = c.get("type").and_then(Value::as_str).unwrap_or("").to_string();
            if ty == "Ready" || ty == "ContainersReady" {
                let want = if ready { "True" } else { "False" };
                if c.get("status").and_then(Value::as_str) != Some(want) {
                    c["status"] = json!(want);
                    c["lastTransitionTime"] = json!(t);
                }
                if ready {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("reason");
                    }
                } else {
                    c["reason"] = json!("ContainersNotReady");
                }
            }
        }
    }
}
