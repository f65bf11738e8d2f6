//! Assignments go only to pods the API server confirms. The pod cache may lag behind the API
//! server: a pod force-deleted a moment ago still shows there while the garbage collector has
//! already removed its Leases, which then look deleted by hand with a live holder — and the
//! decision recreates them for that pod ([`HowAssigned::Recreated`](super::HowAssigned)), an assignment to a
//! pod that no longer exists but whose containers may run on (its agent could renew it). So the
//! shell asks the API server for every pod an assignment names ([`to_confirm`]; an answer is
//! used by every set's passes until a watch shows the pod change or let a Lease go, or lists
//! anew, at most 30 s: `controller::confirmations`) and writes only
//! the assignments whose pod it found with the same uid ([`confirmed`]); the others are held back
//! and decided again once the cache has caught up (then the gone holder's listener is held until
//! it must have stopped). The shell also reads each such pod's liveness Lease and confirms no pod
//! whose agent is leaving: a SIGTERMed agent marks it before releasing anything, but the cache of
//! liveness Leases may show the mark after the releases.
//!
//! The successor a release request names is confirmed the same way: its holder's agent will
//! write that assignment itself. A request whose successor is not confirmed goes out naming
//! none (a bare release, which the controller then assigns).

use std::collections::BTreeSet;

use super::Write;
use crate::listeners::assigner::Move;

/// `(name, uid)` of every pod an assignment of `writes` gives a Lease to, or a release request
/// names as successor, each once.
pub fn to_confirm(writes: &[Write]) -> BTreeSet<(String, String)> {
    writes
        .iter()
        .filter_map(|w| match &w.change {
            Move::Assign { pod, pod_uid, .. } => Some((pod.clone(), pod_uid.clone())),
            Move::RequestRelease { to: Some(to), .. } => Some((to.pod.clone(), to.uid.clone())),
            _ => None,
        })
        .collect()
}

/// `writes` split into those that may go out (assignments to a pod in `live`, the `(name, uid)`
/// the API server returned just now; every other kind of write, a release request naming a
/// successor not in `live` then naming none) and the assignments held back.
pub fn confirmed(writes: &[Write], live: &BTreeSet<(String, String)>) -> (Vec<Write>, Vec<Write>) {
    let found = |pod: &str, uid: &str| live.contains(&(pod.to_string(), uid.to_string()));
    let (go, held): (Vec<Write>, Vec<Write>) = writes.iter().cloned().partition(|w| match &w.change {
        Move::Assign { pod, pod_uid, .. } => found(pod, pod_uid),
        _ => true,
    });
    let go = go
        .into_iter()
        .map(|mut w| {
            if let Move::RequestRelease { to: to @ Some(_), .. } = &mut w.change {
                if to.as_ref().is_some_and(|s| !found(&s.pod, &s.uid)) {
                    *to = None;
                }
            }
            w
        })
        .collect();
    (go, held)
}
