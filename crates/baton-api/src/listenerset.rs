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

use crate::Invalid;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod holder;
pub mod lease;
pub mod liveness;
pub mod rebalance;
pub mod view;
pub use lease::{lease_name, ReleaseReason};
pub use rebalance::{RebalancePolicy, RebalanceSpec, RebalanceStatus};

/// Label on every listener Lease: the name of the ListenerSet it belongs to.
pub const LISTENERSET_LABEL: &str = "baton.dev/listenerset";
/// Label on every listener Lease: the listener id (a valid label value, see [`validate`]).
pub const LISTENER_LABEL: &str = "baton.dev/listener";
/// Lease annotation written by the controller to ask the current holder to release the
/// Lease; the value is the reason ([`ReleaseReason`]).
pub const RELEASE_REQUESTED_ANNOTATION: &str = "baton.dev/release-requested";
/// Lease annotation written by the controller beside [`RELEASE_REQUESTED_ANNOTATION`] when it
/// knows where the listener goes next: `<pod name>/<pod uid>` of its successor. The holder's
/// agent, once its application stopped the listener, writes the handover itself (one conditional
/// write: the successor becomes the holder with the next fencing token,
/// [`lease::handover::patch`]) instead of a bare release the controller would then assign.
pub const RELEASE_TO_ANNOTATION: &str = "baton.dev/release-to";
/// Lease annotation written with an agent's handover ([`RELEASE_TO_ANNOTATION`]): the pod that
/// handed the listener over. The controller reports the handover (its Event) from it, and removes
/// it with its next assignment.
pub const HANDED_OVER_FROM_ANNOTATION: &str = "baton.dev/handed-over-from";
/// Lease annotation written by the controller with every assignment: where the listener's
/// config lives, `<secret name>/<key>` in the Lease's namespace ([`lease::config_value`];
/// absent: no config).
pub const CONFIG_ANNOTATION: &str = "baton.dev/config";
/// Lease annotation written by the controller with every assignment of a listener with a config:
/// the `resourceVersion` of the config's Secret the controller resolved the listener from. An
/// agent that holds a copy of that Secret at this version uses it instead of reading the Secret
/// again ([`lease::config_version_of`]; absent: the agent goes by the age of its copy).
pub const CONFIG_VERSION_ANNOTATION: &str = "baton.dev/config-version";
/// ListenerSet annotation set by `baton listeners recover`: a nonce; the controller reassigns
/// orphans (holder gone, not Ready or terminating) at once, then copies the nonce to
/// [`RECOVERED_ANNOTATION`].
pub const RECOVER_ANNOTATION: &str = "baton.dev/recover";
/// ListenerSet annotation: the last recover nonce the controller acted on.
pub const RECOVERED_ANNOTATION: &str = "baton.dev/recovered";
/// Finalizer the controller puts on every ListenerSet: a deleted set goes only once every
/// listener has stopped and every Lease of the set is deleted.
pub const FINALIZER: &str = "baton.dev/listeners";
/// Finalizer the controller puts on every listener Lease it writes: a Lease deleted by hand, or
/// by the garbage collector with its pod, stays (terminating, its holder and fencing token still
/// there) until the controller knows nobody runs its listener, so the controller never has to
/// guess who might.
pub const LEASE_FINALIZER: &str = "baton.dev/listener";
/// Annotation on the Leases the controller writes: the version of the ownership protocol it
/// speaks ([`PROTOCOL_VERSION`]). An agent that finds its liveness Lease carrying it renews that
/// Lease instead of each listener's.
pub const PROTOCOL_ANNOTATION: &str = "baton.dev/protocol";
/// The ownership protocol: liveness per pod ([`liveness`]), ownership per listener ([`lease`]).
/// Version 1 (no annotation) renewed every listener Lease.
pub const PROTOCOL_VERSION: &str = "2";

/// Condition type: every listener that is not suspended is running.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: something needs attention (invalid spec, pending or orphaned listeners).
pub const CONDITION_DEGRADED: &str = "Degraded";
/// Condition type (kstatus): True while the set cannot become Ready until a person fixes what the
/// message names: an invalid spec ([`REASON_INVALID_SPEC`]), a Secret or key the spec names that
/// is missing or cannot be read ([`REASON_MISSING_SECRET`]), a listener's Lease name taken by a
/// Lease that is not the set's ([`REASON_LEASE_NAME_TAKEN`]). `Ready` is then False with the same
/// reason and message; while False it carries `Ready`'s.
pub const CONDITION_STALLED: &str = "Stalled";
/// Condition (Ready, Degraded, Stalled) and Event reason: the spec cannot be acted on (the
/// message says what to fix).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// Ready reason: every listener that is not suspended runs.
pub const REASON_ALL_RUNNING: &str = "AllRunning";
/// Ready and Degraded reason: no selected pod may take listeners (none is Ready, or all are
/// draining or terminating).
pub const REASON_NO_ELIGIBLE_PODS: &str = "NoEligiblePods";
/// Ready reason: some listeners are pending or orphaned.
pub const REASON_LISTENERS_NOT_RUNNING: &str = "ListenersNotRunning";
/// Ready, Degraded and Stalled reason (and Warning Event): a Secret or key the spec names (the
/// `listenersFrom` Secret, a listener's config) is missing or cannot be read.
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
/// Event reason (Warning): pods whose agents stopped renewing their liveness Lease were fenced
/// (their registration ended), so their listeners can move.
pub const EVENT_FENCED: &str = "AgentFenced";
/// Event reason: listeners start moving to even out the pods' loads (one Event per burst).
pub const EVENT_REBALANCING: &str = "Rebalancing";
/// Event reason: the pods' loads are within `maxSkew` again and nothing is on the move.
pub const EVENT_REBALANCED: &str = "Rebalanced";
/// Event reason: every Lease of a deleted set is gone and the finalizer was removed.
pub const EVENT_FINALIZED: &str = "Finalized";
/// Event (Warning), and Ready, Degraded and Stalled reason: a listener's Lease name is taken by a Lease that is not
/// the set's (no `baton.dev/listenerset` label naming it); the listener cannot run until that
/// Lease is deleted or renamed. The controller never writes a Lease it did not create.
pub const REASON_LEASE_NAME_TAKEN: &str = "LeaseNameTaken";

/// Ready and Degraded reason: pods let a Lease assigned to them go unrenewed past its duration (their
/// agents are missing, dead or cut off); the message names them. They get no new listeners.
pub const REASON_AGENTS_NOT_RENEWING: &str = "AgentsNotRenewing";
/// Ready reason: listeners are assigned but their holders have not renewed yet.
pub const REASON_LISTENERS_STARTING: &str = "ListenersStarting";

/// `status.attention` state: the listener's holder is gone or its agent fell silent.
pub const ATTENTION_ORPHANED: &str = "Orphaned";
/// `status.attention` state: no pod holds the listener.
pub const ATTENTION_PENDING: &str = "Pending";
/// `status.attention` state: assigned, not acknowledged by the holder's agent.
pub const ATTENTION_STARTING: &str = "Starting";
/// `status.attention` reason: the holder pod is gone, stopped renewing, or was fenced.
pub const ATTENTION_HOLDER_LOST: &str = "HolderGoneOrSilent";
/// `status.attention` reason: no selected pod may take listeners.
pub const ATTENTION_NO_ELIGIBLE_POD: &str = "NoEligiblePod";
/// `status.attention` reason: pods may take listeners but none has room (`maxPerPod`), or the
/// listener waits for its previous holder to have stopped, or for its config.
pub const ATTENTION_WAITING: &str = "WaitingForRoom";
/// `status.attention` reason: the holder's agent does not acknowledge.
pub const ATTENTION_NOT_ACKNOWLEDGED: &str = "AgentNotAcknowledging";

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
    doc = "A set of singleton listeners, each run by exactly one of the selected pods at a time."
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
    /// Whether listeners move to pods that join the set, and how fast (see docs/listeners.md,
    /// "Balance").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceSpec>,
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

/// Source of listeners: one listener per key of one Secret, or of every Secret a label selector
/// picks (a Secret holds at most 1 MiB, some 20,000 short tokens).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.secretRef) ? 1 : 0) + (has(self.secretSelector) ? 1 : 0) == 1").message("listenersFrom needs exactly one of secretRef and secretSelector"))]
#[serde(rename_all = "camelCase")]
pub struct ListenersFrom {
    /// Every key of this Secret is a listener id; its value is the listener's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Every key of every Secret of the namespace these labels select is a listener id. A key
    /// found in two Secrets is the listener of the Secret whose name sorts first (the other is
    /// reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_selector: Option<LabelSelector>,
}

/// A Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
}

/// Observed state of a ListenerSet. Its size is bounded whatever the number of listeners: the
/// truth about each listener (who holds it, since when, its fencing token) is in its Lease, which
/// `baton listeners <set>` reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Listeners in the set (inline and from `listenersFrom`).
    #[serde(default)]
    pub listeners: i32,
    /// Listeners held by a live pod whose agent acknowledged the assignment (it starts a
    /// listener only once that acknowledgement is written).
    #[serde(default)]
    pub running: i32,
    /// Listeners assigned to a live pod whose agent has not acknowledged yet.
    #[serde(default)]
    pub starting: i32,
    /// Listeners (not suspended) that no pod holds.
    #[serde(default)]
    pub pending: i32,
    /// Listeners (not suspended) whose holder pod is gone or no longer renews.
    #[serde(default)]
    pub orphaned: i32,
    /// Suspended listeners that are no longer running.
    #[serde(default)]
    pub suspended: i32,
    /// Listeners held (running or starting) per pod, for at most 100 pods (those holding the
    /// most; `podsOmitted` counts the others).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pods: BTreeMap<String, i32>,
    /// Pods holding listeners that `pods` leaves out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pods_omitted: i32,
    /// Listeners that need attention (pending, orphaned, or starting on a pod whose agent does not
    /// acknowledge), at most 20, with why; `attentionOmitted` counts the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<Attention>,
    /// Listeners needing attention that `attention` leaves out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attention_omitted: i32,
    /// Every fencing token ever handed out for a listener of this set is at most this. It is
    /// written before any Lease carries a higher token, so a listener whose Lease is gone (and a
    /// restarted or standby controller) continues above it: tokens never go backwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token_ceiling: Option<i32>,
    /// How evenly the listeners are spread, and whether they are being evened out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceStatus>,
    /// `Ready`, `Degraded` and `Stalled` (kstatus: True while a person must fix the spec or a
    /// Secret it names; `Ready` is then False), and `NotificationsReady` with `spec.notifications`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Deprecated: written by controllers before the liveness protocol (one entry per listener);
    /// read once to carry their tokens over, then removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["listener"]))]
    pub assignments: Vec<Assignment>,
    /// Deprecated: the per-listener fencing tokens of controllers before the liveness protocol;
    /// read once into `fencingTokenCeiling`, then removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fencing_tokens: BTreeMap<String, i32>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Most pods `status.pods` lists (its field documentation says so).
pub const MAX_STATUS_PODS: usize = 100;
/// Most listeners `status.attention` lists (its field documentation says so).
pub const MAX_ATTENTION: usize = 20;

/// A listener that needs attention.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attention {
    /// Listener id.
    pub listener: String,
    /// `Pending`, `Orphaned` or `Starting`.
    pub state: String,
    /// Why, in a few words.
    pub reason: String,
    /// The pod concerned (the holder, or the last one), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// One assigned listener, as controllers before the liveness protocol listed them (deprecated).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// Listener id.
    pub listener: String,
    /// Pod that held the listener's Lease.
    pub pod: String,
    /// That pod's uid.
    #[serde(rename = "podUID", default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// When that pod acquired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// The Lease's `leaseTransitions`.
    #[serde(default)]
    pub transitions: i32,
    /// The pod had not renewed the Lease since it was assigned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub starting: bool,
}

/// The ListenerSet CustomResourceDefinition.
/// Its printer columns are [`view::COLUMNS`], the columns `baton listeners list` prints too.
pub fn crd() -> CustomResourceDefinition {
    let crd = super::descriptions::unwrap(super::schema_bounds::bound_integers(ListenerSet::crd()));
    let mut crd = super::edit_schemas(crd, super::drop_false_nullable);
    for v in &mut crd.spec.versions {
        v.additional_printer_columns = Some(view::printer_columns());
    }
    crd
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
pub fn validate_listener_id(id: &str) -> Result<(), BadListenerId> {
    if id.is_empty() {
        return Err(BadListenerId::Empty);
    }
    if !is_label_value(id) {
        return Err(BadListenerId::NotALabelValue(id.to_string()));
    }
    Ok(())
}

/// What is wrong with a listener id; shown after the place that holds it
/// (`spec.listeners[0].id is empty: …`, `Secret accounts key "-a" is not …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadListenerId {
    /// The id is empty.
    Empty,
    /// The id (quoted when shown) is not a label value.
    NotALabelValue(String),
}

impl std::fmt::Display for BadListenerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadListenerId::Empty => f.write_str("is empty: give every listener a non-empty id"),
            BadListenerId::NotALabelValue(id) => write!(
                f,
                "{id:?} is not a valid listener id: use at most {MAX_LISTENER_ID_LEN} characters \
                 from [A-Za-z0-9._-], starting and ending with a letter or digit"
            ),
        }
    }
}

impl std::error::Error for BadListenerId {}

/// Check a ListenerSet's name: it is stored as the [`LISTENERSET_LABEL`] value on Leases.
pub fn validate_name(name: &str) -> Result<(), Invalid> {
    if is_label_value(name) {
        Ok(())
    } else {
        Err(Invalid::at(
            "metadata.name",
            format!(
                "ListenerSet name {name:?} must be a valid label value (at most 63 characters \
             from [A-Za-z0-9._-], starting and ending with a letter or digit); rename it"
            ),
        ))
    }
}

/// Check a spec for the mistakes a user can make. Every message names the field and says
/// what to fix; all problems are reported, not just the first.
pub fn validate(spec: &ListenerSetSpec) -> Result<(), Vec<Invalid>> {
    let mut errors = Vec::new();

    check_selector(&spec.selector, &mut errors);

    check_listeners(&spec.listeners, &mut errors);
    if let Some(from) = &spec.listeners_from {
        check_listeners_from(from, &mut errors);
    }
    if spec.max_per_pod < 0 {
        errors.push(Invalid::new(
            "spec.maxPerPod",
            format!("is {}: use 0 for no limit or a positive number", spec.max_per_pod),
        ));
    }
    if spec.lease_duration_seconds < 1 {
        errors.push(Invalid::new(
            "spec.leaseDurationSeconds",
            format!(
                "is {}: set it to at least 1 (default {})",
                spec.lease_duration_seconds, DEFAULT_LEASE_DURATION_SECONDS
            ),
        ));
    }

    if let Some(rebalance) = &spec.rebalance {
        errors.extend(rebalance.problems());
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether `sel` has neither matchLabels nor matchExpressions (it would select everything).
fn selector_is_empty(sel: &LabelSelector) -> bool {
    let no_labels = sel.match_labels.as_ref().is_none_or(|m| m.is_empty());
    let no_exprs = sel.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    no_labels && no_exprs
}

/// The problems of `spec.selector`: empty, or an expression whose values do not fit its operator.
fn check_selector(sel: &LabelSelector, errors: &mut Vec<Invalid>) {
    if selector_is_empty(sel) {
        errors.push(Invalid::new(
            "spec.selector",
            "is empty and would select every pod in the namespace: set \
             matchLabels or matchExpressions to the pods that run the baton agent",
        ));
    }
    for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
        let values = expr.values.as_ref().map_or(0, |v| v.len());
        match expr.operator.as_str() {
            "In" | "NotIn" if values == 0 => errors.push(Invalid::new(
                format!("spec.selector.matchExpressions[{i}]"),
                format!(
                    "(key {:?}) uses operator {} without \
                 values: list at least one value",
                    expr.key, expr.operator
                ),
            )),
            "Exists" | "DoesNotExist" if values > 0 => errors.push(Invalid::new(
                format!("spec.selector.matchExpressions[{i}]"),
                format!(
                    "(key {:?}) uses operator {} with values: \
                 remove the values",
                    expr.key, expr.operator
                ),
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.push(Invalid::new(
                format!("spec.selector.matchExpressions[{i}]"),
                format!(
                    "has unknown operator {other:?}: use In, \
                 NotIn, Exists or DoesNotExist"
                ),
            )),
        }
    }
}

/// The problems of `spec.listeners`: bad or duplicate ids, config references that name nothing.
fn check_listeners(listeners: &[Listener], errors: &mut Vec<Invalid>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, listener) in listeners.iter().enumerate() {
        if let Err(e) = validate_listener_id(&listener.id) {
            errors.push(Invalid::new(format!("spec.listeners[{i}].id"), e.to_string()));
        }
        if !listener.id.is_empty() {
            if let Some(first) = seen.get(listener.id.as_str()) {
                errors.push(Invalid::new(
                    format!("spec.listeners[{i}].id"),
                    format!(
                        "{:?} duplicates spec.listeners[{first}].id: \
                     listener ids must be unique, rename or remove one",
                        listener.id
                    ),
                ));
            } else {
                seen.insert(&listener.id, i);
            }
        }
        if let Some(config) = &listener.config_ref {
            if config.secret_key_ref.name.is_empty() {
                errors.push(Invalid::new(
                    format!("spec.listeners[{i}].configRef.secretKeyRef.name"),
                    "is empty: name the Secret \
                     that holds the listener's config",
                ));
            }
            if config.secret_key_ref.key.is_empty() {
                errors.push(Invalid::new(
                    format!("spec.listeners[{i}].configRef.secretKeyRef.key"),
                    "is empty: name the key in \
                     the Secret",
                ));
            }
        }
    }
}

/// The problems of `spec.listenersFrom`: not exactly one source, or one that names nothing.
fn check_listeners_from(from: &ListenersFrom, errors: &mut Vec<Invalid>) {
    match (&from.secret_ref, &from.secret_selector) {
        (Some(r), None) if r.name.is_empty() => errors.push(Invalid::new(
            "spec.listenersFrom.secretRef.name",
            "is empty: name the Secret whose keys are \
             the listener ids, or remove listenersFrom",
        )),
        (Some(_), None) => {}
        (None, Some(sel)) => {
            if selector_is_empty(sel) {
                errors.push(Invalid::new(
                    "spec.listenersFrom.secretSelector",
                    "is empty and would take every Secret of the \
                     namespace: set matchLabels or matchExpressions",
                ));
            }
        }
        _ => errors.push(Invalid::new(
            "spec.listenersFrom",
            "needs exactly one of secretRef and secretSelector",
        )),
    }
}

#[cfg(test)]
mod tests;
