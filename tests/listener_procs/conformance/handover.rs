//! Graceful handovers: pods replaced the way a rolling deploy replaces them, a pod drained, a pod
//! deleted (its app SIGTERMed beside its sidecar). Each listener moves once its app has stopped
//! it and acknowledged, never running in two apps at once.
use std::time::Duration;

use crate::harness::wait_for;

use super::checks::{acked_without, intervals_of, ACK_SLACK};
use super::{Failure, Outcome, Trial, LONG, SET};

/// A rolling deploy of both pods, one at a time: the new pod is Ready and runs its sidecar and
/// app, then the old one is deleted gracefully (the kubelet SIGTERMs its sidecar and app). Every
/// listener moves off it; its app stops each, acknowledges, and exits by itself.
pub async fn rollout(t: &Trial) -> Outcome {
    for (old, new) in [("pa", "pc"), ("pb", "pd")] {
        t.step(t.add_pod(new).await)?;
        t.step(t.ns.delete_pod(old, 30).await)?;
        let what = format!("every listener off the replaced {old}");
        t.step(t.ns.wait_running(&what, &t.keys, LONG, |p| p != old).await)?;
    }
    let what = "every listener on the new pods";
    t.step(t.ns.wait_running(what, &t.keys, LONG, |p| p == "pc" || p == "pd").await)?;
    let mut v = Vec::new();
    for old in ["pa", "pb"] {
        v.extend(exited_by_itself(t, old).await?);
    }
    t.step(
        t.ns.settled(SET, t.keys.len(), "every Lease agreeing with its app", LONG)
            .await,
    )?;
    t.judge(v)
}

/// Pod `pod`'s app, SIGTERMed, has exited by itself (code 0) within the grace period, after an
/// acknowledgement of a document that lists none of the set's listeners (rule 5): what it did
/// not do.
async fn exited_by_itself(t: &Trial, pod: &str) -> Result<Vec<String>, Failure> {
    let procs = t.app_of(pod)?;
    let record = procs
        .app
        .record
        .clone()
        .ok_or_else(|| Failure::Harness(format!("the app of {pod} is not a process")))?;
    let what = format!("the app of {pod} exited");
    let waited = wait_for(&what, Duration::from_secs(30), || async { record.exit() })
        .await
        .map_err(|e| format!("{e}; what it printed:\n{}", record.output().join("\n")));
    let (exited, status) = t.step(waited)?;
    let mut v = Vec::new();
    if !status.success() {
        v.push(format!("the app of {pod} exited with {status} after SIGTERM"));
    }
    let tap = procs
        .app
        .tap
        .as_ref()
        .ok_or_else(|| Failure::Harness("no tap".into()))?;
    match acked_without(tap, &t.keys) {
        Some(acked) if acked <= exited => {}
        _ => v.push(format!(
            "the app of {pod} exited without acknowledging a document that lists none of its listeners"
        )),
    }
    Ok(v)
}

/// A pod drained by hand (`baton.dev/drain=true`): its sidecar lists nothing, its app stops each
/// listener (0.5 s), acknowledges — the drain ends without any ack timeout — and keeps running.
pub async fn drain(t: &Trial) -> Outcome {
    let (pod, mine) = t.busiest();
    drain_pod(t, &pod).await?;
    let what = format!("every listener off the drained {pod}");
    let other = Trial::other(&pod);
    t.step(t.ns.wait_running(&what, &t.keys, LONG, |p| p == other).await)?;
    let mut v = still_running(t, &pod)?;
    v.extend(acked_after_stops(t, &pod, &mine)?);
    t.judge(v)
}

/// Annotate `pod` `baton.dev/drain=true`.
pub async fn drain_pod(t: &Trial, pod: &str) -> Result<(), Failure> {
    let r = t.ns.drain(pod, true).await;
    t.step(r)
}

/// The app of `pod` still runs (it stopped its listeners itself: the harness did not end them
/// for it).
pub fn still_running(t: &Trial, pod: &str) -> Result<Vec<String>, Failure> {
    let procs = t.app_of(pod)?;
    let exit = procs.app.record.as_ref().and_then(|r| r.exit());
    Ok(exit
        .map(|(_, s)| {
            vec![format!(
                "the app of {pod} exited ({s}) instead of only stopping its listeners"
            )]
        })
        .unwrap_or_default())
}

/// The app of `pod` logged the stop of each of `keys` itself and then acknowledged a document
/// without them — the handover came from its acknowledgement, not from the agent's ack timeout.
pub fn acked_after_stops(t: &Trial, pod: &str, keys: &[String]) -> Result<Vec<String>, Failure> {
    let procs = t.app_of(pod)?;
    let mut v = Vec::new();
    let mine = intervals_of(&t.ns, &procs.app.id);
    let mut last_stop = None;
    for k in keys {
        match mine.iter().filter(|i| &i.listener == k).filter_map(|i| i.end).max() {
            Some(end) => last_stop = last_stop.max(Some(end)),
            None => v.push(format!("the app of {pod} never logged the stop of {k}")),
        }
    }
    let tap = procs
        .app
        .tap
        .as_ref()
        .ok_or_else(|| Failure::Harness("no tap".into()))?;
    match (acked_without(tap, keys), last_stop) {
        (Some(acked), Some(stopped)) if acked + ACK_SLACK >= stopped => {}
        (acked, stopped) => v.push(format!(
            "the app of {pod} did not acknowledge a document without {keys:?} after stopping them \
             (last ack of one at {acked:?}, last stop at {stopped:?})"
        )),
    }
    Ok(v)
}

/// The pod running the most listeners is deleted gracefully: the kubelet SIGTERMs its sidecar
/// and its app together. The client follows the sidecar (rule 5): it stops every listener (1 s
/// each), acknowledges the empty document and only then exits, by itself, within the grace
/// period; every listener moves to the other pod.
pub async fn sigterm(t: &Trial) -> Outcome {
    let (pod, mine) = t.busiest();
    t.step(t.ns.delete_pod(&pod, 30).await)?;
    let other = Trial::other(&pod);
    let what = format!("every listener off the deleted {pod}");
    t.step(t.ns.wait_running(&what, &t.keys, LONG, |p| p == other).await)?;
    let mut v = exited_by_itself(t, &pod).await?;
    let procs = t.app_of(&pod)?;
    let stopped = intervals_of(&t.ns, &procs.app.id);
    for k in &mine {
        if !stopped.iter().any(|i| &i.listener == k && i.end.is_some()) {
            v.push(format!("the app of {pod} never stopped {k}"));
        }
    }
    t.judge(v)
}
