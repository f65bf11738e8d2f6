//! The election thread: an OS thread with a current-thread runtime and a client of its own that
//! stands by, acquires, renews, fences and releases, whatever the work's polls do to the
//! caller's runtime. It talks to the caller's future (see `work`) over two channels.

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::leader::lead_until_done;
use super::standby::stand_by;
use super::{
    publish, ElectionClient, ElectionConfig, ElectionError, ElectionOutcome, ElectionStatus, Leadership, LeaseLock,
};

/// From the election thread to the future that polls the work.
pub(super) enum ToWork {
    /// The Lease is ours: start the work.
    Lead { lease_transitions: i32 },
    /// The work overstayed the stop signal: drop it.
    Drop,
    /// The election is over.
    Done(Result<ElectionOutcome, ElectionError>),
}

/// From the future that polls the work to the election thread. The channel closing means that
/// future was dropped (and the work with it).
pub(super) enum FromWork {
    /// `shutdown` fired.
    Shutdown,
    /// The work's future finished, or was dropped (`dropped`) as the thread asked.
    Finished { dropped: bool },
}

/// The election thread's ends of the channels, and the work's stop signal.
pub(super) struct Link {
    pub(super) from_work: mpsc::UnboundedReceiver<FromWork>,
    pub(super) to_work: mpsc::UnboundedSender<ToWork>,
    /// Handed to the work as [`Leader::stop`](super::Leader::stop); cancelled from this thread.
    pub(super) stop: CancellationToken,
}

/// Start the election thread. It ends by sending [`ToWork::Done`], or silently once the
/// caller's future is gone.
pub(super) fn spawn(
    client: ElectionClient,
    cfg: ElectionConfig,
    status: watch::Sender<ElectionStatus>,
    link: Link,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("baton-election".into())
        .spawn(move || {
            let to_work = link.to_work.clone();
            let outcome = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(elect(client, cfg, status, link)),
                Err(e) => Some(Err(ElectionError::Thread(format!("starting its runtime: {e}")))),
            };
            if let Some(outcome) = outcome {
                // Nobody to tell when the caller's future is gone.
                let _ = to_work.send(ToWork::Done(outcome));
            }
        })?;
    Ok(())
}

/// Stand by, then lead: the whole election, on the election thread's runtime. None: the
/// caller's future was dropped while leading.
async fn elect(
    client: ElectionClient,
    cfg: ElectionConfig,
    status: watch::Sender<ElectionStatus>,
    mut link: Link,
) -> Option<Result<ElectionOutcome, ElectionError>> {
    // Built here, the client's dispatch task runs on this thread's runtime too.
    let client = match client.make() {
        Ok(c) => c,
        Err(e) => return Some(Err(ElectionError::Thread(format!("building its client: {e}")))),
    };
    let lock = LeaseLock::new(client, &cfg);
    publish(&status, |s| s.leadership = Leadership::Standby);
    let acquired = {
        // Standing by, the only word from the caller is shutdown (or its future being dropped).
        let shutdown = std::pin::pin!(async {
            link.from_work.recv().await;
        });
        stand_by(&lock, &cfg, shutdown, &status).await
    };
    match acquired {
        Some(acquired) => lead_until_done(&lock, &cfg, acquired, &mut link, &status).await,
        None => Some(Ok(ElectionOutcome::NotLeading)),
    }
}
