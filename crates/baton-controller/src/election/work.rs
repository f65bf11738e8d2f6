//! The caller's side of [`run`](super::run): `shutdown` and the `lead` future are polled here,
//! inside `run`'s own future (never spawned), so dropping that future drops the work; what to
//! do and when comes from the election thread (see `thread`).

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::thread::{FromWork, ToWork};
use super::{ElectionError, ElectionOutcome, Leader};

/// The caller's ends of the channels, the work's stop signal and this replica's identity.
pub(super) struct Link {
    pub(super) to_thread: mpsc::UnboundedSender<FromWork>,
    pub(super) from_thread: mpsc::UnboundedReceiver<ToWork>,
    pub(super) stop: CancellationToken,
    pub(super) identity: String,
}

fn thread_gone() -> ElectionError {
    ElectionError::Thread("it ended without an outcome".into())
}

/// Relay `shutdown` to the election thread (once), start the work when the thread acquires the
/// Lease, poll it until it finishes or the thread says to drop it, and return the outcome.
pub(super) async fn follow<S, F, Fut>(shutdown: S, lead: F, mut link: Link) -> Result<ElectionOutcome, ElectionError>
where
    S: Future<Output = ()>,
    F: FnOnce(Leader) -> Fut,
    Fut: Future,
{
    // If this future is dropped, tasks the work tied to `stop` end with it.
    let _stop_on_drop = link.stop.clone().drop_guard();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown_sent = false;
    let lease_transitions = loop {
        tokio::select! {
            biased;
            msg = link.from_thread.recv() => match msg {
                Some(ToWork::Lead { lease_transitions }) => break lease_transitions,
                Some(ToWork::Done(r)) => return r,
                Some(ToWork::Drop) => {}
                None => return Err(thread_gone()),
            },
            () = &mut shutdown, if !shutdown_sent => {
                shutdown_sent = true;
                let _ = link.to_thread.send(FromWork::Shutdown);
            }
        }
    };
    let work = lead(Leader {
        stop: link.stop.clone(),
        lease_transitions,
        identity: link.identity.clone(),
    });
    let dropped = poll_work(work, shutdown.as_mut(), shutdown_sent, &mut link).await?;
    let _ = link.to_thread.send(FromWork::Finished { dropped });
    // The thread releases the Lease (or not) and says how the election ended.
    loop {
        match link.from_thread.recv().await {
            Some(ToWork::Done(r)) => return r,
            Some(ToWork::Lead { .. } | ToWork::Drop) => {}
            None => return Err(thread_gone()),
        }
    }
}

/// Poll the work until it finishes (`Ok(false)`) or the thread says to drop it (`Ok(true)`; it
/// is dropped on return). The thread's word is checked before each poll of the work, so a work
/// whose polls hog the thread is dropped at its next return to the runtime.
async fn poll_work<S, Fut>(
    work: Fut,
    mut shutdown: Pin<&mut S>,
    mut shutdown_sent: bool,
    link: &mut Link,
) -> Result<bool, ElectionError>
where
    S: Future<Output = ()>,
    Fut: Future,
{
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            msg = link.from_thread.recv() => match msg {
                Some(ToWork::Drop) => return Ok(true),
                Some(ToWork::Lead { .. }) => {}
                // The thread ends only after the work has: it failed.
                Some(ToWork::Done(r)) => return Err(r.err().unwrap_or_else(thread_gone)),
                None => return Err(thread_gone()),
            },
            _ = &mut work => return Ok(false),
            () = &mut shutdown, if !shutdown_sent => {
                shutdown_sent = true;
                let _ = link.to_thread.send(FromWork::Shutdown);
            }
        }
    }
}
