//! Memory per listener in the controller's Lease cache: decodes N listener Leases as
//! kube-apiserver returns them (`managedFields` of two field managers, the controller's and the
//! agent's) and counts, with a counting global allocator, the bytes each form keeps allocated
//! per Lease: the whole `Lease` as decoded, the whole `Lease` without its `managedFields` (what
//! the cache held before the projection), and the [`CachedLease`] projection, each held in an
//! `Arc`; then what a cache adds per Lease to hold it: the key kube's reflector store would
//! give it (an `ObjectRef` of four strings, and its `Arc`), and the whole of the controller's
//! [`LeaseStore`] (its `Arc`'d [`CachedLease`], its name as key, the maps) as the watch fills
//! it. Also how many allocations each Lease holds (each costs malloc's header and rounding
//! besides), and the most bytes allocated at once while decoding (or storing) one Lease.
//!
//! `cargo run --release -p baton-controller --example lease_memory [N]` (default 10000).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use baton_api::listenerset::lease::{CachedLease, WatchedLease};
use baton_api::listenerset::liveness::HOLDER_UID_LABEL;
use baton_api::listenerset::{
    CONFIG_ANNOTATION, LEASE_FINALIZER, LISTENERSET_LABEL, LISTENER_LABEL, PROTOCOL_ANNOTATION, PROTOCOL_VERSION,
};
use baton_api::LISTENERS_MANAGER;
use baton_controller::cache::leases::{self, LeaseStore};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::reflector::{Lookup, ObjectRef};
use kube::runtime::watcher::Event;

/// The system allocator, counting the bytes allocated now and the most allocated at once.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; only counters are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        grew(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        grew(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Listener Lease `i` of set `sxt`, held by one of 20 pods, as the API server sends it.
fn body(i: usize) -> String {
    let pod = i % 20;
    let (pod_uid, lease_uid) = (
        format!("6f0c{pod:04}-1d2e-4b7a-9c3d-5e8f7a6b{pod:04}"),
        format!("a1b2{i:06}-3c4d-4e5f-8a9b-0c1d2e{i:06}"),
    );
    let f = |key: &str| format!("f:{key}");
    let controller_fields = serde_json::json!({
        "f:metadata": {
            "f:annotations": {".": {}, f(CONFIG_ANNOTATION): {}, f(PROTOCOL_ANNOTATION): {}},
            "f:finalizers": {".": {}, format!("v:\"{LEASE_FINALIZER}\""): {}},
            "f:labels": {".": {}, f(HOLDER_UID_LABEL): {}, f(LISTENER_LABEL): {}, f(LISTENERSET_LABEL): {}},
            "f:ownerReferences": {".": {}, format!("k:{{\"uid\":\"{pod_uid}\"}}"): {}}
        },
        "f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {}, "f:leaseTransitions": {}, "f:renewTime": {}}
    });
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": format!("sxt-account-{i:06}"),
            "namespace": "listeners",
            "uid": lease_uid,
            "resourceVersion": format!("{}", 4_000_000 + i),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                LISTENERSET_LABEL: "sxt",
                LISTENER_LABEL: format!("account-{i:06}"),
                HOLDER_UID_LABEL: pod_uid,
            },
            "annotations": {PROTOCOL_ANNOTATION: PROTOCOL_VERSION, CONFIG_ANNOTATION: format!("tokens/account.{i}")},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": format!("web-5d8f9c7b6-{pod:05}"), "uid": pod_uid}],
            "finalizers": [LEASE_FINALIZER],
            "managedFields": [
                {"manager": LISTENERS_MANAGER, "operation": "Update", "apiVersion": "coordination.k8s.io/v1",
                 "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": controller_fields},
                {"manager": "baton-agent", "operation": "Update", "apiVersion": "coordination.k8s.io/v1",
                 "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:renewTime": {}}}}
            ]
        },
        "spec": {
            "holderIdentity": format!("web-5d8f9c7b6-{pod:05}"),
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z",
            "renewTime": "2026-01-01T00:00:02.123456Z",
            "leaseTransitions": 3
        }
    });
    lease.to_string()
}

/// What one form keeps and costs, per Lease.
struct Figures {
    /// Bytes allocated and held.
    held: usize,
    /// Allocations held.
    blocks: usize,
    /// The most bytes allocated at once while decoding one Lease, above what was there before.
    peak: usize,
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 10_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: lease_memory [N]: {e}");
            std::process::exit(2);
        }
    };
    let bodies: Vec<String> = (0..n).map(body).collect();
    let json_bytes = bodies.iter().map(String::len).sum::<usize>() / n.max(1);
    let whole = measure(&bodies, |l: Lease| l);
    let stripped = measure(&bodies, |mut l: Lease| {
        l.metadata.managed_fields = None;
        l
    });
    let projected = measure(&bodies, |l: CachedLease| l);
    let keyed = measure(&bodies, |l: WatchedLease| -> ObjectRef<WatchedLease> {
        l.to_object_ref(())
    });
    let (stored, store) = measure_store(&bodies);
    println!("{n} listener Leases, {json_bytes} bytes of JSON each; per Lease:");
    println!(
        "{:<44} {:>10} {:>12} {:>12}",
        "form", "bytes held", "allocations", "decode peak"
    );
    for (form, f) in [
        ("Lease, as decoded (managedFields)", &whole),
        ("Lease without managedFields (cache before)", &stripped),
        ("CachedLease", &projected),
        ("kube's reflector store key (ObjectRef)", &keyed),
        ("LeaseStore entry, CachedLease included", &stored),
    ] {
        println!("{form:<44} {:>10} {:>12} {:>12}", f.held, f.blocks, f.peak);
    }
    println!(
        "memory per listener in the controller's Lease cache: {} bytes whole, {} projected, {} stored \
         ({} Leases in the store)",
        stripped.held,
        projected.held,
        stored.held,
        store.len()
    );
}

/// Decode every body into `T` and hold `keep` of it in an `Arc`.
fn measure<T, H>(bodies: &[String], keep: impl Fn(T) -> H) -> Figures
where
    T: serde::de::DeserializeOwned,
{
    let mut held: Vec<Arc<H>> = Vec::with_capacity(bodies.len());
    let figures = count(bodies, |v: T| held.push(Arc::new(keep(v))));
    drop(held);
    figures
}

/// Per Lease: what the controller's [`LeaseStore`] holds once its watch applied them all.
fn measure_store(bodies: &[String]) -> (Figures, LeaseStore) {
    let (store, mut writer) = leases::store();
    let figures = count(bodies, |l: WatchedLease| {
        writer.apply(&leases::taken_in(Event::Apply(l)))
    });
    (figures, store)
}

/// Decode every body into `T` and `take` it; what stays allocated, per body.
fn count<T: serde::de::DeserializeOwned>(bodies: &[String], mut take: impl FnMut(T)) -> Figures {
    let (before, blocks_before) = (LIVE.load(Ordering::Relaxed), BLOCKS.load(Ordering::Relaxed));
    let mut peak = 0;
    for b in bodies {
        let start = LIVE.load(Ordering::Relaxed);
        PEAK.store(start, Ordering::Relaxed);
        match serde_json::from_str::<T>(b) {
            Ok(v) => take(v),
            Err(e) => {
                eprintln!("a Lease body did not decode: {e}");
                std::process::exit(1);
            }
        }
        peak = peak.max(PEAK.load(Ordering::Relaxed) - start);
    }
    let n = bodies.len().max(1);
    Figures {
        held: (LIVE.load(Ordering::Relaxed) - before) / n,
        blocks: (BLOCKS.load(Ordering::Relaxed) - blocks_before) / n,
        peak,
    }
}
