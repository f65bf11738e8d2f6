//! Handing freed memory back to the system. glibc's malloc (the controller image is
//! distroless/cc, glibc) keeps what a burst of work freed — a mass update decodes and drops
//! tens of thousands of objects — inside its arenas, so the resident size after the burst stays
//! near its peak though the live heap is far smaller. The controller runs with few arenas (each
//! thread allocating in its own arena multiplies that slack) and trims once the work has been
//! quiet for a moment: `malloc_trim` releases the free pages of every arena. Large blocks (a
//! list's or a watch's buffers) are mapped on their own and returned when freed: glibc would
//! otherwise raise that threshold as such blocks are freed and keep them in the heap, where they
//! fragment it. Elsewhere (musl, other systems) all of this is a no-op.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many malloc arenas the controller uses (glibc's default is 8 per core).
pub const ARENAS: i32 = 2;

/// Blocks of at least this many bytes are mapped on their own (glibc's default, 128 KiB, kept
/// fixed: set, it no longer grows), and the top of a heap is returned above this much free.
pub const LARGE_BLOCK: i32 = 128 * 1024;

/// How often [`trim_when_quiet`] looks whether work went on.
pub const QUIET_CHECK: Duration = Duration::from_secs(1);

static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// Work went on (a reconcile ran): the next quiet moment trims.
pub fn note_activity() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// Limit malloc's arenas and fix its large-block thresholds; call first thing in `main`, before
/// any other thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LARGE_BLOCK);
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe (it locks each arena in turn).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Decides when to trim from successive readings of the activity count: once after every
/// stretch of work, at the first reading that shows none since the previous one.
#[derive(Debug, Default)]
pub struct Quiet {
    last: u64,
    busy: bool,
}

impl Quiet {
    /// The activity count now; true when this is the moment to trim.
    pub fn tick(&mut self, count: u64) -> bool {
        if count != self.last {
            self.last = count;
            self.busy = true;
            return false;
        }
        std::mem::take(&mut self.busy)
    }
}

/// Trim after each stretch of work, checking every [`QUIET_CHECK`]; runs until dropped.
pub async fn trim_when_quiet() {
    let mut quiet = Quiet::default();
    let mut every = tokio::time::interval(QUIET_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if quiet.tick(ACTIVITY.load(Ordering::Relaxed)) {
            // Walks every arena's free lists: milliseconds for a heap of ~100 MiB.
            tokio::task::spawn_blocking(trim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_each_stretch_of_work() {
        let mut q = Quiet::default();
        // Nothing happened yet: nothing to give back.
        assert!(!q.tick(0));
        assert!(!q.tick(0));
        // Work (several readings), then the first quiet reading trims, the next ones do not.
        assert!(!q.tick(5));
        assert!(!q.tick(9));
        assert!(q.tick(9));
        assert!(!q.tick(9));
        // Another stretch: one more trim.
        assert!(!q.tick(10));
        assert!(q.tick(10));
        assert!(!q.tick(10));
    }
}
