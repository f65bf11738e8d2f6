//! Stops that do not go well: one slower than the agent's ack timeout, one that raises (Python,
//! TypeScript) or panics (Go) once the listener's connection is gone.
use crate::harness::AgentFlags;

use super::handover::{acked_after_stops, drain_pod, still_running};
use super::{Failure, Knobs, Outcome, Setup, Trial, LONG};

/// Stops take 2.5 s, the agent's ack timeout is 1 s; the lease (8 s) outlasts a stop, so only
/// the ack timeout is in question.
pub fn slow_setup() -> Setup {
    Setup {
        knobs: Knobs {
            stop_seconds: 2.5,
            stop_fails: false,
        },
        agent: AgentFlags {
            ack_timeout: 1,
            ..AgentFlags::default()
        },
        lease: 8,
        ..Setup::default()
    }
}

/// The pod running the most listeners is drained while its app's stops take longer than the
/// agent's ack timeout: the client acknowledges only once each stop has finished, and no
/// listener runs on the other pod before it has stopped here: the agent, which has seen this app
/// acknowledge before, waits for the ack rather than releasing at its ack timeout.
pub async fn slow(t: &Trial) -> Outcome {
    let (_, _, v) = drain_busiest(t).await?;
    t.judge(v)
}

/// The pod running the most listeners is drained and each stop raises (panics in Go) after the
/// listener's connection is gone: the client reports it, counts the listener stopped, keeps
/// running, acknowledges once every stop has ended — so the listeners move at once, not after
/// the agent's ack timeout — and starts nothing again.
pub async fn failing(t: &Trial) -> Outcome {
    let (pod, mine, mut v) = drain_busiest(t).await?;
    // Each stop did fail, and the client said so (the sample app's error is in its log).
    let procs = t.app_of(&pod)?;
    let output = procs.app.record.as_ref().map(|r| r.output()).unwrap_or_default();
    for k in &mine {
        let said = format!("closing {k} failed");
        if !output.iter().any(|l| l.contains(&said)) {
            v.push(format!(
                "the app of {pod} did not report its failed stop of {k} ({said:?})"
            ));
        }
    }
    t.judge(v)
}

/// Drain the pod running the most listeners and wait until they all run on the other: the pod,
/// its listeners, and what its app broke (it must keep running, and acknowledge only after its
/// stops).
async fn drain_busiest(t: &Trial) -> Result<(String, Vec<String>, Vec<String>), Failure> {
    let (pod, mine) = t.busiest();
    drain_pod(t, &pod).await?;
    let other = Trial::other(&pod);
    let what = format!("every listener off the drained {pod}");
    t.step(t.ns.wait_running(&what, &t.keys, LONG, |p| p == other).await)?;
    let mut v = still_running(t, &pod)?;
    v.extend(acked_after_stops(t, &pod, &mine)?);
    Ok((pod, mine, v))
}
