//! Which scalar fields of the Kubernetes API's Go structs keep a zero value in their JSON: the
//! rule the generator (`sim/examples/protobuf_codegen.rs`, `make protobuf`) follows when it
//! writes `generated.rs`. Not compiled into the crate: only the generator reads it.
//!
//! Why: kube-apiserver decodes a protobuf body into the Go struct and stores what Go's
//! `encoding/json` makes of it. client-go writes every non-pointer field, whatever its value
//! (`stdin: false`, `generation: 0`), and only the set pointer fields; then
//!
//! * a non-pointer field tagged `omitempty` (the usual case, and the default here) is left out
//!   of the JSON at its zero value (`false`, `0`, `""`);
//! * a pointer field (`*int32`, `*bool`, `*string`, a pointer to a named string type) that was
//!   sent is kept, zero included: `replicas: 0`, `automountServiceAccountToken: false`
//!   ([`POINTERS`]);
//! * a non-pointer field without `omitempty` is always written, zero included:
//!   `containerPort`, `ContainerStatus.ready`, core Event's `reportingComponent: ""`
//!   ([`NOT_OMITEMPTY`]).
//!
//! k8s-pb's messages (every field `optional`) and k8s-openapi's types (every optional field an
//! `Option`) do not say which is which; the Go structs do. Both tables are derived from the
//! struct tags of k8s.io/api and k8s.io/apimachinery v0.35.0 (the Kubernetes release k8s-pb
//! 0.9 is generated from), `*/v1/types.go` and `pkg/apis/meta/v1/types.go`: for every scalar
//! field of every message in `generated.rs`, the Go field of the same JSON name in the struct
//! of the same name. Keys are k8s-pb message paths and JSON field names. The generator fails
//! on an entry that names no scalar field of a generated message, so a rename in a newer k8s-pb
//! shows; a field added to the Go structs later has to be added here by hand.

/// Scalar fields whose Go type is a pointer: kept whenever sent.
pub const POINTERS: &[(&str, &[&str])] = &[
    ("api::admissionregistration::v1::MatchResources", &["matchPolicy"]),
    ("api::admissionregistration::v1::ParamRef", &["parameterNotFoundAction"]),
    ("api::admissionregistration::v1::Rule", &["scope"]),
    (
        "api::admissionregistration::v1::ValidatingAdmissionPolicySpec",
        &["failurePolicy"],
    ),
    ("api::admissionregistration::v1::Validation", &["reason"]),
    (
        "api::apps::v1::DeploymentSpec",
        &["replicas", "revisionHistoryLimit", "progressDeadlineSeconds"],
    ),
    (
        "api::apps::v1::DeploymentStatus",
        &["terminatingReplicas", "collisionCount"],
    ),
    ("api::authentication::v1::TokenRequestSpec", &["expirationSeconds"]),
    (
        "api::batch::v1::JobSpec",
        &[
            "parallelism",
            "completions",
            "activeDeadlineSeconds",
            "backoffLimit",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
            "manualSelector",
            "ttlSecondsAfterFinished",
            "completionMode",
            "suspend",
            "podReplacementPolicy",
            "managedBy",
        ],
    ),
    ("api::batch::v1::JobStatus", &["terminating", "failedIndexes", "ready"]),
    (
        "api::batch::v1::PodFailurePolicyOnExitCodesRequirement",
        &["containerName"],
    ),
    (
        "api::batch::v1::SuccessPolicyRule",
        &["succeededIndexes", "succeededCount"],
    ),
    (
        "api::coordination::v1::LeaseSpec",
        &[
            "holderIdentity",
            "leaseDurationSeconds",
            "leaseTransitions",
            "strategy",
            "preferredHolder",
        ],
    ),
    ("api::core::v1::AppArmorProfile", &["localhostProfile"]),
    (
        "api::core::v1::AzureDiskVolumeSource",
        &["cachingMode", "fsType", "readOnly", "kind"],
    ),
    ("api::core::v1::CSIVolumeSource", &["readOnly", "fsType"]),
    ("api::core::v1::ClientIpConfig", &["timeoutSeconds"]),
    (
        "api::core::v1::ClusterTrustBundleProjection",
        &["name", "signerName", "optional"],
    ),
    ("api::core::v1::ConfigMap", &["immutable"]),
    ("api::core::v1::ConfigMapEnvSource", &["optional"]),
    ("api::core::v1::ConfigMapKeySelector", &["optional"]),
    ("api::core::v1::ConfigMapProjection", &["optional"]),
    ("api::core::v1::ConfigMapVolumeSource", &["defaultMode", "optional"]),
    ("api::core::v1::Container", &["restartPolicy"]),
    ("api::core::v1::ContainerStatus", &["started", "stopSignal"]),
    ("api::core::v1::DownwardAPIVolumeFile", &["mode"]),
    ("api::core::v1::DownwardAPIVolumeSource", &["defaultMode"]),
    ("api::core::v1::EphemeralContainerCommon", &["restartPolicy"]),
    ("api::core::v1::FcVolumeSource", &["lun"]),
    ("api::core::v1::FileKeySelector", &["optional"]),
    ("api::core::v1::GrpcAction", &["service"]),
    ("api::core::v1::IscsiVolumeSource", &["initiatorName"]),
    ("api::core::v1::KeyToPath", &["mode"]),
    ("api::core::v1::Lifecycle", &["stopSignal"]),
    ("api::core::v1::LoadBalancerIngress", &["ipMode"]),
    ("api::core::v1::NodeFeatures", &["supplementalGroupsPolicy"]),
    (
        "api::core::v1::NodeRuntimeHandlerFeatures",
        &["recursiveReadOnlyMounts", "userNamespaces"],
    ),
    ("api::core::v1::NodeSwapStatus", &["capacity"]),
    (
        "api::core::v1::PersistentVolumeClaimSpec",
        &["storageClassName", "volumeMode", "volumeAttributesClassName"],
    ),
    ("api::core::v1::PodCertificateProjection", &["maxExpirationSeconds"]),
    ("api::core::v1::PodDnsConfigOption", &["value"]),
    (
        "api::core::v1::PodResourceClaim",
        &["resourceClaimName", "resourceClaimTemplateName"],
    ),
    ("api::core::v1::PodResourceClaimStatus", &["resourceClaimName"]),
    (
        "api::core::v1::PodSecurityContext",
        &[
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "supplementalGroupsPolicy",
            "fsGroup",
            "fsGroupChangePolicy",
            "seLinuxChangePolicy",
        ],
    ),
    (
        "api::core::v1::PodSpec",
        &[
            "terminationGracePeriodSeconds",
            "activeDeadlineSeconds",
            "automountServiceAccountToken",
            "shareProcessNamespace",
            "priority",
            "runtimeClassName",
            "enableServiceLinks",
            "preemptionPolicy",
            "setHostnameAsFQDN",
            "hostUsers",
            "hostnameOverride",
        ],
    ),
    ("api::core::v1::PortStatus", &["error"]),
    ("api::core::v1::Probe", &["terminationGracePeriodSeconds"]),
    ("api::core::v1::ProjectedVolumeSource", &["defaultMode"]),
    ("api::core::v1::SeccompProfile", &["localhostProfile"]),
    ("api::core::v1::Secret", &["immutable"]),
    ("api::core::v1::SecretEnvSource", &["optional"]),
    ("api::core::v1::SecretKeySelector", &["optional"]),
    ("api::core::v1::SecretProjection", &["optional"]),
    ("api::core::v1::SecretVolumeSource", &["defaultMode", "optional"]),
    (
        "api::core::v1::SecurityContext",
        &[
            "privileged",
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "readOnlyRootFilesystem",
            "allowPrivilegeEscalation",
            "procMount",
        ],
    ),
    ("api::core::v1::ServiceAccount", &["automountServiceAccountToken"]),
    ("api::core::v1::ServiceAccountTokenProjection", &["expirationSeconds"]),
    ("api::core::v1::ServicePort", &["appProtocol"]),
    (
        "api::core::v1::ServiceSpec",
        &[
            "ipFamilyPolicy",
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
            "internalTrafficPolicy",
            "trafficDistribution",
        ],
    ),
    ("api::core::v1::Toleration", &["tolerationSeconds"]),
    (
        "api::core::v1::TopologySpreadConstraint",
        &["minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"],
    ),
    ("api::core::v1::TypedLocalObjectReference", &["apiGroup"]),
    ("api::core::v1::TypedObjectReference", &["apiGroup", "namespace"]),
    ("api::core::v1::VolumeMount", &["recursiveReadOnly", "mountPropagation"]),
    ("api::core::v1::VolumeMountStatus", &["recursiveReadOnly"]),
    (
        "api::core::v1::WindowsSecurityContextOptions",
        &[
            "gmsaCredentialSpecName",
            "gmsaCredentialSpec",
            "runAsUserName",
            "hostProcess",
        ],
    ),
    (
        "api::policy::v1::PodDisruptionBudgetSpec",
        &["unhealthyPodEvictionPolicy"],
    ),
    (
        "apimachinery::pkg::apis::meta::v1::DeleteOptions",
        &[
            "gracePeriodSeconds",
            "orphanDependents",
            "propagationPolicy",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
        ],
    ),
    ("apimachinery::pkg::apis::meta::v1::ListMeta", &["remainingItemCount"]),
    (
        "apimachinery::pkg::apis::meta::v1::ObjectMeta",
        &["deletionGracePeriodSeconds"],
    ),
    (
        "apimachinery::pkg::apis::meta::v1::OwnerReference",
        &["controller", "blockOwnerDeletion"],
    ),
    (
        "apimachinery::pkg::apis::meta::v1::Preconditions",
        &["uid", "resourceVersion"],
    ),
];

/// Non-pointer scalar fields whose JSON tag has no `omitempty`: kept whenever sent.
pub const NOT_OMITEMPTY: &[(&str, &[&str])] = &[
    (
        "api::admissionregistration::v1::AuditAnnotation",
        &["key", "valueExpression"],
    ),
    (
        "api::admissionregistration::v1::ExpressionWarning",
        &["fieldRef", "warning"],
    ),
    (
        "api::admissionregistration::v1::MatchCondition",
        &["name", "expression"],
    ),
    ("api::admissionregistration::v1::Validation", &["expression"]),
    ("api::admissionregistration::v1::Variable", &["name", "expression"]),
    ("api::apps::v1::ControllerRevision", &["revision"]),
    ("api::apps::v1::DeploymentCondition", &["status"]),
    ("api::authentication::v1::TokenRequestStatus", &["token"]),
    ("api::authorization::v1::SubjectAccessReviewStatus", &["allowed"]),
    ("api::authorization::v1::SubjectRulesReviewStatus", &["incomplete"]),
    ("api::batch::v1::JobCondition", &["status"]),
    ("api::batch::v1::PodFailurePolicyOnExitCodesRequirement", &["operator"]),
    ("api::batch::v1::PodFailurePolicyOnPodConditionsPattern", &["status"]),
    ("api::batch::v1::PodFailurePolicyRule", &["action"]),
    ("api::core::v1::AttachedVolume", &["name", "devicePath"]),
    ("api::core::v1::AwsElasticBlockStoreVolumeSource", &["volumeID"]),
    ("api::core::v1::AzureDiskVolumeSource", &["diskName", "diskURI"]),
    ("api::core::v1::AzureFileVolumeSource", &["secretName", "shareName"]),
    ("api::core::v1::CSIVolumeSource", &["driver"]),
    ("api::core::v1::CinderVolumeSource", &["volumeID"]),
    ("api::core::v1::ClusterTrustBundleProjection", &["path"]),
    ("api::core::v1::ConfigMapKeySelector", &["key"]),
    (
        "api::core::v1::ConfigMapNodeConfigSource",
        &["namespace", "name", "kubeletConfigKey"],
    ),
    ("api::core::v1::Container", &["name"]),
    (
        "api::core::v1::ContainerExtendedResourceRequest",
        &["containerName", "resourceName", "requestName"],
    ),
    ("api::core::v1::ContainerPort", &["containerPort"]),
    (
        "api::core::v1::ContainerResizePolicy",
        &["resourceName", "restartPolicy"],
    ),
    ("api::core::v1::ContainerStateTerminated", &["exitCode"]),
    (
        "api::core::v1::ContainerStatus",
        &["name", "ready", "restartCount", "image", "imageID"],
    ),
    ("api::core::v1::DaemonEndpoint", &["Port"]),
    ("api::core::v1::DownwardAPIVolumeFile", &["path"]),
    ("api::core::v1::EnvVar", &["name"]),
    ("api::core::v1::EphemeralContainerCommon", &["name"]),
    ("api::core::v1::Event", &["reportingComponent", "reportingInstance"]),
    ("api::core::v1::FileKeySelector", &["volumeName", "path", "key"]),
    ("api::core::v1::FlexVolumeSource", &["driver"]),
    ("api::core::v1::GcePersistentDiskVolumeSource", &["pdName"]),
    ("api::core::v1::GitRepoVolumeSource", &["repository"]),
    ("api::core::v1::GlusterfsVolumeSource", &["endpoints", "path"]),
    ("api::core::v1::GrpcAction", &["port"]),
    ("api::core::v1::HostAlias", &["ip"]),
    ("api::core::v1::HostIp", &["ip"]),
    ("api::core::v1::HostPathVolumeSource", &["path"]),
    ("api::core::v1::HttpHeader", &["name", "value"]),
    ("api::core::v1::IscsiVolumeSource", &["targetPortal", "iqn", "lun"]),
    ("api::core::v1::KeyToPath", &["key", "path"]),
    ("api::core::v1::LinuxContainerUser", &["uid", "gid"]),
    ("api::core::v1::NamespaceCondition", &["status"]),
    ("api::core::v1::NfsVolumeSource", &["server", "path"]),
    ("api::core::v1::NodeAddress", &["address"]),
    ("api::core::v1::NodeCondition", &["status"]),
    ("api::core::v1::NodeRuntimeHandler", &["name"]),
    ("api::core::v1::NodeSelectorRequirement", &["key", "operator"]),
    (
        "api::core::v1::NodeSystemInfo",
        &[
            "machineID",
            "systemUUID",
            "bootID",
            "kernelVersion",
            "osImage",
            "containerRuntimeVersion",
            "kubeletVersion",
            "kubeProxyVersion",
            "operatingSystem",
            "architecture",
        ],
    ),
    ("api::core::v1::ObjectFieldSelector", &["fieldPath"]),
    ("api::core::v1::PersistentVolumeClaimVolumeSource", &["claimName"]),
    ("api::core::v1::PhotonPersistentDiskVolumeSource", &["pdID"]),
    ("api::core::v1::PodAffinityTerm", &["topologyKey"]),
    ("api::core::v1::PodCondition", &["status"]),
    ("api::core::v1::PodExtendedResourceClaimStatus", &["resourceClaimName"]),
    ("api::core::v1::PodIp", &["ip"]),
    ("api::core::v1::PodOs", &["name"]),
    ("api::core::v1::PodReadinessGate", &["conditionType"]),
    ("api::core::v1::PodResourceClaim", &["name"]),
    ("api::core::v1::PodResourceClaimStatus", &["name"]),
    ("api::core::v1::PodSchedulingGate", &["name"]),
    ("api::core::v1::PortStatus", &["port", "protocol"]),
    ("api::core::v1::PortworxVolumeSource", &["volumeID"]),
    ("api::core::v1::PreferredSchedulingTerm", &["weight"]),
    ("api::core::v1::QuobyteVolumeSource", &["registry", "volume"]),
    ("api::core::v1::RbdVolumeSource", &["image"]),
    ("api::core::v1::ResourceClaim", &["name"]),
    ("api::core::v1::ResourceFieldSelector", &["resource"]),
    ("api::core::v1::ResourceHealth", &["resourceID"]),
    ("api::core::v1::ResourceStatus", &["name"]),
    ("api::core::v1::ScaleIoVolumeSource", &["gateway", "system"]),
    ("api::core::v1::SecretKeySelector", &["key"]),
    ("api::core::v1::ServiceAccountTokenProjection", &["path"]),
    ("api::core::v1::ServicePort", &["port"]),
    ("api::core::v1::SleepAction", &["seconds"]),
    ("api::core::v1::Sysctl", &["name", "value"]),
    ("api::core::v1::Taint", &["key", "effect"]),
    (
        "api::core::v1::TopologySpreadConstraint",
        &["maxSkew", "topologyKey", "whenUnsatisfiable"],
    ),
    ("api::core::v1::TypedLocalObjectReference", &["kind", "name"]),
    ("api::core::v1::TypedObjectReference", &["kind", "name"]),
    ("api::core::v1::Volume", &["name"]),
    ("api::core::v1::VolumeDevice", &["name", "devicePath"]),
    ("api::core::v1::VolumeMount", &["name", "mountPath"]),
    ("api::core::v1::VolumeMountStatus", &["name", "mountPath"]),
    ("api::core::v1::VsphereVirtualDiskVolumeSource", &["volumePath"]),
    ("api::core::v1::WeightedPodAffinityTerm", &["weight"]),
    ("api::core::v1::WorkloadReference", &["name", "podGroup"]),
    ("api::events::v1::EventSeries", &["count"]),
    (
        "api::policy::v1::PodDisruptionBudgetStatus",
        &["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"],
    ),
    ("api::rbac::v1::RoleRef", &["apiGroup", "kind", "name"]),
    ("api::rbac::v1::Subject", &["kind", "name"]),
    (
        "apimachinery::pkg::apis::meta::v1::Condition",
        &["status", "reason", "message"],
    ),
    (
        "apimachinery::pkg::apis::meta::v1::FieldSelectorRequirement",
        &["key", "operator"],
    ),
    (
        "apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement",
        &["key", "operator"],
    ),
    (
        "apimachinery::pkg::apis::meta::v1::OwnerReference",
        &["apiVersion", "kind", "name", "uid"],
    ),
];

/// Whether Go's JSON of message `path` keeps field `key` at its zero value.
pub fn keeps_zero(path: &str, key: &str) -> bool {
    POINTERS
        .iter()
        .chain(NOT_OMITEMPTY)
        .any(|(p, keys)| *p == path && keys.contains(&key))
}
