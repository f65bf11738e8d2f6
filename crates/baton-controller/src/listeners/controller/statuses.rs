//! The status writes of each set, one at a time and in the order they were decided. A pass
//! hands its report off and goes on: at 10,000 listeners a status write takes kube-apiserver
//! over a second (the set holds its listeners in its spec, so every write carries them), and a
//! pass that waited for it would hold the set's next decision back that long.
//!
//! A report handed off while another is being written waits for it, and a newer one replaces a
//! waiting one: a set has at most one status write on its way and one waiting, and the waiting
//! one is always the newest. Order matters beyond the counts: a report that lands after a newer
//! one would set back the token ceiling ([`Lane`] also never writes a ceiling below one it wrote,
//! whatever the report says). Until the set's cache shows a change, the next pass starts from the
//! newest report handed off ([`StatusWrites::newest`]), not from the status the cache still holds.
//!
//! A report carries the notices of what it changes (a set turning Degraded): they go out once a
//! write carrying it lands, so a receiver that reads the set finds what the notice says. A newer
//! report replacing a waiting one takes its notices along; a failed write drops them, and the
//! set's next decision, from the status that did land, makes them again.
//!
//! Some writes are waited for ([`StatusWrites::write`]): the token ceiling before any Lease
//! carries a token above it, a recover's outcome before its mark, an invalid spec's report. They
//! go through the same lane, after what was handed off before them. A handed-off write that
//! fails is dropped and its set decided again after [`RETRY`]; until one of its writes lands, the
//! set's status writes are waited for, so its reconciles fail and back off as any failing
//! reconcile does ([`StatusWrites::failing`]). The tasks end with the controller.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::context::SetKey;
use crate::api::listenerset::ListenerSetStatus;
use crate::error::Result;
use crate::listeners::notices::Note;

/// How long after a failed handed-off write its set is decided again.
pub(super) const RETRY: Duration = Duration::from_millis(100);

/// A report for the lane: the status, the resourceVersion of the set it was decided on, and the
/// notices to send once it lands.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Handed {
    pub status: ListenerSetStatus,
    pub read_version: Option<String>,
    pub notes: Vec<Note>,
}

/// What a lane knows, behind a plain lock (never held across a write).
#[derive(Default)]
struct Known {
    /// Numbers the reports handed to the lane, in order.
    seq: u64,
    /// The newest report not yet taken for writing.
    waiting: Option<(u64, Arc<Handed>)>,
    /// A task waits to write `waiting`.
    queued: bool,
    /// The report being written now.
    writing: Option<Arc<Handed>>,
    /// The last report written, and the highest token ceiling ever written.
    landed: Option<Arc<Handed>>,
    ceiling: Option<i32>,
    /// When the last report was handed to the lane.
    handed_at: Option<Instant>,
    /// How long the last write took.
    took: Duration,
    /// The last write failed.
    failed: bool,
}

impl Known {
    /// The report on its way: waiting to be written, else being written.
    fn on_its_way(&self) -> Option<&Arc<Handed>> {
        self.waiting.as_ref().map(|(_, h)| h).or(self.writing.as_ref())
    }

    /// The newest report handed to the lane: the one on its way, else the last written.
    fn newest(&self) -> Option<&Arc<Handed>> {
        self.on_its_way().or(self.landed.as_ref())
    }
}

/// One set's status writes.
#[derive(Default)]
pub(super) struct Lane {
    known: Mutex<Known>,
    /// Held for each write, so they go out one at a time; the number of the last one landed.
    turn: tokio::sync::Mutex<u64>,
}

impl Lane {
    fn with<T>(&self, f: impl FnOnce(&mut Known) -> T) -> T {
        f(&mut self.known.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Put `handed` in line (replacing any older one waiting): its number, whether a task
    /// already waits to write it, and the report as the lane keeps it.
    fn put(&self, mut handed: Handed) -> (u64, bool, Arc<Handed>) {
        self.with(|k| {
            if let Some((_, replaced)) = k.waiting.take() {
                let mut notes = replaced.notes.clone();
                notes.append(&mut handed.notes);
                handed.notes = notes;
            }
            let handed = Arc::new(handed);
            k.seq += 1;
            k.waiting = Some((k.seq, handed.clone()));
            k.handed_at = Some(Instant::now());
            let queued = k.queued;
            k.queued = true;
            (k.seq, queued, handed)
        })
    }

    /// Write the newest report waiting, one write at a time, its ceiling raised to the highest
    /// written before; the notices of what landed. A waiter for report `upto` whose report another
    /// writer took and failed to write (`upto` not landed, nothing waiting) writes `own`, report
    /// `upto`, itself.
    async fn flush<F, Fut>(&self, upto: u64, own: Option<Arc<Handed>>, write: F) -> Result<Vec<Note>>
    where
        F: FnOnce(ListenerSetStatus) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut landed = self.turn.lock().await;
        let missing = *landed < upto;
        let taken = self.with(|k| {
            k.queued = false;
            let taken = k.waiting.take().or_else(|| own.filter(|_| missing).map(|h| (upto, h)));
            k.writing = taken.as_ref().map(|(_, h)| h.clone());
            taken.map(|t| (t, k.ceiling))
        });
        let Some(((seq, handed), ceiling)) = taken else {
            return Ok(Vec::new());
        };
        let mut status = handed.status.clone();
        status.fencing_token_ceiling = status.fencing_token_ceiling.max(ceiling);
        let raised = status.fencing_token_ceiling;
        let started = Instant::now();
        let r = write(status).await;
        let notes = handed.notes.clone();
        self.with(|k| {
            k.writing = None;
            k.took = started.elapsed();
            k.failed = r.is_err();
            if r.is_ok() {
                k.landed = Some(handed);
                k.ceiling = k.ceiling.max(raised);
            }
        });
        if r.is_ok() {
            *landed = seq;
        }
        r.map(|()| notes)
    }

    /// Whether `status`, decided on the set at `read_version`, is what the lane wrote last from
    /// that same version (the cache has not shown it yet) or, unless `landed_only`, has on its way.
    fn has(&self, status: &ListenerSetStatus, read_version: Option<&str>, landed_only: bool) -> bool {
        self.with(|k| {
            if landed_only && k.on_its_way().is_some() {
                return false;
            }
            k.newest()
                .is_some_and(|h| h.status == *status && h.read_version.as_deref() == read_version)
        })
    }
}

/// The status lanes of every set, and the tasks writing what was handed off.
#[derive(Default)]
pub(super) struct StatusWrites {
    lanes: Mutex<HashMap<SetKey, Arc<Lane>>>,
    tasks: Mutex<JoinSet<()>>,
}

impl StatusWrites {
    fn lane(&self, key: &SetKey) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes.entry(key.clone()).or_default().clone()
    }

    fn existing(&self, key: &SetKey) -> Option<Arc<Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    /// Write `handed` through `key`'s lane and wait until it (or a newer report) landed; the
    /// notices of what this call wrote (none if another call wrote it).
    pub(super) async fn write<F, Fut>(&self, key: &SetKey, handed: Handed, write: F) -> Result<Vec<Note>>
    where
        F: FnOnce(ListenerSetStatus) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let lane = self.lane(key);
        let (seq, _, own) = lane.put(handed);
        lane.flush(seq, Some(own), write).await
    }

    /// Hand `handed` to `key`'s lane: written after what is on its way, unless a newer report
    /// replaces it first. `landed` gets the notices of what the write carried once it landed;
    /// `failed` runs after a failed write.
    pub(super) fn hand_off<F, Fut>(
        &self,
        key: &SetKey,
        handed: Handed,
        write: F,
        landed: impl FnOnce(Vec<Note>) + Send + 'static,
        failed: impl FnOnce() + Send + 'static,
    ) where
        F: FnOnce(ListenerSetStatus) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let lane = self.lane(key);
        let (seq, queued, _) = lane.put(handed);
        if queued {
            return;
        }
        let task = async move {
            match lane.flush(seq, None, write).await {
                Ok(notes) => landed(notes),
                Err(_) => {
                    tokio::time::sleep(RETRY).await;
                    failed();
                }
            }
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the tasks already over.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Whether `key`'s lane has `status`, decided on `read_version`, on its way or just written.
    pub(super) fn has(&self, key: &SetKey, status: &ListenerSetStatus, read_version: Option<&str>) -> bool {
        self.existing(key).is_some_and(|l| l.has(status, read_version, false))
    }

    /// Whether `key`'s lane wrote `status`, decided on `read_version`, last, and has nothing on
    /// its way.
    pub(super) fn landed(&self, key: &SetKey, status: &ListenerSetStatus, read_version: Option<&str>) -> bool {
        self.existing(key).is_some_and(|l| l.has(status, read_version, true))
    }

    /// The newest status handed to `key`'s lane, if it was decided on `read_version` (the cache
    /// has not moved since: what it shows is older).
    pub(super) fn newest(&self, key: &SetKey, read_version: Option<&str>) -> Option<ListenerSetStatus> {
        let lane = self.existing(key)?;
        lane.with(|k| {
            let newest = k.newest()?;
            (newest.read_version.as_deref() == read_version).then(|| newest.status.clone())
        })
    }

    /// Whether `key`'s last status write failed (its next ones are waited for, so that the
    /// reconcile fails and backs off while the API server refuses them).
    pub(super) fn failing(&self, key: &SetKey) -> bool {
        self.existing(key).is_some_and(|l| l.with(|k| k.failed))
    }

    /// The highest token ceiling this controller wrote to `key`'s status.
    pub(super) fn ceiling(&self, key: &SetKey) -> Option<i32> {
        self.existing(key).and_then(|l| l.with(|k| k.ceiling))
    }

    /// When a report of `key` was last handed to its lane, and how long its last write took.
    pub(super) fn handed_at(&self, key: &SetKey) -> Option<(Instant, Duration)> {
        self.existing(key)
            .and_then(|l| l.with(|k| k.handed_at.map(|at| (at, k.took))))
    }

    /// Forget a deleted set (a write on its way finishes).
    pub(super) fn forget(&self, key: &SetKey) {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Stop every write still on its way (the controller stops: it may no longer write).
    pub(super) fn abort_all(&self) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).abort_all();
    }
}

#[cfg(test)]
#[path = "statuses/tests.rs"]
mod tests;
