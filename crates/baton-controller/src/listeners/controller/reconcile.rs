//! One reconcile of one ListenerSet, the thin shell around [`decide`]: read the caches, decide,
//! make the writes (the status first when the token ceiling must rise, fences, liveness Leases,
//! listener Leases), then report status.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::desired::Desired;
use super::finalize::{add_finalizer, finish_deletion};
use super::read::{ceiling_of, decide_now, LeaseByListener};
use super::report::{condition, report, write_status, Report};
use super::statuses::Handed;
use super::writes::{apply_fences, apply_writes, create_liveness, Writing};
use super::{outbox, publish, Context};
use crate::api::listenerset::{
    self, ListenerSet, ListenerSetStatus, CONDITION_DEGRADED, CONDITION_READY, CONDITION_STALLED, EVENT_RECOVERED,
    FINALIZER, REASON_INVALID_SPEC, REASON_ORPHANED, REASON_TERMINATING, RECOVERED_ANNOTATION, RECOVER_ANNOTATION,
};
use crate::api::pod::CachedPod;
use crate::error::{is_status, Error, Result};
use crate::events::Severity as EventType;
use crate::listeners::decide::Decision;
use crate::listeners::notices as notes;

/// A status that changed only in its counts is written at most this often per set (conditions,
/// the token ceiling and the observed generation go out at once): a burst of acknowledgements
/// makes one status write, not one per reconcile.
pub(super) const STATUS_EVERY: Duration = Duration::from_millis(500);
/// ... and at most once per this many times its last write took: a large set's status write
/// costs the API server its whole spec (its listeners), over a second at 10,000 on
/// kube-apiserver, and counts alone are not worth half its time.
const STATUS_SPACING: u32 = 2;

/// One reconcile of one ListenerSet.
pub async fn reconcile(set: Arc<ListenerSet>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.stats.reconciles.fetch_add(1, Ordering::Relaxed);
    let ns = set.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = set.name_any();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let pods = match admit(&ctx, &set, &ns, &name, deleting).await? {
        ControlFlow::Continue(pods) => pods,
        ControlFlow::Break(requeue) => return Ok(requeue),
    };
    if let Some(wait) = ctx
        .pacing
        .wait(&(ns.clone(), name.clone()), tokio::time::Instant::now())
    {
        return Ok(Requeue::requeue(wait));
    }
    let reference = set.object_ref(&());
    // The status as this controller last reported it: the cache may not show a write handed off.
    let previous = ctx
        .statuses
        .newest(&(ns.clone(), name.clone()), set.metadata.resource_version.as_deref())
        .or_else(|| set.status.clone())
        .unwrap_or_default();
    // A set being deleted is wound down whatever its spec says.
    if !deleting && report_invalid_spec(&ctx, &set, &ns, &name, &previous).await? {
        return Ok(Requeue::await_change());
    }
    let pass = decide_pass(&ctx, &set, &ns, &pods, &previous, deleting).await?;
    let sinks = match deleting {
        true => None,
        false => ctx.notifier.problems(&ns, &set.spec.notifications).await,
    };
    let wanted = |l: &str| pass.desired.wants(l);
    let collisions = ctx.collisions.of((&ns, &name), &pass.lease_by_listener, &wanted);
    let reported = report(
        &set,
        &previous,
        deleting,
        (&pass.desired.problems, sinks.as_deref(), &collisions),
        &pass.decision,
    );
    let written = write_pass(&ctx, &set, &ns, &previous, &pass, &reported).await?;
    // A recover's outcome is written at once, before its mark: whoever asked for it reads the
    // status once the mark is there, so the status must already say what the recover did. A
    // pass that fenced a pod frees its listeners only on the next one (which fences nothing
    // again): the recover stays pending until then.
    let recovered = pass
        .recover_nonce
        .as_ref()
        .filter(|_| !written.retry_soon && !written.fenced);
    let status_wait = if written.status {
        None
    } else if recovered.is_some() {
        write_report(&ctx, &set, &previous, &reported, Hand::Wait).await?;
        None
    } else {
        report_when_due(&ctx, &set, &previous, &reported).await?
    };
    if let Some(nonce) = recovered {
        mark_recovered(&ctx, &set, nonce, pass.decision.recovered).await?;
    }
    notify_orphans(&ctx, &set, &pass.decision);
    super::writes::report_handed(&ctx, &set, pass.lease_by_listener.handed());
    super::balance::report(&ctx, &set, &pass.decision);
    if deleting && pass.lease_by_listener.is_empty() && !written.retry_soon {
        return finish_deletion(&ctx, &set, &ns, &name, &reference).await;
    }
    if written.retry_soon || written.fenced {
        // A fence frees its pod's listeners for the next pass; a lost race is decided again.
        return Ok(Requeue::requeue(Duration::from_millis(if written.fenced {
            10
        } else {
            100
        })));
    }
    let broken_sinks = sinks.is_some_and(|p| !p.is_empty());
    Ok(next_look(
        pass.decision.requeue,
        broken_sinks,
        !collisions.is_empty(),
        status_wait,
    ))
}

/// Whether the set may be decided on now: it carries the finalizer (added here if it is not
/// being deleted) and every cache it reads holds its first list. The pods of its namespace when
/// it may; when to look again otherwise.
async fn admit(
    ctx: &Context,
    set: &ListenerSet,
    ns: &str,
    name: &str,
    deleting: bool,
) -> Result<ControlFlow<Requeue, Store<CachedPod>>> {
    let finalized = set.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !finalized {
        // Not ours to wind down (already finalized, or deleted before we ever saw it).
        return Ok(ControlFlow::Break(Requeue::await_change()));
    }
    if !finalized {
        // Before any Lease of the set exists: a set deleted later cannot leave Leases behind.
        add_finalizer(ctx, set, ns, name).await?;
    }
    // Never decide from half-filled caches: a missing pod would look like a dead holder.
    // Bounded, so a cache that cannot list (RBAC, an API outage) holds no worker for ever.
    // The namespace's pods are watched from the first reconcile of a set there.
    let (pods, pods_synced) = ctx.pods.of(ns, name);
    let all_synced = async {
        crate::cache::wait_all(&ctx.synced).await;
        pods_synced.wait().await;
    };
    if tokio::time::timeout(Duration::from_secs(10), all_synced).await.is_err() {
        return Ok(ControlFlow::Break(Requeue::requeue(Duration::from_millis(500))));
    }
    Ok(ControlFlow::Continue(pods))
}

/// What one pass decided, and from what.
struct Pass {
    /// The spec's listeners (none while the set is being deleted).
    desired: Arc<Desired>,
    /// The recover this pass carries out, if one is pending.
    recover_nonce: Option<String>,
    decision: Decision,
    /// The set's listener Leases the decision was made on, by listener.
    lease_by_listener: LeaseByListener,
    /// The listeners with a release request on its way when the Leases were read: the decision
    /// may not show it yet, so they get no write from this pass.
    in_flight: HashSet<String>,
}

/// Read what a decision needs beyond the caches (the spec's listeners, a pending recover's live
/// pods, the Rollouts of the set's pods) and decide.
async fn decide_pass(
    ctx: &Context,
    set: &ListenerSet,
    ns: &str,
    pods: &Store<CachedPod>,
    previous: &ListenerSetStatus,
    deleting: bool,
) -> Result<Pass> {
    let resolving = std::time::Instant::now();
    let desired = if deleting {
        Arc::new(Desired::default())
    } else {
        ctx.desired.resolve(set, ns, &ctx.secrets)
    };
    let resolved = resolving.elapsed();
    let recover_nonce = annotation(&set.metadata, RECOVER_ANNOTATION)
        .filter(|n| annotation(&set.metadata, RECOVERED_ANNOTATION) != Some(*n))
        .map(str::to_string);
    let live_now = match &recover_nonce {
        Some(_) => Some(live_pod_names(ctx, ns).await?),
        None => None,
    };
    let rollouts = super::balance::rollouts_of(ctx, set, previous, pods);
    let in_flight = ctx.in_flight.of(&(ns.to_string(), set.name_any()));
    let started = std::time::Instant::now();
    let (decision, lease_by_listener) = decide_now(ctx, pods, set, &desired, previous, live_now.as_ref(), &rollouts);
    let controller = crate::metrics::ControllerLabel {
        controller: "listenerset".into(),
    };
    let size = desired.listeners.len() + lease_by_listener.len();
    let took = started.elapsed();
    ctx.pacing
        .decided(&(ns.to_string(), set.name_any()), tokio::time::Instant::now(), took);
    ctx.metrics
        .decision_duration
        .get_or_create(&controller)
        .observe(took.as_secs_f64());
    ctx.metrics
        .decision_size
        .get_or_create(&controller)
        .observe(size as f64);
    // A settled listener and its Lease are counted, not decided one by one.
    let settled: i32 = decision.summary.settled.values().sum();
    let decided = size.saturating_sub(usize::try_from(settled).unwrap_or(0).saturating_mul(2));
    ctx.metrics
        .decision_decided
        .get_or_create(&controller)
        .observe(decided as f64);
    tracing::debug!(
        listenerset = %set.name_any(),
        leases = lease_by_listener.len(),
        decided,
        writes = decision.writes.len(),
        fences = decision.fences.len(),
        requeue = ?decision.requeue,
        took = ?started.elapsed(),
        resolved = ?resolved,
        "decided"
    );
    Ok(Pass {
        desired,
        recover_nonce,
        decision,
        lease_by_listener,
        in_flight,
    })
}

/// What the writes of one pass came to.
struct Written {
    /// The status `reported` was written (its token ceiling had to rise).
    status: bool,
    /// A pod was fenced: its listeners are free for the next pass.
    fenced: bool,
    /// A write failed or lost a race: decide again soon.
    retry_soon: bool,
}

/// Make the pass's writes: the status first when the token ceiling must rise, then the fences,
/// the liveness Leases and the listener Leases.
async fn write_pass(
    ctx: &Arc<Context>,
    set: &ListenerSet,
    ns: &str,
    previous: &ListenerSetStatus,
    pass: &Pass,
    reported: &Report,
) -> Result<Written> {
    let decision = &pass.decision;
    // The ceiling first: no Lease may carry a token the status does not cover, so a restarted
    // or standby controller (or a Lease made anew) continues above every token handed out.
    // Above the ceiling last written, which the cache may not show yet.
    let key = (ns.to_string(), set.name_any());
    let status = decision.ceiling > ceiling_of(previous).max(ctx.statuses.ceiling(&key));
    if status {
        write_report(ctx, set, previous, reported, Hand::Wait).await?;
    }
    let (fenced, fence_failed) = apply_fences(ctx, set, ns, decision).await;
    create_liveness(ctx, ns, decision).await;
    // A failed write leaves the recover pending (unmarked), so the retry releases what this pass
    // could not: a pass that carries out a recover waits for all its writes.
    let writing = Writing {
        set,
        ns,
        desired: &pass.desired,
        lease_by_listener: &pass.lease_by_listener,
        in_flight: &pass.in_flight,
        detach: pass.recover_nonce.is_none(),
    };
    let retry_soon = apply_writes(ctx, writing, decision).await || fence_failed;
    Ok(Written {
        status,
        fenced,
        retry_soon,
    })
}

/// When to look again without a change: the decision's next expiry, a broken sink once its
/// Secret read is stale (a fix shows then), a taken Lease name at its retry, a coalesced status.
fn next_look(expiry: Option<Duration>, broken_sinks: bool, collisions: bool, status: Option<Duration>) -> Requeue {
    let requeue = expiry
        .into_iter()
        .chain(broken_sinks.then_some(crate::webhooks::SECRET_TTL))
        .chain(collisions.then_some(super::collisions::RETRY))
        .chain(status)
        .min();
    requeue.map_or_else(Requeue::await_change, Requeue::requeue)
}

/// Write the status now if what changed is more than counts, or the last write is
/// [`STATUS_EVERY`] old (or [`STATUS_SPACING`] times what it took); otherwise say when to look
/// again.
async fn report_when_due(
    ctx: &Arc<Context>,
    set: &ListenerSet,
    previous: &ListenerSetStatus,
    reported: &Report,
) -> Result<Option<Duration>> {
    if set.status.as_ref() == Some(&reported.status) || *previous == reported.status {
        return Ok(None);
    }
    /// What must reach the API server at once: the generation seen, the token ceiling and the
    /// conditions' type, status and reason.
    type Urgent<'a> = (Option<i64>, Option<i32>, Vec<(&'a str, &'a str, &'a str)>);
    fn urgent(s: &ListenerSetStatus) -> Urgent<'_> {
        let conds = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect();
        (s.observed_generation, s.fencing_token_ceiling, conds)
    }
    let key = (set.namespace().unwrap_or_default(), set.name_any());
    let last = ctx.statuses.handed_at(&key);
    let since = last.map(|(at, _)| at.elapsed());
    let every = last.map_or(STATUS_EVERY, |(_, took)| STATUS_EVERY.max(took * STATUS_SPACING));
    let due = urgent(&reported.status) != urgent(previous) || since.is_none_or(|s| s >= every);
    if !due {
        return Ok(since.map(|s| every.saturating_sub(s)));
    }
    write_report(ctx, set, previous, reported, Hand::Off).await?;
    Ok(None)
}

/// If the spec is invalid, report it (Ready False, Degraded and Stalled True, all `InvalidSpec`
/// with what to fix, and an Event, once) and say so.
async fn report_invalid_spec(
    ctx: &Context,
    set: &ListenerSet,
    ns: &str,
    name: &str,
    previous: &ListenerSetStatus,
) -> Result<bool> {
    let mut spec_errors = Vec::new();
    if let Err(e) = listenerset::validate_name(name) {
        spec_errors.push(e);
    }
    if let Err(es) = listenerset::validate(&set.spec) {
        spec_errors.extend(es);
    }
    if spec_errors.is_empty() {
        return Ok(false);
    }
    let message = crate::api::invalid::join(&spec_errors, "; ");
    let status = ListenerSetStatus {
        observed_generation: set.metadata.generation,
        conditions: vec![
            condition(previous, CONDITION_READY, false, REASON_INVALID_SPEC, &message, set),
            condition(previous, CONDITION_DEGRADED, true, REASON_INVALID_SPEC, &message, set),
            condition(previous, CONDITION_STALLED, true, REASON_INVALID_SPEC, &message, set),
        ],
        // The policy the set was given is recorded now: once observed, a set without one counts
        // as one from before evening out.
        rebalance: Some(
            previous
                .rebalance
                .clone()
                .unwrap_or_else(|| crate::api::listenerset::RebalanceStatus {
                    policy: Some(super::balance::policy(set, previous)),
                    ..Default::default()
                }),
        ),
        ..previous.clone()
    };
    let key = (ns.to_string(), name.to_string());
    let version = set.metadata.resource_version.as_deref();
    if set.status.as_ref() != Some(&status) && !ctx.statuses.landed(&key, &status, version) {
        publish(
            ctx,
            &set.object_ref(&()),
            EventType::Warning,
            REASON_INVALID_SPEC,
            &message,
        );
        let handed = Handed {
            status: status.clone(),
            read_version: version.map(str::to_string),
            notes: notes::degraded(previous, true, REASON_INVALID_SPEC, &message)
                .into_iter()
                .collect(),
        };
        let write = |status: ListenerSetStatus| async move { write_status(ctx, ns, name, &status).await };
        let landed = ctx.statuses.write(&key, handed, write).await?;
        outbox::send(ctx, set, landed);
    }
    Ok(true)
}

/// The names of the pods the API server lists as live now. Recover acts on this, not on a cache
/// that may not have seen the holder's deletion yet: the user ran it because they saw the pod die.
async fn live_pod_names(ctx: &Context, ns: &str) -> Result<BTreeSet<String>> {
    Ok(Api::<Pod>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|p| pod_is_live(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect())
}

/// Record that the recover `nonce` was carried out (with its Event).
async fn mark_recovered(ctx: &Context, set: &ListenerSet, nonce: &str, recovered: usize) -> Result<()> {
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    publish(
        ctx,
        &set.object_ref(&()),
        EventType::Normal,
        EVENT_RECOVERED,
        &format!("recover {nonce}: {recovered} orphaned listeners released for reassignment"),
    );
    let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({"metadata": {"annotations": {RECOVERED_ANNOTATION: nonce}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    outbox::send(ctx, set, vec![notes::recovered(nonce, recovered)]);
    Ok(())
}

/// Whether a pass waits for its status write ([`super::statuses`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hand {
    /// Written before the pass goes on: the token ceiling, a recover's outcome.
    Wait,
    /// Handed to the set's lane: written after what is on its way.
    Off,
}

/// Write the status `reported` (with its Events), unless it is already so or on its way.
async fn write_report(
    ctx: &Arc<Context>,
    set: &ListenerSet,
    previous: &ListenerSetStatus,
    reported: &Report,
    hand: Hand,
) -> Result<()> {
    let deleting = set.metadata.deletion_timestamp.is_some();
    let key = (set.namespace().unwrap_or_default(), set.name_any());
    let reference = set.object_ref(&());
    let Report {
        status,
        ready_message,
        degraded,
        degraded_reason,
        degraded_message,
    } = reported;
    let version = set.metadata.resource_version.as_deref();
    // While the set's status writes fail, each is waited for: the reconcile fails and backs off.
    let hand = match hand {
        Hand::Off if ctx.statuses.failing(&key) => Hand::Wait,
        hand => hand,
    };
    // What is waited for must have landed; what is handed off may still be on its way.
    let known = match hand {
        Hand::Wait => ctx.statuses.landed(&key, status, version),
        Hand::Off => ctx.statuses.has(&key, status, version),
    };
    if set.status.as_ref() == Some(status) || known {
        return Ok(());
    }
    let prev_ready = previous.conditions.iter().find(|c| c.type_ == CONDITION_READY);
    if deleting && prev_ready.is_none_or(|c| c.reason != REASON_TERMINATING) {
        publish(ctx, &reference, EventType::Normal, REASON_TERMINATING, ready_message);
    }
    let prev_degraded = previous.conditions.iter().find(|c| c.type_ == CONDITION_DEGRADED);
    if *degraded && prev_degraded.is_none_or(|c| c.message != *degraded_message) && *degraded_reason != REASON_ORPHANED
    {
        publish(ctx, &reference, EventType::Warning, degraded_reason, degraded_message);
    }
    // A set turning Degraded is notified once the write saying so lands.
    let handed = Handed {
        status: status.clone(),
        read_version: version.map(str::to_string),
        notes: notes::degraded(previous, *degraded, degraded_reason, degraded_message)
            .into_iter()
            .collect(),
    };
    // A waited-for write's failure is the reconcile's. A handed-off one is logged and decided
    // again, and a set deleted meanwhile needs no status.
    let write = {
        let (ctx, (ns, name)) = (ctx.clone(), key.clone());
        move |status: ListenerSetStatus| async move {
            match (hand, write_status(&ctx, &ns, &name, &status).await) {
                (Hand::Off, Err(Error::Kube(e))) if is_status(&e, 404) => Ok(()),
                (Hand::Off, Err(e)) => {
                    tracing::warn!(namespace = %ns, listenerset = %name, error = %e, "status write failed");
                    Err(e)
                }
                (_, result) => result,
            }
        }
    };
    match hand {
        Hand::Wait => {
            let landed = ctx.statuses.write(&key, handed, write).await?;
            outbox::send(ctx, set, landed);
            Ok(())
        }
        Hand::Off => {
            let wake = {
                let (index, key) = (ctx.index.clone(), key.clone());
                move || index.wake_set(key)
            };
            let target = outbox::Target::of(set);
            let sender = ctx.clone();
            let landed = move |notes| {
                if let Some(t) = target {
                    t.send(&sender, notes);
                }
            };
            ctx.statuses.hand_off(&key, handed, write, landed, wake);
            Ok(())
        }
    }
}

/// Notify what the decision shows: orphaned listeners. (A set turning Degraded goes with the
/// status write that says so: [`write_report`].)
fn notify_orphans(ctx: &Context, set: &ListenerSet, decision: &Decision) {
    let deleting = set.metadata.deletion_timestamp.is_some();
    outbox::send(ctx, set, notes::orphaned(decision, deleting));
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Ready and not terminating.
fn pod_is_live(pod: &Pod) -> bool {
    crate::api::pod::is_ready(pod) && pod.metadata.deletion_timestamp.is_none()
}
