//! The built-in resources the simulator serves: a table of kube-apiserver's kinds with their
//! short names, subresources and the field selectors each supports.
use super::ResourceType;

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
/// pkg/apis/events/v1 `AddFieldLabelConversionsForEvent`: the core/v1 labels under their
/// events.k8s.io/v1 names, `source` kept although the v1 kind has no such field.
const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "source",
    "type",
];
const SECRET_FIELDS: &[&str] = &["type"];
const REPLICASET_FIELDS: &[&str] = &["status.replicas"];
const NAMESPACE_FIELDS: &[&str] = &["status.phase"];
const NODE_FIELDS: &[&str] = &["spec.unschedulable"];

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
    fields: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if ["pods", "services", "deployments", "replicasets", "statefulsets", "jobs"].contains(&plural) {
            vec!["all".into()]
        } else {
            vec![]
        },
        status_subresource: status,
        scale: None,
        printer_columns: None,
        schema: None,
        cel: None,
        custom: false,
        tracks_generation: generation,
        field_labels: fields,
        view: None,
        create_only: false,
    }
}

/// A create-only review API of `group`/v1.
fn review(group: &str, plural: &str, kind: &str, namespaced: bool) -> ResourceType {
    let mut t = builtin(group, "v1", plural, kind, namespaced, &[], false, false, &[]);
    t.create_only = true;
    t
}

/// The built-in resources the simulator serves, group by group in discovery order.
pub fn builtins() -> Vec<ResourceType> {
    [
        core(),
        apiregistration(),
        coordination(),
        apps(),
        batch(),
        events(),
        apiextensions(),
        rbac(),
        policy(),
        admissionregistration(),
        authentication(),
        authorization(),
    ]
    .concat()
}

/// The core ("") group.
fn core() -> Vec<ResourceType> {
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
            NAMESPACE_FIELDS,
        ),
        builtin("", "v1", "pods", "Pod", true, &["po"], true, true, POD_FIELDS),
        builtin("", "v1", "secrets", "Secret", true, &[], false, false, SECRET_FIELDS),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false, false, &[]),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
            &[],
        ),
        builtin("", "v1", "services", "Service", true, &["svc"], true, false, &[]),
        builtin("", "v1", "events", "Event", true, &["ev"], false, false, EVENT_FIELDS),
        builtin("", "v1", "nodes", "Node", false, &["no"], true, false, NODE_FIELDS),
        builtin(
            "",
            "v1",
            "componentstatuses",
            "ComponentStatus",
            false,
            &["cs"],
            false,
            false,
            &[],
        ),
    ]
}

fn apiregistration() -> Vec<ResourceType> {
    let g = "apiregistration.k8s.io";
    vec![builtin(
        g,
        "v1",
        "apiservices",
        "APIService",
        false,
        &[],
        true,
        false,
        &[],
    )]
}

fn coordination() -> Vec<ResourceType> {
    vec![builtin(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        false,
        false,
        &[],
    )]
}

fn apps() -> Vec<ResourceType> {
    let workload = |plural: &str, kind: &str, short: &[&str]| {
        let mut t = builtin("apps", "v1", plural, kind, true, short, true, true, &[]);
        // The Scale's selector is `spec.selector` printed as a string (see `Core::scale_of`).
        t.scale = Some(super::ScaleSpec {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: None,
        });
        t
    };
    let mut replicasets = workload("replicasets", "ReplicaSet", &["rs"]);
    replicasets.field_labels = REPLICASET_FIELDS;
    vec![
        builtin(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
            &[],
        ),
        workload("deployments", "Deployment", &["deploy"]),
        replicasets,
        workload("statefulsets", "StatefulSet", &["sts"]),
    ]
}

fn batch() -> Vec<ResourceType> {
    vec![builtin("batch", "v1", "jobs", "Job", true, &[], true, true, &[])]
}

/// `events.k8s.io/v1` Events: the core Events' storage seen through the v1 field names.
fn events() -> Vec<ResourceType> {
    let mut ev = builtin(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
        EVENTS_V1_FIELDS,
    );
    ev.view = Some(crate::resources::views::View::EventsV1);
    vec![ev]
}

fn apiextensions() -> Vec<ResourceType> {
    let g = "apiextensions.k8s.io";
    let short = &["crd", "crds"];
    vec![builtin(
        g,
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        short,
        true,
        true,
        &[],
    )]
}

fn rbac() -> Vec<ResourceType> {
    let g = "rbac.authorization.k8s.io";
    vec![
        builtin(g, "v1", "roles", "Role", true, &[], false, false, &[]),
        builtin(g, "v1", "rolebindings", "RoleBinding", true, &[], false, false, &[]),
        builtin(g, "v1", "clusterroles", "ClusterRole", false, &[], false, false, &[]),
        builtin(
            g,
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
            &[],
        ),
    ]
}

fn policy() -> Vec<ResourceType> {
    vec![builtin(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        true,
        &[],
    )]
}

fn admissionregistration() -> Vec<ResourceType> {
    let g = "admissionregistration.k8s.io";
    vec![
        builtin(
            g,
            "v1",
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            false,
            &[],
            true,
            true,
            &[],
        ),
        builtin(
            g,
            "v1",
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            false,
            &[],
            false,
            true,
            &[],
        ),
    ]
}

fn authentication() -> Vec<ResourceType> {
    let g = "authentication.k8s.io";
    vec![
        review(g, "tokenreviews", "TokenReview", false),
        review(g, "selfsubjectreviews", "SelfSubjectReview", false),
    ]
}

fn authorization() -> Vec<ResourceType> {
    let g = "authorization.k8s.io";
    vec![
        review(g, "selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
        review(g, "selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
        review(g, "subjectaccessreviews", "SubjectAccessReview", false),
        review(g, "localsubjectaccessreviews", "LocalSubjectAccessReview", true),
    ]
}
