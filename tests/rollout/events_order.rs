//! What users read Events with: real `kubectl describe rollout`, `kubectl events --for` and
//! `kubectl get events --field-selector`, on Events the controller's publisher wrote.

use std::time::Duration;

use baton::events::{Occurrence, Publisher, Severity};
use jiff::Timestamp;
use kube::Resource;

use crate::helpers::*;
use crate::support::*;

/// `kubectl` prints ages and `lastTimestamp` to the second: the next occurrence starts in the
/// next second, so that time alone orders the rows.
async fn next_second() {
    let now = Timestamp::now().as_second();
    wait::poll(
        "the clock to reach the next second",
        LONG,
        Duration::from_millis(10),
        || async move {
            if Timestamp::now().as_second() > now {
                Ok(())
            } else {
                Err(())
            }
        },
    )
    .await
    .unwrap_or_else(|(m, ())| panic!("{m}"));
}

/// The reasons of the Events table of `kubectl describe` output, top to bottom.
fn described_reasons(out: &str) -> Vec<(String, String)> {
    let events = out
        .split("\nEvents:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section:\n{out}"));
    events
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("----"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells.get(1).copied().unwrap_or("").to_string(), l.to_string())
        })
        .collect()
}

/// Three Events in three seconds, then the first repeated (a series): `kubectl describe rollout`
/// lists them by their last occurrence (kubectl orders by `lastTimestamp` alone), the repeated
/// one last with its count; `kubectl events --for` and `kubectl get events --field-selector
/// involvedObject.name=` (docs/operating.md) show them; a core/v1 selector under its
/// events.k8s.io/v1 name is refused, as kube-apiserver refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_lists_events_by_their_last_occurrence() {
    let env = Env::start().await;
    let k = env.kubectl();
    let rollout = env.apply(&env.manifest_v(NAME, 1, "v1")).await;
    let regarding = rollout.object_ref(&());
    let publisher = Publisher::new(env.client.clone(), "baton-rollout", "test-0");
    let repeated = Occurrence::new(Severity::Warning, "ActionIgnored", "promote requested, nothing done");
    let steps = [
        repeated.clone(),
        Occurrence::new(Severity::Normal, "BatchStarted", "batch 1/1 started").once("g1/v1/b1"),
        Occurrence::new(Severity::Normal, "BatchCompleted", "batch 1/1 completed").once("g1/v1/b1c"),
        repeated,
    ];
    for (i, o) in steps.iter().enumerate() {
        if i > 0 {
            next_second().await;
        }
        publisher
            .publish_occurrence(&regarding, o)
            .await
            .unwrap_or_else(|e| panic!("publishing {o:?}: {e}"));
    }

    let out = k.ok(&["describe", "rollout", NAME, "-n", &env.ns]).await;
    let rows = described_reasons(&out);
    let reasons: Vec<&str> = rows.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        ["BatchStarted", "BatchCompleted", "ActionIgnored"],
        "rows in the order of their last occurrence:\n{out}"
    );
    assert!(rows[2].1.contains("(x2 over "), "the repeat is counted:\n{out}");

    let out = k
        .ok(&["events", "-n", &env.ns, "--for", &format!("rollout/{NAME}")])
        .await;
    let order: Vec<usize> = ["BatchStarted", "BatchCompleted", "ActionIgnored"]
        .iter()
        .map(|r| out.find(r).unwrap_or_else(|| panic!("{r} in kubectl events:\n{out}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "kubectl events order:\n{out}");

    let selector = format!("involvedObject.name={NAME}");
    let out = k
        .ok(&["get", "events", "-n", &env.ns, "--field-selector", &selector])
        .await;
    for r in ["BatchStarted", "BatchCompleted", "ActionIgnored"] {
        assert!(
            out.contains(r),
            "{r} in kubectl get events --field-selector {selector}:\n{out}"
        );
    }
    let run = k
        .run(&[
            "get",
            "events",
            "-n",
            &env.ns,
            "--field-selector",
            &format!("regarding.name={NAME}"),
        ])
        .await;
    assert!(
        run.code != 0 && run.stderr.contains("field label not supported: regarding.name"),
        "core/v1 Events have no regarding.name selector:\n{run}"
    );
}
