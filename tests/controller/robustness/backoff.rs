//! (7) Failing reconciles back off exponentially per object.

use baton_sim::faults::FaultRule;
use kube::api::{Patch, PatchParams};
use serde_json::{json, Value};

use super::controller::{create_raw, listenerset, raw_listenersets, start, temp_dir, wait_observed, Proc, NO_ELECTION};
use crate::support::{current_generation, manifest_v, wait_for, Env, LONG};

const ID: &str = "baton-backoff";

fn duration_secs(v: &Value) -> Option<f64> {
    // `retry_in` is logged with Debug: "1s", "2s", "100ms".
    let s = v.as_str()?;
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|m| m / 1000.0);
    }
    s.strip_suffix('s')?.parse().ok()
}

/// The API server answers 500 to every status write of `path` by this controller.
fn refuse_status_writes(env: &Env, path: &str) {
    env.sim.faults.add_rule(FaultRule {
        client: Some(ID.into()),
        path: Some(path.into()),
        error_rate: 1.0,
        error_codes: vec![500],
        ..FaultRule::default()
    });
}

/// The "reconcile failed" lines of one object: (attempt, delay in seconds, error).
async fn failures(c: &Proc, kind: &str, name: &str, n: usize) -> Vec<(i64, f64, String)> {
    wait_for(&format!("{n} failed attempts of {kind} {name}"), LONG, || async {
        let lines: Vec<(i64, f64, String)> = c
            .log_lines("reconcile failed")
            .into_iter()
            .filter(|l| l["kind"] == kind && l["name"] == name)
            .filter_map(|l| {
                Some((
                    l["attempt"].as_i64()?,
                    duration_secs(&l["retry_in"])?,
                    l["error"].as_str()?.to_string(),
                ))
            })
            .collect();
        (lines.len() >= n).then_some(lines)
    })
    .await
}

async fn gauge(c: &Proc, controller: &str) -> Option<f64> {
    c.metric(&format!(
        "baton_reconcile_backoff_objects{{controller=\"{controller}\"}}"
    ))
    .await
}

/// The API server refuses every status write of one Rollout and one ListenerSet (500). Their
/// reconciles fail and are retried 1 s, 2 s, 4 s apart (before: every second, forever, with a
/// warning each time), one log line per attempt naming the object, and
/// `baton_reconcile_backoff_objects` counts them; a healthy Rollout beside them is reconciled
/// at once meanwhile. Once writes pass again a change reconciles them and the gauges return
/// to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_reconciles_back_off_exponentially_per_object() {
    let env = Env::start().await;
    let dir = temp_dir("backoff");
    let sets = raw_listenersets(&env.client);
    create_raw(&sets, listenerset("ls")).await.expect("ListenerSet");
    env.apply(&manifest_v("svc", 1, "v1")).await;
    env.apply(&manifest_v("other", 1, "v1")).await;
    let mut c = start(&env.sim, dir.path(), ID, &NO_ELECTION).await;
    c.wait_ready().await;
    env.wait_healthy("svc", "v1", 1).await;
    wait_observed(&sets, &["ls".into()], "the ListenerSet reconciled").await;

    refuse_status_writes(&env, "/rollouts/svc/status");
    refuse_status_writes(&env, "/listenersets/ls/status");
    env.merge("svc", json!({"spec": {"revisionHistoryLimit": 5}})).await;
    let p = json!({"spec": {"leaseDurationSeconds": 20}});
    sets.patch("ls", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("patching the ListenerSet");
    for (kind, name) in [("Rollout", "svc"), ("ListenerSet", "ls")] {
        let failed = failures(&c, kind, name, 3).await;
        let attempts: Vec<i64> = failed.iter().map(|f| f.0).collect();
        let delays: Vec<f64> = failed.iter().map(|f| f.1).collect();
        assert_eq!(&attempts[..3], &[1, 2, 3], "{kind}: {failed:?}");
        assert_eq!(&delays[..3], &[1.0, 2.0, 4.0], "{kind}: {failed:?}");
        assert!(failed[0].2.contains("500"), "{kind}: {failed:?}");
    }
    assert_eq!(gauge(&c, "rollout").await, Some(1.0));
    assert_eq!(gauge(&c, "listenerset").await, Some(1.0));
    // Another object is not held up by them.
    env.apply(&manifest_v("other", 1, "v2")).await;
    env.wait_healthy("other", "v2", 1).await;

    // Writes pass again; a change wakes each at once and the success resets its backoff.
    env.sim.faults.clear();
    env.merge("svc", json!({"metadata": {"annotations": {"test/poke": "1"}}}))
        .await;
    let p = json!({"metadata": {"annotations": {"test/poke": "1"}}});
    sets.patch("ls", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("poking the ListenerSet");
    env.wait_rollout("svc", "reconciled at its generation", LONG, current_generation)
        .await;
    wait_observed(&sets, &["ls".into()], "the ListenerSet reconciled").await;
    wait_for("both backoff gauges back to 0", LONG, || async {
        (gauge(&c, "rollout").await == Some(0.0) && gauge(&c, "listenerset").await == Some(0.0)).then_some(())
    })
    .await;
    c.stop().await;
}
