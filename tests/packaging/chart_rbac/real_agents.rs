//! On the real control plane: a real `baton agent` beside every pod of the application once kwok
//! takes it Running, as its sidecar would run — authenticated as the application's
//! ServiceAccount with a token from the TokenRequest API bound to the pod, attached to the pod
//! so the node agent sends it SIGTERM when the pod is deleted.
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};

use super::harness::{agent_command, AgentLogs, APP_SA};
use crate::support::process::LoggedChild;
use crate::world::real::node::NodeAgent;

pub struct RealAgents {
    pub admin: kube::Client,
    pub node: Arc<NodeAgent>,
    pub admin_kubeconfig: PathBuf,
    pub dir: PathBuf,
    pub logs: AgentLogs,
    pub set: String,
    pub ns: String,
}

impl RealAgents {
    /// Watch the application's pods and start an agent beside each new Running one, until
    /// aborted (the agents, children of their tasks, are killed with the test's runtime).
    pub async fn run(self) {
        let me = Arc::new(self);
        let pods: Api<Pod> = Api::namespaced(me.admin.clone(), &me.ns);
        let config = watcher::Config::default().labels(&format!("app={APP_SA}"));
        let mut events = watcher(pods, config).applied_objects().boxed();
        let mut started = HashSet::new();
        while let Some(ev) = events.next().await {
            let Ok(pod) = ev else { continue };
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if !running || pod.metadata.deletion_timestamp.is_some() || !started.insert(uid.clone()) {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            tokio::spawn(me.clone().agent(name, uid));
        }
    }

    async fn agent(self: Arc<Self>, name: String, uid: String) {
        let pod_dir = self.dir.join(&name);
        let _ = std::fs::create_dir_all(&pod_dir);
        let kubeconfig = pod_dir.join("kubeconfig");
        let token = crate::world::token_request(&self.admin, &self.ns, APP_SA, Some((&name, &uid))).await;
        let user = format!("system:serviceaccount:{}:{APP_SA}", self.ns);
        crate::world::write_token_kubeconfig(&self.admin_kubeconfig, &kubeconfig, &user, &token, &self.ns);
        let file = pod_dir.join("listeners.json");
        let pod = (self.ns.as_str(), name.as_str(), uid.as_str());
        let mut cmd = agent_command(&kubeconfig, &self.set, &file, pod, &["--ack-timeout-seconds", "1"]);
        let Ok(mut child) = LoggedChild::spawn(&mut cmd, "addr") else {
            return;
        };
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.clone(), child.log.clone()));
        if self.node.attach(&self.ns, &name, child.pid).await.is_err() {
            // The pod went away before the agent could be attached to it.
            child.terminate();
        }
        let _ = child.child.wait().await;
    }
}
