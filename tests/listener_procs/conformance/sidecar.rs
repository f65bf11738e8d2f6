//! A sidecar that cannot help: SIGKILLed (the app must stop each listener at the `validUntil` it
//! was last told), restarted after the lease ran out (the app follows the new sidecar), or cut
//! off from the API server (its agent stops renewing; the app stops at the deadline).
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::harness::{listeners, wait_for};

use super::checks::{intervals_of, valid_until, EARLY, LATE};
use super::{Failure, Outcome, Trial, LONG, SET};

/// The sidecar of the pod running the most listeners is SIGKILLed; its app runs on, hears
/// nothing more, and must stop each listener at the `validUntil` it was last told — not before
/// ([`EARLY`]), not after ([`LATE`]; the app's stop takes no time here) — before the controller
/// gives it to the other pod.
pub async fn killed(t: &Trial) -> Outcome {
    let (pod, mine) = t.busiest();
    let procs = t.app_of(&pod)?;
    let tap = procs.app.tap.clone().ok_or_else(|| Failure::Harness("no tap".into()))?;
    let tokens = t.ns.log.running_tokens();
    t.step(t.ns.kill_agent(&pod).await)?;
    let killed = Instant::now();
    // What each listener was last told, once no document can come any more.
    let mut told = Vec::new();
    for k in &mine {
        let token = tokens.get(k).and_then(|apps| apps.first()).map_or(-1, |(_, t)| *t);
        let until = valid_until(&tap, k, token, killed + LONG)
            .ok_or_else(|| Failure::Harness(format!("{pod}'s app was never told a validUntil for {k}")))?;
        told.push((k.clone(), until));
    }
    let latest = told.iter().map(|(_, u)| *u).max().unwrap_or(killed);
    // Until every one has stopped, or well past the latest validUntil (then: what ran on).
    let app = procs.app.id.clone();
    let stopped = || {
        let now = intervals_of(&t.ns, &app);
        mine.iter()
            .all(|k| now.iter().filter(|i| &i.listener == k).all(|i| i.end.is_some()))
            .then_some(())
    };
    let give_up = latest.saturating_duration_since(Instant::now()) + LATE + Duration::from_secs(2);
    let _ = wait_for("every listener of the killed sidecar stopped", give_up, || async {
        stopped()
    })
    .await;
    let mut v = Vec::new();
    let ends = intervals_of(&t.ns, &app);
    for (k, until) in &told {
        let end = ends.iter().filter(|i| &i.listener == k).filter_map(|i| i.end).max();
        match end {
            None => v.push(format!("{k} ran on in {app} past its validUntil: never stopped")),
            Some(e) if e + EARLY < *until => {
                v.push(format!("{k} stopped in {app} {:?} before its validUntil", *until - e))
            }
            Some(e) if e > *until + LATE => {
                v.push(format!("{k} stopped in {app} {:?} past its validUntil", e - *until))
            }
            Some(e) => println!(
                "{:?}: {k} stopped {:+.1} ms from its validUntil, {:.2} s after the kill",
                t.client,
                signed_ms(e, *until),
                signed_ms(e, killed) / 1000.0
            ),
        }
    }
    if !v.is_empty() {
        return t.judge(v);
    }
    let other = Trial::other(&pod);
    let what = format!("every listener taken over from {pod}");
    t.step(t.ns.wait_running(&what, &t.keys, LONG, |p| p == other).await)?;
    t.judge(v)
}

/// The sidecar is SIGKILLed and comes back (its container restarted) only after the lease ran
/// out and its listeners moved: the app, which stopped them at their `validUntil`, follows the
/// new sidecar — it is given the set's new listeners and runs them.
pub async fn restarted(t: &Trial) -> Outcome {
    let (pod, _) = t.busiest();
    let other = Trial::other(&pod);
    t.step(t.ns.kill_agent(&pod).await)?;
    let what = format!("every listener taken over from {pod}");
    t.step(t.ns.wait_running(&what, &t.keys, LONG, |p| p == other).await)?;
    t.step(t.ns.restart_agent(&pod).await)?;
    // Two more listeners: the pod running none takes them once its agent registers again.
    let n = t.keys.len() + 2;
    let (spec, keys) = listeners(SET, n);
    let patch = json!({"spec": {"listeners": spec}});
    let r =
        t.ns.sets()
            .patch(SET, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    t.step(r.map(|_| ()).map_err(|e| format!("adding listeners: {e}")))?;
    t.step(
        t.ns.wait_running("every listener, old and new", &keys, LONG, |_| true)
            .await,
    )?;
    let on = |ns: &crate::harness::Ns| ns.running_on().values().any(|p| *p == pod).then_some(());
    let what = format!("{pod}'s app running listeners from its restarted sidecar");
    t.step(wait_for(&what, LONG, || async { on(&t.ns) }).await)?;
    t.step(t.ns.settled(SET, n, "every Lease agreeing with its app", LONG).await)?;
    t.judge(Vec::new())
}

/// The agent of the pod running the most listeners is cut off from the API server (its requests
/// hang): it renews nothing, and at its deadline — the `validUntil` it published — it lists
/// nothing; the app, which still reaches its sidecar, stops each listener by then, and the
/// controller gives them to the other pod once the lease has run out on its clock.
pub async fn partitioned(t: &Trial) -> Outcome {
    let (pod, _) = t.busiest();
    let other = Trial::other(&pod);
    t.step(t.ns.partition_agent(&pod))?;
    let what = format!("every listener taken over from the partitioned {pod}");
    let moved = t.ns.wait_running(&what, &t.keys, LONG, |p| p == other).await;
    let healed = t.ns.heal_agent(&pod);
    t.step(moved)?;
    t.step(healed)?;
    t.judge(Vec::new())
}

/// `a - b` in milliseconds.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    (a.saturating_duration_since(b).as_secs_f64() - b.saturating_duration_since(a).as_secs_f64()) * 1000.0
}
