//! Making a decision's writes: fences first (they gate the next decision's takeovers), the
//! liveness Leases of new pods, then the listener Lease writes, all conditional and sent at once
//! (the client bounds how many are in flight), the pass waiting for them but for the release
//! requests [`requests`] sends on their own; each assignment reported in one Event per kind and
//! burst, not one per listener.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;

use crate::api::listenerset::lease::CachedLease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::desired::Desired;
use super::facts::Handed;
use super::leases::{apply_move, fence, liveness_lease, Target};
use super::read::LeaseByListener;
use super::requests;
use super::{outbox, publish, Context};
use crate::api::listenerset::liveness::{self, liveness_lease_name};
use crate::api::listenerset::{
    ListenerSet, EVENT_ASSIGNED, EVENT_FENCED, EVENT_HANDOVER, EVENT_LEASE_RECREATED, EVENT_TAKEOVER,
};
use crate::error::is_status;
use crate::events::Severity as EventType;
use crate::listeners::assigner::Move;
use crate::listeners::decide::{confirmed, to_confirm, Decision, HowAssigned, Write};
use crate::listeners::notices::{self as notes, Note};

/// Listener Lease writes in flight at once from one reconcile (the client bounds the total).
pub(super) const WRITES_AT_ONCE: usize = 64;
/// Listeners an aggregated Event names before "and N more".
const NAMED: usize = 5;

/// Fence the pods the decision found expired; true if any fence was written (the listeners it
/// frees move on the next pass), and whether one failed.
pub(super) async fn apply_fences(ctx: &Context, set: &ListenerSet, ns: &str, decision: &Decision) -> (bool, bool) {
    if decision.fences.is_empty() {
        return (false, false);
    }
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let results = futures::future::join_all(decision.fences.iter().map(|f| fence(&api, ns, f))).await;
    let (mut fenced, mut failed) = (Vec::new(), false);
    for (f, r) in decision.fences.iter().zip(results) {
        match r {
            Ok(l) => {
                ctx.liveness.observe(&l, true, Instant::now());
                ctx.stats.fences.fetch_add(1, Ordering::Relaxed);
                fenced.push(f.pod.clone());
            }
            Err(e) if is_status(&e, 409) || is_status(&e, 404) => {
                // The liveness Lease is the pod's, shared by every set it serves.
                let why = if is_status(&e, 404) {
                    "is gone"
                } else {
                    "changed since it was read (its agent renewed it, or another set fenced it first)"
                };
                debug!(listenerset = %set.name_any(), pod = %f.pod, error = %e,
                    "fence not written: the liveness Lease {why}; deciding again");
                failed = true;
            }
            Err(e) => {
                warn!(listenerset = %set.name_any(), pod = %f.pod, error = %e, "fencing failed");
                failed = true;
            }
        }
    }
    if !fenced.is_empty() {
        let note = format!(
            "{} stopped renewing {} liveness Lease{}: fenced, so {} listeners can move once nothing can run them \
             there",
            names(&fenced),
            if fenced.len() == 1 { "its" } else { "their" },
            if fenced.len() == 1 { "" } else { "s" },
            if fenced.len() == 1 { "its" } else { "their" },
        );
        info!(listenerset = %set.name_any(), "{note}");
        publish(ctx, &set.object_ref(&()), EventType::Warning, EVENT_FENCED, &note);
    }
    (!fenced.is_empty(), failed)
}

/// "pod a", "pods a, b and 3 more".
fn names(pods: &[String]) -> String {
    let mut sorted: Vec<&str> = pods.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let shown = sorted.iter().take(NAMED).copied().collect::<Vec<_>>().join(", ");
    let more = sorted.len().saturating_sub(NAMED);
    match (sorted.len(), more) {
        (1, _) => format!("pod {shown}"),
        (_, 0) => format!("pods {shown}"),
        _ => format!("pods {shown} and {more} more"),
    }
}

/// Create the liveness Lease of each new pod (unregistered) that the tracker does not show yet.
pub(super) async fn create_liveness(ctx: &Context, ns: &str, decision: &Decision) {
    if decision.liveness_creates.is_empty() {
        return;
    }
    let api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let creates = decision
        .liveness_creates
        .iter()
        .filter(|(_, uid)| !ctx.liveness.recently_refused(ns, uid))
        .map(|(pod, uid)| {
            let (api, lease) = (api.clone(), liveness_lease(ns, pod, uid));
            async move { (pod, uid, api.create(&Default::default(), &lease).await) }
        });
    for (pod, uid, r) in futures::future::join_all(creates).await {
        match r {
            Ok(l) => {
                ctx.liveness.observe(&l, true, Instant::now());
                ctx.stats.liveness_creates.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if is_status(&e, 409) => {}
            Err(e) => {
                // Its agent falls back to renewing each listener's Lease: slower, still safe.
                warn!(
                    %pod,
                    error = %e,
                    retry_in = ?super::liveness::CREATE_RETRY,
                    "creating the pod's liveness Lease failed; its agent renews each listener's Lease instead"
                );
                ctx.liveness.create_failed(ns, uid);
            }
        }
    }
}

/// What a pass's Lease writes are made from: the set, its listeners, the Leases decided from,
/// the listeners that had a request on its way when they were read (see [`requests`]), and
/// whether release requests may be sent without waiting for them.
pub(super) struct Writing<'a> {
    pub(super) set: &'a ListenerSet,
    pub(super) ns: &'a str,
    pub(super) desired: &'a Desired,
    pub(super) lease_by_listener: &'a LeaseByListener,
    pub(super) in_flight: &'a HashSet<String>,
    pub(super) detach: bool,
}

/// Make the decision's Lease writes, all at once (each is independent and conditional), and
/// report the assignments; true if one failed (retry soon). A listener with a request on its
/// way gets no write; the release requests [`requests::detachable`] are sent without waiting.
pub(super) async fn apply_writes(ctx: &Arc<Context>, w: Writing<'_>, decision: &Decision) -> bool {
    let Writing {
        set,
        ns,
        desired,
        lease_by_listener,
        in_flight,
        detach,
    } = w;
    let name = set.name_any();
    let lease_api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let key = (ns.to_string(), name.clone());
    let (detached, writes): (Vec<Write>, Vec<Write>) = decision
        .writes
        .iter()
        // The requests on their way when the caches were read: a set's passes run one at a
        // time and only they send requests, so none can have been sent since.
        .filter(|w| !in_flight.contains(w.change.listener()))
        .cloned()
        .partition(|w| detach && requests::detachable(&w.change));
    if !detached.is_empty() {
        let to = requests::Sending {
            key,
            api: lease_api.clone(),
            default_duration: set.spec.lease_duration_seconds,
        };
        let read = |w: Write| {
            let listener = w.change.listener();
            let l = lease_by_listener.get(listener).cloned();
            let config = (desired.config_of(listener), desired.config_version_of(listener));
            (w, l, config)
        };
        requests::send(ctx, to, detached.into_iter().map(read).collect());
    }
    // Only to pods the API server confirms (see `decide::confirm`): the pod cache may lag.
    let confirming = Instant::now();
    let live = live_pods(ctx, ns, to_confirm(&writes)).await;
    let confirmed_in = confirming.elapsed();
    let (go, held_back) = confirmed(&writes, &live);
    for w in &held_back {
        info!(listenerset = %name, change = ?w.change, "assignment held back: the API server does not have the pod the cache shows, or its agent is leaving");
    }
    let mut sends: Vec<BoxFuture<'_, Result<Option<CachedLease>, kube::Error>>> = Vec::with_capacity(go.len());
    for w in &go {
        let m = &w.change;
        let target = Target {
            api: &lease_api,
            ns,
            set: &name,
            lease: lease_by_listener.get(m.listener()).cloned(),
            config: desired.config_of(m.listener()),
            config_version: desired.config_version_of(m.listener()),
            default_duration: set.spec.lease_duration_seconds,
        };
        sends.push(apply_move(target, m, &ctx.stats).boxed());
    }
    let writing = Instant::now();
    let results: Vec<_> = futures::stream::iter(sends).buffered(WRITES_AT_ONCE).collect().await;
    if !go.is_empty() {
        let written_in = writing.elapsed();
        debug!(listenerset = %name, namespace = ns, writes = go.len(), ?confirmed_in, ?written_in, "wrote");
    }
    let mut retry_soon = !held_back.is_empty();
    let mut tally = Tally::default();
    let mut sent = Vec::new();
    let mut taken = Vec::new();
    for (w, r) in go.iter().zip(results) {
        let m = &w.change;
        match r {
            Ok(written) => {
                let read = lease_by_listener.get(m.listener());
                expect(ctx, ns, &name, m, read, written);
                sent.extend(tally.add(ctx, set, w, read));
            }
            Err(e)
                if matches!(m, Move::Assign { .. })
                    && is_already_exists(&e)
                    && lease_by_listener.get(m.listener()).is_none() =>
            {
                // Created while a Lease of that name exists that the set's cache does not show:
                // another set's or component's, or one the cache has not caught up with.
                if !ctx.collisions.known((ns, &name), m.listener()) {
                    taken.push(m.listener().to_string());
                }
            }
            Err(e) => {
                lost(ctx, ns, &name, m, &e);
                retry_soon = true;
            }
        }
    }
    tally.publish(ctx, set);
    outbox::send(ctx, set, sent);
    // A new collision is reported by the next pass, at once; a known one waits for its retry.
    if !taken.is_empty() {
        let found = super::collisions::probe(ctx, set, ns, &taken).await;
        retry_soon |= found > 0 || found < taken.len();
    }
    retry_soon
}

/// Report the handovers the holders' agents wrote (seen in the Leases read by this pass) as the
/// controller's own are: their Event, metric and notifications.
pub(super) fn report_handed(ctx: &Context, set: &ListenerSet, handed: &[Handed]) {
    if handed.is_empty() {
        return;
    }
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    for gap in handed.iter().filter_map(|h| h.acknowledged_in) {
        ctx.metrics.objects.handover_gap(&ns, &name, gap);
    }
    let mut tally = Tally::default();
    let sent: Vec<Note> = handed.iter().filter_map(|h| tally.handed(ctx, set, h)).collect();
    tally.publish(ctx, set);
    outbox::send(ctx, set, sent);
}

/// Count and log a Lease write `m` of set `name` that failed with `e` (a lost race, or another
/// failure).
pub(super) fn lost(ctx: &Context, ns: &str, name: &str, m: &Move, e: &kube::Error) {
    if is_status(e, 409) || is_status(e, 404) {
        ctx.stats.conflicts.fetch_add(1, Ordering::Relaxed);
        if matches!(m, Move::Assign { .. }) {
            ctx.stats.assign_conflicts.fetch_add(1, Ordering::Relaxed);
        }
        ctx.metrics.objects.fencing_conflict(ns, name);
        debug!(listenerset = %name, change = ?m, error = %e, "lease write lost a race");
    } else {
        warn!(listenerset = %name, listener = m.listener(), error = %e, "lease write failed");
    }
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// The assignments of one reconcile, by Event reason (and, for takeovers, by the pod they left
/// and why).
#[derive(Default)]
struct Tally {
    groups: BTreeMap<(&'static str, String), Vec<Assigned>>,
}

/// One assignment counted by [`Tally`]: listener, pod and Lease transitions.
type Assigned = (String, String, i32);

impl Tally {
    /// Count assignment `w` (written over Lease `read`); its note to notify.
    fn add(&mut self, ctx: &Context, set: &ListenerSet, w: &Write, read: Option<&Arc<CachedLease>>) -> Option<Note> {
        let (
            Move::Assign {
                listener,
                pod,
                transitions,
                ..
            },
            Some(kind),
        ) = (&w.change, &w.kind)
        else {
            return None;
        };
        let previous = read.and_then(|l| l.spec.holder_identity.as_deref());
        self.count(ctx, set, kind, (listener, pod, *transitions), previous)
    }

    /// Count a handover an agent wrote; its note to notify.
    fn handed(&mut self, ctx: &Context, set: &ListenerSet, h: &Handed) -> Option<Note> {
        self.count(
            ctx,
            set,
            &HowAssigned::Handover,
            (&h.listener, &h.to, h.token),
            Some(&h.from),
        )
    }

    /// Count `listener` coming to `pod` with fencing token `transitions`, as `kind` says, from
    /// `previous` (the holder its Lease named); its note to notify.
    fn count(
        &mut self,
        ctx: &Context,
        set: &ListenerSet,
        kind: &HowAssigned,
        (listener, pod, transitions): (&str, &str, i32),
        previous: Option<&str>,
    ) -> Option<Note> {
        let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
        let (reason, about) = match kind {
            HowAssigned::Assigned => (EVENT_ASSIGNED, String::new()),
            HowAssigned::Handover => {
                ctx.stats.handovers.fetch_add(1, Ordering::Relaxed);
                (EVENT_HANDOVER, String::new())
            }
            HowAssigned::Recreated => (EVENT_LEASE_RECREATED, String::new()),
            HowAssigned::Takeover { from, why } => {
                ctx.stats.takeovers.fetch_add(1, Ordering::Relaxed);
                (EVENT_TAKEOVER, format!("{from}\u{0}{why}"))
            }
        };
        ctx.metrics.objects.listener_assigned(&ns, &name, reason);
        debug!(listenerset = %name, %listener, %pod, token = transitions, reason, "assigned");
        self.groups
            .entry((reason, about))
            .or_default()
            .push((listener.to_string(), pod.to_string(), transitions));
        let text = match kind {
            HowAssigned::Assigned => format!("listener {listener} assigned to pod {pod} (fencing token {transitions})"),
            HowAssigned::Handover => {
                format!("listener {listener} handed over to pod {pod} (fencing token {transitions})")
            }
            HowAssigned::Recreated => format!(
                "the Lease of listener {listener} was deleted: its holder stopped it; it runs on pod {pod} (fencing \
                 token {transitions})"
            ),
            HowAssigned::Takeover { why, .. } => {
                format!("listener {listener} taken over by pod {pod} (fencing token {transitions}): {why}")
            }
        };
        notes::assigned(kind, listener, pod, previous, transitions, &text)
    }

    /// One Event per group.
    fn publish(self, ctx: &Context, set: &ListenerSet) {
        for ((reason, about), moved) in self.groups {
            let pods: BTreeSet<&str> = moved.iter().map(|(_, p, _)| p.as_str()).collect();
            let n = moved.len();
            let listed = moved
                .iter()
                .take(NAMED)
                .map(|(l, p, t)| format!("{l} → {p} (token {t})"))
                .collect::<Vec<_>>()
                .join(", ");
            let more = n.saturating_sub(NAMED);
            let list = if more > 0 {
                format!("{listed} and {more} more")
            } else {
                listed
            };
            let (what, type_) = match reason {
                EVENT_ASSIGNED => (
                    format!("{n} listener(s) assigned to {} pod(s)", pods.len()),
                    EventType::Normal,
                ),
                EVENT_HANDOVER => (
                    format!("{n} listener(s) handed over to {} pod(s)", pods.len()),
                    EventType::Normal,
                ),
                EVENT_LEASE_RECREATED => (
                    format!("{n} listener(s) whose Lease was deleted: stopped by their holder, given a new Lease"),
                    EventType::Warning,
                ),
                _ => {
                    let (from, why) = about.split_once('\u{0}').unwrap_or((about.as_str(), ""));
                    (
                        format!("{n} listener(s) taken over from pod {from} ({why})"),
                        EventType::Warning,
                    )
                }
            };
            let note = format!("{what}: {list}");
            info!(listenerset = %set.name_any(), reason, count = n, "{note}");
            publish(ctx, &set.object_ref(&()), type_, reason, &note);
        }
    }
}

/// Which of `pods` (name, uid) the API server has now and whose agent is not leaving: those with
/// an answer kept since (see [`super::confirmations`]), and the others by one GET of each and one
/// GET of its liveness Lease, the two at once (neither needs the other's answer: the liveness
/// Lease is named by the uid the decision gave); a pod it cannot answer for is not confirmed (the
/// assignment waits for the next reconcile).
async fn live_pods(ctx: &Context, ns: &str, pods: BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    let now = tokio::time::Instant::now();
    let (mut live, ask): (BTreeSet<_>, BTreeSet<_>) = pods
        .into_iter()
        .partition(|(name, uid)| ctx.confirmations.live(ns, name, uid, ctx.index.let_go_at(ns, uid), now));
    if !ask.is_empty() {
        let asked = tokio::time::Instant::now();
        let answers = ask_api_server(ctx, ns, ask).await;
        let answered = tokio::time::Instant::now();
        for ((name, uid), whole) in answers {
            // Kept only when both GETs answered: a liveness Lease not read lets this
            // assignment go, but says nothing another pass may count on.
            if whole {
                ctx.confirmations.found_live(ns, &name, &uid, asked, answered);
            }
            live.insert((name, uid));
        }
    }
    live
}

/// [`live_pods`] by asking the API server: the pods confirmed, each with whether both GETs
/// answered.
async fn ask_api_server(ctx: &Context, ns: &str, pods: BTreeSet<(String, String)>) -> Vec<((String, String), bool)> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let gets = pods.into_iter().map(|(name, uid)| {
        let (api, leases) = (api.clone(), leases.clone());
        async move {
            let lease_name = liveness_lease_name(&uid);
            let (pod, lease) = futures::join!(api.get_opt(&name), leases.get_opt(&lease_name));
            match pod {
                Ok(Some(p)) if p.metadata.uid.as_deref() == Some(uid.as_str()) => {}
                Ok(_) => return None,
                Err(e) => {
                    warn!(pod = %name, error = %e, "could not confirm the pod of an assignment");
                    return None;
                }
            }
            // A SIGTERMed agent marks its pod leaving before it releases anything, but the cache
            // of liveness Leases is another watch than that of the released Leases and may show
            // the mark later: the API server has it (read after the caches were, as the pod is).
            // Read by name (a LIST, even by name, makes the API server walk every Lease of the
            // namespace: with 100,000 listener Leases that was most of a drain). Not knowing
            // costs no safety (a leaving pod only releases again what it is given), so an error
            // lets the assignment go.
            match lease {
                Ok(Some(l)) if liveness::is_leaving(&l) => {
                    info!(pod = %name, "assignment held back: the pod's agent is leaving");
                    None
                }
                Ok(_) => Some(((name, uid), true)),
                Err(e) => {
                    warn!(pod = %name, error = %e, "could not read the liveness Lease of the pod of an assignment");
                    Some(((name, uid), false))
                }
            }
        }
    });
    futures::future::join_all(gets).await.into_iter().flatten().collect()
}

/// Remember a successful write conditional on a resourceVersion until the cache shows it (see
/// [`UnseenWrites`](crate::listeners::decide::UnseenWrites)): the next reconcile must not decide
/// from the Lease as it was before.
pub(super) fn expect(
    ctx: &Context,
    ns: &str,
    set: &str,
    m: &Move,
    read: Option<&Arc<CachedLease>>,
    written: Option<CachedLease>,
) {
    let replaced = match m {
        Move::Assign {
            from_resource_version: Some(rv),
            ..
        } => rv,
        Move::RequestRelease { resource_version, .. }
        | Move::DeleteLease { resource_version, .. }
        | Move::RemoveFinalizer { resource_version, .. }
        | Move::Adopt { resource_version, .. } => resource_version,
        // A create: seen in its place until the cache shows it (else the listener would look
        // free, placed again, its create refused and the others placed around it).
        Move::Assign { .. } => {
            if let Some(created) = written {
                let name = created.name_any();
                let at = Instant::now();
                ctx.with_expectations(ns, set, |e| e.created(&name, Arc::new(created), at));
            }
            return;
        }
    };
    let Some(name) = read.map(|l| l.name_any()) else { return };
    let deleted = matches!(m, Move::DeleteLease { .. } | Move::RemoveFinalizer { .. });
    let written = written.filter(|_| !deleted).map(Arc::new);
    if written.is_none() && !deleted {
        return;
    }
    ctx.with_expectations(ns, set, |e| e.wrote(&name, replaced, written));
}
