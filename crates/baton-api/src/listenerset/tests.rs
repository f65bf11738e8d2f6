//! The ListenerSet CRD, its spec checks and Lease names.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

fn spec() -> ListenerSetSpec {
    ListenerSetSpec {
        rebalance: None,
        selector: LabelSelector {
            match_labels: Some([("app".to_string(), "svc".to_string())].into()),
            ..Default::default()
        },
        listeners: vec![
            Listener {
                id: "listener1".into(),
                config_ref: Some(ConfigRef {
                    secret_key_ref: SecretKeyRef {
                        name: "tokens".into(),
                        key: "listener1".into(),
                    },
                }),
                suspend: false,
            },
            Listener {
                id: "listener2".into(),
                config_ref: None,
                suspend: true,
            },
        ],
        listeners_from: None,
        max_per_pod: 0,
        lease_duration_seconds: 15,
        notifications: vec![],
    }
}

#[test]
fn crd_has_names_columns_and_status() {
    let crd = crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("listenersets.baton.dev"));
    assert_eq!(crd.spec.group, "baton.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "ListenerSet");
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["lset".to_string()][..]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let subresources = version.subresources.as_ref().unwrap();
    assert!(subresources.status.is_some());
    let columns: Vec<_> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.json_path.as_str(), c.type_.as_str()))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("LISTENERS", ".status.listeners", "integer"),
            ("RUNNING", ".status.running", "integer"),
            ("STARTING", ".status.starting", "integer"),
            ("PENDING", ".status.pending", "integer"),
            ("ORPHANED", ".status.orphaned", "integer"),
            ("REASON", ".status.conditions[?(@.type==\"Ready\")].reason", "string"),
            ("AGE", ".metadata.creationTimestamp", "date"),
            ("SUSPENDED", ".status.suspended", "integer"),
            ("MESSAGE", ".status.conditions[?(@.type==\"Ready\")].message", "string"),
        ]
    );
}

#[test]
fn crd_schema_has_defaults_minimums_and_list_maps() {
    let json = serde_json::to_value(crd()).unwrap();
    let schema = &json["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let spec = &schema["spec"]["properties"];
    assert_eq!(spec["leaseDurationSeconds"]["default"], 15);
    assert_eq!(spec["leaseDurationSeconds"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(spec["maxPerPod"]["minimum"].as_f64(), Some(0.0));
    assert_eq!(spec["listeners"]["x-kubernetes-list-map-keys"][0], "id");
    let id = &spec["listeners"]["items"]["properties"]["id"];
    assert_eq!(id["maxLength"], 63);
    assert!(id["pattern"].is_string());
    let status = &schema["status"]["properties"];
    assert_eq!(status["assignments"]["x-kubernetes-list-type"], "map");
    assert_eq!(status["conditions"]["x-kubernetes-list-map-keys"][0], "type");
    let size = serde_json::to_string(&json).unwrap().len();
    assert!(size < 64 * 1024, "CRD is {size} bytes");
}

#[test]
fn yaml_round_trip_and_defaults() {
    let yaml = r#"
apiVersion: baton.dev/v1alpha1
kind: ListenerSet
metadata: {name: sxt}
spec:
  selector: {matchLabels: {app: user-service}}
  listeners:
    - {id: listener1, configRef: {secretKeyRef: {name: sxt-tokens, key: listener1}}}
    - {id: listener2, suspend: true}
  listenersFrom: {secretRef: {name: sxt-tokens}}
"#;
    let set: ListenerSet = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(set.spec.lease_duration_seconds, 15);
    assert_eq!(set.spec.max_per_pod, 0);
    assert!(set.spec.listeners[1].suspend);
    assert!(!set.spec.listeners[0].suspend);
    assert_eq!(validate(&set.spec), Ok(()));
    let back: ListenerSet = serde_json::from_value(serde_json::to_value(&set).unwrap()).unwrap();
    assert_eq!(back, set);
}

#[test]
fn validate_accepts_good_spec() {
    assert_eq!(validate(&spec()), Ok(()));
}

#[test]
fn validate_reports_every_problem() {
    let mut s = spec();
    s.selector = LabelSelector::default();
    s.listeners.push(Listener {
        id: "listener1".into(),
        ..Default::default()
    });
    s.listeners.push(Listener::default());
    s.listeners.push(Listener {
        id: "Not OK!".into(),
        ..Default::default()
    });
    s.listeners[1].config_ref = Some(ConfigRef::default());
    s.listeners_from = Some(ListenersFrom {
        secret_ref: Some(SecretRef::default()),
        secret_selector: None,
    });
    s.max_per_pod = -1;
    s.lease_duration_seconds = 0;
    let errors = validate(&s)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(has("spec.selector is empty"), "{errors:#?}");
    assert!(has(
        "spec.listeners[2].id \"listener1\" duplicates spec.listeners[0].id"
    ));
    assert!(has("spec.listeners[3].id is empty"));
    assert!(has("spec.listeners[4].id \"Not OK!\" is not a valid listener id"));
    assert!(has("spec.listeners[1].configRef.secretKeyRef.name is empty"));
    assert!(has("spec.listeners[1].configRef.secretKeyRef.key is empty"));
    assert!(has("spec.listenersFrom.secretRef.name is empty"));
    assert!(has("spec.maxPerPod is -1"));
    assert!(has("spec.leaseDurationSeconds is 0: set it to at least 1"));
    assert_eq!(errors.len(), 9, "{errors:#?}");
}

#[test]
fn listeners_from_takes_exactly_one_source_and_a_selector_that_selects() {
    let mut s = spec();
    s.listeners_from = Some(ListenersFrom::default());
    let errors = validate(&s)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert_eq!(
        errors,
        vec!["spec.listenersFrom needs exactly one of secretRef and secretSelector".to_string()]
    );
    s.listeners_from = Some(ListenersFrom {
        secret_ref: Some(SecretRef { name: "tokens".into() }),
        secret_selector: Some(LabelSelector::default()),
    });
    assert!(validate(&s).is_err());
    s.listeners_from = Some(ListenersFrom {
        secret_ref: None,
        secret_selector: Some(LabelSelector::default()),
    });
    let errors = validate(&s)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert!(errors[0].contains("secretSelector is empty"), "{errors:?}");
    s.listeners_from = Some(ListenersFrom {
        secret_ref: None,
        secret_selector: Some(LabelSelector {
            match_labels: Some([("baton.dev/tokens".to_string(), "sxt".to_string())].into()),
            ..Default::default()
        }),
    });
    assert_eq!(validate(&s), Ok(()));
    // The CRD refuses both or neither, as the API server evaluates it.
    let json = serde_json::to_string(&crd()).unwrap();
    assert!(
        json.contains("listenersFrom needs exactly one of secretRef and secretSelector"),
        "{json}"
    );
}

#[test]
fn validate_checks_selector_expressions() {
    let mut s = spec();
    s.selector = LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: None,
            },
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Exists".into(),
                values: Some(vec!["x".into()]),
            },
            LabelSelectorRequirement {
                key: "zone".into(),
                operator: "Near".into(),
                values: None,
            },
        ]),
    };
    let errors = validate(&s)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("without values"));
    assert!(errors[1].contains("remove the values"));
    assert!(errors[2].contains("unknown operator \"Near\""));
}

#[test]
fn names_and_ids() {
    assert!(validate_listener_id("acct_42.ws-1").is_ok());
    assert!(validate_listener_id(&"a".repeat(63)).is_ok());
    assert!(validate_listener_id(&"a".repeat(64)).is_err());
    assert!(validate_listener_id("-a").is_err());
    assert!(validate_listener_id("a-").is_err());
    assert!(validate_name("sxt").is_ok());
    assert!(validate_name(&"s".repeat(64)).is_err());
}
