//! The bad-input table: every integer field at 2³¹, 2⁶³, −1 (and the largest value the schema
//! allows), huge lists, invalid templates, unknown fields, 1.4 MiB templates; and the same
//! integers in objects stored under an older CRD whose schema did not bound them. Each is
//! refused by the API server, or reported by the controller (`InvalidSpec` for its generation
//! and a Warning Event), or — when it is valid after all (unknown fields are pruned, a large
//! but allowed value) — reconciled. A canary Rollout and a canary ListenerSet are reconciled
//! throughout and after a restart, and every report stands after the restart.

use std::collections::BTreeMap;
use std::fmt;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use super::controller::{
    create_raw, create_under_unbounded_schema, events_of, listenerset, observed_current, raw_condition,
    raw_listenersets, raw_rollouts, start, temp_dir, wait_observed, LISTENERSETS_CRD, NO_ELECTION, ROLLOUTS_CRD,
};
use crate::support::{manifest_v, wait_for, Env, LONG};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The API server answered 4xx to the create.
    Refused,
    /// `InvalidSpec` for its generation (Rollout: the InvalidSpec condition True; ListenerSet:
    /// Ready False with reason InvalidSpec) and an InvalidSpec Warning Event.
    Invalid,
    /// Valid after all: reconciled at its generation (a Rollout Healthy).
    Reconciled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
const ANY_ANSWER: &[Outcome] = &[Outcome::Refused, Outcome::Invalid, Outcome::Reconciled];
const RECONCILED: &[Outcome] = &[Outcome::Reconciled];
const RECONCILED_OR_INVALID: &[Outcome] = &[Outcome::Reconciled, Outcome::Invalid];

/// 2³¹, 2⁶³ (a JSON number that does not fit int64) and −1.
fn bad_integers() -> [(&'static str, Value); 3] {
    [
        ("2p31", json!(2_147_483_648_i64)),
        ("2p63", json!(9_223_372_036_854_775_808_u64)),
        ("neg", json!(-1)),
    ]
}

/// Integer fields of a Rollout, as JSON pointers into [`manifest_v`].
const ROLLOUT_INTS: [(&str, &str); 8] = [
    ("replicas", "/spec/replicas"),
    ("minready", "/spec/minReadySeconds"),
    ("deadline", "/spec/progressDeadlineSeconds"),
    ("history", "/spec/revisionHistoryLimit"),
    ("surge", "/spec/strategy/maxSurge"),
    ("unavailable", "/spec/strategy/maxUnavailable"),
    ("batch", "/spec/strategy/batches/0"),
    ("port", "/spec/template/spec/containers/0/ports/0/containerPort"),
];
/// Integer fields of a ListenerSet.
const SET_INTS: [(&str, &str); 2] = [
    ("maxperpod", "/spec/maxPerPod"),
    ("leaseduration", "/spec/leaseDurationSeconds"),
];

/// A change to a manifest.
type Edit = fn(&mut Value);

fn set_pointer(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let slot = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{parent} in the manifest"));
    match slot {
        Value::Array(a) => a[key.parse::<usize>().expect("an index")] = value,
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        _ => panic!("{parent} is not a container"),
    }
}

fn rollout(name: &str) -> Value {
    let mut o = manifest_v(name, 1, "v1");
    o["spec"]["strategy"]["batches"] = json!([1]);
    o["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    o
}

fn row(kind: Kind, name: String, edit: impl FnOnce(&mut Value), allowed: &'static [Outcome]) -> Row {
    let mut object = match kind {
        Kind::Rollout => rollout(&name),
        Kind::ListenerSet => listenerset(&name),
    };
    edit(&mut object);
    Row {
        name,
        kind,
        object,
        allowed,
    }
}

/// Every integer field at 2³¹, 2⁶³ and −1 (`prefix` tells the table they belong to).
fn integer_rows(prefix: &str, allowed: &'static [Outcome]) -> Vec<Row> {
    let mut rows = Vec::new();
    let fields = ROLLOUT_INTS
        .iter()
        .map(|f| (Kind::Rollout, f))
        .chain(SET_INTS.iter().map(|f| (Kind::ListenerSet, f)));
    for (kind, (field, pointer)) in fields {
        for (tag, value) in bad_integers() {
            let k = if kind == Kind::Rollout { "r" } else { "l" };
            rows.push(row(
                kind,
                format!("{prefix}{k}-{field}-{tag}"),
                |o| set_pointer(o, pointer, value),
                allowed,
            ));
        }
    }
    rows
}

/// What the API server meets today: bad integers, the largest allowed ones, huge lists,
/// invalid templates, unknown fields, 1.4 MiB templates.
fn rows() -> Vec<Row> {
    let mut rows = integer_rows("", REFUSED_OR_INVALID);
    // The largest int32: refused where the schema bounds it lower, otherwise a valid value
    // that no decision may spend memory or time on in proportion.
    for (field, pointer) in ROLLOUT_INTS {
        rows.push(row(
            Kind::Rollout,
            format!("r-{field}-max"),
            |o| set_pointer(o, pointer, json!(i32::MAX)),
            ANY_ANSWER,
        ));
    }
    for (field, pointer) in SET_INTS {
        rows.push(row(
            Kind::ListenerSet,
            format!("l-{field}-max"),
            |o| set_pointer(o, pointer, json!(i32::MAX)),
            RECONCILED,
        ));
    }
    // Huge lists.
    let many: Vec<String> = (0..10_000).map(|i| format!("x-{i}")).collect();
    rows.push(row(
        Kind::Rollout,
        "r-pins-10000".into(),
        |o| o["spec"]["pins"] = json!([{"version": "v1", "instances": many}]),
        REFUSED_OR_INVALID,
    ));
    rows.push(row(
        Kind::Rollout,
        "r-batches-5000".into(),
        |o| o["spec"]["strategy"]["batches"] = json!(vec![1; 5000]),
        REFUSED_OR_INVALID,
    ));
    rows.push(row(
        Kind::ListenerSet,
        "l-listeners-5000".into(),
        |o| o["spec"]["listeners"] = json!((0..5000).map(|i| json!({"id": format!("l{i}")})).collect::<Vec<_>>()),
        RECONCILED_OR_INVALID,
    ));
    // Invalid pod templates.
    let templates: [(&str, Edit); 4] = [
        ("r-version-label", |o| o["spec"]["version"] = json!("v1.2.3+build")),
        ("r-no-containers", |o| {
            o["spec"]["template"]["spec"]["containers"] = json!([])
        }),
        ("r-label-key", |o| {
            o["spec"]["template"]["metadata"]["labels"]["bad key"] = json!("x")
        }),
        ("r-port-70000", |o| {
            o["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 70000}])
        }),
    ];
    for (name, edit) in templates {
        rows.push(row(Kind::Rollout, name.into(), edit, REFUSED_OR_INVALID));
    }
    // Unknown fields: pruned by the API server, the rest is valid.
    rows.push(row(
        Kind::Rollout,
        "r-unknown".into(),
        |o| {
            o["spec"]["bogus"] = json!({"x": 1});
            o["spec"]["strategy"]["bogus"] = json!(true);
        },
        RECONCILED,
    ));
    rows.push(row(
        Kind::ListenerSet,
        "l-unknown".into(),
        |o| o["spec"]["bogus"] = json!(1),
        RECONCILED,
    ));
    // 1.4 MiB templates: in pod annotations (over the 256 KiB annotation limit) and in an env
    // value (valid; the pod and its revision carry it).
    let big = "x".repeat(1_400 * 1024);
    let b = big.clone();
    rows.push(row(
        Kind::Rollout,
        "r-template-annotation-1400k".into(),
        move |o| o["spec"]["template"]["metadata"]["annotations"] = json!({"big": b}),
        REFUSED_OR_INVALID,
    ));
    rows.push(row(
        Kind::Rollout,
        "r-template-env-1400k".into(),
        move |o| o["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "BIG", "value": big}]),
        RECONCILED_OR_INVALID,
    ));
    rows
}

struct Apis {
    rollouts: Api<DynamicObject>,
    sets: Api<DynamicObject>,
}

impl Apis {
    fn of(&self, kind: Kind) -> &Api<DynamicObject> {
        match kind {
            Kind::Rollout => &self.rollouts,
            Kind::ListenerSet => &self.sets,
        }
    }
}

/// What became of an accepted row, once it is settled.
async fn settled(env: &Env, apis: &Apis, row: &Row) -> Option<Outcome> {
    let o = apis.of(row.kind).get(&row.name).await.ok()?;
    let current = |c: &(String, String, String, Option<i64>)| c.3 == o.metadata.generation;
    let (kind, invalid) = match row.kind {
        Kind::Rollout => (
            "Rollout",
            raw_condition(&o, "InvalidSpec").is_some_and(|c| c.0 == "True" && current(&c)),
        ),
        Kind::ListenerSet => (
            "ListenerSet",
            raw_condition(&o, "Ready").is_some_and(|c| c.1 == "InvalidSpec" && current(&c)),
        ),
    };
    if invalid {
        let evented = events_of(&env.client, kind, &row.name)
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("InvalidSpec") && e.type_.as_deref() == Some("Warning"));
        return evented.then_some(Outcome::Invalid);
    }
    let done = match row.kind {
        Kind::Rollout => o.data["status"]["phase"] == "Healthy",
        Kind::ListenerSet => true,
    };
    (observed_current(&o) && done).then_some(Outcome::Reconciled)
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

/// Wait until each accepted row is settled; check it is one of its allowed outcomes.
async fn settle_all(env: &Env, apis: &Apis, rows: &[Row], outcomes: &mut BTreeMap<String, Outcome>) {
    for row in rows {
        let outcome = wait_for(&format!("{row:?} to be reported or reconciled"), LONG, || {
            settled(env, apis, row)
        })
        .await;
        assert!(
            row.allowed.contains(&outcome),
            "{row:?}: {outcome:?}, allowed {:?}",
            row.allowed
        );
        outcomes.insert(row.name.clone(), outcome);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_or_reported_and_never_stops_the_canaries() {
    let env = Env::start().await;
    let dir = temp_dir("bad-input");
    let apis = Apis {
        rollouts: raw_rollouts(&env.client),
        sets: raw_listenersets(&env.client),
    };
    create_raw(&apis.sets, listenerset("canary-set"))
        .await
        .expect("canary ListenerSet");
    let mut c = start(&env.sim, dir.path(), "baton-bad-a", &NO_ELECTION).await;
    c.wait_ready().await;
    canaries_reconciled(&env, &apis.sets, "v1", 15).await;

    // What the API server is asked today.
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut accepted: Vec<Row> = Vec::new();
    for row in rows() {
        match create_raw(apis.of(row.kind), row.object.clone()).await {
            Ok(_) => accepted.push(row),
            Err(kube::Error::Api(s)) if (400..500).contains(&s.code) => {
                assert!(
                    row.allowed.contains(&Outcome::Refused),
                    "{row:?} refused: {}",
                    s.message
                );
                outcomes.insert(row.name, Outcome::Refused);
            }
            Err(e) => panic!("{row:?}: {e}"),
        }
    }
    // What an older CRD let in (2⁶³ is not an integer to kube-apiserver: refused even then):
    // each kind's rows stored together, the bounds lifted once.
    let mut old: Vec<Row> = integer_rows("old-", REFUSED_OR_INVALID);
    // Huge replicas that decode (10⁹, 2³¹−1) wedged the planner.
    for (tag, n) in [("1e9", 1_000_000_000), ("max", i32::MAX)] {
        old.push(row(
            Kind::Rollout,
            format!("old-r-replicas-{tag}"),
            |o| o["spec"]["replicas"] = json!(n),
            REFUSED_OR_INVALID,
        ));
    }
    let (old_rollouts, old_sets): (Vec<Row>, Vec<Row>) = old.into_iter().partition(|r| r.kind == Kind::Rollout);
    for (crd, rows) in [(ROLLOUTS_CRD, old_rollouts), (LISTENERSETS_CRD, old_sets)] {
        let Some(kind) = rows.first().map(|r| r.kind) else {
            continue;
        };
        let objects = rows.iter().map(|r| r.object.clone()).collect();
        let created = create_under_unbounded_schema(&env.client, crd, apis.of(kind), objects).await;
        for (row, result) in rows.into_iter().zip(created) {
            match result {
                Ok(_) => accepted.push(row),
                Err(kube::Error::Api(s)) if s.code == 422 && row.name.ends_with("-2p63") => {
                    outcomes.insert(row.name, Outcome::Refused);
                }
                Err(e) => panic!("{row:?} under the unbounded schema: {e}"),
            }
        }
    }

    // Throughout: the canaries move while the bad objects are there.
    canaries_reconciled(&env, &apis.sets, "v2", 16).await;
    settle_all(&env, &apis, &accepted, &mut outcomes).await;
    assert_eq!(c.get("/healthz").await.map(|r| r.0), Some(200));
    canaries_reconciled(&env, &apis.sets, "v3", 17).await;

    // After a restart, with every bad object still there: the canaries move, every report
    // stands.
    c.stop().await;
    let mut c = start(&env.sim, dir.path(), "baton-bad-b", &NO_ELECTION).await;
    c.wait_ready().await;
    canaries_reconciled(&env, &apis.sets, "v4", 18).await;
    let mut again = BTreeMap::new();
    settle_all(&env, &apis, &accepted, &mut again).await;
    for (name, outcome) in &again {
        assert_eq!(outcomes.get(name), Some(outcome), "{name} after the restart");
    }
    c.stop().await;

    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for o in outcomes.values() {
        *counts.entry(*o).or_default() += 1;
    }
    eprintln!("{} bad inputs: {counts:?}", outcomes.len());
    for (name, outcome) in &outcomes {
        eprintln!("  {name}: {outcome:?}");
    }
}
