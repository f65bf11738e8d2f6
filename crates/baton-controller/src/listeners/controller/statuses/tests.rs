use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::error::Error;

fn key() -> SetKey {
    ("ns".into(), "sxt".into())
}

/// A report whose running count is `running`, with token ceiling `ceiling`, decided on version
/// `version`.
fn report(running: i32, ceiling: Option<i32>, version: &str) -> Handed {
    Handed {
        status: ListenerSetStatus {
            running,
            fencing_token_ceiling: ceiling,
            ..Default::default()
        },
        read_version: Some(version.into()),
        notes: Vec::new(),
    }
}

/// A stand-in for the API server: each write is sent to the test, which answers it (or not yet).
struct Server {
    calls: mpsc::UnboundedSender<(ListenerSetStatus, oneshot::Sender<bool>)>,
}

/// The writes the server was asked for, each answered (landed or failed) by the test.
type Calls = mpsc::UnboundedReceiver<(ListenerSetStatus, oneshot::Sender<bool>)>;

/// A lane with the first report (1 running, ceiling 20, read at version "1") handed off, and its
/// server.
fn first_handed_off() -> (Arc<StatusWrites>, Server, Calls) {
    let writes = Arc::new(StatusWrites::default());
    let (server, calls) = Server::new();
    writes.hand_off(&key(), report(1, Some(20), "1"), server.write(), |_| {}, || {});
    (writes, server, calls)
}

impl Server {
    fn new() -> (Server, Calls) {
        let (calls, rx) = mpsc::unbounded_channel();
        (Server { calls }, rx)
    }

    /// A write of one status, landing (or failing) when the test answers it.
    fn write(
        &self,
    ) -> impl FnOnce(ListenerSetStatus) -> futures::future::BoxFuture<'static, Result<()>> + Send + 'static {
        let calls = self.calls.clone();
        move |status| {
            Box::pin(async move {
                let (tx, rx) = oneshot::channel();
                let _ = calls.send((status, tx));
                match rx.await {
                    Ok(true) => Ok(()),
                    _ => Err(Error::Invalid("refused".into())),
                }
            })
        }
    }
}

#[tokio::test]
async fn reports_handed_off_during_a_write_are_written_after_it_newest_only() {
    let (writes, server, mut calls) = first_handed_off();
    let (first, answer) = calls.recv().await.expect("the first write");
    assert_eq!(first.running, 1);
    // Three reports while the first is on its way: none is written yet, the last replaces the
    // others.
    for running in [2, 3, 4] {
        writes.hand_off(&key(), report(running, Some(20), "1"), server.write(), |_| {}, || {});
    }
    tokio::task::yield_now().await;
    assert!(
        calls.try_recv().is_err(),
        "a second write went out while the first was on its way"
    );
    assert!(writes.has(&key(), &report(4, Some(20), "1").status, Some("1")));
    let _ = answer.send(true);
    let (second, answer) = calls.recv().await.expect("the newest report written");
    assert_eq!(second.running, 4);
    let _ = answer.send(true);
    tokio::task::yield_now().await;
    assert!(
        calls.try_recv().is_err(),
        "an older report was written after the newest"
    );
}

#[tokio::test]
async fn a_waited_write_goes_after_what_was_handed_off_before_it() {
    let (writes, server, mut calls) = first_handed_off();
    let (first, answer) = calls.recv().await.expect("the handed-off write");
    assert_eq!(first.running, 1);
    let landed = Arc::new(AtomicBool::new(false));
    let waited = {
        let (writes, write, landed) = (writes.clone(), server.write(), landed.clone());
        tokio::spawn(async move {
            let r = writes.write(&key(), report(2, Some(40), "2"), write).await;
            landed.store(true, Ordering::SeqCst);
            r
        })
    };
    tokio::task::yield_now().await;
    assert!(
        !landed.load(Ordering::SeqCst),
        "the waited write returned before it was written"
    );
    assert!(
        calls.try_recv().is_err(),
        "the waited write went out beside the handed-off one"
    );
    let _ = answer.send(true);
    let (second, answer) = calls.recv().await.expect("the waited write");
    assert_eq!((second.running, second.fencing_token_ceiling), (2, Some(40)));
    let _ = answer.send(true);
    assert!(waited.await.expect("the waiter").is_ok());
    assert_eq!(writes.ceiling(&key()), Some(40));
}

/// Write `handed` through the lane, waiting, the API server answering at once: the result and
/// the status written.
async fn write_answered(
    writes: &StatusWrites,
    server: &Server,
    calls: &mut mpsc::UnboundedReceiver<(ListenerSetStatus, oneshot::Sender<bool>)>,
    handed: Handed,
) -> (Result<()>, ListenerSetStatus) {
    let k = key();
    let answered = async {
        let (status, answer) = calls.recv().await.expect("a write");
        let _ = answer.send(true);
        status
    };
    let written = async { writes.write(&k, handed, server.write()).await.map(|_| ()) };
    tokio::join!(written, answered)
}

#[tokio::test]
async fn a_ceiling_once_written_is_never_written_lower() {
    let writes = StatusWrites::default();
    let (server, mut calls) = Server::new();
    let (r, first) = write_answered(&writes, &server, &mut calls, report(1, Some(40), "1")).await;
    assert!(r.is_ok());
    assert_eq!(first.fencing_token_ceiling, Some(40));
    // Decided on a cache that had not shown the first write yet: a lower ceiling.
    let (r, second) = write_answered(&writes, &server, &mut calls, report(2, Some(17), "1")).await;
    assert!(r.is_ok());
    assert_eq!((second.running, second.fencing_token_ceiling), (2, Some(40)));
}

#[tokio::test]
async fn a_failed_hand_off_wakes_the_set_and_is_not_taken_for_written() {
    let writes = StatusWrites::default();
    let (server, mut calls) = Server::new();
    let (woken_tx, woken) = oneshot::channel();
    let wake = move || {
        let _ = woken_tx.send(());
    };
    writes.hand_off(&key(), report(1, Some(20), "1"), server.write(), |_| {}, wake);
    let (_, answer) = calls.recv().await.expect("the write");
    let _ = answer.send(false);
    woken.await.expect("the set woken after the failure");
    // The next pass, on the same version, must hand the report off again.
    assert!(!writes.has(&key(), &report(1, Some(20), "1").status, Some("1")));
    assert_eq!(writes.ceiling(&key()), None);
}

#[tokio::test]
async fn a_waiter_writes_its_own_report_when_the_writer_that_took_it_failed() {
    let (writes, server, mut calls) = first_handed_off();
    let (_, first) = calls.recv().await.expect("the first write");
    // A second hand-off queues a task; the waiter's report then replaces the task's.
    writes.hand_off(&key(), report(2, Some(20), "1"), server.write(), |_| {}, || {});
    let waited = {
        let (writes, write) = (writes.clone(), server.write());
        tokio::spawn(async move { writes.write(&key(), report(3, Some(20), "2"), write).await })
    };
    tokio::task::yield_now().await;
    let _ = first.send(true);
    // The queued task takes the waiter's report and fails it.
    let (taken, answer) = calls.recv().await.expect("the queued task's write");
    assert_eq!(taken.running, 3);
    let _ = answer.send(false);
    let (again, answer) = calls.recv().await.expect("the waiter writing its own report");
    assert_eq!(again.running, 3);
    let _ = answer.send(true);
    assert!(waited.await.expect("the waiter").is_ok());
    assert!(writes.has(&key(), &report(3, Some(20), "2").status, Some("2")));
    // Decided on a newer version of the set, the same status is the cache's to judge.
    assert!(!writes.has(&key(), &report(3, Some(20), "2").status, Some("3")));
}

#[tokio::test]
async fn a_report_on_its_way_counts_as_landed_only_once_it_landed() {
    let writes = StatusWrites::default();
    let (server, mut calls) = Server::new();
    let handed = report(1, Some(20), "1");
    writes.hand_off(&key(), handed.clone(), server.write(), |_| {}, || {});
    let (_, answer) = calls.recv().await.expect("the write");
    assert!(writes.has(&key(), &handed.status, Some("1")));
    assert!(!writes.landed(&key(), &handed.status, Some("1")));
    assert_eq!(writes.ceiling(&key()), None, "a ceiling on its way counts as written");
    let _ = answer.send(true);
    let k = key();
    let landed = async {
        while !writes.landed(&k, &handed.status, Some("1")) {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), landed)
        .await
        .expect("the report landed");
    assert_eq!(writes.ceiling(&key()), Some(20));
}

#[tokio::test]
async fn the_next_pass_starts_from_the_newest_report_until_the_cache_moves() {
    let writes = StatusWrites::default();
    let (server, mut calls) = Server::new();
    assert_eq!(writes.newest(&key(), Some("1")), None);
    writes.hand_off(&key(), report(1, Some(20), "1"), server.write(), |_| {}, || {});
    let (_, answer) = calls.recv().await.expect("the first write");
    writes.hand_off(&key(), report(2, Some(20), "1"), server.write(), |_| {}, || {});
    assert_eq!(writes.newest(&key(), Some("1")).map(|s| s.running), Some(2));
    assert_eq!(
        writes.newest(&key(), Some("2")),
        None,
        "the cache moved: its status is the one to start from"
    );
    let _ = answer.send(true);
    let (second, answer) = calls.recv().await.expect("the second write");
    assert_eq!(second.running, 2);
    let _ = answer.send(true);
}

#[tokio::test]
async fn a_set_whose_write_failed_is_failing_until_one_lands() {
    let writes = StatusWrites::default();
    let (server, mut calls) = Server::new();
    let (woken_tx, woken) = oneshot::channel();
    writes.hand_off(
        &key(),
        report(1, Some(20), "1"),
        server.write(),
        |_| {},
        move || {
            let _ = woken_tx.send(());
        },
    );
    assert!(!writes.failing(&key()));
    let (_, answer) = calls.recv().await.expect("the write");
    let _ = answer.send(false);
    woken.await.expect("the set woken after the failure");
    assert!(writes.failing(&key()));
    let (r, _) = write_answered(&writes, &server, &mut calls, report(2, Some(20), "1")).await;
    assert!(r.is_ok());
    assert!(!writes.failing(&key()));
}

/// A report's notices go out once a write carrying it lands: a newer report that replaced it
/// while it waited takes them along; a failed write sends none.
#[tokio::test]
async fn notices_go_out_once_their_report_lands_and_travel_with_a_newer_one() {
    let note = |key: &str| {
        crate::listeners::notices::degraded(&ListenerSetStatus::default(), true, key, "m").expect("a transition")
    };
    let with = |running: i32, reason: &str| Handed {
        notes: vec![note(reason)],
        ..report(running, Some(20), "1")
    };
    let writes = Arc::new(StatusWrites::default());
    let (server, mut calls) = Server::new();
    let (sent, mut got) = mpsc::unbounded_channel();
    let landed = |sent: &mpsc::UnboundedSender<Vec<Note>>| {
        let sent = sent.clone();
        move |notes: Vec<Note>| {
            let _ = sent.send(notes);
        }
    };
    writes.hand_off(&key(), with(1, "A"), server.write(), landed(&sent), || {});
    let (_, first) = calls.recv().await.expect("the first write");
    // Two more while the first is written: the third replaces the second, notices and all.
    writes.hand_off(&key(), with(2, "B"), server.write(), landed(&sent), || {});
    writes.hand_off(&key(), with(3, "C"), server.write(), landed(&sent), || {});
    assert!(got.try_recv().is_err(), "a notice went out before its write landed");
    let _ = first.send(true);
    let reasons = |notes: Vec<Note>| notes.into_iter().filter_map(|n| n.reason).collect::<Vec<_>>();
    assert_eq!(reasons(got.recv().await.expect("the first's notices")), ["A"]);
    let (status, second) = calls.recv().await.expect("the newest write");
    assert_eq!(status.running, 3);
    let _ = second.send(true);
    assert_eq!(reasons(got.recv().await.expect("the newest's notices")), ["B", "C"]);
    // A write that fails sends nothing.
    writes.hand_off(&key(), with(4, "D"), server.write(), landed(&sent), || {});
    let (_, third) = calls.recv().await.expect("the write that fails");
    let _ = third.send(false);
    writes.hand_off(&key(), report(5, Some(20), "1"), server.write(), landed(&sent), || {});
    let (_, fourth) = calls.recv().await.expect("the next write");
    let _ = fourth.send(true);
    assert_eq!(
        reasons(got.recv().await.expect("the next's notices")),
        Vec::<String>::new()
    );
}
