//! The part of a Rollout reconcile that reads the pod cache, with 100 and with 100,000 pods of
//! other owners in it: the owner index (what the controller does) against the scan of the whole
//! store it replaced. Prints µs per lookup of a Rollout's own 10 pods (the best of 20 alternating rounds).
//!
//! `cargo run --release --example owner_lookup_bench`
use std::time::Instant;

use baton::cache::owners::OwnerIndex;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::Event;

fn pod(name: &str, owner: &str) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("ns".into());
    p.metadata.uid = Some(format!("uid-{name}"));
    p.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
    p.metadata.owner_references = Some(vec![OwnerReference {
        uid: owner.into(),
        kind: "Rollout".into(),
        name: owner.into(),
        api_version: "baton.dev/v1alpha1".into(),
        ..Default::default()
    }]);
    p
}

fn cache(strangers: usize) -> (Store<Pod>, OwnerIndex<Pod>) {
    let (store, mut writer) = reflector::store();
    let index = OwnerIndex::default();
    let mut apply = |p: Pod| {
        let e = Event::Apply(p);
        writer.apply_watcher_event(&e);
        index.observe(&Ok(e));
    };
    for i in 0..strangers {
        apply(pod(&format!("other-{i}"), &format!("owner-{}", i / 10)));
    }
    for i in 0..10 {
        apply(pod(&format!("mine-{i}"), "me"));
    }
    (store, index)
}

/// µs per call of `f` over `n` calls.
fn per_call(n: usize, f: &mut dyn FnMut() -> usize) -> f64 {
    let t = Instant::now();
    let mut found = 0;
    for _ in 0..n {
        found += f();
    }
    assert_eq!(found, 10 * n, "every lookup finds the Rollout's 10 pods");
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// The fastest of `rounds` (the round least disturbed by other work on a shared machine).
fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn main() {
    let small = cache(100);
    let large = cache(100_000);
    let scan = |(store, _): &(Store<Pod>, OwnerIndex<Pod>)| {
        store
            .state()
            .iter()
            .filter(|p| p.metadata.owner_references.iter().flatten().any(|r| r.uid == "me"))
            .count()
    };
    // Rounds alternate between the two caches so that load from elsewhere falls on both.
    let (mut idx, mut scans) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for _ in 0..20 {
        for (i, c) in [&small, &large].into_iter().enumerate() {
            idx[i].push(per_call(5_000, &mut || c.1.owned_by(&c.0, "me").len()));
        }
    }
    for _ in 0..3 {
        scans[0].push(per_call(2_000, &mut || scan(&small)));
        scans[1].push(per_call(3, &mut || scan(&large)));
    }
    println!("{:>10} {:>16} {:>16}", "strangers", "index µs/lookup", "scan µs/lookup");
    for (i, n) in [100, 100_000].into_iter().enumerate() {
        println!("{n:>10} {:>16.2} {:>16.2}", best(&idx[i]), best(&scans[i]));
    }
    let ratio = best(&idx[1]) / best(&idx[0]);
    println!(
        "index lookup, 100,000 vs 100 unrelated pods: {ratio:.2}x ({})",
        if (0.8..=1.2).contains(&ratio) {
            "flat within 20%: met"
        } else {
            "not flat within 20%"
        }
    );
}
