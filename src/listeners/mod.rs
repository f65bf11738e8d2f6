//! ListenerSet controller: the pure [`assigner`] (placement) and [`decide`] (one reconcile's
//! decisions), and the reconciler shell [`controller`].
pub mod assigner;
pub mod controller;
pub mod decide;

/// Field manager of the ListenerSet controller's writes.
pub const MANAGER: &str = "baton-listeners";
/// Lease annotation written by the controller with every assignment: where the listener's
/// config lives, `<secret name>/<key>` in the Lease's namespace (absent: no config).
pub const CONFIG_ANNOTATION: &str = "baton.dev/config";
/// ListenerSet annotation set by `baton listeners recover`: a nonce; the controller reassigns
/// orphans (holder gone, not Ready or terminating) at once, then copies the nonce to
/// [`RECOVERED_ANNOTATION`].
pub const RECOVER_ANNOTATION: &str = "baton.dev/recover";
/// ListenerSet annotation: the last recover nonce the controller acted on.
pub const RECOVERED_ANNOTATION: &str = "baton.dev/recovered";
/// Finalizer the controller puts on every ListenerSet: a deleted set goes only once every
/// listener has stopped and every Lease of the set is deleted.
pub const FINALIZER: &str = "baton.dev/listeners";
