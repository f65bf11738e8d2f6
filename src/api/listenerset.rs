//! `ListenerSet` custom resource (`baton.dev/v1alpha1`, namespaced, short name `lset`).
//!
//! A ListenerSet names a set of *listeners* (long-lived singleton jobs, e.g. one outbound
//! WebSocket per account token) and the pods that may host them. Each listener runs on
//! exactly one pod at a time; ownership is recorded in one `coordination.k8s.io/v1` Lease per
//! listener (see [`lease`], and the ListenerSet controller's assigner, `listeners::assigner`,
//! for the protocol).
//!
//! Besides the types this module holds every word the controller, the agent, the CLI and users
//! exchange about a ListenerSet and its Leases (labels, annotations, the finalizer, condition
//! types and reasons, Event reasons), [`crd`] and the pure spec check [`validate`].

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod lease;
pub use lease::{lease_name, ReleaseReason};

/// Label on every listener Lease: the name of the ListenerSet it belongs to.
pub const LISTENERSET_LABEL: &str = "baton.dev/listenerset";
/// Label on every listener Lease: the listener id (a valid label value, see [`validate`]).
pub const LISTENER_LABEL: &str = "baton.dev/listener";
/// Lease annotation written by the controller to ask the current holder to release the
/// Lease; the value is the reason ([`ReleaseReason`]).
pub const RELEASE_REQUESTED_ANNOTATION: &str = "baton.dev/release-requested";
/// Lease annotation written by the controller with every assignment: where the listener's
/// config lives, `<secret name>/<key>` in the Lease's namespace ([`lease::config_value`];
/// absent: no config).
pub const CONFIG_ANNOTATION: &str = "baton.dev/config";
/// ListenerSet annotation set by `baton listeners recover`: a nonce; the controller reassigns
/// orphans (holder gone, not Ready or terminating) at once, then copies the nonce to
/// [`RECOVERED_ANNOTATION`].
pub const RECOVER_ANNOTATION: &str = "baton.dev/recover";
/// ListenerSet annotation: the last recover nonce the controller acted on.
pub const RECOVERED_ANNOTATION: &str = "baton.dev/recovered";
/// Finalizer the controller puts on every ListenerSet: a deleted set goes only once every
/// listener has stopped and every Lease of the set is deleted.
pub const FINALIZER: &str = "baton.dev/listeners";

/// Condition type: every listener that is not suspended is running.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: something needs attention (invalid spec, pending or orphaned listeners).
pub const CONDITION_DEGRADED: &str = "Degraded";
/// Condition and Event reason: the spec cannot be acted on (the message says what to fix).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Ready reason: every listener that is not suspended runs.
pub const REASON_ALL_RUNNING: &str = "AllRunning";
/// Ready and Degraded reason: no selected pod may take listeners (none is Ready, or all are
/// draining or terminating).
pub const REASON_NO_ELIGIBLE_PODS: &str = "NoEligiblePods";
/// Ready reason: some listeners are pending or orphaned.
pub const REASON_LISTENERS_NOT_RUNNING: &str = "ListenersNotRunning";
/// Degraded reason (and Warning Event): a Secret or key named for a listener's config is missing.
pub const REASON_MISSING_SECRET: &str = "MissingSecret";
/// Degraded reason: listeners have a gone or expired holder and are being taken over.
pub const REASON_ORPHANED: &str = "Orphaned";
/// Degraded reason: nothing needs attention.
pub const REASON_AS_EXPECTED: &str = "AsExpected";
/// Ready and Degraded reason (and Event) while the set is being deleted.
pub const REASON_TERMINATING: &str = "Terminating";

/// Event reason: a free listener was assigned to a pod.
pub const EVENT_ASSIGNED: &str = "Assigned";
/// Event reason: a released listener went to another pod.
pub const EVENT_HANDOVER: &str = "Handover";
/// Event reason (Warning): a listener whose holder was gone or whose Lease expired was taken over.
pub const EVENT_TAKEOVER: &str = "Takeover";
/// Event reason (Warning): a hand-deleted Lease was recreated for the pod that may still run it.
pub const EVENT_LEASE_RECREATED: &str = "LeaseRecreated";
/// Event reason: a `baton listeners recover` request was acted on.
pub const EVENT_RECOVERED: &str = "Recovered";
/// Event reason: every Lease of a deleted set is gone and the finalizer was removed.
pub const EVENT_FINALIZED: &str = "Finalized";

/// Ready and Degraded reason: pods let a Lease assigned to them go unrenewed past its duration (their
/// agents are missing, dead or cut off); the message names them. They get no new listeners.
pub const REASON_AGENTS_NOT_RENEWING: &str = "AgentsNotRenewing";
/// Ready reason: listeners are assigned but their holders have not renewed yet.
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
    /// Webhooks told about takeovers, orphaned listeners and the set turning Degraded (see
    /// docs/listeners.md, "Notifications").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub notifications: Vec<super::notifications::ListenerSetNotification>,
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
    /// `Ready` and `Degraded` (and `NotificationsReady` with `spec.notifications`).
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
    /// That pod's uid (a pod of the same name later is another pod).
    #[serde(rename = "podUID", default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
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
    super::descriptions::unwrap(super::schema_bounds::bound_integers(ListenerSet::crd()))
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
mod tests;
