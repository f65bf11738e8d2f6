//! The listener Lease protocol between the ListenerSet controller and the agents: the Lease's
//! name, who holds it, why its holder is asked to release it, and where its listener's config
//! lives. The labels and annotations themselves are the constants of [`super`].
//!
//! A listener Lease carries:
//! * labels [`LISTENERSET_LABEL`]` = <set>` and [`LISTENER_LABEL`]` = <listener id>`;
//! * `spec.holderIdentity = <pod name>` and a Pod ownerReference with that pod's uid: together
//!   they are its [`Holder`];
//! * `spec.leaseTransitions`: the fencing token handed to the application;
//! * [`CONFIG_ANNOTATION`]` = <secret>/<key>` ([`config_value`], [`parse_config`]) when the
//!   listener has a config, and [`CONFIG_VERSION_ANNOTATION`]` = <resourceVersion>` of that
//!   Secret as the controller read it ([`config_version_of`]), when it did;
//! * [`RELEASE_REQUESTED_ANNOTATION`]` = <reason>` ([`ReleaseReason`]) while its holder is asked
//!   to release it, and with it, when the controller chose where the listener goes,
//!   [`RELEASE_TO_ANNOTATION`]` = <pod>/<uid>`: the holder's agent then hands it over itself
//!   ([`handover`]);
//! * while held, label [`HOLDER_UID_LABEL`]` = <holder pod uid>` (so the holder's agent, which
//!   watches only its own Leases, sees it) and the finalizer [`LEASE_FINALIZER`];
//! * `spec.renewTime` different from `spec.acquireTime` once the holder's agent acknowledged the
//!   assignment ([`acknowledged`]): written once per assignment, not renewed. That the holder is
//!   alive is its liveness Lease's business ([`super::liveness`]).
//!
//! Every rule here reads a Lease through [`LeaseFields`]: the whole `Lease` or the
//! [`CachedLease`] projection the controller's Lease cache holds.

use std::hash::Hasher;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

#[cfg(doc)]
use super::holder::HOLDER_UID_LABEL;
pub use super::holder::{owner_pod, pod_owner_reference, PodOwner};
use super::{
    CONFIG_ANNOTATION, CONFIG_VERSION_ANNOTATION, LISTENERSET_LABEL, LISTENER_LABEL, MAX_NAME_LEN,
    RELEASE_REQUESTED_ANNOTATION,
};
#[cfg(doc)]
use super::{LEASE_FINALIZER, RELEASE_TO_ANNOTATION};

mod cached;
pub mod handover;
pub use cached::{CachedLease, CachedLeaseSpec, CachedMeta, CachedOwner, WatchedLease};

/// What the protocol reads of a Lease, from the whole `Lease` (the agent, the command line) or
/// from the [`CachedLease`] projection the controller caches: every rule of this module is
/// written once, for both.
pub trait LeaseFields {
    /// `metadata.resourceVersion`.
    fn version(&self) -> Option<&str>;
    /// `metadata.deletionTimestamp` is set: the Lease is being deleted.
    fn deletion_requested(&self) -> bool;
    /// The value of label `key` (of a [`CachedLease`]: baton's labels only, `baton.dev/…`).
    fn label(&self, key: &str) -> Option<&str>;
    /// The value of annotation `key` (of a [`CachedLease`]: baton's only, `baton.dev/…`).
    fn annotation(&self, key: &str) -> Option<&str>;
    /// The first Pod (`v1`) ownerReference (see [`owner_pod`]).
    fn pod_owner(&self) -> Option<PodOwner<'_>>;
    fn holder_identity(&self) -> Option<&str>;
    fn lease_duration_seconds(&self) -> Option<i32>;
    fn acquire_time(&self) -> Option<&MicroTime>;
    fn renew_time(&self) -> Option<&MicroTime>;
    fn lease_transitions(&self) -> Option<i32>;
}

impl LeaseFields for Lease {
    fn version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
    fn deletion_requested(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
    fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotations.as_ref()?.get(key).map(String::as_str)
    }
    fn pod_owner(&self) -> Option<PodOwner<'_>> {
        let mut owners = self.metadata.owner_references.iter().flatten();
        let o = owners.find(|o| o.kind == "Pod" && o.api_version == "v1")?;
        Some(PodOwner {
            name: &o.name,
            uid: &o.uid,
        })
    }
    fn holder_identity(&self) -> Option<&str> {
        self.spec.as_ref()?.holder_identity.as_deref()
    }
    fn lease_duration_seconds(&self) -> Option<i32> {
        self.spec.as_ref()?.lease_duration_seconds
    }
    fn acquire_time(&self) -> Option<&MicroTime> {
        self.spec.as_ref()?.acquire_time.as_ref()
    }
    fn renew_time(&self) -> Option<&MicroTime> {
        self.spec.as_ref()?.renew_time.as_ref()
    }
    fn lease_transitions(&self) -> Option<i32> {
        self.spec.as_ref()?.lease_transitions
    }
}

/// A reference or an `Arc` to a Lease reads as the Lease.
macro_rules! delegate_lease_fields {
    ($($ptr:ty),*) => {$(
        impl<T: LeaseFields + ?Sized> LeaseFields for $ptr {
            fn version(&self) -> Option<&str> {
                (**self).version()
            }
            fn deletion_requested(&self) -> bool {
                (**self).deletion_requested()
            }
            fn label(&self, key: &str) -> Option<&str> {
                (**self).label(key)
            }
            fn annotation(&self, key: &str) -> Option<&str> {
                (**self).annotation(key)
            }
            fn pod_owner(&self) -> Option<PodOwner<'_>> {
                (**self).pod_owner()
            }
            fn holder_identity(&self) -> Option<&str> {
                (**self).holder_identity()
            }
            fn lease_duration_seconds(&self) -> Option<i32> {
                (**self).lease_duration_seconds()
            }
            fn acquire_time(&self) -> Option<&MicroTime> {
                (**self).acquire_time()
            }
            fn renew_time(&self) -> Option<&MicroTime> {
                (**self).renew_time()
            }
            fn lease_transitions(&self) -> Option<i32> {
                (**self).lease_transitions()
            }
        }
    )*};
}
delegate_lease_fields!(&T, std::sync::Arc<T>);

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
    let suffix = format!("{:016x}", fnv1a64(raw.as_bytes()));
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
/// Lease names and revision hashes are made with it, so it must never change.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// Who holds a listener Lease: `spec.holderIdentity` (a pod name) and the uid of the Lease's Pod
/// ownerReference. The controller writes both with every assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder<'a> {
    pub name: &'a str,
    pub uid: Option<&'a str>,
}

impl<'a> Holder<'a> {
    /// The holder of `lease`, if `holderIdentity` names one (empty: released).
    pub fn of<L: LeaseFields + ?Sized>(lease: &'a L) -> Option<Self> {
        let name = lease.holder_identity().filter(|h| !h.is_empty())?;
        Some(Holder {
            name,
            uid: owner_pod(lease).map(|o| o.uid),
        })
    }

    /// Whether this is pod `name` of uid `uid`: the name and the ownerReference's uid both
    /// match. A Lease without the uid (not written by the controller) names no pod: no agent
    /// runs it, and the controller treats it as free.
    pub fn is(&self, name: &str, uid: &str) -> bool {
        self.name == name && self.uid == Some(uid)
    }
}

/// Whether `lease` is a listener Lease held by pod `name` of uid `uid` (see [`Holder::is`]).
pub fn held_by<L: LeaseFields + ?Sized>(lease: &L, name: &str, uid: &str) -> bool {
    listener_of(lease).is_some() && Holder::of(lease).is_some_and(|h| h.is(name, uid))
}

/// `(set, listener)` from the Lease's labels, if both are there.
pub fn listener_of<L: LeaseFields + ?Sized>(lease: &L) -> Option<(&str, &str)> {
    Some((lease.label(LISTENERSET_LABEL)?, lease.label(LISTENER_LABEL)?))
}

/// The fencing token the Lease carries (`spec.leaseTransitions`, 0 when absent).
pub fn fencing_token<L: LeaseFields + ?Sized>(lease: &L) -> i32 {
    lease.lease_transitions().unwrap_or(0)
}

/// The holder's agent acknowledged the assignment: the controller writes `acquireTime` and
/// `renewTime` equal with every assignment, and only the holder's agent changes `renewTime`,
/// which it does (a conditional write) before it starts the listener. Until then the listener is
/// starting, not running.
pub fn acknowledged<L: LeaseFields + ?Sized>(lease: &L) -> bool {
    renewed_since_assignment(lease)
}

/// Whether the Lease is being deleted (by hand, or by the garbage collector with its pod): it
/// stays while [`LEASE_FINALIZER`] is on it.
pub fn is_terminating<L: LeaseFields + ?Sized>(lease: &L) -> bool {
    lease.deletion_requested()
}

/// The holder renewed the Lease after it was assigned (see [`acknowledged`]).
pub fn renewed_since_assignment<L: LeaseFields + ?Sized>(lease: &L) -> bool {
    lease.renew_time().is_some() && lease.renew_time() != lease.acquire_time()
}

/// The value of [`RELEASE_REQUESTED_ANNOTATION`], if the holder is asked to release.
pub fn release_requested<L: LeaseFields + ?Sized>(lease: &L) -> Option<&str> {
    lease.annotation(RELEASE_REQUESTED_ANNOTATION)
}

/// Why the controller asks a holder to release (the value of [`RELEASE_REQUESTED_ANNOTATION`],
/// which the agent passes on to the application).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReleaseReason {
    /// The holder is alive but not eligible (draining, terminating, not Ready, unselected).
    HolderNotEligible,
    /// The listener is suspended.
    Suspended,
    /// The listener is no longer in the spec.
    Removed,
    /// The holder holds more than `maxPerPod`.
    OverLimit,
    /// The ListenerSet is being deleted.
    SetDeleted,
    /// The Lease was deleted (by hand, or with its pod): the holder stops the listener and lets
    /// the Lease go, and the listener gets a new one.
    LeaseDeleted,
    /// The holder carries more than its share: the listener moves to a less loaded pod
    /// (`spec.rebalance`).
    Rebalance,
}

impl ReleaseReason {
    /// Every reason.
    pub const ALL: [ReleaseReason; 7] = [
        ReleaseReason::HolderNotEligible,
        ReleaseReason::Suspended,
        ReleaseReason::Removed,
        ReleaseReason::OverLimit,
        ReleaseReason::SetDeleted,
        ReleaseReason::LeaseDeleted,
        ReleaseReason::Rebalance,
    ];

    /// Value of the [`RELEASE_REQUESTED_ANNOTATION`].
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::HolderNotEligible => "holder-not-eligible",
            ReleaseReason::Suspended => "suspended",
            ReleaseReason::Removed => "removed",
            ReleaseReason::OverLimit => "over-limit",
            ReleaseReason::SetDeleted => "listenerset-deleted",
            ReleaseReason::LeaseDeleted => "lease-deleted",
            ReleaseReason::Rebalance => "rebalance",
        }
    }

    /// The reason spelled `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The [`CONFIG_ANNOTATION`] value naming key `key` of Secret `secret` (in the Lease's
/// namespace): `<secret>/<key>`. Neither a Secret name nor a key may contain `/`.
pub fn config_value(secret: &str, key: &str) -> String {
    format!("{secret}/{key}")
}

/// `(secret, key)` from a [`CONFIG_ANNOTATION`] value; `None` when it is not `<secret>/<key>`
/// with both parts non-empty.
pub fn parse_config(value: &str) -> Option<(&str, &str)> {
    let (secret, key) = value.split_once('/')?;
    (!secret.is_empty() && !key.is_empty() && !key.contains('/')).then_some((secret, key))
}

/// The config location the Lease names, if any: `Some(Err(value))` when the annotation is there
/// but not `<secret>/<key>`.
pub fn config_of<L: LeaseFields + ?Sized>(lease: &L) -> Option<Result<(&str, &str), &str>> {
    let value = lease.annotation(CONFIG_ANNOTATION)?;
    Some(parse_config(value).ok_or(value))
}

/// The `resourceVersion` of the config's Secret the assignment was resolved from, if the Lease
/// records it ([`CONFIG_VERSION_ANNOTATION`]).
pub fn config_version_of<L: LeaseFields + ?Sized>(lease: &L) -> Option<&str> {
    lease.annotation(CONFIG_VERSION_ANNOTATION).filter(|v| !v.is_empty())
}

/// A Lease's `leaseDurationSeconds` as the agent and the controller read it: `default` seconds
/// when it has none (or one under a second), and never under one second.
pub fn duration_of<L: LeaseFields + ?Sized>(lease: &L, default: i32) -> std::time::Duration {
    let secs = lease.lease_duration_seconds().filter(|d| *d > 0).unwrap_or(default);
    std::time::Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}

/// [`DEFAULT_LEASE_DURATION_SECONDS`](super::DEFAULT_LEASE_DURATION_SECONDS) as a duration.
pub const DEFAULT_DURATION: std::time::Duration =
    std::time::Duration::from_secs(super::DEFAULT_LEASE_DURATION_SECONDS.unsigned_abs() as u64);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use proptest::prelude::*;

    fn lease(holder: Option<&str>, uid: Option<&str>) -> Lease {
        let mut l = Lease::default();
        l.metadata.labels = Some(
            [
                (LISTENERSET_LABEL.to_string(), "set".to_string()),
                (LISTENER_LABEL.to_string(), "a".to_string()),
            ]
            .into(),
        );
        l.metadata.owner_references = uid.map(|u| vec![pod_owner_reference(holder.unwrap_or("x"), u)]);
        l.spec = Some(LeaseSpec {
            holder_identity: holder.map(str::to_string),
            ..Default::default()
        });
        l
    }

    #[test]
    fn a_lease_is_held_by_the_pod_it_names_with_its_uid() {
        assert!(held_by(&lease(Some("p1"), Some("u1")), "p1", "u1"));
        // Same name, another incarnation of the pod.
        assert!(!held_by(&lease(Some("p1"), Some("u1")), "p1", "u2"));
        // No uid recorded: not written by the controller, held by no pod.
        assert!(!held_by(&lease(Some("p1"), None), "p1", "u1"));
        assert!(!held_by(&lease(None, Some("u1")), "p1", "u1"));
        assert!(!held_by(&lease(Some(""), Some("u1")), "", "u1"));
        let mut unlabelled = lease(Some("p1"), Some("u1"));
        unlabelled.metadata.labels = None;
        assert!(!held_by(&unlabelled, "p1", "u1"));
        assert_eq!(
            Holder::of(&lease(Some("p1"), None)),
            Some(Holder { name: "p1", uid: None })
        );
    }

    #[test]
    fn config_values_round_trip() {
        assert_eq!(
            parse_config(&config_value("tokens", "acct.42")),
            Some(("tokens", "acct.42"))
        );
        assert_eq!(parse_config("tokens"), None);
        assert_eq!(parse_config("tokens/"), None);
        assert_eq!(parse_config("/key"), None);
        assert_eq!(parse_config("a/b/c"), None);
        let mut l = lease(Some("p1"), Some("u1"));
        assert_eq!(config_of(&l), None);
        l.metadata.annotations = Some([(CONFIG_ANNOTATION.to_string(), "nokey".to_string())].into());
        assert_eq!(config_of(&l), Some(Err("nokey")));
    }

    #[test]
    fn release_reasons_round_trip() {
        for r in ReleaseReason::ALL {
            assert_eq!(ReleaseReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(ReleaseReason::parse("drain"), None);
    }

    #[test]
    fn hashes_and_lease_names_never_change() {
        // The FNV-1a 64 test vectors, and names computed before the crate replaced the
        // hand-written hash: existing Leases keep their names.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(lease_name("sxt", "Listener1"), "sxt-listener1-8f7167c18c");
        assert_eq!(lease_name("my_set", "acct.42"), "my-set-acct-42-2a4300d243");
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
