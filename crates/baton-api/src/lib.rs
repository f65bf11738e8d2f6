//! The wire protocol, in one place: the custom resources of group `baton.dev`, version
//! `v1alpha1`, and every word the controller, the agent, the CLI and users exchange through the
//! API server (annotations, labels, finalizers, condition types and reasons, Event reasons,
//! field managers), each with one constant and one reader or writer.
//!
//! * [`rollout`]: the Rollout, its runtime-action annotations, pod and revision labels, phases,
//!   conditions and reasons ([`rollout::reasons`]).
//! * [`listenerset`]: the ListenerSet, its annotations, finalizer, conditions and Event reasons,
//!   and the listener Lease protocol ([`listenerset::lease`]).
//! * [`pod`]: what the controllers read off pods (readiness, selectors) and the drain
//!   annotation both controllers honour.
//! * [`notifications`]: webhook sinks, the events they subscribe to and the words a message
//!   carries; [`descriptions`]: field descriptions as `kubectl explain` shows them;
//!   [`schema_bounds`]: the integer bounds of the generated schemas.
//! * [`Invalid`] ([`invalid`]): one mistake in a spec, its field path and what to fix; what
//!   validation returns and every part of baton prints.
//!
//! Every other baton crate depends on this one (the controller, the agent, the CLI, the
//! simulator's tests); it depends on kube's derive and the Kubernetes types only: no client.
pub mod descriptions;
pub mod invalid;
pub mod listenerset;
pub mod notifications;
pub mod pod;
pub mod rollout;
pub mod schema_bounds;

pub use invalid::Invalid;
pub use listenerset::{ListenerSet, ListenerSetSpec, ListenerSetStatus};
pub use rollout::{parse_duration, Rollout, RolloutSpec, RolloutStatus};

/// API group of every baton resource.
pub const GROUP: &str = "baton.dev";
/// API version of every baton resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every baton resource, `<group>/<version>`.
pub const API_VERSION: &str = "baton.dev/v1alpha1";

/// kubectl's `<resource>.<group>` of a Rollout: `-o name` prints `rollout.baton.dev/<name>`, and so
/// do the CLI's messages.
pub const ROLLOUT_RESOURCE: &str = "rollout.baton.dev";
/// kubectl's `<resource>.<group>` of a ListenerSet.
pub const LISTENERSET_RESOURCE: &str = "listenerset.baton.dev";
/// The resource (plural) in a Rollout's API path (and a notification's CloudEvents `source`).
pub const ROLLOUT_PLURAL: &str = "rollouts";
/// The resource (plural) in a ListenerSet's API path.
pub const LISTENERSET_PLURAL: &str = "listenersets";

/// kubectl's copy of an object applied client-side (`kubectl apply` without `--server-side`):
/// the whole object again, which the controller's caches drop.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Field manager (and Event reporter) of the Rollout controller's writes.
pub const ROLLOUT_MANAGER: &str = "baton-rollout";
/// Field manager (and Event reporter) of the ListenerSet controller's writes.
pub const LISTENERS_MANAGER: &str = "baton-listeners";
/// Field manager of the CLI's writes (the CHANGED-BY of `baton rollout history`).
pub const CLI_MANAGER: &str = "baton";
/// Field manager of the dashboard's writes.
pub const DASHBOARD_MANAGER: &str = "baton-dashboard";

/// Every CRD baton serves, as the multi-document YAML `baton crds` prints and `crds/` holds.
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in [rollout::crd(), listenerset::crd()] {
        let y = serde_saphyr::to_string(&crd)?;
        out.push_str("---\n");
        out.push_str(&y);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// `crd` with `edit` applied to the root of each version's OpenAPI schema (the generated CRD
/// is post-processed this way: descriptions unwrapped, integers bounded). A CRD that does not
/// round-trip through JSON is returned as it was.
pub(crate) fn edit_schemas(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    edit: impl Fn(&mut serde_json::Value),
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    let Ok(mut v) = serde_json::to_value(&crd) else {
        return crd;
    };
    if let Some(versions) = v
        .pointer_mut("/spec/versions")
        .and_then(serde_json::Value::as_array_mut)
    {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                edit(schema);
            }
        }
    }
    serde_json::from_value(v).unwrap_or(crd)
}

/// Removes every `nullable: false` from a schema: it is the default, and kube-apiserver stores
/// none, so a definition that says it differs from the stored one — and a server-side apply of
/// the CRDs by a second field manager (kubectl after `baton`, Helm or Argo CD) conflicts with the
/// first on `.spec.versions`.
pub(crate) fn drop_false_nullable(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            if map.get("nullable") == Some(&serde_json::Value::Bool(false)) {
                map.remove("nullable");
            }
            map.values_mut().for_each(drop_false_nullable);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_false_nullable),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn the_derived_resources_use_the_constants() {
        // `#[kube(group, version)]` takes literals: this is where they meet the constants.
        assert_eq!(rollout::Rollout::api_version(&()), API_VERSION);
        assert_eq!(listenerset::ListenerSet::api_version(&()), API_VERSION);
        assert_eq!(rollout::Rollout::group(&()), GROUP);
        assert_eq!(listenerset::ListenerSet::version(&()), VERSION);
        assert_eq!(API_VERSION, format!("{GROUP}/{VERSION}"));
        assert_eq!(rollout::Rollout::plural(&()), ROLLOUT_PLURAL);
        assert_eq!(listenerset::ListenerSet::plural(&()), LISTENERSET_PLURAL);
    }
}
