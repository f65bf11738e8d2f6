//! Unit tests of the parent module.
use super::fixtures::sample_spec;
use super::*;
use k8s_openapi::api::core::v1::{Container, PodSpec};

#[test]
fn crd_is_small_and_complete() {
    let crd = crd();
    let yaml = serde_saphyr::to_string(&crd).unwrap();
    // Bounds on every integer (pod template included) add ~17 KB of deeply indented YAML; what
    // counts for `kubectl apply` is the JSON size below.
    assert!(yaml.len() < 240_000, "CRD YAML is {} bytes", yaml.len());
    let json = serde_json::to_string(&crd).unwrap();
    assert!(json.len() < 150_000, "CRD JSON is {} bytes", json.len());
    let version = &crd.spec.versions[0];
    let columns: Vec<&str> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Desired",
            "Current",
            "Up-to-date",
            "Available",
            "Version",
            "Phase",
            "Batch",
            "Age",
            "Target",
            "Ready",
            "Images"
        ]
    );
    // VERSION is the serving version; the spec's target and the gate are `-o wide` columns.
    let cols = version.additional_printer_columns.as_ref().unwrap();
    let path = |n: &str| {
        cols.iter()
            .find(|c| c.name == n)
            .map(|c| (c.json_path.clone(), c.priority))
    };
    assert_eq!(path("Version"), Some((".status.version".to_string(), None)));
    assert_eq!(path("Target"), Some((".spec.version".to_string(), Some(1))));
    assert_eq!(
        path("Ready"),
        Some((".status.conditions[?(@.type==\"Ready\")].status".to_string(), Some(1)))
    );
    let sub = version.subresources.as_ref().unwrap();
    let scale = sub.scale.as_ref().unwrap();
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
    assert!(sub.status.is_some());
    assert_eq!(crd.spec.names.short_names, Some(vec!["rol".to_string()]));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.group, crate::GROUP);
    assert_eq!(version.name, crate::VERSION);
    assert!(json.contains("x-kubernetes-validations"));
    assert!(json.contains("isSorted()"));
    assert!(json.contains("x-kubernetes-int-or-string"));
    // The embedded pod template has no descriptions left.
    let value = serde_json::to_value(&crd).unwrap();
    let template =
        &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["template"];
    assert!(template["properties"]["spec"]["properties"]["containers"].is_object());
    assert!(!template["properties"].to_string().contains("\"description\""));
    // Defaults reach the schema.
    let spec_props = &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec_props["progressDeadlineSeconds"]["default"], 300);
    assert_eq!(spec_props["autoRollback"]["default"], true);
    let surge = &spec_props["strategy"]["properties"]["maxSurge"];
    assert_eq!(surge["default"], 1);
    // Not nullable, and without the `nullable: false` kube-apiserver would not store.
    assert!(surge.get("nullable").is_none(), "{surge}");
    assert!(!value.to_string().contains("\"nullable\":false"));
    assert_eq!(surge["x-kubernetes-int-or-string"], true);
}

#[test]
fn spec_round_trips_the_design_yaml() {
    let yaml = r#"
replicas: 3
selector: {matchLabels: {app: user-service}}
version: v1.2.3
template:
  metadata: {labels: {app: user-service}}
  spec: {containers: [{name: app, image: "user-service:v1.2.3"}]}
strategy:
  batches: [1, "50%", "100%"]
  pause: {duration: 30s}
  maxSurge: 1
  maxUnavailable: 0
minReadySeconds: 5
pins:
  - {instances: [user-service-2], version: v1.2.2}
"#;
    let spec: RolloutSpec = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(spec.progress_deadline_seconds, 300);
    assert!(spec.auto_rollback);
    assert_eq!(spec.revision_history_limit, 10);
    assert_eq!(spec.strategy.batches.len(), 3);
    assert_eq!(spec.pins[0].version, "v1.2.2");
    assert_eq!(validate(&spec), Ok(()));
    let back: RolloutSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn validate_accepts_sample() {
    assert_eq!(validate(&sample_spec()), Ok(()));
}

#[test]
fn validate_reports_what_to_fix() {
    let mut spec = sample_spec();
    spec.replicas = -1;
    spec.strategy.batches = vec![
        IntOrString::Int(2),
        IntOrString::Int(1),
        IntOrString::String("150%".into()),
        IntOrString::String("abc".into()),
    ];
    spec.strategy.max_surge = IntOrString::Int(0);
    spec.strategy.max_unavailable = IntOrString::String("0%".into());
    spec.strategy.pause = Some(Pause {
        duration: Some("soon".into()),
        manual: None,
    });
    spec.pins = vec![
        Pin {
            instances: vec!["svc-1".into()],
            version: "v0".into(),
        },
        Pin {
            instances: vec!["svc-1".into()],
            version: "".into(),
        },
    ];
    let errors = validate(&spec)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let all = errors.join("\n");
    assert!(all.contains("spec.replicas is -1"), "{all}");
    assert!(all.contains("batches[1]"), "{all}");
    assert!(all.contains("more than 100%"), "{all}");
    assert!(all.contains("batches[3]"), "{all}");
    assert!(all.contains("both zero"), "{all}");
    assert!(all.contains("pause.duration"), "{all}");
    assert!(all.contains("pinned by both"), "{all}");
    assert!(all.contains("spec.pins[1].version is empty"), "{all}");
}

#[test]
fn validate_checks_selector_against_template() {
    let mut spec = sample_spec();
    spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    let errors = validate(&spec)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert!(errors[0].contains("does not match"));
    spec.selector.match_labels = None;
    let errors = validate(&spec)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert!(errors[0].contains("selector is empty"));
}

#[test]
fn scaled_values_round_as_documented() {
    let p = |s: &str| IntOrString::String(s.into());
    assert_eq!(scaled_value(&p("50%"), 3, true), Ok(2));
    assert_eq!(scaled_value(&p("50%"), 3, false), Ok(1));
    assert_eq!(scaled_value(&p("100%"), 7, true), Ok(7));
    assert_eq!(scaled_value(&IntOrString::Int(4), 2, true), Ok(4));
    assert!(scaled_value(&p("101%"), 3, true).is_err());
    assert!(scaled_value(&p("5"), 3, true).is_err());
    assert!(scaled_value(&IntOrString::Int(-1), 3, true).is_err());
}

#[test]
fn durations_parse_go_style() {
    assert_eq!(parse_duration("30s"), Ok(std::time::Duration::from_secs(30)));
    assert_eq!(parse_duration("1h30m"), Ok(std::time::Duration::from_secs(5400)));
    assert!(parse_duration("-5s").is_err());
    assert!(parse_duration("5").is_err());
}

#[test]
fn selector_string_and_matching() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    let selector = LabelSelector {
        match_labels: Some([("app".to_string(), "svc".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            },
            LabelSelectorRequirement {
                key: "canary".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    assert_eq!(selector_string(&selector), "app=svc,tier in (a,b),!canary");
    let mut labels: BTreeMap<String, String> = [
        ("app".to_string(), "svc".to_string()),
        ("tier".to_string(), "a".to_string()),
    ]
    .into();
    assert!(selector_matches(&selector, &labels));
    labels.insert("canary".into(), "1".into());
    assert!(!selector_matches(&selector, &labels));
}

#[test]
fn validate_reports_what_to_fix_in_hooks_and_job_checks() {
    let job = |image: &str, restart: Option<&str>, backoff: i32| -> Box<JobTemplate> {
        Box::new(JobTemplate {
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: if image.is_empty() {
                        vec![]
                    } else {
                        vec![Container {
                            name: "migrate".into(),
                            image: Some(image.into()),
                            ..Default::default()
                        }]
                    },
                    restart_policy: restart.map(str::to_string),
                    ..Default::default()
                }),
            },
            backoff_limit: Some(backoff),
            active_deadline_seconds: None,
        })
    };
    let mut spec = sample_spec();
    spec.hooks.pre_rollout = Some(job("migrate:v1", None, 0));
    spec.hooks.post_rollout = Some(job("smoke:v1", Some("OnFailure"), 10));
    assert_eq!(validate(&spec), Ok(()));
    spec.hooks.pre_rollout = Some(job("migrate:v1", Some("Always"), 11));
    spec.hooks.post_rollout = Some(job("", None, 0));
    spec.checks = vec![Check {
        name: "smoke".into(),
        http: None,
        job: Some(job("smoke:v1", None, -1)),
        prometheus: None,
        count: 1,
        failure_limit: 0,
        interval_seconds: 2,
    }];
    let errors = validate(&spec)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    for expected in [
        "spec.hooks.preRollout.backoffLimit is 11; use 0..10",
        "spec.hooks.preRollout.template.spec.restartPolicy is \"Always\"; a Job's pod needs Never or OnFailure",
        "spec.hooks.postRollout.template.spec.containers is empty; give the Job's pod a container",
        "spec.checks[0].job.backoffLimit is -1; use 0..10",
    ] {
        assert!(errors.iter().any(|e| e == expected), "{expected:?} not in {errors:#?}");
    }
    assert_eq!(errors.len(), 4, "{errors:#?}");
}
