//! A ListenerSet beside the workloads teams already run: an `apps/v1` Deployment or StatefulSet
//! (run by the simulator's workload controllers, as kube-controller-manager runs them) whose pod
//! template carries the `baton agent` sidecar, and what users do to it with real kubectl —
//! `rollout restart`, `set image`, `scale`, a partitioned update. Each case returns the apps'
//! record of the run: every start and stop of every listener, so duplicates, token order and the
//! gap of every move (old app stopped → new app started) can be read from it.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde_json::{json, Value};

use super::app::{AbortOnDrop, Analysis};
use super::kubectl::Kubectl;
use super::{listeners, AppKind, Ns, APP, APP_LABEL, R};

const LONG: Duration = Duration::from_secs(180);
/// The workload's name in every case.
pub const NAME: &str = "web";

/// What is done to the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Deployment, `maxSurge: 1, maxUnavailable: 0`: `kubectl rollout restart`.
    SurgeRestart,
    /// Deployment, `maxSurge: 1, maxUnavailable: 0`: `kubectl set image`.
    SurgeSetImage,
    /// Deployment, `maxSurge: 0, maxUnavailable: 1`: `kubectl rollout restart`.
    NoSurgeRestart,
    /// Deployment: `kubectl scale --replicas=1`, then back to 3.
    ScaleDownUp,
    /// StatefulSet (OrderedReady): `kubectl rollout restart`.
    StatefulRestart,
    /// StatefulSet with `partition: 2`: `kubectl set image` replaces only `web-2`.
    StatefulPartition,
}

impl Case {
    pub const ALL: [Case; 6] = [
        Case::SurgeRestart,
        Case::SurgeSetImage,
        Case::NoSurgeRestart,
        Case::ScaleDownUp,
        Case::StatefulRestart,
        Case::StatefulPartition,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Case::SurgeRestart => "Deployment maxSurge 1 / maxUnavailable 0, rollout restart",
            Case::SurgeSetImage => "Deployment maxSurge 1 / maxUnavailable 0, set image",
            Case::NoSurgeRestart => "Deployment maxSurge 0 / maxUnavailable 1, rollout restart",
            Case::ScaleDownUp => "Deployment scale 3 → 1 → 3",
            Case::StatefulRestart => "StatefulSet rollout restart",
            Case::StatefulPartition => "StatefulSet partition 2, set image",
        }
    }

    fn stateful(self) -> bool {
        matches!(self, Case::StatefulRestart | Case::StatefulPartition)
    }

    /// `deployment/web` or `statefulset/web`.
    pub fn resource(self) -> String {
        let kind = if self.stateful() { "statefulset" } else { "deployment" };
        format!("{kind}/{NAME}")
    }
}

/// The workload's manifest: 3 replicas of the app and its `baton agent` sidecar serving `set`.
pub fn manifest(case: Case, set: &str) -> Value {
    let template = json!({
        "metadata": {"labels": {APP_LABEL: APP}},
        "spec": {
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {"name": "app", "image": "app:v1"},
                {"name": "baton-agent", "image": "baton:dev", "args": ["agent", format!("--listenerset={set}")]}
            ]
        }
    });
    let selector = json!({"matchLabels": {APP_LABEL: APP}});
    if case.stateful() {
        let partition = if case == Case::StatefulPartition { 2 } else { 0 };
        return json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": NAME},
            "spec": {"replicas": 3, "serviceName": NAME, "selector": selector, "template": template,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}});
    }
    let (surge, unavailable) = if case == Case::NoSurgeRestart { (0, 1) } else { (1, 0) };
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME},
        "spec": {"replicas": 3, "selector": selector, "template": template,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
}

/// What a case leaves to check.
pub struct Outcome {
    /// The apps' record of the whole run.
    pub analysis: Analysis,
    /// Starts of listeners from the user's command on (the moves it caused, and the first
    /// starts of pods it added).
    pub moves: usize,
}

/// Run `case` in `ns`: a controller, the workload with its sidecars running as real processes, a
/// ListenerSet of `n` listeners settled on it, then the user's command and `kubectl rollout
/// status` until the workload is done, and every listener running again once, on a live pod.
pub async fn run(ns: &Arc<Ns>, case: Case, n: usize) -> R<Outcome> {
    let kubectl = ns.cluster.kubectl();
    ns.start_controller().await?;
    let _node = AbortOnDrop(ns.run_declared_sidecars("baton-agent", AppKind::Model));
    let set = "accounts";
    let file = kubectl.file(&format!("{}-{NAME}.json", ns.name), &manifest(case, set));
    expect_ok(&kubectl, &["apply", "-n", &ns.name, "-f", &file]).await?;
    rollout_status(&kubectl, ns, case).await?;
    let (spec, keys) = listeners(set, n);
    ns.create_set(set, spec, 5).await?;
    ns.settled(set, n, "every listener running on the workload's pods", LONG)
        .await?;
    let starts_before = ns.log.starts();
    let res = case.resource();
    match case {
        Case::SurgeRestart | Case::NoSurgeRestart | Case::StatefulRestart => {
            expect_ok(&kubectl, &["rollout", "restart", "-n", &ns.name, &res]).await?;
        }
        Case::SurgeSetImage | Case::StatefulPartition => {
            expect_ok(&kubectl, &["set", "image", "-n", &ns.name, &res, "app=app:v2"]).await?;
        }
        Case::ScaleDownUp => {
            expect_ok(&kubectl, &["scale", "-n", &ns.name, &res, "--replicas=1"]).await?;
            rollout_status(&kubectl, ns, case).await?;
            on_live_pods(ns, &keys, 1).await?;
            expect_ok(&kubectl, &["scale", "-n", &ns.name, &res, "--replicas=3"]).await?;
        }
    }
    rollout_status(&kubectl, ns, case).await?;
    on_live_pods(ns, &keys, 3).await?;
    Ok(Outcome {
        analysis: ns.log.analyse(),
        moves: ns.log.starts().saturating_sub(starts_before),
    })
}

/// A set created, then the workload applied with kubectl beside it (as `kubectl apply -f` of a
/// directory holding both does): the pods turn Ready and their agents register one after
/// another while the set waits for them. Returns how many listeners each pod holds once every
/// listener of the set runs on a live pod of the workload.
pub async fn created_together(ns: &Arc<Ns>, n: usize) -> R<std::collections::BTreeMap<String, usize>> {
    let kubectl = ns.cluster.kubectl();
    ns.start_controller().await?;
    let _node = AbortOnDrop(ns.run_declared_sidecars("baton-agent", AppKind::Model));
    let set = "accounts";
    let (spec, keys) = listeners(set, n);
    ns.create_set(set, spec, 5).await?;
    let case = Case::SurgeRestart;
    let file = kubectl.file(&format!("{}-{NAME}.json", ns.name), &manifest(case, set));
    expect_ok(&kubectl, &["apply", "-n", &ns.name, "-f", &file]).await?;
    rollout_status(&kubectl, ns, case).await?;
    on_live_pods(ns, &keys, 3).await?;
    let held = ns
        .settled(set, n, "every listener running on the pod its Lease names", LONG)
        .await?;
    let mut per_pod = std::collections::BTreeMap::new();
    for (holder, _) in held.values() {
        *per_pod.entry(holder.clone().unwrap_or_default()).or_insert(0) += 1;
    }
    Ok(per_pod)
}

pub async fn expect_ok(kubectl: &Kubectl, args: &[&str]) -> R<String> {
    let r = kubectl.run(args).await;
    if r.code != 0 {
        return Err(format!("kubectl {}: {r}", args.join(" ")));
    }
    Ok(r.stdout)
}

/// `kubectl rollout status` until the workload is rolled out (a partitioned StatefulSet: until
/// its partition is).
async fn rollout_status(kubectl: &Kubectl, ns: &Ns, case: Case) -> R<()> {
    let out = expect_ok(
        kubectl,
        &["rollout", "status", "-n", &ns.name, &case.resource(), "--timeout=150s"],
    )
    .await?;
    let done = [
        "successfully rolled out",
        "rolling update complete",
        "partitioned roll out complete",
    ];
    if done.iter().any(|d| out.contains(d)) {
        Ok(())
    } else {
        Err(format!("kubectl rollout status said: {out}"))
    }
}

/// Wait until `pods` pods of the workload are live (not terminating) and every listener of
/// `keys` runs in exactly one app, on one of them.
pub async fn on_live_pods(ns: &Ns, keys: &[String], pods: usize) -> R<()> {
    let api = ns.pods_api();
    let live = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let refresh = {
        let live = live.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(list) = api
                    .list(&ListParams::default().labels(&format!("{APP_LABEL}={APP}")))
                    .await
                {
                    let names = list
                        .items
                        .iter()
                        .filter(|p: &&Pod| p.metadata.deletion_timestamp.is_none())
                        .filter_map(|p| p.metadata.name.clone())
                        .collect();
                    *live.lock().unwrap_or_else(|p| p.into_inner()) = names;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let _refresh = AbortOnDrop(refresh);
    let what = format!("every listener running once on the {pods} live pods of the workload");
    ns.wait_running(&what, keys, LONG, |pod| {
        let live = live.lock().unwrap_or_else(|p| p.into_inner());
        live.len() == pods && live.contains(pod)
    })
    .await
}
