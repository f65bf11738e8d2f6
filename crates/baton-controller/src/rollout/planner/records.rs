//! `status.history`: the deploy and rollback records, moved on by comparing the status this
//! plan writes with the stored one. A record opens when the update revision changes (a deploy,
//! or an undo when the revision existed already), when a failed revision is retried, or when a
//! failure starts an automatic rollback or an abort; it closes when its instances are all
//! available (`Succeeded`), when its batch fails (`Failed`/`Aborted`), or when a newer spec
//! replaces it (`Superseded`). No extra write: the records change only with the status.
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::RevisionInfo;
use crate::api::rollout::history::MAX_RECORDS;
use crate::api::rollout::origin::SpecOrigin;
use crate::api::rollout::{
    DeployRecord, FailedUpdate, FailureReason, RecordKind, RecordOutcome, RecordTrigger, RolloutPhase, RolloutStatus,
};

/// What the records are moved on from, besides the two statuses.
pub(super) struct HistoryFacts<'a> {
    /// The update revision.
    pub target: &'a RevisionInfo,
    /// It existed before this plan (a spec set back to it is an undo).
    pub target_existed: bool,
    /// Every revision, to name the one a rollback returns to.
    pub known: &'a [RevisionInfo],
    pub origin: &'a SpecOrigin,
    pub now: Timestamp,
}

struct Open<'a> {
    kind: RecordKind,
    trigger: RecordTrigger,
    revision: &'a RevisionInfo,
    from_version: Option<String>,
    origin: Option<&'a SpecOrigin>,
}

fn close(history: &mut [DeployRecord], outcome: RecordOutcome, message: Option<String>, now: Timestamp) {
    if let Some(r) = history.last_mut().filter(|r| r.outcome == RecordOutcome::InProgress) {
        r.outcome = outcome;
        r.finished_at = Some(Time(now));
        r.message = message.map(|m| m.chars().take(1024).collect());
    }
}

fn open(history: &mut Vec<DeployRecord>, o: Open<'_>, now: Timestamp) {
    let id = history.iter().map(|r| r.id).max().unwrap_or(0) + 1;
    history.push(DeployRecord {
        id,
        kind: o.kind,
        trigger: o.trigger,
        revision: o.revision.revision,
        revision_name: o.revision.name.clone(),
        version: o.revision.version.clone(),
        from_version: o.from_version,
        started_at: Time(now),
        finished_at: None,
        outcome: RecordOutcome::InProgress,
        message: None,
        change_cause: o.origin.and_then(|x| x.change_cause.clone()),
        changed_by: o.origin.and_then(|x| x.changed_by.clone()),
    });
}

fn is_open(history: &[DeployRecord]) -> Option<&DeployRecord> {
    history.last().filter(|r| r.outcome == RecordOutcome::InProgress)
}

/// The records of `next`, from those of `prior`.
pub(super) fn records(prior: &RolloutStatus, next: &RolloutStatus, f: &HistoryFacts<'_>) -> Vec<DeployRecord> {
    let mut h = prior.history.clone();
    let now = f.now;
    let update = next.update_revision.as_deref();
    let current = next.current_revision.as_deref();
    let new_failure = next
        .failed_update
        .as_ref()
        .filter(|fu| Some(fu.revision.as_str()) == update)
        .filter(|fu| prior.failed_update.as_ref().map(|p| &p.revision) != Some(&fu.revision));
    let retried = next.failed_update.is_none()
        && prior.update_revision.as_deref() == update
        && prior
            .failed_update
            .as_ref()
            .is_some_and(|p| Some(p.revision.as_str()) == update);

    if prior.update_revision.as_deref() != update {
        spec_changed(&mut h, prior, update, current, f);
    } else if retried {
        close(&mut h, RecordOutcome::Superseded, Some("retried".into()), now);
        let o = Open {
            kind: RecordKind::Deploy,
            trigger: RecordTrigger::Retry,
            revision: f.target,
            from_version: next.version.clone(),
            origin: None,
        };
        open(&mut h, o, now);
    } else if let Some(fu) = new_failure {
        failed(&mut h, fu, current, f);
    }

    close_if_done(&mut h, next, now);
    let excess = h.len().saturating_sub(MAX_RECORDS);
    h.drain(..excess);
    h
}

/// The spec now targets another revision than before: close what was open, and open a deploy
/// or a rollback (an undo, or the spec back on the healthy revision).
fn spec_changed(
    h: &mut Vec<DeployRecord>,
    prior: &RolloutStatus,
    update: Option<&str>,
    current: Option<&str>,
    f: &HistoryFacts<'_>,
) {
    let now = f.now;
    let revision_named = |name: Option<&str>| f.known.iter().find(|r| Some(r.name.as_str()) == name);
    let was_open = is_open(h).cloned();
    if update == current {
        // The spec is back on the last healthy revision: the instances return to it.
        match was_open {
            Some(r) if r.kind == RecordKind::Rollback && Some(r.revision_name.as_str()) == current => {}
            Some(r) => {
                close(
                    h,
                    RecordOutcome::Superseded,
                    Some("a newer spec replaced it".into()),
                    now,
                );
                if let (RecordKind::Deploy, Some(rev)) = (r.kind, revision_named(current)) {
                    let o = Open {
                        kind: RecordKind::Rollback,
                        trigger: RecordTrigger::Undo,
                        revision: rev,
                        from_version: Some(r.version.clone()),
                        origin: Some(f.origin),
                    };
                    open(h, o, now);
                }
            }
            None => {}
        }
    } else {
        close(
            h,
            RecordOutcome::Superseded,
            Some("a newer spec replaced it".into()),
            now,
        );
        let undo = f.target_existed && prior.update_revision.is_some();
        let o = Open {
            kind: if undo { RecordKind::Rollback } else { RecordKind::Deploy },
            trigger: if undo { RecordTrigger::Undo } else { RecordTrigger::Spec },
            revision: f.target,
            from_version: prior.version.clone(),
            origin: Some(f.origin),
        };
        open(h, o, now);
    }
}

/// The target revision failed: close its record, and open the rollback if one was made.
fn failed(h: &mut Vec<DeployRecord>, fu: &FailedUpdate, current: Option<&str>, f: &HistoryFacts<'_>) {
    let now = f.now;
    let revision_named = |name: Option<&str>| f.known.iter().find(|r| Some(r.name.as_str()) == name);
    let aborted = fu.reason == FailureReason::Aborted;
    let outcome = if aborted {
        RecordOutcome::Aborted
    } else {
        RecordOutcome::Failed
    };
    close(h, outcome, Some(fu.message.clone()), now);
    if let (true, Some(rev)) = (fu.rolled_back, revision_named(current)) {
        let o = Open {
            kind: RecordKind::Rollback,
            trigger: if aborted {
                RecordTrigger::Abort
            } else {
                RecordTrigger::Automatic
            },
            revision: rev,
            from_version: Some(fu.version.clone()),
            origin: None,
        };
        open(h, o, now);
    }
}

/// Close the open record once every instance is on its revision (or an automatic rollback ended).
fn close_if_done(h: &mut [DeployRecord], next: &RolloutStatus, now: Timestamp) {
    let (update, current) = (next.update_revision.as_deref(), next.current_revision.as_deref());
    if let Some(r) = is_open(h) {
        let automatic = matches!(r.trigger, RecordTrigger::Automatic | RecordTrigger::Abort);
        let all_on_it =
            next.phase == Some(RolloutPhase::Healthy) && update == current && Some(r.revision_name.as_str()) == update;
        let done = all_on_it || (automatic && next.phase == Some(RolloutPhase::RolledBack));
        if done {
            close(h, RecordOutcome::Succeeded, None, now);
        }
    }
}
