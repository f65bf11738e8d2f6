//! The fake nodes: kwok manages Node objects carrying the annotation `kwok.x-k8s.io/node: fake`
//! (their status, heartbeat Leases) and plays the pods bound to them through its stages —
//! `controlplane/stages/pods.yaml`, which takes pods Running and Ready and stops them the way
//! baton-sim's kubelet does, with the delays of a [`PodTiming`].

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::Error;

/// The annotation by which kwok knows the nodes it plays.
pub const NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

/// Pods whose processes a test harness runs carry this annotation: kwok leaves their
/// termination to the harness, which stops the processes and then deletes the pod, as a kubelet
/// does once its containers have exited.
pub const NODE_AGENT_ANNOTATION: &str = "baton.dev/node-agent";

const STAGES: &str = include_str!("../stages/pods.yaml");

/// How long kwok takes for each step of a pod's life (baton-sim's `KubeletConfig` knobs).
#[derive(Clone, Debug)]
pub struct PodTiming {
    /// Bound → Running.
    pub start: Duration,
    /// Running → Ready.
    pub ready: Duration,
    /// `slow-start` and `slow-stop` images take this many times longer.
    pub slow_factor: u32,
    /// Deleted → gone (a container without a process of the harness).
    pub stop: Duration,
    /// Running → Succeeded or Failed (a Job's pod).
    pub run: Duration,
}

impl Default for PodTiming {
    fn default() -> Self {
        PodTiming {
            start: Duration::from_millis(30),
            ready: Duration::from_millis(100),
            slow_factor: 10,
            stop: Duration::from_millis(50),
            run: Duration::from_millis(300),
        }
    }
}

/// kwok's configuration: the pod stages with `timing`'s delays.
pub fn stages(timing: &PodTiming) -> String {
    let ms = |d: Duration| d.as_millis().to_string();
    STAGES
        .replace("{{start}}", &ms(timing.start))
        .replace("{{ready}}", &ms(timing.ready))
        .replace("{{slow}}", &ms(timing.ready * timing.slow_factor))
        .replace("{{stop}}", &ms(timing.stop))
        .replace("{{slowstop}}", &ms(timing.stop * timing.slow_factor))
        .replace("{{run}}", &ms(timing.run))
}

/// The name of fake node `i`.
pub fn node_name(i: usize) -> String {
    format!("kwok-node-{i}")
}

/// Create fake node `i` (no taints, room for many pods).
pub async fn create(client: &kube::Client, i: usize) -> Result<(), Error> {
    let name = node_name(i);
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION.0: NODE_ANNOTATION.1},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
        },
    }))
    .map_err(|e| Error::Start(format!("node {name}: {e}")))?;
    match Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether node `n` reports Ready.
pub fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_get_every_delay() {
        let s = stages(&PodTiming::default());
        for placeholder in [
            "{{start}}",
            "{{ready}}",
            "{{slow}}",
            "{{stop}}",
            "{{slowstop}}",
            "{{run}}",
        ] {
            assert!(!s.contains(placeholder), "{placeholder} left in the stages");
        }
        assert!(s.contains("durationMilliseconds: 1000\n"), "slow start is 10 x 100 ms");
        // kwok's own templates survive.
        assert!(s.contains("{{ $now := Now }}"));
    }
}
