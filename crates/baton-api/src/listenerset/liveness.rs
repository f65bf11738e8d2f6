//! The agent liveness Lease: one `coordination.k8s.io/v1` Lease per pod that runs a baton agent,
//! whatever the number of listeners and sets it serves. Listener Leases ([`super::lease`]) say who
//! holds what and change only when an assignment does; this Lease says whether that holder is
//! alive, and is the only thing renewed at rest.
//!
//! * Name [`liveness_lease_name`]`(pod uid)`, in the pod's namespace; labels
//!   [`LIVENESS_LABEL`]` = `[`LIVENESS_LABEL_VALUE`] and [`HOLDER_UID_LABEL`]` = <pod uid>`; the
//!   Pod ownerReference (uid included), so it goes with its pod.
//! * **The controller creates it** for every pod a ListenerSet selects, *unregistered*
//!   (`holderIdentity` empty). Agents never create Leases.
//! * **The agent registers** with a conditional update: `holderIdentity = <pod name>`,
//!   `leaseTransitions + 1` (a new *registration*), `acquireTime = renewTime = now`,
//!   `leaseDurationSeconds` = the shortest lease duration of the listeners it holds; then
//!   **renews** (`renewTime`) with conditional updates, every quarter of that duration.
//! * **The controller fences** a pod whose registration it judges expired with a conditional
//!   update that clears `holderIdentity` and sets [`FENCED_ANNOTATION`] (or, when the Lease is
//!   missing, by creating it so). A fence succeeds only if no renewal landed since the copy the
//!   controller judged; afterwards no renewal of that registration can succeed. An agent that
//!   finds its Lease fenced registers again, and must acknowledge each listener anew before it
//!   may run it under the new registration.
//! * **The agent marks its registration leaving** when it shuts down (SIGTERM): a conditional
//!   renewal that also sets [`LEAVING_ANNOTATION`] (the time). While a registered Lease carries
//!   it the pod takes no new listeners; what it holds it releases itself as its application stops.
//!   A registration (the agent restarted) removes the mark.

use k8s_openapi::api::coordination::v1::Lease;

use super::holder::owner_pod;
pub use super::holder::HOLDER_UID_LABEL;
use super::lease::fnv1a64;
use super::MAX_NAME_LEN;

/// Label on every agent liveness Lease (value [`LIVENESS_LABEL_VALUE`]): the controller watches
/// these.
pub const LIVENESS_LABEL: &str = "baton.dev/liveness";
/// The value of [`LIVENESS_LABEL`].
pub const LIVENESS_LABEL_VALUE: &str = "agent";
/// Liveness Lease annotation written by the controller when it fences the pod: the time (RFC
/// 3339). A fenced Lease has no holder; the agent registers again to be live.
pub const FENCED_ANNOTATION: &str = "baton.dev/fenced-at";
/// Liveness Lease annotation written by the agent when it shuts down: the time (RFC 3339). The
/// registration it marks takes no new listeners; a new registration removes it.
pub const LEAVING_ANNOTATION: &str = "baton.dev/leaving-at";
/// The name prefix of liveness Leases. Listener Lease names never contain a dot, so no listener
/// Lease can take a liveness Lease's name.
const PREFIX: &str = "baton-agent.";

/// Name of the liveness Lease of the pod of uid `uid`: `baton-agent.<uid>` (a uid never makes it
/// longer than a name may be; anything else is hashed into one).
pub fn liveness_lease_name(uid: &str) -> String {
    let clean: String = uid
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let clean = clean.trim_matches(|c| c == '-' || c == '.');
    if !clean.is_empty() && clean == uid && PREFIX.len() + uid.len() <= MAX_NAME_LEN {
        return format!("{PREFIX}{uid}");
    }
    format!("{PREFIX}{:016x}", fnv1a64(uid.as_bytes()))
}

/// Whether `lease` is a liveness Lease.
pub fn is_liveness(lease: &Lease) -> bool {
    lease
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LIVENESS_LABEL))
        .is_some()
}

/// The uid of the pod a liveness Lease belongs to: its Pod ownerReference's.
pub fn pod_uid_of(lease: &Lease) -> Option<&str> {
    owner_pod(lease).map(|o| o.uid)
}

/// The name of the pod a liveness Lease belongs to: its Pod ownerReference's.
pub fn owner_name(lease: &Lease) -> Option<&str> {
    owner_pod(lease).map(|o| o.name)
}

/// The registration a liveness Lease records: `Some(number)` when its holder is the pod named
/// `pod` (the owner), `None` when it is unregistered or fenced.
pub fn registration(lease: &Lease, pod: &str) -> Option<i32> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    (holder == pod).then_some(spec.lease_transitions.unwrap_or(0))
}

/// Whether the holder of `lease` is set (by anyone).
pub fn is_registered(lease: &Lease) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .is_some_and(|h| !h.is_empty())
}

/// Whether the agent registered on this Lease is shutting down (see [`LEAVING_ANNOTATION`]).
pub fn is_leaving(lease: &Lease) -> bool {
    is_registered(lease)
        && lease
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(LEAVING_ANNOTATION))
}

/// Whether the controller fenced this Lease and no agent registered since.
pub fn is_fenced(lease: &Lease) -> bool {
    !is_registered(lease)
        && lease
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(FENCED_ANNOTATION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    #[test]
    fn names_are_the_uid_behind_a_dotted_prefix() {
        let uid = "5f0c1f0e-6c1d-4e55-9d7a-2b1f0c0de001";
        assert_eq!(liveness_lease_name(uid), format!("baton-agent.{uid}"));
        // Anything that is not a uid is hashed into a valid name.
        let odd = liveness_lease_name("Not A UID/");
        assert!(
            odd.starts_with("baton-agent.") && odd.len() == "baton-agent.".len() + 16,
            "{odd}"
        );
        assert_eq!(odd, liveness_lease_name("Not A UID/"));
        assert_ne!(liveness_lease_name(""), liveness_lease_name("x"));
        // Listener Lease names never contain a dot.
        assert!(!super::super::lease_name("baton-agent", uid).contains('.'));
    }

    #[test]
    fn registration_fence_and_holder() {
        let mut l = Lease::default();
        assert_eq!(registration(&l, "p"), None);
        assert!(!is_fenced(&l));
        l.spec = Some(LeaseSpec {
            holder_identity: Some("p".into()),
            lease_transitions: Some(3),
            ..Default::default()
        });
        assert_eq!(registration(&l, "p"), Some(3));
        assert_eq!(registration(&l, "q"), None);
        l.metadata.annotations = Some([(FENCED_ANNOTATION.to_string(), "t".to_string())].into());
        // Registered again after a fence: the annotation is history, not a fence.
        assert!(!is_fenced(&l));
        if let Some(s) = l.spec.as_mut() {
            s.holder_identity = None;
        }
        assert!(is_fenced(&l));
        assert_eq!(registration(&l, "p"), None);
    }

    #[test]
    fn leaving_marks_a_registration_only() {
        let mut l = Lease::default();
        l.metadata.annotations = Some([(LEAVING_ANNOTATION.to_string(), "t".to_string())].into());
        // Unregistered (fenced, or an agent gone): nothing is leaving.
        assert!(!is_leaving(&l));
        l.spec = Some(LeaseSpec {
            holder_identity: Some("p".into()),
            ..Default::default()
        });
        assert!(is_leaving(&l));
        l.metadata.annotations = None;
        assert!(!is_leaving(&l));
    }
}
