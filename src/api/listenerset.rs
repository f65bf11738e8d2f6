//! `ListenerSet` custom resource (`baton.dev/v1alpha1`, namespaced, short name `lset`).
//!
//! A ListenerSet names a set of *listeners* (long-lived singleton jobs, e.g. one outbound
//! WebSocket per account token) and the pods that may host them. Each listener runs on
//! exactly one pod at a time; ownership is recorded in one `coordination.k8s.io/v1` Lease per
//! listener (see [`lease_name`], the label keys below, and the protocol documented in
//! `crate::listeners::assigner`).
//!
//! Besides the types this module holds the protocol constants (labels and annotations shared
//! by the controller and the agent), [`lease_name`], [`crd`] and the pure spec check
//! [`validate`].

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label on every listener Lease: the name of the ListenerSet it belongs to.
pub const LISTENERSET_LABEL: &str = "baton.dev/listenerset";
/// Label on every listener Lease: the listener id (a valid label value, see [`validate`]).
pub const LISTENER_LABEL: &str = "baton.dev/listener";
/// Pod annotation: a pod carrying it (with any value except `"false"`) is being drained and
/// gets no new listeners; its current listeners are asked to move.
pub const DRAIN_ANNOTATION: &str = "baton.dev/drain";
/// Lease annotation written by the controller to ask the current holder to release the
/// Lease; the value is the reason (see `crate::listeners::assigner::ReleaseReason`).
pub const RELEASE_REQUESTED_ANNOTATION: &str = "baton.dev/release-requested";
/// Condition type: every listener that is not suspended is running.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: something needs attention (invalid spec, pending or orphaned listeners).
pub const CONDITION_DEGRADED: &str = "Degraded";
/// Condition and Event reason: the spec cannot be acted on (the message says what to fix).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Condition reason: pods let a Lease assigned to them go unrenewed past its duration (their
/// agents are missing, dead or cut off); the message names them. They get no new listeners.
pub const REASON_AGENTS_NOT_RENEWING: &str = "AgentsNotRenewing";
/// Condition reason: listeners are assigned but their holders have not renewed yet.
pub const REASON_LISTENERS_STARTING: &str = "ListenersStarting";
/// Default `spec.leaseDurationSeconds`.
pub const DEFAULT_LEASE_DURATION_SECONDS: i32 = 15;
/// Longest allowed listener id (it is used as a label value).
pub const MAX_LISTENER_ID_LEN: usize = 63;
/// Longest Kubernetes object name (DNS-1123 subdomain).
pub const MAX_NAME_LEN: usize = 253;

fn default_lease_duration_seconds() -> i32 {
    DEFAULT_LEASE_DURATION_SECONDS
}

/// Desired state of a ListenerSet.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "baton.dev",
    version = "v1alpha1",
    kind = "ListenerSet",
    namespaced,
    status = "ListenerSetStatus",
    shortname = "lset",
    derive = "PartialEq",
    doc = "A set of singleton listeners, each run by exactly one of the selected pods at a time.",
    printcolumn = r#"{"name": "LISTENERS", "type": "integer", "description": "Listeners in the set", "jsonPath": ".status.listeners"}"#,
    printcolumn = r#"{"name": "RUNNING", "type": "integer", "description": "Listeners held by a live pod that renewed its Lease since the assignment", "jsonPath": ".status.running"}"#,
    printcolumn = r#"{"name": "STARTING", "type": "integer", "description": "Listeners assigned to a live pod that has not renewed yet", "jsonPath": ".status.starting"}"#,
    printcolumn = r#"{"name": "PENDING", "type": "integer", "description": "Listeners waiting for a pod", "jsonPath": ".status.pending"}"#,
    printcolumn = r#"{"name": "ORPHANED", "type": "integer", "description": "Listeners whose holder is gone or whose Lease expired", "jsonPath": ".status.orphaned"}"#,
    printcolumn = r#"{"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetSpec {
    /// The pods that host listeners (any workload). Must not be empty.
    pub selector: LabelSelector,
    /// Listeners declared inline. An id declared here and also found in `listenersFrom`
    /// is the same listener; the inline entry (its `configRef`, `suspend`) wins.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"]))]
    pub listeners: Vec<Listener>,
    /// Alternatively (or additionally): one listener per key of a Secret, configured by
    /// that key's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners_from: Option<ListenersFrom>,
    /// Most listeners one pod may hold; 0 = no limit (listeners are spread evenly anyway).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_per_pod: i32,
    /// How long a Lease stays valid without renewal before its listener is taken over.
    #[serde(default = "default_lease_duration_seconds")]
    #[schemars(range(min = 1))]
    pub lease_duration_seconds: i32,
}

/// One listener.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Unique id within the set; a label value: at most 63 characters of `[A-Za-z0-9._-]`,
    /// starting and ending with a letter or digit.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    )]
    pub id: String,
    /// Where the listener's configuration (e.g. its token) lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_ref: Option<ConfigRef>,
    /// Stop the listener (its holder releases it) and do not run it anywhere.
    #[serde(default)]
    pub suspend: bool,
}

/// Reference to a listener's configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRef {
    /// A key of a Secret in the ListenerSet's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key within the Secret.
    pub key: String,
}

/// Source of listeners: one listener per key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenersFrom {
    /// Every key of this Secret is a listener id; its value is the listener's config.
    pub secret_ref: SecretRef,
}

/// A Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
}

/// Observed state of a ListenerSet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Listeners in the set (inline and from `listenersFrom`).
    #[serde(default)]
    pub listeners: i32,
    /// Listeners held by a live pod with an unexpired Lease that it renewed since the
    /// assignment (its agent starts a listener only after a renewal).
    #[serde(default)]
    pub running: i32,
    /// Listeners assigned to a live pod that has not renewed the Lease since.
    #[serde(default)]
    pub starting: i32,
    /// Listeners (not suspended) that no pod holds.
    #[serde(default)]
    pub pending: i32,
    /// Listeners (not suspended) whose holder pod is gone or whose Lease expired.
    #[serde(default)]
    pub orphaned: i32,
    /// Suspended listeners that are no longer running.
    #[serde(default)]
    pub suspended: i32,
    /// Which pod runs which listener.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["listener"]))]
    pub assignments: Vec<Assignment>,
    /// The highest fencing token handed out for each listener, running or not. It is written
    /// before any Lease carries the token, so a restarted or standby controller, or a Lease
    /// recreated after garbage collection, continues above it: tokens never go backwards.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fencing_tokens: BTreeMap<String, i32>,
    /// `Ready` and `Degraded`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One assigned listener (running, or starting: see `starting`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// Listener id.
    pub listener: String,
    /// Pod that holds the listener's Lease.
    pub pod: String,
    /// When that pod acquired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// The Lease's `leaseTransitions`: the fencing token handed to the app.
    #[serde(default)]
    pub transitions: i32,
    /// The pod has not renewed the Lease since it was assigned: the listener is not running
    /// yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starting: bool,
}

/// The ListenerSet CustomResourceDefinition.
pub fn crd() -> CustomResourceDefinition {
    super::schema_bounds::bound_integers(ListenerSet::crd())
}

/// Name of the Lease that records who runs `listener` of set `set`: `<set>-<listener>` when
/// that is already a valid name (lower-case alphanumerics and `-`, starting and ending with
/// an alphanumeric, at most 253 characters); otherwise a sanitised, truncated form followed by
/// `-` and 10 hex digits of a stable hash (64-bit FNV-1a) of the original `<set>-<listener>`.
///
/// `<set>-<listener>` is not injective (set `a-b` + listener `c` and set `a` + listener
/// `b-c` give the same name), so whoever finds a Lease by this name must check its
/// [`LISTENERSET_LABEL`] and [`LISTENER_LABEL`] before trusting it.
pub fn lease_name(set: &str, listener: &str) -> String {
    const HASH_HEX: usize = 10;
    let raw = format!("{set}-{listener}");
    let sanitized: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let trimmed = sanitized.trim_matches('-');
    if trimmed == raw && raw.len() <= MAX_NAME_LEN {
        return raw;
    }
    let hash = fnv1a64(raw.as_bytes());
    let suffix = format!("{:016x}", hash);
    let suffix = &suffix[..HASH_HEX];
    // `trimmed` is ASCII, so byte slicing is on char boundaries.
    let keep = MAX_NAME_LEN - 1 - HASH_HEX;
    let base = trimmed[..trimmed.len().min(keep)].trim_end_matches('-');
    if base.is_empty() {
        suffix.to_string()
    } else {
        format!("{base}-{suffix}")
    }
}

/// 64-bit FNV-1a: tiny, stable across Rust versions and platforms (unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Whether `s` is a valid, non-empty Kubernetes label value: at most 63 characters of
/// `[A-Za-z0-9._-]`, starting and ending with a letter or digit.
pub fn is_label_value(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Check one listener id (also usable for keys found through `listenersFrom`).
pub fn validate_listener_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty: give every listener a non-empty id".to_string());
    }
    if !is_label_value(id) {
        return Err(format!(
            "{id:?} is not a valid listener id: use at most {MAX_LISTENER_ID_LEN} characters \
             from [A-Za-z0-9._-], starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Check a ListenerSet's name: it is stored as the [`LISTENERSET_LABEL`] value on Leases.
pub fn validate_name(name: &str) -> Result<(), String> {
    if is_label_value(name) {
        Ok(())
    } else {
        Err(format!(
            "ListenerSet name {name:?} must be a valid label value (at most 63 characters \
             from [A-Za-z0-9._-], starting and ending with a letter or digit); rename it"
        ))
    }
}

/// Check a spec for the mistakes a user can make. Every message names the field and says
/// what to fix; all problems are reported, not just the first.
pub fn validate(spec: &ListenerSetSpec) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();

    let sel = &spec.selector;
    let no_labels = sel.match_labels.as_ref().is_none_or(|m| m.is_empty());
    let no_exprs = sel.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if no_labels && no_exprs {
        errors.push(
            "spec.selector is empty and would select every pod in the namespace: set \
             matchLabels or matchExpressions to the pods that run the baton agent"
                .to_string(),
        );
    }
    for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
        let values = expr.values.as_ref().map_or(0, |v| v.len());
        match expr.operator.as_str() {
            "In" | "NotIn" if values == 0 => errors.push(format!(
                "spec.selector.matchExpressions[{i}] (key {:?}) uses operator {} without \
                 values: list at least one value",
                expr.key, expr.operator
            )),
            "Exists" | "DoesNotExist" if values > 0 => errors.push(format!(
                "spec.selector.matchExpressions[{i}] (key {:?}) uses operator {} with values: \
                 remove the values",
                expr.key, expr.operator
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.push(format!(
                "spec.selector.matchExpressions[{i}] has unknown operator {other:?}: use In, \
                 NotIn, Exists or DoesNotExist"
            )),
        }
    }

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, listener) in spec.listeners.iter().enumerate() {
        if let Err(e) = validate_listener_id(&listener.id) {
            errors.push(format!("spec.listeners[{i}].id {e}"));
        }
        if !listener.id.is_empty() {
            if let Some(first) = seen.get(listener.id.as_str()) {
                errors.push(format!(
                    "spec.listeners[{i}].id {:?} duplicates spec.listeners[{first}].id: \
                     listener ids must be unique, rename or remove one",
                    listener.id
                ));
            } else {
                seen.insert(&listener.id, i);
            }
        }
        if let Some(config) = &listener.config_ref {
            if config.secret_key_ref.name.is_empty() {
                errors.push(format!(
                    "spec.listeners[{i}].configRef.secretKeyRef.name is empty: name the Secret \
                     that holds the listener's config"
                ));
            }
            if config.secret_key_ref.key.is_empty() {
                errors.push(format!(
                    "spec.listeners[{i}].configRef.secretKeyRef.key is empty: name the key in \
                     the Secret"
                ));
            }
        }
    }
    if let Some(from) = &spec.listeners_from {
        if from.secret_ref.name.is_empty() {
            errors.push(
                "spec.listenersFrom.secretRef.name is empty: name the Secret whose keys are \
                 the listener ids, or remove listenersFrom"
                    .to_string(),
            );
        }
    }
    if spec.max_per_pod < 0 {
        errors.push(format!(
            "spec.maxPerPod is {}: use 0 for no limit or a positive number",
            spec.max_per_pod
        ));
    }
    if spec.lease_duration_seconds < 1 {
        errors.push(format!(
            "spec.leaseDurationSeconds is {}: set it to at least 1 (default {})",
            spec.lease_duration_seconds, DEFAULT_LEASE_DURATION_SECONDS
        ));
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use proptest::prelude::*;

    fn spec() -> ListenerSetSpec {
        ListenerSetSpec {
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
                ("AGE", ".metadata.creationTimestamp", "date"),
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
        s.listeners_from = Some(ListenersFrom::default());
        s.max_per_pod = -1;
        s.lease_duration_seconds = 0;
        let errors = validate(&s).unwrap_err();
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
        let errors = validate(&s).unwrap_err();
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

    #[test]
    fn lease_name_examples() {
        assert_eq!(lease_name("sxt", "listener1"), "sxt-listener1");
        let upper = lease_name("sxt", "Listener1");
        assert!(upper.starts_with("sxt-listener1-"), "{upper}");
        assert_eq!(upper.len(), "sxt-listener1-".len() + 10);
        // Sanitising must not make distinct inputs collide.
        assert_ne!(lease_name("sxt", "a_b"), lease_name("sxt", "a.b"));
        assert_ne!(lease_name("sxt", "a_b"), lease_name("sxt", "a-b"));
        assert_ne!(lease_name("sxt", "A"), lease_name("sxt", "a"));
        let long = lease_name(&"s".repeat(200), &"l".repeat(63));
        assert_eq!(long.len(), MAX_NAME_LEN);
        assert_ne!(long, lease_name(&"s".repeat(200), &"l".repeat(62)));
        assert_eq!(lease_name("", "_"), lease_name("", "_"));
        assert!(is_dns_subdomain(&lease_name("", "_")));
    }

    fn is_dns_subdomain(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_NAME_LEN
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn lease_name_is_dns_safe_and_stable(set in "\\PC{0,300}", listener in "\\PC{0,80}") {
            let name = lease_name(&set, &listener);
            prop_assert!(is_dns_subdomain(&name), "{:?}", name);
            prop_assert_eq!(&name, &lease_name(&set, &listener));
        }

        #[test]
        fn lease_name_keeps_valid_names(set in "[a-z0-9]([a-z0-9-]{0,60}[a-z0-9])?",
                                        listener in "[a-z0-9]([a-z0-9-]{0,60}[a-z0-9])?") {
            prop_assert_eq!(lease_name(&set, &listener), format!("{set}-{listener}"));
        }

        #[test]
        fn lease_name_distinguishes_listeners(set in "[a-z]{1,20}",
                                              a in "[A-Za-z0-9._-]{1,63}",
                                              b in "[A-Za-z0-9._-]{1,63}") {
            prop_assume!(a != b);
            prop_assert_ne!(lease_name(&set, &a), lease_name(&set, &b));
        }
    }
}
