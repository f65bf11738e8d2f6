//! One reconcile of one ListenerSet, the thin shell around [`decide`]: read the caches, decide,
//! make the Lease writes, then report status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::desired::{resolve, Desired};
use super::expiry::lease_facts;
use super::finalize::{add_finalizer, finish_deletion};
use super::leases::{apply_move, assignment_event, Target};
use super::status::{condition, report, write_status, Report};
use super::{notify, publish, Context};
use crate::api::listenerset::{
    self, ListenerSet, ListenerSetStatus, CONDITION_DEGRADED, CONDITION_READY, EVENT_RECOVERED, FINALIZER,
    LISTENERSET_LABEL, REASON_INVALID_SPEC, REASON_ORPHANED, REASON_TERMINATING, RECOVERED_ANNOTATION,
    RECOVER_ANNOTATION,
};
use crate::api::pod::CachedPod;
use crate::error::{is_status, Error, Result};
use crate::events::Severity as EventType;
use crate::listeners::assigner::{self, Move};
use crate::listeners::decide::{confirmed, decide, to_confirm, Decision, Input, LeaseFacts, PodFacts, Wanted, Write};
use crate::listeners::notify::{self as notes, Note};

/// One reconcile of one ListenerSet.
pub async fn reconcile(set: Arc<ListenerSet>, ctx: Arc<Context>) -> Result<Requeue> {
    ctx.stats.reconciles.fetch_add(1, Ordering::Relaxed);
    let ns = set.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = set.name_any();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let finalized = set.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !finalized {
        // Not ours to wind down (already finalized, or deleted before we ever saw it).
        return Ok(Requeue::await_change());
    }
    if !finalized {
        // Before any Lease of the set exists: a set deleted later cannot leave Leases behind.
        add_finalizer(&ctx, &set, &ns, &name).await?;
    }
    // Never decide from half-filled caches: a missing pod would look like a dead holder.
    // Bounded, so a cache that cannot list (RBAC, an API outage) holds no worker for ever.
    // The namespace's pods are watched from the first reconcile of a set there.
    let (pods, pods_synced) = ctx.pods.of(&ns, &name);
    let all_synced = async {
        crate::cache::wait_all(&ctx.synced).await;
        pods_synced.wait().await;
    };
    if tokio::time::timeout(Duration::from_secs(10), all_synced).await.is_err() {
        return Ok(Requeue::requeue(Duration::from_millis(500)));
    }
    let reference = set.object_ref(&());
    let previous = set.status.clone().unwrap_or_default();
    // A set being deleted is wound down whatever its spec says.
    if !deleting && report_invalid_spec(&ctx, &set, &ns, &name, &previous).await? {
        return Ok(Requeue::await_change());
    }
    let desired = if deleting {
        Desired {
            listeners: Vec::new(),
            problems: Vec::new(),
            keep_unknown: false,
        }
    } else {
        resolve(&set, &ns, &ctx.secrets)
    };
    let recover_nonce = annotation(&set.metadata, RECOVER_ANNOTATION)
        .filter(|n| annotation(&set.metadata, RECOVERED_ANNOTATION) != Some(*n))
        .map(str::to_string);
    let live_now = match &recover_nonce {
        Some(_) => Some(live_pod_names(&ctx, &ns).await?),
        None => None,
    };
    let (decision, lease_by_listener) = decide_now(&ctx, &pods, &set, &desired, &previous, live_now.as_ref());
    let sinks = match deleting {
        true => None,
        false => ctx.notifier.problems(&ns, &set.spec.notifications).await,
    };
    // Status first, from the state the writes start from (the next reconcile sees their
    // effect): it carries the fencing tokens of the writes, so no Lease ever holds a token
    // the status does not (a restarted or standby controller continues above it).
    let report_of = (&desired, sinks.as_deref());
    if let Err(e) = write_report(&ctx, &set, &previous, report_of, &decision, &lease_by_listener).await {
        // No Lease write was made: the tokens this decision reserved go to the next one.
        ctx.with_memory(&ns, &name, |mem| {
            decision.writes.iter().for_each(|w| mem.refused(&w.change))
        });
        return Err(e);
    }
    let retry_soon = apply_writes(&ctx, &set, &ns, &desired, &decision, &lease_by_listener).await;

    // A failed write leaves the recover pending, so the retry releases what this pass could not.
    if let Some(nonce) = recover_nonce.as_ref().filter(|_| !retry_soon) {
        mark_recovered(&ctx, &set, nonce, decision.recovered).await?;
    }
    if deleting && lease_by_listener.is_empty() && !retry_soon {
        return finish_deletion(&ctx, &set, &ns, &name, &reference).await;
    }
    if retry_soon {
        return Ok(Requeue::requeue(Duration::from_millis(100)));
    }
    // A broken sink is looked at again once its Secret read is stale: a fix shows then.
    let sinks_requeue = sinks.filter(|p| !p.is_empty()).map(|_| crate::notify::SECRET_TTL);
    let requeue = decision.requeue.into_iter().chain(sinks_requeue).min();
    Ok(requeue.map_or_else(Requeue::await_change, Requeue::requeue))
}

/// If the spec is invalid, report it (the InvalidSpec conditions and an Event, once) and say so.
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
    let message = spec_errors.join("; ");
    let status = ListenerSetStatus {
        observed_generation: set.metadata.generation,
        conditions: vec![
            condition(previous, CONDITION_READY, false, REASON_INVALID_SPEC, &message, set),
            condition(previous, CONDITION_DEGRADED, true, REASON_INVALID_SPEC, &message, set),
        ],
        ..previous.clone()
    };
    if set.status.as_ref() != Some(&status) {
        publish(
            ctx,
            &set.object_ref(&()),
            EventType::Warning,
            REASON_INVALID_SPEC,
            &message,
        );
        write_status(ctx, ns, name, &status).await?;
        let note = notes::degraded(previous, true, REASON_INVALID_SPEC, &message);
        notify::send(ctx, set, note.into_iter().collect());
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

/// Decide from the caches now (see [`decide`]); also the Leases decided from, by listener.
fn decide_now(
    ctx: &Context,
    pods: &Store<CachedPod>,
    set: &ListenerSet,
    desired: &Desired,
    previous: &ListenerSetStatus,
    live_now: Option<&BTreeSet<String>>,
) -> (Decision, BTreeMap<String, Arc<Lease>>) {
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    let (leases, pod_facts) = read_caches(ctx, pods, set, &ns, &name);
    ctx.metrics.objects.observe_leases(&ns, &name, &leases);
    let wanted: Vec<Wanted> = desired
        .listeners
        .iter()
        .map(|l| Wanted {
            id: l.id.clone(),
            suspended: l.suspended,
            no_config: l.config_problem.is_some(),
        })
        .collect();
    let (facts, read): (Vec<LeaseFacts>, Vec<Arc<Lease>>) = leases
        .iter()
        .filter_map(|l| Some((lease_facts(l, &name, set.spec.lease_duration_seconds)?, l.clone())))
        .unzip();
    let unresponsive = ctx.unresponsive();
    let mut stopped = ctx.stopped.uids();
    stopped.extend(
        pods.state()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|p| p.has_stopped())
            .filter_map(|p| p.metadata.uid.clone()),
    );
    let input = Input {
        deleting: set.metadata.deletion_timestamp.is_some(),
        listeners: &wanted,
        keep_unknown: desired.keep_unknown,
        max_per_pod: u32::try_from(set.spec.max_per_pod.max(0)).unwrap_or(0),
        pods: &pod_facts,
        leases: &facts,
        status: previous,
        recover: live_now,
        unresponsive: &unresponsive,
        stopped: &stopped,
        lease_duration: Duration::from_secs(u64::try_from(set.spec.lease_duration_seconds.max(1)).unwrap_or(1)),
        now: Instant::now(),
    };
    let decision = ctx.with_memory(&ns, &name, |m| decide(&input, m));
    ctx.learn_unresponsive(&decision, &pod_facts);
    let lease_by_listener = facts.iter().map(|f| f.view.listener.clone()).zip(read).collect();
    (decision, lease_by_listener)
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
    notify::send(ctx, set, vec![notes::recovered(nonce, recovered)]);
    Ok(())
}

/// Write the status made from `decision` (with its Events), unless it is already so; then
/// notify what it shows (a set turned Degraded, orphaned listeners). `sinks`: what is wrong
/// with the notification sinks (None without any).
async fn write_report(
    ctx: &Context,
    set: &ListenerSet,
    previous: &ListenerSetStatus,
    (desired, sinks): (&Desired, Option<&[String]>),
    decision: &Decision,
    lease_by_listener: &BTreeMap<String, Arc<Lease>>,
) -> Result<()> {
    let deleting = set.metadata.deletion_timestamp.is_some();
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    let reference = set.object_ref(&());
    let Report {
        status,
        ready_message,
        degraded,
        degraded_reason,
        degraded_message,
    } = report(
        set,
        previous,
        deleting,
        (&desired.problems, sinks),
        decision,
        lease_by_listener,
    );
    if set.status.as_ref() != Some(&status) {
        let prev_ready = previous.conditions.iter().find(|c| c.type_ == CONDITION_READY);
        if deleting && prev_ready.is_none_or(|c| c.reason != REASON_TERMINATING) {
            publish(ctx, &reference, EventType::Normal, REASON_TERMINATING, &ready_message);
        }
        let prev_degraded = previous.conditions.iter().find(|c| c.type_ == CONDITION_DEGRADED);
        if degraded && prev_degraded.is_none_or(|c| c.message != degraded_message) && degraded_reason != REASON_ORPHANED
        {
            publish(ctx, &reference, EventType::Warning, degraded_reason, &degraded_message);
        }
        write_status(ctx, &ns, &name, &status).await?;
    }
    let mut notes: Vec<Note> = notes::degraded(previous, degraded, degraded_reason, &degraded_message)
        .into_iter()
        .collect();
    notes.extend(notes::orphaned(decision, deleting));
    notify::send(ctx, set, notes);
    Ok(())
}

/// The set's Leases, and the namespace's pods as the decision sees them.
fn read_caches(
    ctx: &Context,
    pods: &Store<CachedPod>,
    set: &ListenerSet,
    ns: &str,
    name: &str,
) -> (Vec<Arc<Lease>>, Vec<PodFacts>) {
    let cached: Vec<(String, String, Arc<Lease>)> = ctx
        .leases
        .state()
        .into_iter()
        .filter(|l| {
            l.metadata.namespace.as_deref() == Some(ns)
                && l.metadata
                    .labels
                    .as_ref()
                    .and_then(|m| m.get(LISTENERSET_LABEL))
                    .map(String::as_str)
                    == Some(name)
        })
        .map(|l| (l.name_any(), l.resource_version().unwrap_or_default(), l))
        .collect();
    // What the cache shows, corrected by the writes it has not shown yet.
    let leases = ctx.with_expectations(ns, name, |e| e.overlay(cached));
    let pods: Vec<PodFacts> = pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter_map(|p| {
            Some(PodFacts {
                name: p.metadata.name.clone()?,
                uid: p.metadata.uid.clone()?,
                selected: crate::api::pod::selector_matches_labels(&set.spec.selector, &p.labels),
                eligible: assigner::pod_is_eligible(p),
                restarts: p.restarts(),
            })
        })
        .collect();
    (leases, pods)
}

/// Make the decision's Lease writes, all at once (each is independent and conditional), and
/// report each assignment; true if one failed (retry soon).
async fn apply_writes(
    ctx: &Context,
    set: &ListenerSet,
    ns: &str,
    desired: &Desired,
    decision: &Decision,
    lease_by_listener: &BTreeMap<String, Arc<Lease>>,
) -> bool {
    let name = set.name_any();
    let lease_api: Api<Lease> = Api::namespaced(ctx.client.clone(), ns);
    let config_of: BTreeMap<&str, String> = desired
        .listeners
        .iter()
        .filter_map(|l| {
            l.config
                .as_ref()
                .map(|(s, k)| (l.id.as_str(), listenerset::lease::config_value(s, k)))
        })
        .collect();
    // Only to pods the API server confirms (see `decide::confirm`): the pod cache may lag.
    let live = live_pods(ctx, ns, to_confirm(&decision.writes)).await;
    let (go, held_back) = confirmed(&decision.writes, &live);
    for w in &held_back {
        info!(
            listenerset = %name,
            change = ?w.change,
            "assignment held back: the API server does not have the pod the cache shows"
        );
        ctx.with_memory(ns, &name, |mem| mem.refused(&w.change));
    }
    let writes = go.iter().map(|w| {
        let m = &w.change;
        let target = Target {
            api: &lease_api,
            ns,
            set: &name,
            lease: lease_by_listener.get(m.listener()).cloned(),
            config: config_of.get(m.listener()).cloned(),
            default_duration: set.spec.lease_duration_seconds,
        };
        apply_move(target, m, &ctx.stats)
    });
    let results = futures::future::join_all(writes).await;
    let mut retry_soon = !held_back.is_empty();
    let mut notes = Vec::new();
    for (w, r) in go.iter().zip(results) {
        let m = &w.change;
        match r {
            Ok(written) => {
                ctx.with_memory(ns, &name, |mem| mem.written(m, Instant::now()));
                let read = lease_by_listener.get(m.listener());
                expect(ctx, ns, &name, m, read, written);
                notes.extend(report_assignment(ctx, set, w, read));
            }
            Err(e) => {
                if is_status(&e, 409) || is_status(&e, 404) {
                    // Refused: nothing was written (its token goes to the next assignment).
                    ctx.with_memory(ns, &name, |mem| mem.refused(m));
                    ctx.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    if matches!(m, Move::Assign { .. }) {
                        ctx.stats.assign_conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    ctx.metrics.objects.fencing_conflict(ns, &name);
                    debug!(listenerset = %name, change = ?m, error = %e, "lease write lost a race");
                } else {
                    warn!(listenerset = %name, listener = m.listener(), error = %e, "lease write failed");
                }
                retry_soon = true;
            }
        }
    }
    notify::send(ctx, set, notes);
    retry_soon
}

/// The Event (and metric) of assignment `w`, written over Lease `read`; its note to notify.
fn report_assignment(ctx: &Context, set: &ListenerSet, w: &Write, read: Option<&Arc<Lease>>) -> Option<Note> {
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
    let (ns, name) = (set.namespace().unwrap_or_default(), set.name_any());
    let (reason, note, type_) = assignment_event(kind, listener, pod, *transitions, &ctx.stats);
    ctx.metrics.objects.listener_assigned(&ns, &name, reason);
    info!(listenerset = %name, %listener, %pod, reason, "{note}");
    publish(ctx, &set.object_ref(&()), type_, reason, &note);
    let previous = read.and_then(|l| l.spec.as_ref()?.holder_identity.as_deref());
    notes::assigned(kind, listener, pod, previous, *transitions, &note)
}

/// Which of `pods` (name, uid) the API server has now, by one GET each; a pod it cannot answer
/// for is not confirmed (the assignment waits for the next reconcile).
async fn live_pods(ctx: &Context, ns: &str, pods: BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let gets = pods.into_iter().map(|(name, uid)| {
        let api = api.clone();
        async move {
            match api.get_opt(&name).await {
                Ok(Some(p)) if p.metadata.uid.as_deref() == Some(uid.as_str()) => Some((name, uid)),
                Ok(_) => None,
                Err(e) => {
                    warn!(pod = %name, error = %e, "could not confirm the pod of an assignment");
                    None
                }
            }
        }
    });
    futures::future::join_all(gets).await.into_iter().flatten().collect()
}

/// Remember a successful write conditional on a resourceVersion until the cache shows it (see
/// [`Expectations`](crate::listeners::decide::Expectations)): the next reconcile must not decide from the Lease as it was before.
fn expect(ctx: &Context, ns: &str, set: &str, m: &Move, read: Option<&Arc<Lease>>, written: Option<Lease>) {
    let replaced = match m {
        Move::Assign {
            from_resource_version: Some(rv),
            ..
        } => rv,
        Move::RequestRelease { resource_version, .. } | Move::DeleteLease { resource_version, .. } => resource_version,
        // A create: the decision's memory holds the Lease for its pod until the cache shows it.
        Move::Assign { .. } => return,
    };
    let Some(name) = read.map(|l| l.name_any()) else { return };
    let deleted = matches!(m, Move::DeleteLease { .. });
    let written = written.filter(|_| !deleted).map(Arc::new);
    if written.is_none() && !deleted {
        return;
    }
    ctx.with_expectations(ns, set, |e| e.wrote(&name, replaced, written));
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Ready and not terminating.
fn pod_is_live(pod: &Pod) -> bool {
    crate::api::pod::is_ready(pod) && pod.metadata.deletion_timestamp.is_none()
}
