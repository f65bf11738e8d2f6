//! Column definitions of the built-in printers (`pkg/printers/internalversion/printers.go`),
//! wide columns included.

use super::{age_col, col, name_col, Column, CREATION_TIMESTAMP_DESCRIPTION};

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

/// Columns for built-in kinds (by kind name), as the apiserver serves them. Kinds without
/// a dedicated printer get the default convertor's `Name`, `Created At`.
pub fn builtin_columns(kind: &str) -> Vec<Column> {
    core_columns(kind)
        .or_else(|| coordination_columns(kind))
        .or_else(|| apps_columns(kind))
        .or_else(|| batch_columns(kind))
        .unwrap_or_else(default_columns)
}

/// Core ("") group kinds.
fn core_columns(kind: &str) -> Option<Vec<Column>> {
    Some(match kind {
        "Pod" => pod_columns(),
        "Namespace" => namespace_columns(),
        "Event" => event_columns(),
        "ConfigMap" => configmap_columns(),
        "Secret" => secret_columns(),
        "Service" => service_columns(),
        "ServiceAccount" => serviceaccount_columns(),
        "Node" => node_columns(),
        _ => return None,
    })
}

/// `coordination.k8s.io` kinds.
fn coordination_columns(kind: &str) -> Option<Vec<Column>> {
    Some(match kind {
        "Lease" => lease_columns(),
        _ => return None,
    })
}

/// `apps` kinds.
fn apps_columns(kind: &str) -> Option<Vec<Column>> {
    Some(match kind {
        "ControllerRevision" => controllerrevision_columns(),
        "Deployment" => deployment_columns(),
        "ReplicaSet" => replicaset_columns(),
        "StatefulSet" => statefulset_columns(),
        _ => return None,
    })
}

/// `batch` kinds.
fn batch_columns(kind: &str) -> Option<Vec<Column>> {
    Some(match kind {
        "Job" => job_columns(),
        _ => return None,
    })
}

fn pod_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0),
        col("Status", "string", "The aggregate status of the containers in this pod.", 0),
        col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
        age_col(),
        col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
        col("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename", 1),
        col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.", 1),
        col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates", 1),
    ]
}

fn namespace_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Status", "string", "The status of the namespace", 0),
        age_col(),
    ]
}

fn event_columns() -> Vec<Column> {
    vec![
        col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.", 0),
        col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future", 0),
        col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0),
        col("Object", "string", "The object that this event is about.", 0),
        col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.", 1),
        col("Source", "string", "The component reporting this event. Should be a short machine understandable string.", 1),
        col("Message", "string", "A human-readable description of the status of this operation.", 0),
        col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
        col("Count", "string", "The number of times this event has occurred.", 1),
        Column {
            priority: 1,
            ..name_col()
        },
    ]
}

fn configmap_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0),
        age_col(),
    ]
}

fn secret_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0),
        col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", 0),
        age_col(),
    ]
}

fn service_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.", 0),
        col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly.", 0),
        col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.", 0),
        col("Port(s)", "string", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies", 0),
        age_col(),
        col("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.", 1),
    ]
}

fn serviceaccount_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.", 0),
        age_col(),
    ]
}

fn node_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Status", "string", "The status of the node", 0),
        col("Roles", "string", "The roles of the node", 0),
        age_col(),
        col("Version", "string", "Kubelet Version reported by the node.", 0),
        col("Internal-IP", "string", "List of addresses reachable to the node.", 1),
        col("External-IP", "string", "List of addresses reachable to the node.", 1),
        col(
            "OS-Image",
            "string",
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            1,
        ),
        col(
            "Kernel-Version",
            "string",
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            1,
        ),
        col(
            "Container-Runtime",
            "string",
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            1,
        ),
    ]
}

fn lease_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0),
        age_col(),
    ]
}

fn controllerrevision_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Controller", "string", "Controller of the object", 0),
        col(
            "Revision",
            "string",
            "Revision indicates the revision of the state represented by Data.",
            0,
        ),
        age_col(),
    ]
}

fn deployment_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Ready", "string", "Number of the pod with ready state", 0),
        col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
        col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
        age_col(),
        col("Containers", "string", CONTAINERS_DESC, 1),
        col("Images", "string", IMAGES_DESC, 1),
        col("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
    ]
}

fn replicaset_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Desired", "integer", "Replicas is the number of desired replicas.", 0),
        col(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas.",
            0,
        ),
        col(
            "Ready",
            "integer",
            "The number of ready replicas for this replica set.",
            0,
        ),
        age_col(),
        col("Containers", "string", CONTAINERS_DESC, 1),
        col("Images", "string", IMAGES_DESC, 1),
        col(
            "Selector",
            "string",
            "Selector is a label query over pods that should match the replica count.",
            1,
        ),
    ]
}

fn statefulset_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Ready", "string", "Number of the pod with ready state", 0),
        age_col(),
        col("Containers", "string", CONTAINERS_DESC, 1),
        col("Images", "string", IMAGES_DESC, 1),
    ]
}

fn job_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Status", "string", "Status of the job.", 0),
        col("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.", 0),
        col("Duration", "string", "Time required to complete the job.", 0),
        age_col(),
        col("Containers", "string", CONTAINERS_DESC, 1),
        col("Images", "string", IMAGES_DESC, 1),
        col("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", 1),
    ]
}

/// The default table convertor's columns (`rest.NewDefaultTableConvertor`).
fn default_columns() -> Vec<Column> {
    vec![name_col(), col("Created At", "date", CREATION_TIMESTAMP_DESCRIPTION, 0)]
}

/// True if `kind` has a dedicated built-in printer here.
pub fn has_builtin_printer(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Namespace"
            | "Lease"
            | "Event"
            | "ConfigMap"
            | "Secret"
            | "Service"
            | "ServiceAccount"
            | "ControllerRevision"
            | "Node"
            | "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "Job"
    )
}
