//! What the ListenerSet controller counts, for benchmarks and metrics.
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub lease_creates: AtomicU64,
    pub lease_updates: AtomicU64,
    pub lease_deletes: AtomicU64,
    pub release_requests: AtomicU64,
    /// Conditional Lease writes answered 409 or 404 (most are release requests crossing a
    /// release the agent made on its own, e.g. at SIGTERM: harmless).
    pub conflicts: AtomicU64,
    /// Of those, assignments: each one skips a fencing token (reserved in the status first).
    pub assign_conflicts: AtomicU64,
    pub status_writes: AtomicU64,
    pub takeovers: AtomicU64,
    pub handovers: AtomicU64,
    /// Liveness Leases fenced (their pods' agents stopped renewing).
    pub fences: AtomicU64,
    /// Liveness Leases created for new pods.
    pub liveness_creates: AtomicU64,
}

impl Stats {
    /// Every API write this controller made (Leases, status, recover annotations).
    pub fn writes(&self) -> u64 {
        self.lease_creates.load(Ordering::Relaxed)
            + self.lease_updates.load(Ordering::Relaxed)
            + self.lease_deletes.load(Ordering::Relaxed)
            + self.release_requests.load(Ordering::Relaxed)
            + self.status_writes.load(Ordering::Relaxed)
            + self.fences.load(Ordering::Relaxed)
            + self.liveness_creates.load(Ordering::Relaxed)
    }
}
