//! Assignments go only to pods the API server confirms. The pod cache may lag behind the API
//! server: a pod force-deleted a moment ago still shows there while the garbage collector has
//! already removed its Leases, which then look deleted by hand with a live holder — and the
//! decision recreates them for that pod ([`Kind::Recreated`](super::Kind)), an assignment to a
//! pod that no longer exists but whose containers may run on (its agent could renew it). So the
//! shell asks the API server for every pod an assignment names ([`to_confirm`]) and writes only
//! the assignments whose pod it found with the same uid ([`confirmed`]); the others are held back
//! and decided again once the cache has caught up (then the gone holder's listener is held until
//! it must have stopped).

use std::collections::BTreeSet;

use super::Write;
use crate::listeners::assigner::Move;

/// `(name, uid)` of every pod an assignment of `writes` gives a Lease to, each once.
pub fn to_confirm(writes: &[Write]) -> BTreeSet<(String, String)> {
    writes
        .iter()
        .filter_map(|w| match &w.change {
            Move::Assign { pod, pod_uid, .. } => Some((pod.clone(), pod_uid.clone())),
            _ => None,
        })
        .collect()
}

/// `writes` split into those that may go out (assignments to a pod in `live`, the `(name, uid)`
/// the API server returned just now; every other kind of write) and the assignments held back.
pub fn confirmed(writes: &[Write], live: &BTreeSet<(String, String)>) -> (Vec<Write>, Vec<Write>) {
    writes.iter().cloned().partition(|w| match &w.change {
        Move::Assign { pod, pod_uid, .. } => live.contains(&(pod.clone(), pod_uid.clone())),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{input, pod, wanted};
    use super::super::*;
    use super::*;

    #[test]
    fn a_lease_gone_with_a_pod_the_cache_still_shows_is_not_recreated_for_it() {
        let t0 = Instant::now();
        let (ls, pods) = ([wanted("a"), wanted("b")], [pod("p"), pod("q")]);
        let mut m = Memory::default();
        let held = [
            super::super::tests::lease("a", Some("p"), 3, 1),
            super::super::tests::lease("b", Some("q"), 1, 1),
        ];
        let d = decide(&input(&ls, &pods, &held, t0), &mut m);
        assert!(d.writes.is_empty(), "{:?}", d.writes);
        // p was force-deleted: the garbage collector removed its Lease, but the pod cache still
        // shows p. The decision, which sees a live holder whose Lease was deleted, recreates it.
        let only_b = [held[1].clone()];
        let d = decide(&input(&ls, &pods, &only_b, t0 + Duration::from_millis(10)), &mut m);
        assert_eq!(d.writes.len(), 1, "{:?}", d.writes);
        assert_eq!(d.writes[0].kind, Some(Kind::Recreated));
        let targets = to_confirm(&d.writes);
        assert_eq!(targets, BTreeSet::from([("p".to_string(), "uid-p".to_string())]));
        // The API server no longer has p: nothing is written for it.
        let live = BTreeSet::from([("q".to_string(), "uid-q".to_string())]);
        let (go, held_back) = confirmed(&d.writes, &live);
        assert!(go.is_empty(), "{go:?}");
        assert_eq!(held_back.len(), 1);
        // A pod of that name but another uid is not p either.
        let other = BTreeSet::from([("p".to_string(), "uid-p2".to_string())]);
        assert!(confirmed(&d.writes, &other).0.is_empty());
        // Once the cache shows p gone, the listener is held (p's containers may run on), not
        // given to q.
        let d = decide(&input(&ls, &pods[1..], &only_b, t0 + Duration::from_millis(20)), &mut m);
        assert!(d.writes.is_empty(), "{:?}", d.writes);
        // Release requests and deletes need no confirmation.
        let release = Write {
            change: Move::RequestRelease {
                listener: "b".into(),
                holder: "q".into(),
                resource_version: "1".into(),
                reason: crate::listeners::assigner::ReleaseReason::Suspended,
            },
            kind: None,
        };
        assert_eq!(
            confirmed(std::slice::from_ref(&release), &BTreeSet::new()).0,
            vec![release]
        );
    }
}
