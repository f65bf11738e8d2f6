//! [`CachedRevision`]: a Rollout's `apps/v1` ControllerRevision as the controller's watch cache
//! holds it. A decoded `serde_json::Value` of the whole pod template costs several times its
//! JSON text (a map node and a `String` per key and value), and the controller reads the
//! template only when it plans from the revision; so the projection keeps the metadata that
//! names, labels and owns, the revision number and `data.template` as compact JSON text, decoded
//! into a `PodTemplateSpec` when read ([`CachedRevision::template`]).
use std::borrow::Cow;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// A ControllerRevision as the Rollout controller's cache holds it (see the module).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CachedRevision {
    #[serde(default, deserialize_with = "crate::pod::null_default")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub revision: i64,
    /// `data.template` as compact JSON text (None when `data` has no template).
    #[serde(default, rename = "data", deserialize_with = "template_text")]
    pub template_json: Option<Box<str>>,
}

/// Of `data` (any JSON, as the API server takes it), `template` as JSON text.
fn template_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<str>>, D::Error> {
    let data = serde_json::Value::deserialize(d)?;
    Ok(template_of(&data))
}

fn template_of(data: &serde_json::Value) -> Option<Box<str>> {
    let template = data.get("template").filter(|t| !t.is_null())?;
    Some(template.to_string().into_boxed_str())
}

impl CachedRevision {
    /// Drop the metadata no decision reads (call on every object before it is cached):
    /// managedFields, annotations, generateName, finalizers.
    pub fn prune(&mut self) {
        let m = &mut self.metadata;
        m.managed_fields = None;
        m.annotations = None;
        m.generate_name = None;
        m.finalizers = None;
    }

    /// The pod template the revision stores; None if it has none or it does not decode.
    pub fn template(&self) -> Option<PodTemplateSpec> {
        serde_json::from_str(self.template_json.as_deref()?).ok()
    }
}

impl From<&ControllerRevision> for CachedRevision {
    fn from(rev: &ControllerRevision) -> Self {
        let mut cached = CachedRevision {
            metadata: rev.metadata.clone(),
            revision: rev.revision,
            template_json: rev.data.as_ref().and_then(|d| template_of(&d.0)),
        };
        cached.prune();
        cached
    }
}

impl kube::Resource for CachedRevision {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ControllerRevision".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "apps".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "controllerrevisions".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projection decoded from the API server's JSON keeps what the controller reads, and its
    /// template reads back as the one stored.
    #[test]
    fn decodes_names_owner_and_template() {
        let template = serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}
        });
        let json = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {
                "name": "web-6c9f", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                "labels": {"baton.dev/rollout": "web", "baton.dev/revision-hash": "6c9f"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{…}"},
                "managedFields": [{"manager": "baton-rollout", "operation": "Update"}],
                "ownerReferences": [{"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "name": "web", "uid": "r1", "controller": true}]
            },
            "revision": 3,
            "data": {"version": "v1", "template": template}
        });
        let full: ControllerRevision = serde_json::from_value(json.clone()).unwrap();
        let mut decoded: CachedRevision = serde_json::from_value(json).unwrap();
        decoded.prune();
        assert_eq!(decoded, CachedRevision::from(&full));
        assert_eq!(decoded.revision, 3);
        let expected: PodTemplateSpec = serde_json::from_value(template).unwrap();
        assert_eq!(decoded.template(), Some(expected));
        let m = &decoded.metadata;
        assert!(m.managed_fields.is_none() && m.annotations.is_none());
        assert_eq!(m.owner_references.as_ref().map(|o| o[0].uid.as_str()), Some("r1"));
        assert_eq!(m.labels.as_ref().map(|l| l.len()), Some(2));
    }

    #[test]
    fn a_revision_without_a_template_has_none() {
        for data in [
            serde_json::json!(null),
            serde_json::json!({"version": "v1"}),
            serde_json::json!({"template": null}),
            serde_json::json!("text"),
        ] {
            let decoded: CachedRevision =
                serde_json::from_value(serde_json::json!({"metadata": {"name": "r"}, "revision": 1, "data": data}))
                    .unwrap();
            assert_eq!(decoded.template_json, None);
            assert_eq!(decoded.template(), None);
        }
        let bad: CachedRevision =
            serde_json::from_value(serde_json::json!({"revision": 1, "data": {"template": {"spec": 5}}})).unwrap();
        assert!(bad.template_json.is_some() && bad.template().is_none());
    }
}
