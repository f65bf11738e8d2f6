//! `baton controller` high availability: two controller *processes* (the real binary) with leader
//! election against one in-process simulator, each with its own identity (bearer token), so the
//! simulator's write log tells who wrote what, and when.
//!
//! 1. Exactly one reconciles: the standby writes nothing but the election Lease; `baton_leader`
//!    is 1 on the leader and 0 on the standby; both are healthy and ready.
//! 2. SIGTERM to the leader mid-rollout: the old process exits 0 after releasing the Lease, and
//!    the standby takes over at once and finishes the rollout.
//! 3. kill -9 of the leader mid-rollout: the standby takes over within lease duration + retry
//!    period (+ slack) and finishes.
//! 4. A partitioned leader (all its requests held by the simulator) stops its work before its
//!    Lease could expire, exits non-zero, and none of its writes arrives after the new leader's.
//! 5. Without the CRDs the controller exits non-zero, naming the missing CRD.
//!
//! Timings: lease duration 3 s, renew deadline 2 s, retry period 500 ms.
use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use baton::api::rollout::{Rollout, RolloutPhase};
use baton_sim::handlers::WriteRecord;
use baton_sim::{KubeletConfig, Sim, SimConfig};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};

use support::controller::{self, temp_dir, ControllerProc};
use support::process::metric;
use support::{fast_kubelet, healthy_on, identities, manifest_v, wait_for, Env, LONG, NS};

const LEASE: &str = "baton-controller";
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_millis(500);
/// Allowance for a loaded 2-core machine on top of protocol bounds.
const SLACK: Duration = Duration::from_secs(2);
const NAME: &str = "web";
const REPLICAS: i32 = 6;
const LEADER: &str = "baton-ha-a";
const STANDBY: &str = "baton-ha-b";

/// Pods Ready ~0.4 s after creation: a 6-instance rollout (maxSurge 1) takes a few seconds, so
/// there is time to act on the leader mid-rollout.
fn kubelet() -> KubeletConfig {
    KubeletConfig {
        ready_delay: Duration::from_millis(400),
        ..fast_kubelet()
    }
}

/// Start `baton controller` as `id` with leader election on [`LEASE`] and the test timings,
/// and wait until it serves /metrics.
async fn start_controller(sim: &Sim, dir: &Path, id: &str) -> ControllerProc {
    controller::start(sim, dir, id, &election_flags()).await
}

/// Leader election on [`LEASE`] with the test timings.
fn election_flags() -> Vec<&'static str> {
    let election = ["--leader-elect", "true", "--lease-name", LEASE, "--lease-namespace", NS];
    election
        .iter()
        .chain(controller::ELECTION_TIMINGS.iter())
        .copied()
        .collect()
}

/// `baton_leader` (None: not scraped).
async fn leader_gauge(c: &ControllerProc) -> Option<f64> {
    c.metric("baton_leader").await
}

/// `baton_reconcile_total{controller="rollout"}`, every result (0 when absent; None: not scraped).
async fn rollout_reconciles(c: &ControllerProc) -> Option<f64> {
    let text = c.scrape().await?;
    Some(rollout_reconciles_in(&text))
}

fn token(id: &str) -> String {
    format!("token={id}")
}

/// Every write (non-GET request) `id` made, in arrival order.
fn writes_by(sim: &Sim, id: &str) -> Vec<WriteRecord> {
    let t = token(id);
    sim.core
        .writes()
        .into_iter()
        .filter(|w| w.identity.contains(&t))
        .collect()
}

/// A write to the election Lease (create on the collection, or replace of the object).
fn is_election_lease(w: &WriteRecord) -> bool {
    let collection = format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases");
    w.path == format!("{collection}/{LEASE}") || (w.method == "POST" && w.path == collection)
}

fn describe_writes(ws: &[WriteRecord], since: Instant) -> String {
    ws.iter()
        .map(|w| {
            let t =
                w.at.checked_duration_since(since)
                    .map_or("-".into(), |d| format!("+{d:?}"));
            format!("  {t} {} {} {}", w.identity, w.method, w.path)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The old leader's writes all arrived before the new leader's first non-Lease write; returns
/// that write's arrival.
fn assert_fenced(sim: &Sim, old: &str, new: &str, since: Instant) -> Instant {
    let new_writes = writes_by(sim, new);
    let first_new = new_writes.iter().find(|w| !is_election_lease(w)).unwrap_or_else(|| {
        panic!(
            "{new} made no non-Lease write:\n{}",
            describe_writes(&new_writes, since)
        )
    });
    let late: Vec<WriteRecord> = writes_by(sim, old)
        .into_iter()
        .filter(|w| w.at >= first_new.at)
        .collect();
    assert!(
        late.is_empty(),
        "{old} wrote after {new}'s first write ({} {} at +{:?}):\n{}",
        first_new.method,
        first_new.path,
        first_new.at.saturating_duration_since(since),
        describe_writes(&late, since)
    );
    first_new.at
}

/// Two controllers: `LEADER` started first and leading, then `STANDBY` ready; a Rollout of
/// `REPLICAS` instances Healthy on v1.
struct Pair {
    env: Env,
    leader: ControllerProc,
    standby: ControllerProc,
    t0: Instant,
    _dir: tempfile::TempDir,
}

async fn pair(tag: &str) -> Pair {
    let t0 = Instant::now();
    let env = Env::with_kubelet(kubelet()).await;
    let dir = temp_dir(tag);
    let leader = start_controller(&env.sim, dir.path(), LEADER).await;
    leader.wait_metric("baton_leader", 1.0).await;
    let standby = start_controller(&env.sim, dir.path(), STANDBY).await;
    standby.wait_ready().await;
    env.apply(&manifest_v(NAME, REPLICAS, "v1")).await;
    env.wait_rollout(NAME, "Healthy on v1", LONG, |r| healthy_on(r, "v1", REPLICAS as usize))
        .await;
    Pair {
        env,
        leader,
        standby,
        t0,
        _dir: dir,
    }
}

/// Some, not all, instances Ready on `version`, the rollout still progressing.
fn mid_rollout(r: &Rollout, version: &str) -> bool {
    let Some(st) = &r.status else { return false };
    let on = st
        .instances
        .iter()
        .filter(|i| i.ready && i.version.as_deref() == Some(version))
        .count();
    support::current_generation(r) && st.phase == Some(RolloutPhase::Progressing) && on >= 1 && on < REPLICAS as usize
}

/// Start the v1 → v2 rollout and return once it is under way.
async fn start_v2(env: &Env) {
    env.apply(&manifest_v(NAME, REPLICAS, "v2")).await;
    env.wait_rollout(NAME, "the v2 rollout under way", LONG, |r| mid_rollout(r, "v2"))
        .await;
}

async fn wait_healthy_v2(env: &Env) -> Rollout {
    env.wait_rollout(NAME, "Healthy on v2", LONG, |r| healthy_on(r, "v2", REPLICAS as usize))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_controller_reconciles() {
    let p = pair("one").await;
    p.env.apply(&manifest_v(NAME, REPLICAS, "v2")).await;
    wait_healthy_v2(&p.env).await;

    // The standby wrote nothing but (attempts at) the election Lease.
    let standby_writes = writes_by(&p.env.sim, STANDBY);
    let other: Vec<WriteRecord> = standby_writes
        .iter()
        .filter(|w| !is_election_lease(w))
        .cloned()
        .collect();
    assert!(
        other.is_empty(),
        "the standby wrote outside the election Lease:\n{}",
        describe_writes(&other, p.t0)
    );
    // The leader did the rollout.
    let leader_writes = writes_by(&p.env.sim, LEADER);
    assert!(
        leader_writes
            .iter()
            .any(|w| w.method == "POST" && w.path.ends_with("/pods")),
        "the leader created no pods:\n{}",
        describe_writes(&leader_writes, p.t0)
    );

    let (lm, sm) = (
        p.leader.scrape().await.expect("leader /metrics"),
        p.standby.scrape().await.expect("standby /metrics"),
    );
    assert_eq!(metric(&lm, "baton_leader"), Some(1.0), "leader /metrics:\n{lm}");
    assert_eq!(metric(&sm, "baton_leader"), Some(0.0), "standby /metrics:\n{sm}");
    // client-go's name for the same, per Lease.
    let status = format!("leader_election_master_status{{name=\"{LEASE}\"}}");
    assert_eq!(metric(&lm, &status), Some(1.0), "leader /metrics:\n{lm}");
    assert_eq!(metric(&sm, &status), Some(0.0), "standby /metrics:\n{sm}");
    assert_eq!(
        metric(&lm, "baton_leader_transitions_total"),
        Some(1.0),
        "leader /metrics:\n{lm}"
    );
    assert_eq!(
        metric(&sm, "baton_leader_transitions_total"),
        Some(0.0),
        "standby /metrics:\n{sm}"
    );
    assert!(rollout_reconciles_in(&lm) > 0.0, "leader /metrics:\n{lm}");
    assert_eq!(rollout_reconciles_in(&sm), 0.0, "standby /metrics:\n{sm}");
    assert!(
        lm.lines()
            .any(|l| l.starts_with("baton_kubernetes_api_requests_total{")),
        "leader /metrics:\n{lm}"
    );
    for c in [&p.leader, &p.standby] {
        assert_eq!(c.get("/healthz").await.map(|r| r.0), Some(200), "/healthz of {}", c.id);
        assert_eq!(c.get("/readyz").await.map(|r| r.0), Some(200), "/readyz of {}", c.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_over_mid_rollout() {
    let mut p = pair("term").await;
    start_v2(&p.env).await;
    let t_term = Instant::now();
    p.leader.terminate();
    let status = p.leader.exited(LONG).await;
    assert!(status.success(), "the old leader exited with {status}");
    p.standby.wait_metric("baton_leader", 1.0).await;
    wait_healthy_v2(&p.env).await;
    assert!(
        rollout_reconciles(&p.standby).await.is_some_and(|n| n > 0.0),
        "the new leader never reconciled"
    );

    // The old leader's last write released the Lease; the standby acquired it well within a
    // lease duration of that (driven by its watch, not by expiry).
    let old = writes_by(&p.env.sim, LEADER);
    let release = old.last().expect("the old leader wrote");
    assert!(
        is_election_lease(release) && release.method == "PUT",
        "the old leader's last write is not the Lease release:\n{}",
        describe_writes(&old, p.t0)
    );
    let new = writes_by(&p.env.sim, STANDBY);
    let acquire = new
        .iter()
        .find(|w| is_election_lease(w) && w.at > release.at)
        .unwrap_or_else(|| panic!("no acquire after the release:\n{}", describe_writes(&new, p.t0)));
    let gap = acquire.at - release.at;
    assert!(gap < LEASE_DURATION, "the standby acquired {gap:?} after the release");
    eprintln!(
        "SIGTERM → release {:?}, release → acquire {gap:?}",
        release.at.saturating_duration_since(t_term)
    );
    let first_new = assert_fenced(&p.env.sim, LEADER, STANDBY, p.t0);
    assert!(
        first_new > t_term,
        "the standby wrote outside the Lease before the handover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_leader_is_replaced_within_the_lease_duration() {
    let mut p = pair("kill").await;
    start_v2(&p.env).await;
    let t_kill = Instant::now();
    p.leader.proc.child.start_kill().expect("SIGKILL");
    let status = p.leader.exited(LONG).await;
    assert!(!status.success(), "a killed leader exited with {status}");
    let sim = &p.env.sim;
    let acquire = wait_for("the standby's takeover write", LONG, || async {
        writes_by(sim, STANDBY)
            .into_iter()
            .find(|w| is_election_lease(w) && w.at > t_kill)
    })
    .await;
    let takeover = acquire.at - t_kill;
    let bound = LEASE_DURATION + RETRY_PERIOD + SLACK;
    eprintln!("kill -9 → takeover write {takeover:?} (bound {bound:?})");
    assert!(
        takeover <= bound,
        "the standby took over {takeover:?} after the crash (bound {bound:?})"
    );
    p.standby.wait_metric("baton_leader", 1.0).await;
    wait_healthy_v2(&p.env).await;
    assert_fenced(sim, LEADER, STANDBY, p.t0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_before_its_lease_expires() {
    let mut p = pair("block").await;
    start_v2(&p.env).await;
    let sim = &p.env.sim;
    let rule = token(LEADER);
    let t_block = Instant::now();
    sim.faults.block(&rule);

    // The partitioned leader's own probe endpoint still answers: it drops leadership by itself.
    let leader = &p.leader;
    let t_stopped = wait_for("the partitioned leader to report baton_leader 0", LONG, || async {
        match leader_gauge(leader).await {
            Some(0.0) => Some(Instant::now()),
            Some(_) => None,
            None => panic!("the partitioned leader stopped serving /metrics before reporting baton_leader 0"),
        }
    })
    .await;
    // Its last renewal that could have succeeded arrived before the block; no one may take over
    // before that + the lease duration.
    let last_renew = writes_by(sim, LEADER)
        .into_iter()
        .rfind(|w| is_election_lease(w) && w.at < t_block)
        .expect("the leader renewed its Lease");
    let earliest_expiry = last_renew.at + LEASE_DURATION;
    assert!(
        t_stopped < earliest_expiry,
        "the partitioned leader was still leading {:?} after its Lease could expire",
        t_stopped - earliest_expiry
    );
    let status = p.leader.exited(LONG).await;
    assert!(!status.success(), "a leader that lost its Lease exited with {status}");
    assert!(
        p.leader.log_text().contains("lost leadership"),
        "the old leader's log does not say it lost leadership"
    );

    p.standby.wait_metric("baton_leader", 1.0).await;
    let healthy = wait_healthy_v2(&p.env).await;
    let takeover = writes_by(sim, STANDBY)
        .into_iter()
        .find(|w| is_election_lease(w) && w.at > t_block)
        .expect("the standby's takeover write");
    assert!(
        takeover.at >= earliest_expiry,
        "the standby took over {:?} before the old Lease could expire",
        earliest_expiry - takeover.at
    );
    let old_writes = writes_by(sim, LEADER);
    let last_old = old_writes.last().expect("the old leader wrote");
    assert!(
        last_old.at < earliest_expiry,
        "the partitioned leader sent a write {:?} after its Lease could expire:\n{}",
        last_old.at - earliest_expiry,
        describe_writes(&old_writes, p.t0)
    );
    assert_fenced(sim, LEADER, STANDBY, p.t0);

    // Release the partition: requests of the old leader still held by the simulator are let go.
    // Nothing of it may arrive or change the finished rollout. (A bounded observation window:
    // there is no event to wait for when checking that nothing happens.)
    // Old pods still terminating go on their own (the kubelet's stop delay): take the snapshot
    // once none is left terminating.
    let env = &p.env;
    let pods_before = wait_for("the replaced pods to finish terminating", LONG, || async {
        let pods = env.pods(NAME).await;
        pods.iter()
            .all(|x| x.metadata.deletion_timestamp.is_none())
            .then(|| identities(&pods))
    })
    .await;
    let old_count = old_writes.len();
    sim.faults.unblock(&rule);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let r = p.env.get(NAME).await;
        assert!(
            healthy_on(&r, "v2", REPLICAS as usize),
            "after the unblock: {}",
            support::describe(Some(&r))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = writes_by(sim, LEADER);
    assert_eq!(
        after.len(),
        old_count,
        "the old leader wrote after the unblock:\n{}",
        describe_writes(&after[old_count..], p.t0)
    );
    assert_eq!(
        identities(&p.env.pods(NAME).await),
        pods_before,
        "pods changed after the unblock"
    );
    assert_eq!(
        p.env.get(NAME).await.status.map(|s| s.instances),
        healthy.status.map(|s| s.instances)
    );
    assert_fenced(sim, LEADER, STANDBY, p.t0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_naming_a_missing_crd() {
    support::init_tracing();
    let sim = Sim::start(SimConfig::default()).await.expect("simulator starts");
    let dir = temp_dir("crd");

    // No CRDs at all: the first one checked is named.
    let mut c = controller::spawn(&sim, dir.path(), "baton-ha-nocrd", &election_flags());
    let status = c.exited(LONG).await;
    let log = c.log_text();
    assert!(!status.success(), "exited with {status}\n{log}");
    assert!(
        log.contains("error: the CustomResourceDefinition rollouts.baton.dev is not installed"),
        "stderr does not name the missing CRD:\n{log}"
    );
    assert!(!log.contains("listenersets.baton.dev is not installed"), "{log}");

    // Only the Rollout CRD: the ListenerSet one is named.
    let client = sim.client().await.expect("admin client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &baton::api::rollout::crd())
        .await
        .expect("installing the Rollout CRD");
    let rollouts: Api<Rollout> = Api::namespaced(client, NS);
    wait_for("rollouts served", LONG, || {
        let rollouts = rollouts.clone();
        async move { rollouts.list(&ListParams::default()).await.ok().map(|_| ()) }
    })
    .await;
    let mut c = controller::spawn(&sim, dir.path(), "baton-ha-nocrd2", &election_flags());
    let status = c.exited(LONG).await;
    let log = c.log_text();
    assert!(!status.success(), "exited with {status}\n{log}");
    assert!(
        log.contains("error: the CustomResourceDefinition listenersets.baton.dev is not installed"),
        "stderr does not name the missing CRD:\n{log}"
    );
    assert!(!log.contains("rollouts.baton.dev is not installed"), "{log}");
}

/// `baton_reconcile_total{controller="rollout"}` summed over its results (0 when absent).
fn rollout_reconciles_in(text: &str) -> f64 {
    ["success", "requeue", "error"]
        .iter()
        .filter_map(|r| {
            metric(
                text,
                &format!("baton_reconcile_total{{controller=\"rollout\",result=\"{r}\"}}"),
            )
        })
        .sum()
}
