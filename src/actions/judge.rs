//! How a Rollout is judged, by the CLI and the dashboard alike: the verdict `status` exits with,
//! the phase word and header line (which always agree with the verdict), and whether a runtime
//! action has anything to act on. Pure functions of the Rollout object.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use crate::api::rollout::{reasons, ConditionStatus, ConditionType, FailureReason, Reason, Rollout, RolloutPhase};

/// Outcome of a rollout as `status` judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `Ready` is True for the current generation.
    Healthy,
    /// `Stalled` is True for the current generation: rolled back, aborted, stopped, invalid.
    Failed,
    InProgress,
}

/// Does the status describe the Rollout's current generation?
pub fn observed(r: &Rollout) -> bool {
    r.status
        .as_ref()
        .is_some_and(|s| s.observed_generation.is_some() && s.observed_generation == r.metadata.generation)
}

/// The condition of type `t`, when it describes the current generation.
fn current(r: &Rollout, t: ConditionType) -> Option<&Condition> {
    let st = r.status.as_ref()?;
    reasons::find(&st.conditions, t).filter(|c| c.observed_generation.is_none_or(|g| Some(g) == r.metadata.generation))
}

fn is_true(c: Option<&Condition>) -> bool {
    c.is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// Healthy only when `Ready` is True for the current generation, failed when `Stalled` is.
pub fn verdict(r: &Rollout) -> Verdict {
    if !observed(r) {
        return Verdict::InProgress;
    }
    if is_true(current(r, ConditionType::Ready)) {
        return Verdict::Healthy;
    }
    if is_true(current(r, ConditionType::Stalled)) {
        return Verdict::Failed;
    }
    Verdict::InProgress
}

/// The phase word of the header: never `Healthy` unless the verdict is.
pub fn phase_word(r: &Rollout, v: Verdict) -> String {
    let phase = r.status.as_ref().and_then(|s| s.phase);
    match (v, phase) {
        (Verdict::Healthy, _) => RolloutPhase::Healthy.to_string(),
        (_, None) => "Pending".into(),
        _ if !observed(r) => "Pending".into(),
        (Verdict::Failed, Some(RolloutPhase::Healthy)) => RolloutPhase::Degraded.to_string(),
        (Verdict::InProgress, Some(RolloutPhase::Healthy)) => RolloutPhase::Progressing.to_string(),
        (_, Some(p)) => p.to_string(),
    }
}

/// `rollout NAME — PHASE — …`: what serves, and what went wrong or is under way.
pub fn header(r: &Rollout) -> String {
    let v = verdict(r);
    let name = r.name_any();
    let word = phase_word(r, v);
    let st = r.status.clone().unwrap_or_default();
    let serving = st.version.clone().unwrap_or_else(|| "-".into());
    let target = &r.spec.version;
    let detail = match v {
        Verdict::Healthy => format!("version {serving}"),
        Verdict::Failed => match &st.failed_update {
            _ if is_true(current(r, ConditionType::InvalidSpec)) => {
                format!("serving {serving}; the spec of {target} is invalid")
            }
            Some(f) if f.rolled_back && f.reason == FailureReason::Aborted => {
                format!("serving {serving}; {} was aborted and rolled back", f.version)
            }
            Some(f) if f.rolled_back => format!(
                "serving {serving}; {} failed ({}) and was rolled back",
                f.version, f.reason
            ),
            Some(f) => format!(
                "serving {serving}; {} stopped at batch {} ({})",
                f.version, f.batch, f.reason
            ),
            None => format!("serving {serving}; failing"),
        },
        Verdict::InProgress if r.status.is_none() => format!("{target}: not reconciled yet"),
        Verdict::InProgress if !observed(r) => format!(
            "{target}: generation {} not observed by the controller yet",
            r.metadata.generation.unwrap_or(0)
        ),
        Verdict::InProgress => format!("serving {serving}, rolling out {target}"),
    };
    format!("rollout {name} — {word} — {detail}")
}

/// A runtime action (requested through an annotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Promote,
    PromoteFull,
    Abort,
    Retry,
}

/// Why `request` would have nothing to act on, judged from a status of the current generation;
/// None when it would act.
pub fn refusal(r: &Rollout, request: Request) -> Option<String> {
    let name = r.name_any();
    let Some(st) = &r.status else {
        return Some(format!("rollout {name} has no status yet; is the controller running?"));
    };
    let progressing = current(r, ConditionType::Progressing).and_then(|c| Reason::parse(&c.reason));
    let state = format!(
        "it is {} ({})",
        phase_word(r, verdict(r)),
        st.message.as_deref().unwrap_or("no message")
    );
    let rolling = st.current_revision.is_some() && st.current_revision != st.update_revision;
    let failed = st
        .failed_update
        .as_ref()
        .filter(|f| st.update_revision.as_deref() == Some(f.revision.as_str()));
    let in_progress = rolling && failed.is_none();
    match request {
        Request::Promote | Request::PromoteFull if r.spec.paused => Some(format!(
            "rollout {name} is paused (spec.paused: true): nothing moves until `baton rollout resume {name}`; resume it, then promote"
        )),
        Request::Promote if progressing == Some(Reason::BatchPaused) => None,
        Request::Promote if in_progress => Some(format!(
            "rollout {name} has no pause to end: {state}; `baton rollout promote --full {name}` skips the remaining batches"
        )),
        Request::Promote => Some(format!("rollout {name} has no rollout in progress to promote: {state}")),
        Request::PromoteFull if in_progress => None,
        Request::PromoteFull => Some(format!("rollout {name} has no rollout in progress to promote: {state}")),
        Request::Abort if rolling && failed.is_none_or(|f| !f.rolled_back) => None,
        Request::Abort if st.current_revision.is_none() => Some(format!(
            "rollout {name} has no healthy revision to return to yet: {state}"
        )),
        Request::Abort => Some(format!("rollout {name} has no rollout in progress to abort: {state}")),
        Request::Retry if failed.is_some() => None,
        Request::Retry => Some(format!("rollout {name} has no failed rollout to retry: {state}")),
    }
}
