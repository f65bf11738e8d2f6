//! Flux's view of a Rollout: kstatus (`tests/support/kstatus.rs`, the rules Flux's
//! kustomize-controller and helm-controller judge a custom resource by) computed on the Rollout
//! as the API server serves it, captured from the controller in each state, and what Flux's
//! wait concludes from it. Also the Flux Kustomizations of `config/flux/`, checked against the
//! CRDs, the samples they apply and the docs that show them.
use std::collections::BTreeMap;
use std::path::Path;

use baton::api::rollout::{Rollout, RolloutPhase};
use baton::cli::rollout::RolloutCommand;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::kstatus::{self, watch_until, Outcome, Status};
use crate::support::*;

fn raw_api(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.ns, &ApiResource::erase::<Rollout>(&()))
}

fn typed(v: &Value) -> Rollout {
    serde_json::from_value(v.clone()).expect("a Rollout")
}

/// The Rollout as the API server serves it, once `pred` holds for it.
async fn wait_raw(env: &Env, what: &str, pred: impl Fn(&Rollout) -> bool) -> Value {
    watch_until(&raw_api(env), NAME, what, LONG, |v| pred(&typed(v))).await
}

/// Server-side apply of `manifest` (as `Env::apply`, 409s retried); the API server's answer.
async fn apply_raw(env: &Env, manifest: &Value) -> Value {
    let params = PatchParams::apply("test").force();
    for _ in 0..5 {
        match raw_api(env).patch(NAME, &params, &Patch::Apply(manifest)).await {
            Ok(o) => return serde_json::to_value(o).expect("JSON"),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("applying rollout {NAME}: {e}"),
        }
    }
    panic!("applying rollout {NAME}: 409 Conflict five times")
}

fn is(r: &Rollout, phase: RolloutPhase, progressing: (&str, &str)) -> bool {
    current_generation(r)
        && status(r).phase == Some(phase)
        && cond(r, "Progressing") == (progressing.0.to_string(), progressing.1.to_string())
}

/// kstatus on `v` in `state` ([`kstatus::judge`]).
fn judge(env: &Env, state: &str, v: &Value, want: Status, reason: &str) -> Outcome {
    kstatus::judge(state, v, &format!("Rollout/{}/{NAME}", env.ns), (want, reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_waits_for_a_rollout_until_its_generation_is_rolled_out() {
    let (env, op, _) = operator_with_v1().await;
    let healthy = wait_raw(&env, "Healthy on v1", |r| healthy_on(r, "v1", 3)).await;
    assert_eq!(
        judge(&env, "Healthy", &healthy, Status::Current, "").message,
        "Resource is Ready"
    );

    // Paused with nothing to roll out: still not Current (the phase is Paused).
    env.merge(NAME, json!({"spec": {"paused": true}})).await;
    let idle = wait_raw(&env, "spec.paused on v1", |r| {
        r.spec.paused && is(r, RolloutPhase::Paused, ("Unknown", "RolloutPaused"))
    })
    .await;
    assert_eq!(instance_versions(&typed(&idle)), map(&[("v1", 3)]));
    judge(
        &env,
        "spec.paused, nothing to roll out",
        &idle,
        Status::InProgress,
        "RolloutPaused",
    );

    let mut m = env.manifest_v(NAME, 3, "v2");
    m["spec"]["strategy"]["pause"] = json!({});
    let applied = apply_raw(&env, &m).await;
    let (generation, observed) = (
        applied["metadata"]["generation"].clone(),
        applied["status"]["observedGeneration"].clone(),
    );
    assert_ne!(generation, observed, "the apply's answer carries the old status");
    let o = judge(
        &env,
        "applied, not observed yet",
        &applied,
        Status::InProgress,
        "LatestGenerationNotObserved",
    );
    assert_eq!(
        o.message,
        format!("Rollout generation is {generation}, but latest observed generation is {observed}")
    );

    let held = wait_raw(&env, "v2 held by spec.paused", |r| {
        is(r, RolloutPhase::Paused, ("Unknown", "RolloutPaused"))
    })
    .await;
    assert_eq!(instance_versions(&typed(&held)), map(&[("v1", 3)]), "nothing moved");
    let o = judge(
        &env,
        "v2 held by spec.paused",
        &held,
        Status::InProgress,
        "RolloutPaused",
    );
    assert!(o.message.contains("v2"), "{}", o.message);

    env.merge(NAME, json!({"spec": {"paused": false}})).await;
    let moving = wait_raw(&env, "batch 1 under way", |r| {
        is(r, RolloutPhase::Progressing, ("True", "ReplicaSetUpdated"))
    })
    .await;
    let o = judge(
        &env,
        "batch under way",
        &moving,
        Status::InProgress,
        "ReplicaSetUpdated",
    );
    assert!(o.message.contains("v2"), "{}", o.message);

    let step = wait_raw(&env, "paused after batch 1", |r| {
        is(r, RolloutPhase::Paused, ("True", "BatchPaused"))
    })
    .await;
    let o = judge(
        &env,
        "pause step, waiting for promotion",
        &step,
        Status::InProgress,
        "BatchPaused",
    );
    assert!(o.message.contains("waiting for promotion"), "{}", o.message);

    let promote = RolloutCommand::Promote {
        name: NAME.into(),
        full: true,
    };
    assert_ok(env.cli(promote).await, "promote --full");
    let done = wait_raw(&env, "Healthy on v2", |r| healthy_on(r, "v2", 3)).await;
    judge(&env, "Healthy on v2", &done, Status::Current, "");
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_fails_at_once_on_an_aborted_rolled_back_or_invalid_rollout() {
    let (env, op, _) = operator_with_v1().await;
    apply_v2_pausing(&env).await;
    wait_raw(&env, "paused after batch 1", |r| {
        is(r, RolloutPhase::Paused, ("True", "BatchPaused"))
    })
    .await;
    assert_ok(env.cli(RolloutCommand::Abort { name: NAME.into() }).await, "abort");
    let aborted = wait_raw(&env, "aborted", |r| {
        is(r, RolloutPhase::RolledBack, ("False", "RolloutAborted"))
    })
    .await;
    let o = judge(&env, "aborted", &aborted, Status::Failed, "RolloutAborted");
    assert!(o.message.contains("v2"), "names the aborted version: {}", o.message);

    let mut m = env.manifest(NAME, 3, "v3", "svc:v3-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    env.apply(&m).await;
    let rolling = wait_raw(&env, "v3 rolling back", |r| {
        is(r, RolloutPhase::RollingBack, ("True", "RollingBack"))
    })
    .await;
    let o = judge(&env, "rolling back", &rolling, Status::InProgress, "RolledBack");
    assert!(o.message.contains("rolling back to v1"), "{}", o.message);
    let rolled_back = wait_raw(&env, "v3 rolled back", |r| {
        is(r, RolloutPhase::RolledBack, ("False", "RolledBack"))
    })
    .await;
    let o = judge(&env, "rolled back", &rolled_back, Status::Failed, "RolledBack");
    assert!(
        o.message.contains("v3 failed"),
        "names the failed version: {}",
        o.message
    );

    env.merge(
        NAME,
        json!({"spec": {"version": "v4", "pins": [{"instances": ["svc-1"], "version": "v0.9"}],
               "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [{"name": "app", "image": "svc:v4"}]}}}}),
    )
    .await;
    let invalid = wait_raw(&env, "InvalidSpec", |r| {
        current_generation(r) && cond(r, "InvalidSpec").0 == "True"
    })
    .await;
    let o = judge(&env, "InvalidSpec", &invalid, Status::Failed, "InvalidSpec");
    assert!(o.message.contains("v0.9"), "says what to fix: {}", o.message);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_on_a_rollout_not_yet_seen_and_one_past_its_progress_deadline() {
    let env = Env::start().await;
    // No controller yet: the Rollout has no status at all, and kstatus has nothing to go on.
    let created = apply_raw(&env, &env.manifest_v(NAME, 3, "v1")).await;
    assert!(created["status"].is_null(), "{}", created["status"]);
    let o = judge(&env, "created, no status yet", &created, Status::Current, "");
    assert_eq!(o.message, "Resource is current");

    let op = env.start_operator().await;
    let healthy = wait_raw(&env, "Healthy on v1", |r| healthy_on(r, "v1", 3)).await;
    judge(&env, "Healthy", &healthy, Status::Current, "");

    let mut m = env.manifest(NAME, 3, "v2", "svc:v2-never-ready");
    m["spec"]["progressDeadlineSeconds"] = json!(2);
    m["spec"]["autoRollback"] = json!(false);
    env.apply(&m).await;
    let stopped = wait_raw(&env, "stopped by its deadline", |r| {
        is(r, RolloutPhase::Degraded, ("False", "ProgressDeadlineExceeded"))
    })
    .await;
    let o = judge(
        &env,
        "progress deadline exceeded",
        &stopped,
        Status::Failed,
        "ProgressDeadlineExceeded",
    );
    assert!(o.message.contains("rollout of v2 stopped"), "{}", o.message);
    op.stop().await;
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// kind → `group/version` served and stored, from the CRDs.
fn crd_api_versions() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for crd in documents("crds/baton.dev_crds.yaml") {
        let spec = &crd["spec"];
        let versions = spec["versions"].as_array().expect("spec.versions");
        let stored = versions
            .iter()
            .find(|v| v["served"] == json!(true) && v["storage"] == json!(true))
            .expect("a served, stored version");
        let kind = spec["names"]["kind"].as_str().expect("spec.names.kind");
        let group = spec["group"].as_str().expect("spec.group");
        out.insert(
            kind.to_string(),
            format!("{group}/{}", stored["name"].as_str().expect("name")),
        );
    }
    out
}

/// `(kind, name)` of every object in the files the kustomization at `dir` lists, and in the
/// kustomizations it lists (its directories' files; generated objects are not counted).
fn objects_of(dir: &str) -> Vec<(String, String)> {
    let k = &documents(&format!("{dir}/kustomization.yaml"))[0];
    let resources = k["resources"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for r in resources {
        let path = format!("{dir}/{}", r.as_str().expect("a path"));
        if root().join(&path).is_dir() {
            out.extend(objects_of(&path));
            continue;
        }
        out.extend(documents(&path).into_iter().map(|o| {
            (
                o["kind"].as_str().unwrap_or("").into(),
                o["metadata"]["name"].as_str().unwrap_or("").into(),
            )
        }));
    }
    out
}

/// A Flux duration (`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`).
fn is_flux_duration(s: &str) -> bool {
    let mut rest = s;
    while !rest.is_empty() {
        let after = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let number = &rest[..rest.len() - after.len()];
        let mut parts = number.split('.');
        let digits = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        let whole = digits(parts.next());
        let fraction = match parts.next() {
            None => true,
            p => digits(p) && parts.next().is_none(),
        };
        let Some(unit) = ["ms", "s", "m", "h"].into_iter().find(|u| after.starts_with(u)) else {
            return false;
        };
        if !(whole && fraction) {
            return false;
        }
        rest = &after[unit.len()..];
    }
    !s.is_empty()
}

#[test]
fn flux_kustomizations_name_batons_kinds_and_the_docs_show_them() {
    let api_versions = crd_api_versions();
    let samples = objects_of("config/samples");
    let docs = std::fs::read_to_string(root().join("docs/rollouts.md")).expect("docs/rollouts.md");
    let mut checked = Vec::new();
    for file in ["config/flux/wait.yaml", "config/flux/health-checks.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).expect("the example");
        assert!(docs.contains(&text), "docs/rollouts.md does not show {file} as it is");
        let [k] = documents(file).try_into().expect("one Kustomization per file");
        assert_eq!(k["apiVersion"], "kustomize.toolkit.fluxcd.io/v1", "{file}");
        assert_eq!(k["kind"], "Kustomization", "{file}");
        let spec = &k["spec"];
        assert!(root()
            .join(spec["path"].as_str().expect("spec.path"))
            .join("kustomization.yaml")
            .is_file());
        for d in ["interval", "timeout"] {
            assert!(
                is_flux_duration(spec[d].as_str().unwrap_or("")),
                "{file}: spec.{d} {}",
                spec[d]
            );
        }
        let namespace = spec["targetNamespace"].as_str().expect("spec.targetNamespace");
        let checks = spec["healthChecks"].as_array().cloned().unwrap_or_default();
        // kustomize-controller ignores healthChecks when wait is true: one or the other.
        assert_ne!(
            spec["wait"] == json!(true),
            !checks.is_empty(),
            "{file}: wait or healthChecks"
        );
        for c in &checks {
            let kind = c["kind"].as_str().expect("kind");
            assert_eq!(
                c["apiVersion"].as_str(),
                api_versions.get(kind).map(String::as_str),
                "{file}: {c}"
            );
            let name = c["name"].as_str().expect("name").to_string();
            assert!(
                samples.contains(&(kind.to_string(), name)),
                "{file}: {c} is not in config/samples"
            );
            assert_eq!(c["namespace"], namespace, "{file}: {c}");
            checked.push(kind.to_string());
        }
    }
    checked.sort();
    assert_eq!(
        checked,
        ["ListenerSet", "Rollout"],
        "a health check for each of baton's kinds"
    );
    assert_eq!(api_versions.len(), 2, "{api_versions:?}");
    assert!(is_flux_duration("1m30.5s") && !is_flux_duration("10") && !is_flux_duration("m"));
}
