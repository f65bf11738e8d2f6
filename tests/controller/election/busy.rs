//! Leaders whose work keeps their thread busy: renewals go out from the election's own thread
//! meanwhile, and renewals that really fail still stop the work by the renew deadline. The
//! simulator runs on a runtime of its own, the election on a thread with a current-thread
//! runtime that the work hogs, as a controller's can be.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::election::{
    self, ElectionClient, ElectionConfig, ElectionError, ElectionOutcome, ElectionStatus, Leader, Leadership,
};
use baton_sim::Sim;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{fast, holder, sim, FinishGuard, Log, LEASE, NS};
use crate::support::wait::{self, wait_for};

/// A runtime of its own for the simulator and the test's reads: a leader whose work blocks its
/// thread must not starve the API server it renews against.
fn api_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

type RunResult = Result<ElectionOutcome, ElectionError>;

/// `replica-a`'s election (with `cfg`) on a thread of its own with a current-thread runtime, as
/// a controller whose work hogs the runtime it is polled on.
fn leader_on_own_thread<F, Fut>(
    sim: &Sim,
    cfg: ElectionConfig,
    shutdown: CancellationToken,
    lead: F,
) -> (watch::Receiver<ElectionStatus>, std::thread::JoinHandle<RunResult>)
where
    F: FnOnce(Leader) -> Fut + Send + 'static,
    Fut: std::future::Future,
{
    // Built on the election thread, as the controller builds its election client.
    let ids = sim.identities();
    let client = ElectionClient::build(move || ids.client("replica-a").map_err(|e| e.to_string()));
    let (tx, status) = watch::channel(ElectionStatus::default());
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(election::run(client, cfg, shutdown.cancelled_owned(), lead, tx))
    });
    (status, handle)
}

/// A synchronous pass that holds the thread for `d` (a large decision in a debug build), then a
/// yield to the runtime.
async fn hog(d: Duration) {
    std::thread::sleep(d);
    tokio::task::yield_now().await;
}

/// Wait (with a deadline) until `run` on its thread has returned, and take its result.
fn join_thread(rt: &tokio::runtime::Runtime, what: &str, handle: std::thread::JoinHandle<RunResult>) -> RunResult {
    rt.block_on(wait_for(what, Duration::from_secs(15), || async {
        handle.is_finished().then_some(())
    }));
    handle.join().expect("the thread running `run` did not panic")
}

/// A leader whose work's polls hold its thread past the renew deadline, again and again, keeps
/// the Lease: the renewals go out from the election's own thread meanwhile.
#[test]
fn leader_whose_work_blocks_its_thread_keeps_renewing() {
    // Each pass holds the thread past the renew deadline (2 s); together more than two lease
    // durations (3 s).
    const PASS: Duration = Duration::from_millis(2500);
    const PASSES: usize = 3;
    let rt = api_runtime();
    let sim = rt.block_on(sim());
    // (start, end, told to stop by then) of each blocking pass.
    let passes: Arc<Mutex<Vec<(Instant, Instant, bool)>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let work_passes = passes.clone();
    let (status, leader) = leader_on_own_thread(
        &sim,
        fast("replica-a"),
        shutdown.clone(),
        move |leader: Leader| async move {
            for _ in 0..PASSES {
                let start = Instant::now();
                std::thread::sleep(PASS);
                let told = leader.stop.is_cancelled();
                work_passes.lock().unwrap().push((start, Instant::now(), told));
                tokio::task::yield_now().await;
            }
            leader.stop.cancelled().await;
        },
    );
    // Read the Lease while the work hogs its thread, noting when each renewTime first shows.
    let seen = rt.block_on(async {
        wait_for("a to lead", Duration::from_secs(10), || async {
            (status.borrow().leadership == Leadership::Leading).then_some(())
        })
        .await;
        let api: Api<Lease> = Api::namespaced(sim.client().await.expect("client"), NS);
        let end = Instant::now() + Duration::from_secs(30);
        let mut seen: Vec<(Instant, String)> = Vec::new();
        while passes.lock().unwrap().len() < PASSES && !leader.is_finished() {
            assert!(Instant::now() < end, "the work's passes did not end: {seen:?}");
            let l = api.get(LEASE).await.expect("lease");
            assert_eq!(holder(&l).as_deref(), Some("replica-a"), "{seen:?}");
            let renewed = format!("{:?}", l.spec.and_then(|s| s.renew_time));
            if seen.last().is_none_or(|(_, r)| *r != renewed) {
                seen.push((Instant::now(), renewed));
            }
            tokio::time::sleep(wait::POLL).await;
        }
        seen
    });
    assert!(
        !leader.is_finished(),
        "run ended while its work was busy: {:?}",
        leader.join()
    );
    for (i, (start, end, told)) in passes.lock().unwrap().iter().enumerate() {
        assert!(!told, "the work was told to stop during blocking pass {i}");
        let renewals = seen.iter().filter(|(at, _)| at > start && at < end).count();
        assert!(
            renewals >= 2,
            "{renewals} renewals seen during blocking pass {i}: {seen:?}"
        );
    }
    assert_eq!(status.borrow().leadership, Leadership::Leading);
    assert_eq!(status.borrow().acquisitions, 1);
    shutdown.cancel();
    assert_eq!(
        join_thread(&rt, "a's run", leader).expect("a ends cleanly"),
        ElectionOutcome::Released
    );
}

/// A leader whose renewals fail is told to stop by the renew deadline though its work keeps its
/// thread busy, and its run ends with the work stopped.
#[test]
fn busy_leader_cut_off_still_stops_by_the_renew_deadline() {
    // Work dropped 1 s after the renew deadline: its passes (0.4 s) leave it time to see `stop`.
    let cfg = ElectionConfig {
        lease_duration: Duration::from_secs(4),
        ..fast("replica-a")
    };
    let rt = api_runtime();
    let sim = rt.block_on(sim());
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let log = Log::default();
    let work_log = log.clone();
    let (status, leader) = leader_on_own_thread(&sim, cfg.clone(), CancellationToken::new(), move |leader: Leader| {
        let _ = stop_tx.send(leader.stop.clone());
        async move {
            let _guard = FinishGuard(work_log, "replica-a".into());
            // Blocking passes, checking the stop signal between them.
            while !leader.stop.is_cancelled() {
                hog(Duration::from_millis(400)).await;
            }
        }
    });
    let stop = stop_rx.recv_timeout(Duration::from_secs(10)).expect("a leads");
    sim.faults.block("replica-a");
    let cut = Instant::now();
    rt.block_on(async {
        let told = tokio::time::timeout(cfg.lease_duration, stop.cancelled()).await;
        assert!(told.is_ok(), "the work was not told to stop within the lease duration");
    });
    // Measured from the cut: at most the renew deadline, as the last renewal that could have
    // succeeded was sent before it (slack for a loaded machine).
    let told = cut.elapsed();
    assert!(
        told <= cfg.renew_deadline + Duration::from_secs(1),
        "told to stop {told:?} after the cut"
    );
    assert!(
        told >= cfg.renew_deadline / 2,
        "told to stop only {told:?} after the cut"
    );
    match join_thread(&rt, "a's run to give up", leader) {
        Err(ElectionError::LostLeadership { work_aborted, .. }) => assert!(!work_aborted),
        other => panic!("expected LostLeadership, got {other:?}"),
    }
    assert_eq!(status.borrow().leadership, Leadership::Standby);
    assert_eq!(log.events(), ["replica-a:finished"]);
    sim.faults.unblock("replica-a");
}
