//! The differences between baton-sim and kube-apiserver that remain, each with its reason;
//! docs/simulator.md ("Differences from kube-apiserver") lists the same, by the same ids.
//! A difference the suite finds that no entry explains fails its test.

use crate::diff::Difference;

/// One documented difference: the request kinds and answer paths it covers (globs: `*` is
/// any run of characters), and why it stays.
pub struct Known {
    pub id: &'static str,
    pub kinds: &'static str,
    pub paths: &'static [&'static str],
    pub why: &'static str,
}

pub const KNOWN: &[Known] = &[
    Known {
        id: "managed-fields-after-defaults",
        kinds: "*",
        paths: &[
            "*managedFields/*/fieldsV1/f:spec/f:clusterIP",
            "*managedFields/*/fieldsV1/f:spec/f:clusterIPs",
            "*managedFields/*/fieldsV1/f:spec/f:ipFamilies",
            "*managedFields/*/fieldsV1/f:spec/f:ipFamilyPolicy",
            "*managedFields/*/fieldsV1/f:spec/f:containers/.",
            "*managedFields/*/fieldsV1/f:spec/f:preemptionPolicy",
            "*managedFields/*/fieldsV1/f:spec/f:priority",
            "*managedFields/*/fieldsV1/f:spec/f:serviceAccountName",
            "*managedFields/*/fieldsV1/f:status",
        ],
        why: "baton-sim records a write's managed fields after its strategies and admission set defaults (Service IPs and families, Pod priority and service account, status); kube-apiserver before them",
    },
    Known {
        id: "managed-fields-after-defaults",
        kinds: "namespace.*",
        paths: &["*managedFields/*/fieldsV1/f:spec", "*managedFields/*/fieldsV1/f:status"],
        why: "as above: a Namespace's spec.finalizers and status.phase, set by its strategy",
    },
    Known {
        id: "namespace-deletion-conditions",
        kinds: "namespace.*",
        paths: &["body/status/conditions", "body/metadata/managedFields"],
        why: "baton-sim's namespace controller empties a namespace without reporting the NamespaceDeletion* conditions (nor their manager)",
    },
    Known {
        id: "managed-fields-deletion-timestamp",
        kinds: "patch.*",
        paths: &[
            "*managedFields/*/fieldsV1/f:metadata/f:deletionTimestamp",
            "*managedFields/*/fieldsV1/f:metadata",
        ],
        why: "kube-apiserver counts metadata.deletionTimestamp in the fields of an update made while an object is being deleted; baton-sim does not",
    },
    Known {
        id: "gc-orphan-managed-fields",
        kinds: "get.orphaned-dependent",
        paths: &["*managedFields/*/fieldsV1/f:metadata"],
        why: "baton-sim's garbage collector removes an orphan's ownerReferences without updating the managed fields",
    },
    Known {
        id: "discovery-subset",
        kinds: "discovery.*",
        paths: &["*"],
        why: "baton-sim serves the resources and subresources baton and its tests use, not every built-in (no DaemonSets, CronJobs, PersistentVolumes, webhook configurations, pods/exec-style proxies…); its storageVersionHash values are its own",
    },
    Known {
        id: "no-openapi-v2",
        kinds: "openapi.v2*",
        paths: &["*"],
        why: "baton-sim serves OpenAPI v3 only",
    },
    Known {
        id: "json-parser-message",
        kinds: "create.malformed-json",
        paths: &["body/message"],
        why: "the JSON parser's own words after \"json parse error:\" (serde_json's, not Go's encoding/json)",
    },
    Known {
        id: "events-v1-conversion",
        kinds: "event.*",
        paths: &[
            "*managedFields*",
            "*eventTime",
            "*firstTimestamp",
            "*lastTimestamp",
            "*FirstTimestamp",
            "*LastTimestamp",
            "*source",
            "*Source",
            "body/details/group",
            "body/items",
        ],
        why: "baton-sim serves events.k8s.io/v1 by converting core/v1 Events: managed fields are recorded in core/v1 terms, fields that are null or empty are left out, a delete's Status names no group",
    },
    Known {
        id: "events-v1-validation",
        kinds: "event.v1.invalid",
        paths: &["*"],
        why: "baton-sim does not validate events.k8s.io/v1 Events",
    },
    Known {
        id: "lease-validation",
        kinds: "lease.*",
        paths: &["*"],
        why: "baton-sim does not validate a Lease's spec (durations, transitions, MicroTime precision) and keeps strategy and preferredHolder, which kube-apiserver drops while the CoordinatedLeaderElection gate is off",
    },
    Known {
        id: "yaml-1.1-keys",
        kinds: "*",
        paths: &["body/data/y", "body/data/true", "*/f:data/f:y", "*/f:data/f:true"],
        why: "kube-apiserver reads YAML 1.1 (a key `y` is the boolean true, so \"true\"); baton-sim's YAML parser reads YAML 1.2 (the string \"y\")",
    },
    Known {
        id: "service-validation",
        kinds: "patch.strategic.invalid-value",
        paths: &["*"],
        why: "baton-sim does not validate a Service's ports (names, ranges)",
    },
    Known {
        id: "crd-scale-validation",
        kinds: "crd.*",
        paths: &["body/details/causes", "body/message", "body/details/group", "body/details/kind"],
        why: "kube-apiserver also checks the value at a custom resource's scale specReplicasPath and validates a scale write as the custom resource; baton-sim checks the schema only and validates the Scale",
    },
    Known {
        id: "crd-scale-wrong-kind",
        kinds: "crd.scale.update-wrong-kind",
        paths: &["*"],
        why: "a scale PUT whose body is not a Scale: kube-apiserver fails to decode it (400), baton-sim validates it as a Scale (422)",
    },
    Known {
        id: "scale-managed-fields",
        kinds: "crd.after-scale",
        paths: &["body/metadata/managedFields"],
        why: "the managed-fields entries of a custom resource's scale write are ordered and split differently",
    },
    Known {
        id: "list-exact-history",
        kinds: "list.resource-version-exact*",
        paths: &["", "body/items"],
        why: "baton-sim keeps no past states: a list at resourceVersionMatch=Exact answers with the current objects",
    },
    Known {
        id: "review-managed-fields",
        kinds: "rbac.self-subject-access-review",
        paths: &["body/metadata/managedFields"],
        why: "kube-apiserver returns managed fields on a SelfSubjectAccessReview it never stores; baton-sim none",
    },
    Known {
        id: "pod-admission-defaults",
        kinds: "get.pod",
        paths: &[
            "body/spec/serviceAccount",
            "body/spec/tolerations",
            "body/spec/volumes",
            "body/spec/containers/*/volumeMounts",
        ],
        why: "baton-sim's admission does not add the service-account token volume, the deprecated serviceAccount field or the default not-ready/unreachable tolerations",
    },
    Known {
        id: "pod-scheduling-kubelet",
        kinds: "*",
        paths: &[
            "body/spec/nodeName",
            "body/status/*",
            "body/rows/*/cells/*",
            "stdout/cells/*",
        ],
        why: "pods run on baton-sim's kubelet at once; the control plane's kwok nodes and scheduler place and start them on their own schedule",
    },
];

/// The id of the entry that explains `d`, if any.
pub fn explain(d: &Difference) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|k| glob(k.kinds, &d.kind) && k.paths.iter().any(|p| glob(p, &d.path)))
        .map(|k| k.id)
}

/// `text` matches `pattern`, where `*` stands for any run of characters (none included).
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("body/metadata/*/time", "body/metadata/managedFields/0/time"));
        assert!(glob("*", ""));
        assert!(glob("watch.*", "watch.bookmarks"));
        assert!(!glob("watch.*", "list.watch"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("a*b*c", "abxc"));
    }

    #[test]
    fn every_entry_says_why() {
        for k in KNOWN {
            assert!(!k.why.is_empty() && !k.paths.is_empty(), "{}", k.id);
        }
    }
}
