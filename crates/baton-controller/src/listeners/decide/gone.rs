//! Holders that are gone, and Leases being deleted: nothing is let go while something may still
//! run its listener.

use std::collections::{BTreeMap, BTreeSet};

use super::judge::Judged;
use super::Input;
use crate::listeners::assigner::{self, LeaseView, Move, PodView};

/// Listener → the pod that released its Lease when the Lease was deleted under it (its holder
/// label names it).
pub(super) fn terminated_by(input: &Input) -> BTreeMap<String, String> {
    input
        .leases
        .iter()
        .filter(|l| l.terminating && l.view.holder.is_none())
        .filter_map(|l| {
            let uid = l.labelled_uid.as_deref()?;
            let pod = input.pods.iter().find(|p| p.uid == uid)?;
            Some((l.view.listener.clone(), pod.name.clone()))
        })
        .collect()
}

/// Listeners whose holder pod is gone (no pod of its name and uid) and that are not judged free:
/// its containers may run on (a force delete), so nobody gets them and nothing is written about
/// them (the assigner takes a missing holder for a free Lease) until that holder must have
/// stopped.
pub(super) fn ghosts<'a>(judged: &'a Judged) -> BTreeSet<&'a str> {
    judged
        .views
        .iter()
        .zip(&judged.holders)
        .filter(|(l, holder)| !l.expired && holder.is_none() && l.holder.as_deref().is_some_and(|h| !h.is_empty()))
        .map(|(l, _)| l.listener.as_str())
        .collect()
}

/// What to do with a Lease being deleted: ask a live holder to let it go; remove the finalizer
/// once nobody can be running its listener (released, or judged free); wait while its holder is
/// gone but may still run it.
pub(super) fn terminating_move(pods: &[PodView], l: &LeaseView) -> Option<Move> {
    let free = l.holder.is_none() || l.expired;
    let exists = l
        .holder
        .as_deref()
        .is_some_and(|h| pods.iter().any(|p| p.name == h && l.held_by(&p.name, &p.uid)));
    if free {
        Some(Move::RemoveFinalizer {
            listener: l.listener.clone(),
            resource_version: l.resource_version.clone(),
        })
    } else if exists && !l.release_requested {
        Some(Move::RequestRelease {
            listener: l.listener.clone(),
            holder: l.holder.clone().unwrap_or_default(),
            resource_version: l.resource_version.clone(),
            reason: assigner::ReleaseReason::LeaseDeleted,
            to: None,
        })
    } else {
        None
    }
}
