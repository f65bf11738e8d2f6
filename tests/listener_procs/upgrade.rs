//! Upgrades between the per-listener ownership protocol (every listener's Lease renewed by its
//! holder) and the liveness protocol (one liveness Lease per pod), with real binaries of both:
//! `baton-v1` is the baton of the per-listener protocol, built from this repository's history by
//! `make compat`. Apps take 1 s to stop a listener; every run is checked for listeners in two apps
//! at once (exact intervals, and samples every 20 ms) and for fencing tokens that go back.
//!
//! * Controller first: the new controller takes over Leases its predecessor assigned (they stay
//!   where they run), then the agents are upgraded pod by pod, old and new agents side by side.
//! * Agents first: new agents under the old controller renew each listener's Lease as it
//!   expects; then the controller is upgraded and they switch to their pod's liveness Lease.
//!
//! Either way, once everything is upgraded the agents write nothing at rest but their liveness
//! Leases.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use baton::api::listenerset::liveness::{is_liveness, liveness_lease_name, registration};
use baton::api::listenerset::LEASE_FINALIZER;
use kube::api::ListParams;
use kube::ResourceExt;

use crate::harness::app::AppConfig;
use crate::harness::{baton_bin, listeners, wait_for, AgentFlags, Cluster, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(120);
const LEASE: i32 = 5;
const PODS: [&str; 3] = ["a", "b", "c"];

/// The baton of the per-listener protocol (`make compat`), or `BATON_COMPAT_BIN`.
fn v1() -> PathBuf {
    let bin = std::env::var_os("BATON_COMPAT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| baton_bin().with_file_name("baton-v1"));
    assert!(
        bin.exists(),
        "{} is missing: `make compat` builds the baton of the per-listener protocol from this \
         repository's history (or point BATON_COMPAT_BIN at one)",
        bin.display()
    );
    bin
}

fn slow() -> AppConfig {
    AppConfig {
        stop_delay: Duration::from_secs(1),
        ..AppConfig::default()
    }
}

/// Three pods (`<prefix>-a` …) with sidecars of the binary in use, and a set of 12 listeners all
/// running.
async fn running(ns: &Ns, prefix: &str) -> Vec<String> {
    let pods: Vec<String> = PODS.iter().map(|p| format!("{prefix}-{p}")).collect();
    for p in &pods {
        ok(ns.create_pod(p).await);
    }
    let (spec, _) = listeners("sxt", 12);
    ok(ns.create_set("sxt", spec, LEASE).await);
    ok(ns.settled("sxt", 12, "12 listeners running", LONG).await);
    pods
}

/// Writes of listener Leases (not liveness Leases) by the agents of `ns`, answered so far.
fn agent_listener_writes(ns: &Ns) -> u64 {
    ns.cluster
        .writes()
        .iter()
        .filter(|(who, _)| who.contains(&format!("agent-{}-", ns.name)))
        .filter(|(_, path)| path.contains("/leases/") && !path.contains("/leases/baton-agent."))
        .count() as u64
}

/// Every pod of `pods` registered on its liveness Lease, and acknowledged each listener it
/// holds under that registration (a listener Lease renewed at or after the registration's
/// `acquireTime`): from then on its listeners' validity rests on the liveness Lease alone.
async fn all_registered(ns: &Ns, pods: &[String]) {
    ok(wait_for(
        "every agent registered and its listeners acknowledged under it",
        LONG,
        || async {
            let leases = ns.leases().list(&ListParams::default()).await.ok()?.items;
            let registered = pods.iter().all(|p| {
                let Ok(procs) = ns.pod(p) else { return false };
                let name = liveness_lease_name(&procs.uid);
                let Some(since) = leases
                    .iter()
                    .find(|l| is_liveness(l) && l.metadata.name.as_deref() == Some(name.as_str()))
                    .filter(|l| registration(l, p).is_some())
                    .and_then(|l| l.spec.as_ref()?.acquire_time.clone())
                else {
                    return false;
                };
                leases
                    .iter()
                    .filter(|l| !is_liveness(l))
                    .filter(|l| l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(p.as_str()))
                    .all(|l| {
                        l.spec
                            .as_ref()
                            .and_then(|s| s.renew_time.as_ref())
                            .is_some_and(|r| r.0 >= since.0)
                    })
            });
            registered.then_some(())
        },
    )
    .await);
}

/// After everything is upgraded: in two lease durations the agents write no listener Lease.
async fn quiet_at_rest(ns: &Ns) {
    let before = agent_listener_writes(ns);
    let t = Instant::now();
    ok(wait_for("two lease durations at rest", LONG, || async {
        (t.elapsed() > Duration::from_secs(2 * LEASE as u64)).then_some(())
    })
    .await);
    let after = agent_listener_writes(ns);
    assert_eq!(
        after,
        before,
        "agents wrote listener Leases at rest: {} writes",
        after - before
    );
}

/// Namespace `name` with controller and agents of the per-listener protocol, 12 listeners
/// running on pods named `<prefix>-…`: (namespace, the old controller, the pods).
async fn on_v1(name: &str, prefix: &str) -> (Ns, String, Vec<String>) {
    let v1 = v1();
    let ns = ok(Ns::new(Cluster::shared(), name, slow(), AgentFlags::default()).await);
    ns.use_controller_bin(Some(v1.clone()));
    ns.use_agent_bin(Some(v1));
    let old = ok(ns.start_controller().await);
    let pods = running(&ns, prefix).await;
    (ns, old, pods)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_the_controller_then_the_agents_never_runs_a_listener_twice() {
    let (ns, old, pods) = on_v1("upgrade-ctl", "uc").await;
    let starts = ns.log.starts();

    // The controller is upgraded: what its predecessor assigned stays where it runs.
    ns.use_controller_bin(None);
    ok(ns.stop_controller(&old).await);
    ok(ns.start_controller().await);
    ok(wait_for("the new controller adopted every Lease", LONG, || async {
        let leases = ns
            .leases()
            .list(&ListParams::default().labels("baton.dev/listenerset=sxt"))
            .await
            .ok()?;
        let adopted = leases.items.len() == 12
            && leases
                .items
                .iter()
                .all(|l| l.finalizers().iter().any(|f| f == LEASE_FINALIZER));
        let status = ns.sets().get("sxt").await.ok()?.status?;
        (adopted && status.fencing_token_ceiling.is_some() && status.running == 12).then_some(())
    })
    .await);
    assert_eq!(
        ns.log.starts(),
        starts,
        "nothing moved when the controller was upgraded"
    );
    assert_clean(&ns, false);

    // The agents are upgraded pod by pod: old and new agents side by side meanwhile.
    ns.use_agent_bin(None);
    for p in &pods {
        ok(ns.replace_agent(p).await);
        ok(ns
            .settled("sxt", 12, &format!("all running after {p}'s agent was upgraded"), LONG)
            .await);
        assert_clean(&ns, false);
    }
    all_registered(&ns, &pods).await;
    quiet_at_rest(&ns).await;
    assert_clean(&ns, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_the_agents_then_the_controller_never_runs_a_listener_twice() {
    let (ns, old, pods) = on_v1("upgrade-agents", "ua").await;

    // New agents under the old controller: they find no liveness Lease and renew each
    // listener's Lease, as that controller expects.
    ns.use_agent_bin(None);
    for p in &pods {
        ok(ns.replace_agent(p).await);
        ok(ns
            .settled("sxt", 12, &format!("all running after {p}'s agent was upgraded"), LONG)
            .await);
        assert_clean(&ns, false);
    }
    // Two lease durations under the old controller: nothing expires, nothing moves.
    let starts = ns.log.starts();
    let t = Instant::now();
    ok(
        wait_for("two lease durations under the old controller", LONG, || async {
            (t.elapsed() > Duration::from_secs(2 * LEASE as u64)).then_some(())
        })
        .await,
    );
    assert_eq!(ns.log.starts(), starts, "a listener moved under the old controller");
    assert_clean(&ns, false);

    // The controller is upgraded: the agents register on the liveness Leases it creates.
    ns.use_controller_bin(None);
    ok(ns.stop_controller(&old).await);
    ok(ns.start_controller().await);
    all_registered(&ns, &pods).await;
    ok(ns
        .settled("sxt", 12, "all running under the new controller", LONG)
        .await);
    assert_eq!(
        ns.log.starts(),
        starts,
        "nothing moved when the controller was upgraded"
    );
    quiet_at_rest(&ns).await;
    assert_clean(&ns, true);
}
