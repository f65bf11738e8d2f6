//! Leader election against the in-process simulator: one leader at a time, graceful handover
//! through a released Lease (watch-driven), takeover after a crash, a partitioned leader that
//! stops its work before anyone else can start, config validation, and resourceVersion races;
//! leaders whose work hogs their thread in `busy`.
//!
//! Timing assertions are deliberately loose (lower bounds, or generous upper bounds); the
//! safety properties are checked as orders of events in a shared log.
mod busy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::wait_for;
use baton::election::{
    self, ConfigError, ElectionConfig, ElectionError, ElectionOutcome, ElectionStatus, Leader, Leadership, LeaseLock,
    WriteOutcome,
};
use baton_sim::{Sim, SimConfig};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";
const LEASE: &str = "baton-controller";

async fn sim() -> Sim {
    Sim::start(SimConfig::default()).await.expect("simulator starts")
}

/// Short timings for tests: lease 3 s, renew deadline 2 s, retry 0.3 s.
fn fast(identity: &str) -> ElectionConfig {
    ElectionConfig {
        lease_name: LEASE.into(),
        namespace: NS.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
    }
}

/// Await a task's result with a deadline.
/// The ending every takeover test shares: no two leaders overlapped, replica-b holds the Lease
/// after exactly one more transition, and releases it cleanly on shutdown.
async fn b_took_over_once(sim: &Sim, log: &Log, b: Candidate, before: i32) {
    log.assert_no_overlap();
    let after = lease(sim, LEASE).await.expect("lease");
    assert_eq!(holder(&after).as_deref(), Some("replica-b"));
    assert_eq!(transitions(&after), before + 1);
    b.shutdown.cancel();
    let rb = join_within("b's run", Duration::from_secs(10), b.handle).await;
    assert_eq!(rb.expect("b ends cleanly"), ElectionOutcome::Released);
}

async fn join_within<T>(what: &str, deadline: Duration, handle: JoinHandle<T>) -> T {
    match tokio::time::timeout(deadline, handle).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: task failed: {e}"),
        Err(_) => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}

/// An ordered record of what the candidates did.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(Instant, String)>>>);

impl Log {
    fn push(&self, what: String) {
        self.0.lock().unwrap().push((Instant::now(), what));
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }

    fn at(&self, what: &str) -> Option<Instant> {
        self.0.lock().unwrap().iter().find(|(_, e)| e == what).map(|(t, _)| *t)
    }

    fn index(&self, what: &str) -> usize {
        self.events()
            .iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("{what} not in log {:?}", self.events()))
    }

    /// Leader work never overlaps: every `X:lead` comes after the previous leader's `Y:finished`.
    fn assert_no_overlap(&self) {
        let mut active: Option<String> = None;
        for e in self.events() {
            if let Some(who) = e.strip_suffix(":lead") {
                assert!(
                    active.is_none(),
                    "{who} started leading while {active:?} was: {:?}",
                    self.events()
                );
                active = Some(who.to_string());
            } else if let Some(who) = e.strip_suffix(":finished") {
                assert_eq!(active.as_deref(), Some(who), "log: {:?}", self.events());
                active = None;
            }
        }
    }
}

/// Logs `<who>:finished` when the leader's work ends, whether it returned or was dropped.
struct FinishGuard(Log, String);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.push(format!("{}:finished", self.1));
    }
}

struct Candidate {
    shutdown: CancellationToken,
    status: watch::Receiver<ElectionStatus>,
    handle: JoinHandle<Result<ElectionOutcome, ElectionError>>,
    who: String,
    log: Log,
}

impl Candidate {
    /// Its status says it leads.
    fn says_leading(&self) -> bool {
        self.status.borrow().leadership == Leadership::Leading
    }

    /// Its status says it leads and its work has started (the status may be published before
    /// the work logs its start).
    fn leading(&self) -> bool {
        self.says_leading() && self.log.at(&format!("{}:lead", self.who)).is_some()
    }
}

/// Start `run` for `cfg.identity` (a client with that bearer token). Its work logs `<id>:lead`
/// when it starts, `<id>:stop-seen` when told to stop, then spends `drain` winding down, then
/// `<id>:finished`.
async fn candidate(sim: &Sim, cfg: ElectionConfig, log: &Log, drain: Duration) -> Candidate {
    let who = cfg.identity.clone();
    let client = sim.client_as(&who).await.expect("client");
    let shutdown = CancellationToken::new();
    let (tx, status) = watch::channel(ElectionStatus::default());
    let (log, mine) = (log.clone(), log.clone());
    let me = who.clone();
    let sd = shutdown.clone().cancelled_owned();
    let handle = tokio::spawn(async move {
        election::run(
            client,
            cfg,
            sd,
            move |leader: Leader| {
                log.push(format!("{who}:lead"));
                async move {
                    let _guard = FinishGuard(log.clone(), who.clone());
                    leader.stop.cancelled().await;
                    log.push(format!("{who}:stop-seen"));
                    if !drain.is_zero() {
                        // Simulated reconciles finishing their work.
                        tokio::time::sleep(drain).await;
                    }
                }
            },
            tx,
        )
        .await
    });
    Candidate {
        shutdown,
        status,
        handle,
        who: me,
        log: mine,
    }
}

async fn lease(sim: &Sim, name: &str) -> Option<Lease> {
    let api: Api<Lease> = Api::namespaced(sim.client().await.expect("client"), NS);
    api.get_opt(name).await.expect("read lease")
}

fn holder(l: &Lease) -> Option<String> {
    election::holder_of(l).map(str::to_string)
}

fn transitions(l: &Lease) -> i32 {
    l.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0)
}

/// Wait until exactly one of `a`, `b` leads; true if it is `a`.
async fn wait_one_leader(a: &Candidate, b: &Candidate) -> bool {
    wait_for("a leader", Duration::from_secs(10), || async {
        if a.says_leading() && b.says_leading() {
            panic!("both candidates lead");
        }
        match (a.leading(), b.leading()) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    })
    .await
}

/// Wait until `standby` has read the Lease and seen `holder` on it.
async fn wait_observed(standby: &Candidate, holder: &str) {
    wait_for("the standby to observe the holder", Duration::from_secs(10), || async {
        (standby.status.borrow().observed_holder.as_deref() == Some(holder)).then_some(())
    })
    .await
}

/// Wait until `c` leads.
async fn wait_leading(c: &Candidate, what: &str, deadline: Duration) {
    wait_for(what, deadline, || async { c.leading().then_some(()) }).await
}

/// `replica-a` (with `a_cfg`, its work winding down for `a_drain`) leads, then `replica-b`
/// (with `b_cfg`) stands by, having seen a on the Lease.
async fn leader_and_standby(
    sim: &Sim,
    log: &Log,
    (a_cfg, a_drain): (ElectionConfig, Duration),
    b_cfg: ElectionConfig,
) -> (Candidate, Candidate) {
    let a = candidate(sim, a_cfg, log, a_drain).await;
    wait_leading(&a, "a to lead", Duration::from_secs(10)).await;
    let b = candidate(sim, b_cfg, log, Duration::ZERO).await;
    wait_observed(&b, "replica-a").await;
    (a, b)
}

/// Cut `replica-a` off the API server: its run gives up with `LostLeadership` (its work
/// aborted or not, as `work_aborted` says) and `b` takes over; then a is reconnected.
async fn partition_a(
    sim: &Sim,
    a: JoinHandle<Result<ElectionOutcome, ElectionError>>,
    b: &Candidate,
    work_aborted: bool,
) {
    sim.faults.block("replica-a");
    match join_within("a's run to give up", Duration::from_secs(15), a).await {
        Err(ElectionError::LostLeadership { work_aborted: w, .. }) => assert_eq!(w, work_aborted),
        other => panic!("expected LostLeadership, got {other:?}"),
    }
    wait_leading(b, "b to take over", Duration::from_secs(15)).await;
    sim.faults.unblock("replica-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_candidates_exactly_one_leads() {
    let sim = sim().await;
    let log = Log::default();
    // Started together against an absent Lease: both try to create it; one gets 409.
    let a = candidate(&sim, fast("replica-a"), &log, Duration::ZERO).await;
    let b = candidate(&sim, fast("replica-b"), &log, Duration::ZERO).await;
    let a_leads = wait_one_leader(&a, &b).await;
    let (leader, standby) = if a_leads {
        ("replica-a", "replica-b")
    } else {
        ("replica-b", "replica-a")
    };
    let (l, s) = if a_leads { (&a, &b) } else { (&b, &a) };

    // Over two lease durations of renewals the leadership does not move and never doubles.
    let watch_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < watch_until {
        assert!(l.leading(), "{leader} lost leadership; log {:?}", log.events());
        assert!(!s.says_leading(), "{standby} leads too; log {:?}", log.events());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lease = lease(&sim, LEASE).await.expect("lease exists");
    assert_eq!(holder(&lease).as_deref(), Some(leader));
    assert_eq!(transitions(&lease), 0, "created by the winner, no handover yet");
    assert_eq!(l.status.borrow().acquisitions, 1);
    assert_eq!(s.status.borrow().acquisitions, 0);
    assert_eq!(s.status.borrow().observed_holder.as_deref(), Some(leader));
    assert_eq!(log.events(), vec![format!("{leader}:lead")]);

    for c in [&a, &b] {
        c.shutdown.cancel();
    }
    let (ra, rb) = (
        join_within("a", Duration::from_secs(10), a.handle).await,
        join_within("b", Duration::from_secs(10), b.handle).await,
    );
    let (rl, rs) = if a_leads { (ra, rb) } else { (rb, ra) };
    assert_eq!(rl.expect("leader ends cleanly"), ElectionOutcome::Released);
    // The standby may have taken over in between: either way it ended cleanly.
    assert!(rs.is_ok(), "{rs:?}");
    log.assert_no_overlap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_stops_work_then_releases_then_standby_leads() {
    let sim = sim().await;
    let log = Log::default();
    let (a, b) = leader_and_standby(
        &sim,
        &log,
        (fast("replica-a"), Duration::from_millis(300)),
        fast("replica-b"),
    )
    .await;
    let before = transitions(&lease(&sim, LEASE).await.expect("lease"));

    a.shutdown.cancel();
    let ra = join_within("a's run", Duration::from_secs(10), a.handle).await;
    assert_eq!(ra.expect("a ends cleanly"), ElectionOutcome::Released);
    let a_done = Instant::now();
    wait_leading(&b, "b to lead", Duration::from_secs(10)).await;

    // Order: a told to stop → a's work finished → (release) → b leads.
    assert!(log.index("replica-a:stop-seen") < log.index("replica-a:finished"));
    assert!(
        log.index("replica-a:finished") < log.index("replica-b:lead"),
        "{:?}",
        log.events()
    );
    let b_lead = log.at("replica-b:lead").expect("b led");
    log.assert_no_overlap();

    let after = lease(&sim, LEASE).await.expect("lease");
    assert_eq!(holder(&after).as_deref(), Some("replica-b"));
    assert_eq!(transitions(&after), before + 1, "exactly one handover");
    // The release did not wait for expiry (lease duration 3 s).
    assert!(
        b_lead.saturating_duration_since(a_done) < Duration::from_secs(3),
        "b took {:?} after a released",
        b_lead.saturating_duration_since(a_done)
    );

    b.shutdown.cancel();
    let rb = join_within("b's run", Duration::from_secs(10), b.handle).await;
    assert_eq!(rb.expect("b ends cleanly"), ElectionOutcome::Released);
    let released = lease(&sim, LEASE).await.expect("lease");
    assert_eq!(holder(&released), None, "released Lease has no holder");
    assert_eq!(released.spec.as_ref().and_then(|s| s.lease_duration_seconds), Some(1));
    assert_eq!(transitions(&released), before + 1, "release keeps leaseTransitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_handover_is_watch_driven_not_polled() {
    // Retry period 8 s (jittered up to 17.6 s) and lease 30 s: only the watch can make the
    // standby take over within a few seconds of the release.
    let slow = |id: &str| ElectionConfig {
        lease_duration: Duration::from_secs(30),
        renew_deadline: Duration::from_secs(20),
        retry_period: Duration::from_secs(8),
        ..fast(id)
    };
    let sim = sim().await;
    let log = Log::default();
    // b's first attempt found the Lease held: its next poll is ≥ 8 s away.
    let (a, b) = leader_and_standby(&sim, &log, (slow("replica-a"), Duration::ZERO), slow("replica-b")).await;
    let b_first_look = Instant::now();

    a.shutdown.cancel();
    let ra = join_within("a's run", Duration::from_secs(10), a.handle).await;
    assert_eq!(ra.expect("a ends cleanly"), ElectionOutcome::Released);
    wait_leading(&b, "b to lead", Duration::from_secs(20)).await;
    let b_lead = log.at("replica-b:lead").expect("b led");
    assert!(
        b_lead.saturating_duration_since(b_first_look) < Duration::from_secs(6),
        "b took over {:?} after first seeing a's lease: a poll, not the watch",
        b_lead.saturating_duration_since(b_first_look)
    );
    log.assert_no_overlap();
    b.shutdown.cancel();
    let rb = join_within("b's run", Duration::from_secs(10), b.handle).await;
    assert_eq!(rb.expect("b ends cleanly"), ElectionOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_leader_is_replaced_after_expiry() {
    let sim = sim().await;
    let log = Log::default();
    let cfg = fast("replica-a");
    let (lease_duration, retry) = (cfg.lease_duration, cfg.retry_period);
    let (a, b) = leader_and_standby(&sim, &log, (cfg, Duration::ZERO), fast("replica-b")).await;
    let before = transitions(&lease(&sim, LEASE).await.expect("lease"));

    // Crash: the task is gone without releasing (its work is dropped with it).
    a.handle.abort();
    let crashed = Instant::now();
    assert!(a.handle.await.is_err_and(|e| e.is_cancelled()));
    wait_leading(&b, "b to take over", Duration::from_secs(15)).await;
    let took = log
        .at("replica-b:lead")
        .expect("b led")
        .saturating_duration_since(crashed);
    // Not before the lease could have expired (a renewed at most one retry period before the
    // crash), and within lease duration + retry period + slack for a loaded machine.
    assert!(took >= lease_duration / 2, "b took over after only {took:?}");
    assert!(
        took <= lease_duration + retry + Duration::from_secs(2),
        "b took {took:?} to take over"
    );
    b_took_over_once(&sim, &log, b, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_before_standby_acquires() {
    let sim = sim().await;
    let log = Log::default();
    let (a, b) = leader_and_standby(&sim, &log, (fast("replica-a"), Duration::ZERO), fast("replica-b")).await;
    let before = transitions(&lease(&sim, LEASE).await.expect("lease"));

    partition_a(&sim, a.handle, &b, false).await;
    assert_eq!(a.status.borrow().leadership, Leadership::Standby);

    // a's work was told to stop and had finished before b started.
    assert!(log.index("replica-a:stop-seen") < log.index("replica-a:finished"));
    assert!(
        log.index("replica-a:finished") < log.index("replica-b:lead"),
        "{:?}",
        log.events()
    );
    b_took_over_once(&sim, &log, b, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_ignoring_stop_is_dropped_before_the_lease_can_expire() {
    let sim = sim().await;
    let log = Log::default();
    let cfg = fast("replica-a");
    let client = sim.client_as("replica-a").await.expect("client");
    let (tx, status) = watch::channel(ElectionStatus::default());
    let work_log = log.clone();
    let handle = tokio::spawn(election::run(
        client,
        cfg,
        std::future::pending(),
        move |_leader: Leader| {
            work_log.push("replica-a:lead".into());
            async move {
                let _guard = FinishGuard(work_log, "replica-a".into());
                // Ignores `stop` entirely.
                std::future::pending::<()>().await
            }
        },
        tx,
    ));
    wait_for("a to lead", Duration::from_secs(10), || async {
        (status.borrow().leadership == Leadership::Leading).then_some(())
    })
    .await;
    let b = candidate(&sim, fast("replica-b"), &log, Duration::ZERO).await;
    wait_observed(&b, "replica-a").await;
    partition_a(&sim, handle, &b, true).await;
    assert!(
        log.index("replica-a:finished") < log.index("replica-b:lead"),
        "{:?}",
        log.events()
    );
    log.assert_no_overlap();
    b.shutdown.cancel();
    let _ = join_within("b's run", Duration::from_secs(10), b.handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_ending_by_itself_releases_and_fails() {
    let sim = sim().await;
    let client = sim.client_as("replica-a").await.expect("client");
    let (tx, _status) = watch::channel(ElectionStatus::default());
    let r = election::run(
        client,
        fast("replica-a"),
        std::future::pending(),
        |_leader: Leader| async {},
        tx,
    )
    .await;
    match r {
        Err(ElectionError::WorkEnded { released, .. }) => assert!(released),
        other => panic!("expected WorkEnded, got {other:?}"),
    }
    assert_eq!(holder(&lease(&sim, LEASE).await.expect("lease")), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_standing_by() {
    let sim = sim().await;
    let log = Log::default();
    let (a, b) = leader_and_standby(&sim, &log, (fast("replica-a"), Duration::ZERO), fast("replica-b")).await;
    b.shutdown.cancel();
    let rb = join_within("b's run", Duration::from_secs(10), b.handle).await;
    assert_eq!(rb.expect("b ends cleanly"), ElectionOutcome::NotLeading);
    assert!(a.leading());
    a.shutdown.cancel();
    let ra = join_within("a's run", Duration::from_secs(10), a.handle).await;
    assert_eq!(ra.expect("a ends cleanly"), ElectionOutcome::Released);
}

#[tokio::test]
async fn config_validation() {
    let ok = ElectionConfig::new(LEASE, NS, "me");
    assert_eq!(ok.lease_duration, Duration::from_secs(15));
    assert_eq!(ok.renew_deadline, Duration::from_secs(10));
    assert_eq!(ok.retry_period, Duration::from_secs(2));
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(fast("me").validate(), Ok(()));

    let with = |f: &dyn Fn(&mut ElectionConfig)| {
        let mut c = ok.clone();
        f(&mut c);
        c.validate()
    };
    assert_eq!(with(&|c| c.identity.clear()), Err(ConfigError::EmptyIdentity));
    assert_eq!(with(&|c| c.lease_name.clear()), Err(ConfigError::EmptyLeaseName));
    assert_eq!(with(&|c| c.namespace.clear()), Err(ConfigError::EmptyNamespace));
    assert_eq!(
        with(&|c| c.lease_duration = Duration::ZERO),
        Err(ConfigError::ZeroLeaseDuration)
    );
    assert_eq!(
        with(&|c| c.renew_deadline = Duration::ZERO),
        Err(ConfigError::ZeroRenewDeadline)
    );
    assert_eq!(
        with(&|c| c.retry_period = Duration::ZERO),
        Err(ConfigError::ZeroRetryPeriod)
    );
    let e = with(&|c| c.renew_deadline = Duration::from_secs(15)).unwrap_err();
    assert!(matches!(e, ConfigError::LeaseNotLongerThanRenew { .. }));
    assert!(
        e.to_string()
            .contains("leaseDuration (15s) must be greater than renewDeadline (15s)"),
        "{e}"
    );
    // 10 s is not more than 1.2 × 9 s.
    let e = with(&|c| c.retry_period = Duration::from_secs(9)).unwrap_err();
    assert!(matches!(e, ConfigError::RenewNotLongerThanJitteredRetry { .. }));
    assert!(
        e.to_string()
            .contains("renewDeadline (10s) must be greater than retryPeriod*JitterFactor"),
        "{e}"
    );
    // Exactly 1.2 × retry is not enough either (strictly greater, as in client-go).
    let e = with(&|c| {
        c.renew_deadline = Duration::from_secs(12);
        c.retry_period = Duration::from_secs(10);
    });
    assert!(
        matches!(e, Err(ConfigError::RenewNotLongerThanJitteredRetry { .. })),
        "{e:?}"
    );
    assert!(matches!(
        with(&|c| {
            c.lease_duration = Duration::from_millis(900);
            c.renew_deadline = Duration::from_millis(500);
            c.retry_period = Duration::from_millis(100);
        }),
        Err(ConfigError::LeaseDurationTooShort(_))
    ));

    // `run` refuses a bad config before touching the cluster.
    let sim = sim().await;
    let (tx, _rx) = watch::channel(ElectionStatus::default());
    let mut bad = fast("me");
    bad.renew_deadline = bad.lease_duration;
    let r = election::run(
        sim.client().await.expect("client"),
        bad,
        std::future::pending(),
        |_l: Leader| async {},
        tx,
    )
    .await;
    assert!(
        matches!(
            r,
            Err(ElectionError::InvalidConfig(
                ConfigError::LeaseNotLongerThanRenew { .. }
            ))
        ),
        "{r:?}"
    );
    assert!(lease(&sim, LEASE).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_resource_version_write_loses() {
    let sim = sim().await;
    let lock = |id: &'static str| {
        let sim = &sim;
        async move { LeaseLock::new(sim.client_as(id).await.expect("client"), &fast(id)) }
    };
    let (a, b, x) = (
        lock("replica-a").await,
        lock("replica-b").await,
        lock("replica-x").await,
    );

    // Creating an absent Lease: the second create is a 409.
    assert!(a.get().await.expect("get").is_none());
    let created = match a.acquire_or_renew(None).await.expect("create") {
        WriteOutcome::Written(l) => *l,
        WriteOutcome::Conflict => panic!("first create conflicted"),
    };
    assert!(matches!(
        b.acquire_or_renew(None).await.expect("create"),
        WriteOutcome::Conflict
    ));
    assert_eq!(holder(&created).as_deref(), Some("replica-a"));
    assert!(!x.release(&created).await.expect("release"), "x does not hold it");
    assert!(a.release(&created).await.expect("release"));

    // A free Lease read by two candidates: both write with the same resourceVersion, one wins.
    let seen_a = a.get().await.expect("get").expect("exists");
    let seen_b = b.get().await.expect("get").expect("exists");
    assert_eq!(seen_a.metadata.resource_version, seen_b.metadata.resource_version);
    assert_eq!(holder(&seen_a), None);
    let won = match b.acquire_or_renew(Some(&seen_b)).await.expect("write") {
        WriteOutcome::Written(l) => *l,
        WriteOutcome::Conflict => panic!("first writer conflicted"),
    };
    assert!(matches!(
        a.acquire_or_renew(Some(&seen_a)).await.expect("write"),
        WriteOutcome::Conflict
    ));
    let now = lease(&sim, LEASE).await.expect("lease");
    assert_eq!(holder(&now).as_deref(), Some("replica-b"));
    assert_eq!(transitions(&now), 1, "free → b is one transition");
    assert_eq!(now.metadata.resource_version, won.metadata.resource_version);

    // A renewal by b with its own stale read loses too, and so does a stale release.
    let renewed = match b.acquire_or_renew(Some(&won)).await.expect("renew") {
        WriteOutcome::Written(l) => *l,
        WriteOutcome::Conflict => panic!("renew conflicted"),
    };
    assert_eq!(transitions(&renewed), 1, "renewal keeps leaseTransitions");
    assert!(matches!(
        b.acquire_or_renew(Some(&won)).await.expect("renew"),
        WriteOutcome::Conflict
    ));

    // Two full candidates racing for the released Lease: exactly one leads.
    assert!(b.release(&renewed).await.expect("release"));
    let log = Log::default();
    let ca = candidate(&sim, fast("replica-a"), &log, Duration::ZERO).await;
    let cb = candidate(&sim, fast("replica-b"), &log, Duration::ZERO).await;
    let leader = if wait_one_leader(&ca, &cb).await {
        "replica-a"
    } else {
        "replica-b"
    };
    let l = lease(&sim, LEASE).await.expect("lease");
    assert_eq!(holder(&l).as_deref(), Some(leader));
    assert_eq!(transitions(&l), 2);
    for c in [&ca, &cb] {
        c.shutdown.cancel();
    }
    let _ = join_within("a", Duration::from_secs(10), ca.handle).await;
    let _ = join_within("b", Duration::from_secs(10), cb.handle).await;
    log.assert_no_overlap();
}
