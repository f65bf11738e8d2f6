//! One pod's life on the simulated node, from its creation until it is deleted: bind it to the
//! node, start its containers (Running), then — as its images ask — make it Ready (and, for a
//! Job's pod, run it to completion), leave it unready, or crash-loop it.
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::completion::{completion, Completion};
use super::pod::{behaviour, lifecycle_view, pod_ip, set_container_state, Behaviour};
use super::{now, pods_key, Kubelet, KubeletConfig, NODE_NAME};
use crate::store::Write;

/// What the lifecycle needs from the pod, decoded once when it starts. Kept small, not the
/// parsed pod: thousands of these tasks wait at once.
struct Plan {
    /// Already has a node (created with `spec.nodeName`, or bound before the kubelet started).
    bound: bool,
    /// Not yet started; otherwise the kubelet restarted and only the process is resumed.
    pending: bool,
    containers: Vec<String>,
    images: Vec<String>,
    behaviour: Behaviour,
    ends: Option<Completion>,
}

impl Plan {
    /// Only the fields the lifecycle reads are decoded (not the metadata's labels, annotations
    /// and managed fields, nor the status).
    fn of(raw: &[u8]) -> Plan {
        let pod = lifecycle_view(raw);
        let bound = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let pending = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .is_none_or(|p| p == "Pending");
        let (containers, images): (Vec<String>, Vec<String>) = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                        (field("name"), field("image"))
                    })
                    .unzip()
            })
            .unwrap_or_default();
        Plan {
            bound,
            pending,
            containers,
            images,
            behaviour: behaviour(&pod),
            ends: completion(&pod),
        }
    }
}

impl Kubelet {
    /// Drive one pod incarnation (`uid`) through its life; returns early once the pod is gone
    /// or replaced, since every step writes only to the same incarnation.
    pub(super) async fn lifecycle(
        self: Arc<Self>,
        ns: &str,
        name: &str,
        uid: &str,
        process: Arc<Mutex<Option<JoinHandle<()>>>>,
    ) {
        let Some(stored) = self.core.store.get(&pods_key(), ns, name).filter(|p| p.uid == uid) else {
            return;
        };
        let plan = Plan::of(&stored.raw);
        drop(stored);
        let cfg = self.config();
        if !plan.pending {
            // Already running (kubelet restarted): just resume the process.
            self.start_process(ns, name, uid, process).await;
            return;
        }
        if !plan.bound && !self.bind(ns, name, uid, &cfg).await {
            return;
        }
        let Some(started) = self.start_containers(ns, name, uid, &plan, &cfg).await else {
            return;
        };
        // A crash-looping container never stays up long enough to run its process.
        if plan.behaviour != Behaviour::Crash {
            self.start_process(ns, name, uid, process).await;
        }
        match plan.behaviour {
            Behaviour::Normal | Behaviour::Slow => self.become_ready(ns, name, uid, &plan, &cfg, &started).await,
            Behaviour::NeverReady => {}
            Behaviour::Crash => self.crash_loop(ns, name, uid, &cfg).await,
        }
    }

    /// The scheduler's part: after `schedule_delay`, bind the pod to the node. False when the
    /// pod is gone, replaced or being deleted by then.
    async fn bind(&self, ns: &str, name: &str, uid: &str, cfg: &KubeletConfig) -> bool {
        tokio::time::sleep(cfg.schedule_delay).await;
        let ok = self.core.store.write(&pods_key(), ns, name, false, |cur| {
            let Some(cur) = cur.filter(|c| c.uid == uid && !c.deleting) else {
                return Err(crate::error::ApiError::not_found("pods", name));
            };
            let mut v = cur.value();
            v["spec"]["nodeName"] = json!(NODE_NAME);
            v["status"]["conditions"] =
                json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}]);
            Ok(Write::Put(v))
        });
        ok.is_ok()
    }

    /// After `start_delay`, the pod is Running with every container started but none Ready.
    /// Returns the start time (the containers' `startedAt`), or None when the pod is gone.
    async fn start_containers(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        plan: &Plan,
        cfg: &KubeletConfig,
    ) -> Option<String> {
        tokio::time::sleep(cfg.start_delay).await;
        let ip = pod_ip(uid);
        let started = now();
        let statuses: Vec<Value> = plan
            .containers
            .iter()
            .zip(plan.images.iter())
            .map(|(c, i)| json!({"name": c, "image": i, "imageID": format!("sim://{i}"), "containerID": format!("sim://{uid}-{c}"), "ready": false, "started": true, "restartCount": 0, "state": {"running": {"startedAt": started}}}))
            .collect();
        let ok = self.set_status(ns, name, uid, |st| {
            st["phase"] = json!("Running");
            st["hostIP"] = json!("10.0.0.1");
            st["podIP"] = json!(ip);
            st["podIPs"] = json!([{"ip": ip}]);
            st["startTime"] = json!(started);
            st["containerStatuses"] = json!(statuses);
            st["conditions"] = json!([
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
            ]);
        });
        ok.then_some(started)
    }

    /// After the ready delay (`slow_factor` times longer for `slow-start` images) the containers
    /// are Ready; a Job's pod then runs to completion.
    async fn become_ready(&self, ns: &str, name: &str, uid: &str, plan: &Plan, cfg: &KubeletConfig, started: &str) {
        let delay = if plan.behaviour == Behaviour::Slow {
            cfg.ready_delay * cfg.slow_factor.max(1)
        } else {
            cfg.ready_delay
        };
        tokio::time::sleep(delay).await;
        self.set_status(ns, name, uid, |st| {
            set_container_state(st, true, json!({"running": {"startedAt": started}}), 0)
        });
        if let Some(c) = plan.ends {
            self.run_to_completion(ns, name, uid, c).await;
        }
    }

    /// A `crash` image restarts every `crash_interval`, waiting in `CrashLoopBackOff`, until
    /// the pod is gone.
    async fn crash_loop(&self, ns: &str, name: &str, uid: &str, cfg: &KubeletConfig) {
        loop {
            tokio::time::sleep(cfg.crash_interval).await;
            let alive = self.set_status(ns, name, uid, |st| {
                set_container_state(st, false, json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}), 1);
            });
            if !alive {
                return;
            }
        }
    }
}
