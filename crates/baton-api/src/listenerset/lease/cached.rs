//! [`CachedLease`]: the part of a listener Lease the controller decides from, and all its Lease
//! cache holds. A whole `Lease` carries a `BTreeMap` node (≈ 540 bytes) for its labels and one
//! for its annotations, an ownerReference of four strings, and, as the API server sends it, a
//! `managedFields` tree per field manager; this projection keeps the metadata that names the
//! Lease and guards writes to it (name, namespace, uid, resourceVersion, deletionTimestamp,
//! finalizers), baton's labels and annotations (compacted), the Pod owner's name and uid, and
//! the spec fields the protocol reads. It is decoded straight from the API server's JSON: the
//! rest of the object is skipped while decoding, never built. Its metadata is a [`CachedMeta`]
//! of those fields alone, not an `ObjectMeta`; the controller's watch decodes each Lease as a
//! [`WatchedLease`] (a `kube::Resource`, as kube's watcher needs) and keeps its `CachedLease`.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{LeaseFields, PodOwner};
use crate::listenerset::CONFIG_VERSION_ANNOTATION;
use crate::pod::{null_default, Labels};

/// The prefix of the labels and annotations a [`CachedLease`] keeps.
const BATON_PREFIX: &str = "baton.dev/";

/// Whether a [`CachedLease`] keeps label or annotation `key`: baton's, but the config's Secret
/// version, which only the holder's agent reads.
fn keeps(key: &str) -> bool {
    key.starts_with(BATON_PREFIX) && key != CONFIG_VERSION_ANNOTATION
}

/// A listener Lease as the controller's cache holds it (see the module). Read it with
/// [`LeaseFields`] and the functions of [`super`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(from = "RawLease")]
pub struct CachedLease {
    pub metadata: CachedMeta,
    /// Labels `baton.dev/…`.
    pub labels: Labels,
    /// Annotations `baton.dev/…`.
    pub annotations: Labels,
    /// The first Pod (`v1`) ownerReference.
    pub owner: Option<CachedOwner>,
    pub spec: CachedLeaseSpec,
}

/// The metadata a [`CachedLease`] keeps: what names the Lease and guards writes to it, under
/// `ObjectMeta`'s names. `ObjectMeta` itself takes 360 bytes, most of them fields a listener
/// Lease leaves empty, for each of the set's Leases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CachedMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub deletion_timestamp: Option<Time>,
    pub finalizers: Option<Vec<String>>,
}

impl From<&CachedMeta> for ObjectMeta {
    fn from(m: &CachedMeta) -> Self {
        ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            deletion_timestamp: m.deletion_timestamp.clone(),
            finalizers: m.finalizers.clone(),
            ..ObjectMeta::default()
        }
    }
}

impl From<&ObjectMeta> for CachedMeta {
    /// The fields a [`CachedMeta`] keeps.
    fn from(m: &ObjectMeta) -> Self {
        let ObjectMeta {
            name,
            namespace,
            uid,
            resource_version,
            deletion_timestamp,
            finalizers,
            ..
        } = m;
        CachedMeta {
            name: name.clone(),
            namespace: namespace.clone(),
            uid: uid.clone(),
            resource_version: resource_version.clone(),
            deletion_timestamp: deletion_timestamp.clone(),
            finalizers: finalizers.clone(),
        }
    }
}

impl CachedLease {
    /// The Lease's name (empty if it has none).
    pub fn name_any(&self) -> String {
        self.metadata.name.clone().unwrap_or_default()
    }
    /// Its finalizers.
    pub fn finalizers(&self) -> &[String] {
        self.metadata.finalizers.as_deref().unwrap_or_default()
    }
}

/// A listener Lease as the controller's watch decodes it: the [`CachedLease`] the cache keeps
/// and, for the watch's own bookkeeping (kube's watcher reads names and resourceVersions
/// through `ObjectMeta`), a copy of its [`CachedMeta`], dropped once the event is taken in.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(from = "CachedLease")]
pub struct WatchedLease {
    pub metadata: ObjectMeta,
    pub lease: CachedLease,
}

impl From<CachedLease> for WatchedLease {
    fn from(lease: CachedLease) -> Self {
        WatchedLease {
            metadata: ObjectMeta::from(&lease.metadata),
            lease,
        }
    }
}

impl From<WatchedLease> for CachedLease {
    fn from(watched: WatchedLease) -> Self {
        watched.lease
    }
}

/// A Pod ownerReference: the pod's name and uid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CachedOwner {
    pub name: String,
    pub uid: String,
}

/// The spec fields the protocol reads (`preferredHolder` and `strategy` are not kept).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CachedLeaseSpec {
    #[serde(default)]
    pub holder_identity: Option<String>,
    #[serde(default)]
    pub lease_duration_seconds: Option<i32>,
    #[serde(default)]
    pub acquire_time: Option<MicroTime>,
    #[serde(default)]
    pub renew_time: Option<MicroTime>,
    #[serde(default)]
    pub lease_transitions: Option<i32>,
}

/// The JSON as it comes; [`CachedLease`] is made of it.
#[derive(Deserialize)]
struct RawLease {
    #[serde(default, deserialize_with = "null_default")]
    metadata: RawMeta,
    #[serde(default, deserialize_with = "null_default")]
    spec: CachedLeaseSpec,
}

/// The metadata a [`CachedLease`] keeps; the other fields (`managedFields` above all) are skipped
/// while decoding, and so are the values of labels and annotations other than baton's.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "baton_only")]
    labels: Labels,
    #[serde(default, deserialize_with = "baton_only")]
    annotations: Labels,
    #[serde(default, deserialize_with = "first_pod_owner")]
    owner_references: Option<CachedOwner>,
}

impl From<RawLease> for CachedLease {
    fn from(raw: RawLease) -> Self {
        let m = raw.metadata;
        CachedLease {
            metadata: CachedMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                deletion_timestamp: m.deletion_timestamp,
                finalizers: m.finalizers,
            },
            labels: m.labels,
            annotations: m.annotations,
            owner: m.owner_references,
            spec: raw.spec,
        }
    }
}

/// A map of strings (or `null`), of which only the entries `baton.dev/…` are kept: the other
/// values are skipped unread.
fn baton_only<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    struct Baton;
    impl<'de> Visitor<'de> for Baton {
        type Value = Labels;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of strings, or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Labels, E> {
            Ok(Labels::default())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Labels, D::Error> {
            d.deserialize_map(Baton)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
            let mut kept: Vec<(String, String)> = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if keeps(&key) {
                    kept.push((key, map.next_value()?));
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(kept.into_iter().collect())
        }
    }
    d.deserialize_option(Baton)
}

/// An ownerReference as it comes (its other fields skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOwner {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
}

/// The first Pod (`v1`) of a list of ownerReferences (or `null`).
fn first_pod_owner<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CachedOwner>, D::Error> {
    let owners: Option<Vec<RawOwner>> = Option::deserialize(d)?;
    let pod = owners
        .into_iter()
        .flatten()
        .find(|o| o.kind == "Pod" && o.api_version == "v1");
    Ok(pod.map(|o| CachedOwner {
        name: o.name,
        uid: o.uid,
    }))
}

impl From<&Lease> for CachedLease {
    /// The projection of a whole Lease (a write's answer, say): what decoding its JSON gives.
    fn from(lease: &Lease) -> Self {
        let m = &lease.metadata;
        let baton = |map: Option<&BTreeMap<String, String>>| -> Labels {
            map.into_iter().flatten().filter(|(k, _)| keeps(k)).collect()
        };
        let spec = lease.spec.as_ref();
        CachedLease {
            metadata: CachedMeta::from(m),
            labels: baton(m.labels.as_ref()),
            annotations: baton(m.annotations.as_ref()),
            owner: lease.pod_owner().map(|o| CachedOwner {
                name: o.name.to_string(),
                uid: o.uid.to_string(),
            }),
            spec: CachedLeaseSpec {
                holder_identity: spec.and_then(|s| s.holder_identity.clone()),
                lease_duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
                acquire_time: spec.and_then(|s| s.acquire_time.clone()),
                renew_time: spec.and_then(|s| s.renew_time.clone()),
                lease_transitions: spec.and_then(|s| s.lease_transitions),
            },
        }
    }
}

impl From<Lease> for CachedLease {
    fn from(lease: Lease) -> Self {
        CachedLease::from(&lease)
    }
}

impl LeaseFields for CachedLease {
    fn version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
    fn deletion_requested(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }
    fn pod_owner(&self) -> Option<PodOwner<'_>> {
        self.owner.as_ref().map(|o| PodOwner {
            name: &o.name,
            uid: &o.uid,
        })
    }
    fn holder_identity(&self) -> Option<&str> {
        self.spec.holder_identity.as_deref()
    }
    fn lease_duration_seconds(&self) -> Option<i32> {
        self.spec.lease_duration_seconds
    }
    fn acquire_time(&self) -> Option<&MicroTime> {
        self.spec.acquire_time.as_ref()
    }
    fn renew_time(&self) -> Option<&MicroTime> {
        self.spec.renew_time.as_ref()
    }
    fn lease_transitions(&self) -> Option<i32> {
        self.spec.lease_transitions
    }
}

impl kube::Resource for WatchedLease {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Lease".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "coordination.k8s.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "leases".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests;
