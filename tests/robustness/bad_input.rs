//! The bad-input table: every integer field at 2³¹, 2⁶³ and −1, huge lists, invalid templates,
//! unknown fields, 1.4 MiB templates. Each is refused by the API server, or reported by the
//! controller (`InvalidSpec` with an Event for a Rollout; a ListenerSet that does not decode is
//! skipped with a log line naming it), or — when it is valid after all (unknown fields are
//! pruned) — reconciled. A canary Rollout and ListenerSet keep being reconciled throughout and
//! after a restart.

use std::collections::BTreeSet;
use std::fmt;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use crate::controller::{
    create_raw, listenerset, observed_current, raw_condition, raw_listenersets, raw_rollouts, start, temp_dir,
    wait_observed, Proc, NO_ELECTION,
};
use crate::support::{manifest_v, wait_for, Env, LONG};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The API server answered 4xx to the create.
    Refused,
    /// Rollout: `InvalidSpec` True for its generation and an InvalidSpec Event.
    Invalid,
    /// ListenerSet that does not decode: left out, a log line names it.
    Skipped,
    /// Valid after all: reconciled at its generation.
    Reconciled,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rollout,
    ListenerSet,
}

struct Row {
    name: String,
    kind: Kind,
    object: Value,
    allowed: &'static [Outcome],
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

const REFUSED_OR_INVALID: &[Outcome] = &[Outcome::Refused, Outcome::Invalid];
const REFUSED_OR_SKIPPED: &[Outcome] = &[Outcome::Refused, Outcome::Skipped];
const RECONCILED: &[Outcome] = &[Outcome::Reconciled];
const RECONCILED_OR_INVALID: &[Outcome] = &[Outcome::Reconciled, Outcome::Invalid];

/// 2³¹, 2⁶³ and −1 (JSON numbers: 2⁶³ does not fit int64).
fn bad_integers() -> [(&'static str, Value); 3] {
    [
        ("2p31", json!(2_147_483_648_i64)),
        ("2p63", json!(9_223_372_036_854_775_808_u64)),
        ("neg", json!(-1)),
    ]
}

fn set_pointer(v: &mut Value, pointer: &str, value: Value) {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in the manifest")) = value;
}

fn rollout_row(name: String, edit: impl FnOnce(&mut Value), allowed: &'static [Outcome]) -> Row {
    let mut object = manifest_v(&name, 1, "v1");
    edit(&mut object);
    Row {
        name,
        kind: Kind::Rollout,
        object,
        allowed,
    }
}

fn set_row(name: String, edit: impl FnOnce(&mut Value), allowed: &'static [Outcome]) -> Row {
    let mut object = listenerset(&name);
    edit(&mut object);
    Row {
        name,
        kind: Kind::ListenerSet,
        object,
        allowed,
    }
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let rollout_ints = [
        ("replicas", "/spec/replicas"),
        ("minready", "/spec/minReadySeconds"),
        ("deadline", "/spec/progressDeadlineSeconds"),
        ("history", "/spec/revisionHistoryLimit"),
        ("surge", "/spec/strategy/maxSurge"),
        ("unavailable", "/spec/strategy/maxUnavailable"),
        ("batch", "/spec/strategy/batches/0"),
    ];
    for (field, pointer) in rollout_ints {
        for (tag, value) in bad_integers() {
            rows.push(rollout_row(
                format!("r-{field}-{tag}"),
                |o| set_pointer(o, pointer, value),
                REFUSED_OR_INVALID,
            ));
        }
    }
    for (tag, value) in bad_integers() {
        rows.push(rollout_row(
            format!("r-port-{tag}"),
            |o| o["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": value}]),
            REFUSED_OR_INVALID,
        ));
    }
    for (field, key) in [("maxperpod", "maxPerPod"), ("leaseduration", "leaseDurationSeconds")] {
        for (tag, value) in bad_integers() {
            rows.push(set_row(
                format!("l-{field}-{tag}"),
                |o| o["spec"][key] = value,
                REFUSED_OR_SKIPPED,
            ));
        }
    }
    // Huge lists.
    rows.push(rollout_row(
        "r-pins-10000".into(),
        |o| {
            o["spec"]["pins"] =
                json!([{"version": "v1", "instances": (0..10_000).map(|i| format!("x-{i}")).collect::<Vec<_>>()}])
        },
        REFUSED_OR_INVALID,
    ));
    rows.push(rollout_row(
        "r-batches-5000".into(),
        |o| o["spec"]["strategy"]["batches"] = json!(vec![1; 5000]),
        REFUSED_OR_INVALID,
    ));
    rows.push(set_row(
        "l-listeners-1000".into(),
        |o| o["spec"]["listeners"] = json!((0..1000).map(|i| json!({"id": format!("l{i}")})).collect::<Vec<_>>()),
        RECONCILED,
    ));
    // Invalid pod templates.
    rows.push(rollout_row(
        "r-version-label".into(),
        |o| o["spec"]["version"] = json!("v1.2.3+build"),
        REFUSED_OR_INVALID,
    ));
    rows.push(rollout_row(
        "r-no-containers".into(),
        |o| o["spec"]["template"]["spec"]["containers"] = json!([]),
        REFUSED_OR_INVALID,
    ));
    rows.push(rollout_row(
        "r-label-key".into(),
        |o| o["spec"]["template"]["metadata"]["labels"]["bad key"] = json!("x"),
        REFUSED_OR_INVALID,
    ));
    // Unknown fields: pruned by the API server, the rest is valid.
    rows.push(rollout_row(
        "r-unknown".into(),
        |o| {
            o["spec"]["bogus"] = json!({"x": 1});
            o["spec"]["strategy"]["bogus"] = json!(true);
        },
        RECONCILED,
    ));
    rows.push(set_row(
        "l-unknown".into(),
        |o| o["spec"]["bogus"] = json!(1),
        RECONCILED,
    ));
    // 1.4 MiB templates: in pod annotations (over the 256 KiB annotation limit) and in an env value.
    let big = "x".repeat(1_400 * 1024);
    let b = big.clone();
    rows.push(rollout_row(
        "r-template-annotation-1400k".into(),
        move |o| o["spec"]["template"]["metadata"]["annotations"] = json!({"big": b}),
        REFUSED_OR_INVALID,
    ));
    rows.push(rollout_row(
        "r-template-env-1400k".into(),
        move |o| o["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "BIG", "value": big}]),
        RECONCILED_OR_INVALID,
    ));
    rows
}

/// What became of an accepted row, if it is settled yet.
async fn settled(env: &Env, api: &Api<DynamicObject>, c: &Proc, row: &Row) -> Option<Outcome> {
    let o = api.get(&row.name).await.ok()?;
    match row.kind {
        Kind::Rollout => {
            let invalid =
                raw_condition(&o, "InvalidSpec").is_some_and(|c| c.0 == "True" && c.3 == o.metadata.generation);
            if invalid {
                let evented = env
                    .events(&row.name)
                    .await
                    .iter()
                    .any(|e| e.reason.as_deref() == Some("InvalidSpec"));
                return evented.then_some(Outcome::Invalid);
            }
            let healthy = o.data["status"]["phase"] == "Healthy";
            (observed_current(&o) && healthy).then_some(Outcome::Reconciled)
        }
        Kind::ListenerSet => {
            if !c
                .log_lines(&format!("skipping ListenerSet default/{}", row.name))
                .is_empty()
            {
                return Some(Outcome::Skipped);
            }
            observed_current(&o).then_some(Outcome::Reconciled)
        }
    }
}

/// The canaries are reconciled: the Rollout rolls `version` out, the ListenerSet observes a
/// new generation.
async fn canaries_reconciled(env: &Env, sets: &Api<DynamicObject>, version: &str, lease_seconds: i64) {
    env.apply(&manifest_v("canary", 1, version)).await;
    let p = json!({"spec": {"leaseDurationSeconds": lease_seconds}});
    sets.patch("canary-set", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .expect("patching the canary ListenerSet");
    env.wait_healthy("canary", version, 1).await;
    wait_observed(sets, &["canary-set".to_string()], "the canary ListenerSet reconciled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_or_reported_and_never_stops_the_canaries() {
    let env = Env::start().await;
    let dir = temp_dir("bad-input");
    let (rollouts, sets) = (raw_rollouts(&env.client), raw_listenersets(&env.client));
    create_raw(&sets, listenerset("canary-set"))
        .await
        .expect("canary ListenerSet");
    let mut c = start(&env.sim, dir.path(), "baton-bad-a", &NO_ELECTION).await;
    c.wait_ready().await;
    canaries_reconciled(&env, &sets, "v1", 15).await;

    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let mut accepted: Vec<Row> = Vec::new();
    for row in rows() {
        let api = if row.kind == Kind::Rollout { &rollouts } else { &sets };
        match create_raw(api, row.object.clone()).await {
            Ok(_) => accepted.push(row),
            Err(kube::Error::Api(s)) if (400..500).contains(&s.code) => {
                assert!(
                    row.allowed.contains(&Outcome::Refused),
                    "{row:?} refused: {}",
                    s.message
                );
                outcomes.push((row.name, Outcome::Refused));
            }
            Err(e) => panic!("{row:?}: {e}"),
        }
    }
    // Throughout: the canaries move while the bad objects are there.
    canaries_reconciled(&env, &sets, "v2", 16).await;
    for row in &accepted {
        let api = if row.kind == Kind::Rollout { &rollouts } else { &sets };
        let outcome = wait_for(&format!("{row:?} to be reported or reconciled"), LONG, || {
            settled(&env, api, &c, row)
        })
        .await;
        assert!(
            row.allowed.contains(&outcome),
            "{row:?}: {outcome:?}, allowed {:?}",
            row.allowed
        );
        outcomes.push((row.name.clone(), outcome));
    }
    assert_eq!(c.get("/healthz").await.map(|r| r.0), Some(200));

    // After a restart, with every bad object still there.
    c.stop().await;
    let mut c = start(&env.sim, dir.path(), "baton-bad-b", &NO_ELECTION).await;
    c.wait_ready().await;
    canaries_reconciled(&env, &sets, "v3", 17).await;
    c.stop().await;

    outcomes.sort();
    let kinds: BTreeSet<Outcome> = outcomes.iter().map(|o| o.1).collect();
    eprintln!("{} bad inputs: {kinds:?}", outcomes.len());
    for (name, outcome) in &outcomes {
        eprintln!("  {name}: {outcome:?}");
    }
}
