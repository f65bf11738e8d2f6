//! baton's shipped CRDs against an API server that enforces them: baton-sim (which evaluates
//! CEL rules, list-type uniqueness and schema bounds as kube-apiserver does) or the real
//! kube-apiserver (`BATON_TEST_CLUSTER=real`, whose cel-go compiles, cost-estimates and runs the
//! rules): the samples are accepted, and each violation the rules and bounds were written for is
//! a 422 naming the field — through real `kubectl` for what users type, and kube-rs for the
//! table of integer bounds. On the real control plane each test works in a namespace of its own.
use std::path::Path;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};

use crate::world::kubectl::Kubectl;
use crate::world::World;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `kubectl apply` of `obj` fails, and its output contains each of `expected` (`what` names the
/// case in a failure).
async fn refused(k: &Kubectl, obj: &Value, expected: &[&str], what: &str) {
    refused_with(k, &[], obj, expected, what).await
}

/// [`refused`], with `flags` after `kubectl apply`.
async fn refused_with(k: &Kubectl, flags: &[&str], obj: &Value, expected: &[&str], what: &str) {
    let file = k.file("refused.json", obj);
    let run = k.run(&[&["apply"][..], flags, &["-f", &file]].concat()).await;
    assert_ne!(run.code, 0, "{what}: accepted: {run}");
    let out = format!("{}{}", run.stdout, run.stderr);
    for e in expected {
        assert!(out.contains(e), "{what}: {e:?} not in {out}");
    }
}

/// A world with the CRDs: applied with `kubectl apply -f crds/` to a fresh simulator; on the
/// shared real control plane installed (idempotently) as every test there installs them.
async fn cluster() -> (World, Kubectl) {
    let w = World::start("crd-rules").await;
    let k = w.kubectl();
    if w.is_real() {
        w.install_crds().await;
    } else {
        k.ok(&["apply", "-f", &format!("{ROOT}/crds/")]).await;
    }
    (w, k)
}

fn sample(file: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join("config/samples").join(file)).expect("sample");
    serde_saphyr::from_str(&text).expect("sample is YAML")
}

#[tokio::test]
async fn the_samples_are_accepted_with_rules_enforced() {
    let (_w, k) = cluster().await;
    let out = k.ok(&["apply", "-k", &format!("{ROOT}/config/samples")]).await;
    assert!(out.contains("rollout.baton.dev/user-service created"), "{out}");
    assert!(
        out.contains("listenerset.baton.dev/user-service-listeners created"),
        "{out}"
    );
}

#[tokio::test]
async fn each_rollout_rule_refuses_the_violation_it_was_written_for() {
    let (_w, k) = cluster().await;
    let base = sample("rollout.yaml");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "decreasing batches",
            json!({"batches": [3, 1]}),
            "spec: Invalid value: \"object\": strategy.batches are cumulative targets and must not decrease, e.g. [1, \"50%\", \"100%\"]",
        ),
        (
            "a percentage below the count before it (50% of 3 is 2)",
            json!({"batches": [3, "50%", "100%"]}),
            "spec: Invalid value: \"object\": strategy.batches are cumulative targets and must not decrease",
        ),
        (
            "no surge and no unavailability",
            json!({"maxSurge": 0, "maxUnavailable": "0%"}),
            "spec.strategy: Invalid value: \"object\": maxSurge and maxUnavailable must not both be zero",
        ),
        (
            "a percentage over 100%",
            json!({"maxSurge": "150%"}),
            "spec.strategy.maxSurge: Invalid value: \"150%\": spec.strategy.maxSurge in body should match '^(100|[1-9]?[0-9])%$'",
        ),
        (
            "a negative count",
            json!({"maxUnavailable": -1}),
            "spec.strategy.maxUnavailable: Invalid value: -1: spec.strategy.maxUnavailable in body should be greater than or equal to 0",
        ),
        (
            "a batch that is neither",
            json!({"batches": [1, "half"]}),
            "spec.strategy.batches[1]: Invalid value: \"half\": spec.strategy.batches[1] in body should match '^(100|[1-9]?[0-9])%$'",
        ),
    ];
    for (what, strategy_patch, expected) in cases {
        let mut r = base.clone();
        r["metadata"]["name"] = json!("bad");
        for (k2, v) in strategy_patch.as_object().expect("patch") {
            r["spec"]["strategy"][k2] = v.clone();
        }
        refused(&k, &r, &["The Rollout \"bad\" is invalid", expected], what).await;
    }
    // Sorted batches with percentages are fine.
    let mut r = base;
    r["metadata"]["name"] = json!("good");
    r["spec"]["strategy"]["batches"] = json!([1, "34%", 2, "100%"]);
    k.ok(&["apply", "-f", &k.file("good.json", &r)]).await;
}

#[tokio::test]
async fn duplicate_listener_ids_are_refused() {
    let (_w, k) = cluster().await;
    let mut set = sample("listenerset.yaml");
    set["spec"]["listeners"][1]["id"] = json!("listener1");
    refused(&k, &set, &["The ListenerSet \"user-service-listeners\" is invalid: spec.listeners[1]: Duplicate value: map[string]interface {}{\"id\":\"listener1\"}"], "").await;
}

/// Every integer field of both kinds, at 2³¹, 2⁶³ and -1, is refused (none of them could be
/// decoded by the controller, or they are meaningless); in-range values pass.
#[tokio::test]
async fn out_of_range_integers_are_refused() {
    let (w, _k) = cluster().await;
    let client = w.client.clone();
    let api = |kind: &str| {
        let gvk = GroupVersionKind::gvk("baton.dev", "v1alpha1", kind);
        let plural = format!("{}s", kind.to_lowercase());
        Api::<DynamicObject>::namespaced_with(client.clone(), &w.ns, &ApiResource::from_gvk_with_plural(&gvk, &plural))
    };
    let (rollouts, sets) = (api("Rollout"), api("ListenerSet"));
    let rollout = sample("rollout.yaml");
    let set = sample("listenerset.yaml");
    let fields: &[(&str, &str)] = &[
        ("rollout", "/spec/replicas"),
        ("rollout", "/spec/minReadySeconds"),
        ("rollout", "/spec/progressDeadlineSeconds"),
        ("rollout", "/spec/revisionHistoryLimit"),
        ("rollout", "/spec/strategy/maxSurge"),
        ("rollout", "/spec/strategy/maxUnavailable"),
        ("rollout", "/spec/strategy/batches/0"),
        ("rollout", "/spec/template/spec/containers/0/ports/0/containerPort"),
        (
            "rollout",
            "/spec/template/spec/containers/0/readinessProbe/periodSeconds",
        ),
        ("listenerset", "/spec/maxPerPod"),
        ("listenerset", "/spec/leaseDurationSeconds"),
    ];
    let big = serde_json::Number::from(1u64 << 63);
    let mut n = 0;
    for (kind, pointer) in fields {
        let values = if pointer.contains("template") {
            vec![json!(2_147_483_648i64), Value::Number(big.clone())]
        } else {
            vec![json!(2_147_483_648i64), Value::Number(big.clone()), json!(-1)]
        };
        for v in values {
            n += 1;
            let mut obj = if *kind == "rollout" {
                rollout.clone()
            } else {
                set.clone()
            };
            obj["metadata"]["name"] = json!(format!("bad-{n}"));
            *obj.pointer_mut(pointer).expect("field exists in the sample") = v.clone();
            let obj: DynamicObject = serde_json::from_value(obj).expect("object");
            let api = if *kind == "rollout" { &rollouts } else { &sets };
            let field = pointer.trim_start_matches('/').replace('/', ".");
            match api.create(&PostParams::default(), &obj).await {
                Err(kube::Error::Api(e)) => {
                    assert_eq!(e.code, 422, "{field} = {v}: {e:?}");
                    println!("{field} = {v}: {}", e.message);
                    let expect = field.replace(".0.", "[0].").replace("batches.0", "batches[0]");
                    assert!(e.message.contains(&expect), "{field} = {v}: {}", e.message);
                }
                other => panic!("{field} = {v} was not refused: {other:?}"),
            }
        }
    }
    // The largest replicas the planner accepts, and the largest int32 elsewhere, pass.
    let mut ok = rollout.clone();
    ok["metadata"]["name"] = json!("max");
    ok["spec"]["replicas"] = json!(baton::api::rollout::MAX_REPLICAS);
    ok["spec"]["progressDeadlineSeconds"] = json!(2_147_483_647);
    let ok: DynamicObject = serde_json::from_value(ok).expect("object");
    rollouts
        .create(&PostParams::default(), &ok)
        .await
        .expect("in-range values are accepted");
    let mut too_many = rollout;
    too_many["metadata"]["name"] = json!("too-many");
    too_many["spec"]["replicas"] = json!(baton::api::rollout::MAX_REPLICAS + 1);
    let too_many: DynamicObject = serde_json::from_value(too_many).expect("object");
    match rollouts.create(&PostParams::default(), &too_many).await {
        Err(kube::Error::Api(e)) => assert!(
            e.message.contains(
                "spec.replicas: Invalid value: 10001: spec.replicas in body should be less than or equal to 10000"
            ),
            "{}",
            e.message
        ),
        other => panic!("replicas 10001 accepted: {other:?}"),
    }
}

/// The Rollout CRD as it shipped before these rules were reworked: its `batches` rule ran
/// `matches` and `substring` on every int-or-string batch, which kube-apiserver sizes at the
/// 3 MiB request limit. A real API server refuses it, and so does the simulator, in the same
/// words. (A server dry run: on the shared real control plane nothing may change the CRDs.)
#[tokio::test]
async fn a_crd_with_an_over_budget_rule_is_refused_with_kube_apiserver_message() {
    let w = World::start("crd-budget").await;
    let k = w.kubectl();
    let mut crd = serde_json::to_value(baton::api::rollout::crd()).expect("json");
    let batches = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/strategy/properties/batches")
        .expect("batches schema");
    batches["x-kubernetes-validations"] = json!([{
        "rule": "self.all(b, type(b) == int ? b >= 0 : (b.matches('^[0-9]{1,3}%$') && int(b.substring(0, size(b) - 1)) <= 100))",
        "message": "each batch is a count >= 0 or a percentage like \"50%\" no greater than 100%",
    }]);
    refused_with(&k, &["--dry-run=server"], &crd, &["The CustomResourceDefinition \"rollouts.baton.dev\" is invalid: spec.validation.openAPIV3Schema.properties[spec].properties[strategy].properties[batches].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of 5.0x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"], "").await;
}

#[tokio::test]
async fn notification_formats_and_events_are_checked_by_the_api_server() {
    let (_w, k) = cluster().await;
    let base = sample("rollout.yaml");
    let sink = |format: &str, events: Value| json!([{"sink": {"secretRef": {"name": "hook"}}, "format": format, "events": events}]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "an unknown format",
            sink("xml", json!(["Completed"])),
            "spec.notifications[0].format: Unsupported value: \"xml\": supported values: \"json\", \"slack\", \"cloudevents-binary\", \"cloudevents-structured\"",
        ),
        (
            "an unknown event",
            sink("json", json!(["Deployed"])),
            "spec.notifications[0].events[0]: Unsupported value: \"Deployed\"",
        ),
        (
            "no event",
            sink("json", json!([])),
            "spec.notifications[0].events: Invalid value: 0: spec.notifications[0].events in body should have at least 1 items",
        ),
        (
            "an event twice",
            sink("slack", json!(["Completed", "Completed"])),
            "spec.notifications[0].events[1]: Duplicate value: \"Completed\"",
        ),
    ];
    for (what, notifications, expected) in cases {
        let mut r = base.clone();
        r["metadata"]["name"] = json!("bad");
        r["spec"]["notifications"] = notifications;
        refused(&k, &r, &["The Rollout \"bad\" is invalid", expected], what).await;
    }
    let mut r = base;
    r["metadata"]["name"] = json!("good");
    r["spec"]["notifications"] = sink("cloudevents-structured", json!(["Started", "Completed", "HookFailed"]));
    k.ok(&["apply", "-f", &k.file("good.json", &r)]).await;
}

/// `spec.hooks` and `job` checks: what the schema refuses through real `kubectl`, and
/// a hook's pod template kept as written (its schema checks only `restartPolicy` and the
/// containers; the API server checks the rest when the Job is created).
#[tokio::test]
async fn hooks_and_job_checks_are_checked_by_the_schema_and_kept_as_written() {
    let (_w, k) = cluster().await;
    let base = sample("rollout.yaml");
    let pod = |extra: Value| {
        let mut spec = json!({"containers": [{"name": "migrate", "image": "migrate:v1", "command": ["migrate", "up"],
                                               "env": [{"name": "DB", "value": "postgres://db"}]}]});
        for (k2, v) in extra.as_object().expect("object") {
            spec[k2] = v.clone();
        }
        json!({"template": {"metadata": {"labels": {"role": "migration"}}, "spec": spec}})
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a restartPolicy a Job refuses",
            json!({"hooks": {"preRollout": pod(json!({"restartPolicy": "Always"}))}}),
            "spec.hooks.preRollout.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"Never\", \"OnFailure\"",
        ),
        (
            "no container",
            json!({"hooks": {"postRollout": pod(json!({"containers": []}))}}),
            "spec.hooks.postRollout.template.spec.containers: Invalid value: 0: spec.hooks.postRollout.template.spec.containers in body should have at least 1 items",
        ),
        (
            "too many retries",
            json!({"hooks": {"preRollout": {"template": pod(json!({}))["template"], "backoffLimit": 11}}}),
            "spec.hooks.preRollout.backoffLimit: Invalid value: 11: spec.hooks.preRollout.backoffLimit in body should be less than or equal to 10",
        ),
        (
            "a check with two kinds",
            json!({"checks": [{"name": "smoke", "job": pod(json!({})), "http": {"url": "http://x/"}}]}),
            "a check needs exactly one kind: http, job or prometheus",
        ),
        (
            "a check with none",
            json!({"checks": [{"name": "smoke"}]}),
            "a check needs exactly one kind: http, job or prometheus",
        ),
    ];
    for (what, spec_patch, expected) in cases {
        let mut r = base.clone();
        r["metadata"]["name"] = json!("bad");
        for (k2, v) in spec_patch.as_object().expect("patch") {
            r["spec"][k2] = v.clone();
        }
        refused(&k, &r, &["The Rollout \"bad\" is invalid", expected], what).await;
    }
    let mut r = base;
    r["metadata"]["name"] = json!("good");
    r["spec"]["hooks"] =
        json!({"preRollout": pod(json!({})), "postRollout": pod(json!({"restartPolicy": "OnFailure"}))});
    r["spec"]["checks"] = json!([{"name": "smoke", "job": pod(json!({}))}]);
    k.ok(&["apply", "-f", &k.file("good.json", &r)]).await;
    let out = k.ok(&["get", "rollout", "good", "-o", "json"]).await;
    let stored: Value = serde_json::from_str(&out).expect("json");
    let pre = &stored["spec"]["hooks"]["preRollout"];
    assert_eq!(
        pre["template"]["spec"]["containers"][0]["command"],
        json!(["migrate", "up"]),
        "{pre}"
    );
    assert_eq!(
        pre["template"]["spec"]["containers"][0]["env"][0]["value"],
        "postgres://db"
    );
    assert_eq!(pre["template"]["metadata"]["labels"]["role"], "migration");
    // The limits' defaults (0, 600) are the controller's, not the schema's: see below.
    assert_eq!(
        (pre["backoffLimit"].clone(), pre["activeDeadlineSeconds"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        stored["spec"]["checks"][0]["job"]["template"]["spec"]["containers"][0]["image"],
        "migrate:v1"
    );
}

/// A server-side apply that no longer has `hooks` removes them. (With schema defaults on a
/// hook's `backoffLimit` and `activeDeadlineSeconds`, the defaulted fields — owned by no field
/// manager — stayed behind without the removed `template`, and the apply was refused with 422
/// `spec.hooks.preRollout.template: Required value`.)
#[tokio::test]
async fn a_server_side_apply_without_hooks_removes_them() {
    let (_w, k) = cluster().await;
    let mut plain = sample("rollout.yaml");
    plain["metadata"]["name"] = json!("ssa");
    let mut hooked = plain.clone();
    hooked["spec"]["hooks"] =
        json!({"preRollout": {"template": {"spec": {"containers": [{"name": "migrate", "image": "migrate:v1"}]}}}});
    for (what, obj) in [("with hooks", &hooked), ("without hooks", &plain)] {
        let run = k.run(&["apply", "--server-side", "-f", &k.file("ssa.json", obj)]).await;
        assert_eq!(run.code, 0, "apply {what}: {run}");
    }
    let out = k.ok(&["get", "rollout", "ssa", "-o", "json"]).await;
    let stored: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(stored["spec"]["hooks"], Value::Null, "{}", stored["spec"]);
}

/// A Rollout of `selector` (YAML flow mapping) over a template labelled `labels`, as a user
/// writes it.
fn selector_manifest(name: &str, selector: &str, labels: &str) -> String {
    format!(
        "apiVersion: baton.dev/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  selector: {selector}
  version: \"1.0\"
  template:
    metadata:
      labels: {labels}
    spec:
      containers:
        - name: app
          image: web:1.0
"
    )
}

/// `kubectl apply --dry-run=server` refuses a Rollout whose selector does not match its
/// template's labels, as kube-apiserver refuses such a Deployment, and accepts one that matches
/// (or takes its template from a Deployment).
#[tokio::test]
async fn a_selector_that_does_not_match_the_template_is_refused() {
    let (_w, k) = cluster().await;
    let write = |file: &str, text: String| {
        let path = k.home().join(file);
        std::fs::write(&path, text).expect("write manifest");
        path.to_string_lossy().into_owned()
    };
    let refused_cases = [
        ("another value", "{matchLabels: {app: web}}", "{app: api}"),
        (
            "a missing label",
            "{matchLabels: {app: web, tier: front}}",
            "{app: web}",
        ),
        ("no labels", "{matchLabels: {app: web}}", "{}"),
        (
            "In",
            "{matchExpressions: [{key: tier, operator: In, values: [front]}]}",
            "{tier: db}",
        ),
        (
            "NotIn",
            "{matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}",
            "{tier: db}",
        ),
        (
            "Exists",
            "{matchExpressions: [{key: tier, operator: Exists}]}",
            "{app: web}",
        ),
        (
            "DoesNotExist",
            "{matchExpressions: [{key: canary, operator: DoesNotExist}]}",
            "{canary: \"yes\"}",
        ),
    ];
    for (what, selector, labels) in refused_cases {
        let file = write("mismatch.yaml", selector_manifest("web", selector, labels));
        let run = k.run(&["apply", "--dry-run=server", "-f", &file]).await;
        assert_ne!(run.code, 0, "{what}: accepted: {run}");
        assert!(
            run.stderr.contains("The Rollout \"web\" is invalid: spec.template.metadata.labels: Invalid value: \"object\": selector does not match template labels"),
            "{what}: {run}"
        );
    }
    let accepted_cases = [
        ("equal labels", "{matchLabels: {app: web}}", "{app: web, tier: front}"),
        (
            "every operator holding",
            "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: In, values: [front, back]}, {key: tier, operator: NotIn, values: [db]}, {key: zone, operator: NotIn, values: [a]}, {key: app, operator: Exists}, {key: canary, operator: DoesNotExist}]}",
            "{app: web, tier: front}",
        ),
    ];
    for (what, selector, labels) in accepted_cases {
        let file = write("match.yaml", selector_manifest("web", selector, labels));
        let out = k.ok(&["apply", "--dry-run=server", "-f", &file]).await;
        assert!(
            out.contains("rollout.baton.dev/web created (server dry run)"),
            "{what}: {out}"
        );
    }
    let from_deployment = "apiVersion: baton.dev/v1alpha1
kind: Rollout
metadata:
  name: migrated
spec:
  selector: {matchLabels: {app: web}}
  version: \"1.0\"
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
";
    let file = write("migrated.yaml", from_deployment.to_string());
    let out = k.ok(&["apply", "--dry-run=server", "-f", &file]).await;
    assert!(
        out.contains("rollout.baton.dev/migrated created (server dry run)"),
        "{out}"
    );
}
