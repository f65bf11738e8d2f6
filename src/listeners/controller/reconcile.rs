//! One reconcile of one ListenerSet: read the caches, judge Lease expiry, plan moves with the
//! assigner, apply them, then report status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::desired::{resolve, Desired};
use super::expiry::{observe_leases, ObservedLeases};
use super::finalize::{add_finalizer, finish_deletion};
use super::leases::{apply_move, assignment_event, assignment_kind};
use super::status::{condition, report, write_status, Report};
use super::{publish, selector_matches, Context};
use crate::api::listenerset::{
    self, ListenerSet, ListenerSetStatus, CONDITION_DEGRADED, CONDITION_READY, LISTENERSET_LABEL, REASON_INVALID_SPEC,
};
use crate::error::{is_status, Error, Result};
use crate::events::Severity as EventType;
use crate::listeners::assigner::{self, ListenerView, Move, PodView};
use crate::listeners::{FINALIZER, RECOVERED_ANNOTATION, RECOVER_ANNOTATION};

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
    crate::cache::wait_all(&ctx.synced).await;
    let now = Instant::now();
    let reference = set.object_ref(&());
    let previous = set.status.clone().unwrap_or_default();

    let mut spec_errors = Vec::new();
    if let Err(e) = listenerset::validate_name(&name) {
        spec_errors.push(e);
    }
    if let Err(es) = listenerset::validate(&set.spec) {
        spec_errors.extend(es);
    }
    // A set being deleted is wound down whatever its spec says.
    if !spec_errors.is_empty() && !deleting {
        let message = spec_errors.join("; ");
        let status = ListenerSetStatus {
            observed_generation: set.metadata.generation,
            conditions: vec![
                condition(&previous, CONDITION_READY, false, REASON_INVALID_SPEC, &message, &set),
                condition(&previous, CONDITION_DEGRADED, true, REASON_INVALID_SPEC, &message, &set),
            ],
            ..previous.clone()
        };
        if set.status.as_ref() != Some(&status) {
            publish(&ctx, &reference, EventType::Warning, REASON_INVALID_SPEC, &message);
            write_status(&ctx, &ns, &name, &status).await?;
        }
        return Ok(Requeue::await_change());
    }

    let default_duration = set.spec.lease_duration_seconds;
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

    // Leases of this set, with expiry judged on our monotonic clock.
    let leases: Vec<Arc<Lease>> = ctx
        .leases
        .state()
        .into_iter()
        .filter(|l| {
            l.metadata.namespace.as_deref() == Some(ns.as_str())
                && l.metadata.labels.as_ref().and_then(|m| m.get(LISTENERSET_LABEL)) == Some(&name)
        })
        .collect();
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .collect();
    let pod_by_name: HashMap<&str, &Pod> = pods
        .iter()
        .filter_map(|p| Some((p.metadata.name.as_deref()?, p.as_ref())))
        .collect();

    // Recover acts on what the API server says now, not on a cache that may not have seen the
    // holder's deletion yet: the user ran it because they saw the pod die.
    let live_now: Option<BTreeSet<String>> = match &recover_nonce {
        Some(_) => Some(
            Api::<Pod>::namespaced(ctx.client.clone(), &ns)
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name.clone())
                .collect(),
        ),
        None => None,
    };

    let ObservedLeases {
        views: lease_views,
        by_listener: lease_by_listener,
        next_expiry,
        recovered,
    } = observe_leases(&ctx, &ns, &name, &leases, live_now.as_ref(), default_duration, now);

    // Pods: every selected pod, plus every pod named as a holder (not eligible unless selected).
    let holders: BTreeSet<&str> = lease_views.iter().filter_map(|l| l.holder.as_deref()).collect();
    // A pod that still exists but let a Lease expire (its agent is dead or cut off) gets nothing
    // new: otherwise, holding no live Lease, it would look like the emptiest pod.
    let unresponsive: BTreeSet<&str> = lease_views
        .iter()
        .filter(|l| l.expired)
        .filter_map(|l| {
            let h = l.holder.as_deref()?;
            let pod = pod_by_name.get(h)?;
            (l.holder_uid.is_none() || pod.metadata.uid == l.holder_uid).then_some(h)
        })
        .collect();
    let pod_views: Vec<PodView> = pods
        .iter()
        .filter_map(|p| {
            let selected = selector_matches(&set.spec.selector, p.metadata.labels.as_ref());
            let named = p.metadata.name.as_deref().is_some_and(|n| holders.contains(n));
            if selected || named {
                let mut view = assigner::pod_view(p, selected)?;
                view.eligible &= !unresponsive.contains(view.name.as_str());
                Some(view)
            } else {
                None
            }
        })
        .collect();

    let seen = lease_views.iter().map(|l| (l.listener.as_str(), l.transitions));
    let recorded = previous
        .assignments
        .iter()
        .map(|a| (a.listener.as_str(), a.transitions));
    let last = ctx.fencing_tokens(&ns, &name, seen.chain(recorded));
    let mut listener_views: Vec<ListenerView> = desired
        .listeners
        .iter()
        .map(|l| ListenerView {
            id: l.id.clone(),
            suspended: l.suspended,
            last_transitions: last.get(l.id.as_str()).copied(),
        })
        .collect();
    if desired.keep_unknown {
        // The listenersFrom Secret is missing: Leases of listeners we cannot see stay as they are.
        for lv in &lease_views {
            if !listener_views.iter().any(|l| l.id == lv.listener) {
                listener_views.push(ListenerView {
                    id: lv.listener.clone(),
                    suspended: false,
                    last_transitions: Some(lv.transitions),
                });
            }
        }
    }
    let no_config: BTreeSet<&str> = desired
        .listeners
        .iter()
        .filter(|l| l.config_problem.is_some())
        .map(|l| l.id.as_str())
        .chain(
            listener_views
                .iter()
                .filter(|l| desired.keep_unknown && !desired.listeners.iter().any(|d| d.id == l.id))
                .map(|l| l.id.as_str()),
        )
        .collect();
    let max = u32::try_from(set.spec.max_per_pod.max(0)).unwrap_or(0);
    let planned = if deleting {
        assigner::finalize(&pod_views, &lease_views)
    } else {
        assigner::assign(&listener_views, &pod_views, &lease_views, max)
    };
    let moves: Vec<Move> = planned
        .into_iter()
        .filter(|m| !(matches!(m, Move::Assign { .. }) && no_config.contains(m.listener())))
        .collect();

    // Apply the moves, all at once: each is independent and conditional.
    let lease_api: Api<Lease> = Api::namespaced(ctx.client.clone(), &ns);
    let config_of: BTreeMap<&str, String> = desired
        .listeners
        .iter()
        .filter_map(|l| l.config.as_ref().map(|(s, k)| (l.id.as_str(), format!("{s}/{k}"))))
        .collect();
    let writes = moves.iter().map(|m| {
        let lease = lease_by_listener.get(m.listener()).cloned();
        let config = config_of.get(m.listener()).cloned();
        apply_move(&lease_api, &ns, &name, m, lease, config, default_duration, &ctx.stats)
    });
    let results = futures::future::join_all(writes).await;
    let mut retry_soon = false;
    let mut written = Vec::new();
    for (m, r) in moves.iter().zip(results) {
        match r {
            Ok(()) => {
                if let Move::Assign {
                    listener,
                    pod,
                    transitions,
                    ..
                } = m
                {
                    written.push((listener.as_str(), *transitions));
                    let prior = lease_by_listener.get(listener);
                    let kind = assignment_kind(
                        listener,
                        prior,
                        &lease_views,
                        &pod_by_name,
                        recover_nonce.is_some(),
                        default_duration,
                    );
                    let (reason, note, type_) = assignment_event(kind, listener, pod, *transitions, &ctx.stats);
                    info!(listenerset = %name, %listener, %pod, reason, "{note}");
                    publish(&ctx, &reference, type_, reason, &note);
                }
            }
            Err(e) => {
                if is_status(&e, 409) || is_status(&e, 404) {
                    ctx.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    debug!(listenerset = %name, listener = m.listener(), error = %e, "lease write lost a race");
                } else {
                    warn!(listenerset = %name, listener = m.listener(), error = %e, "lease write failed");
                }
                retry_soon = true;
            }
        }
    }
    if !written.is_empty() {
        ctx.fencing_tokens(&ns, &name, written);
    }

    // Status, from the state the moves started from (the next reconcile sees their effect).
    // While the set is being deleted, its listeners are the Leases still left.
    let listener_views: Vec<ListenerView> = if deleting {
        lease_views
            .iter()
            .map(|l| ListenerView {
                id: l.listener.clone(),
                ..Default::default()
            })
            .collect()
    } else {
        listener_views
    };
    let summary = assigner::summarize(&listener_views, &pod_views, &lease_views);
    let eligible = pod_views.iter().filter(|p| p.eligible).count();
    let Report {
        status,
        ready_message,
        degraded,
        degraded_reason,
        degraded_message,
    } = report(
        &set,
        &previous,
        deleting,
        &desired.problems,
        &summary,
        eligible,
        &lease_by_listener,
    );
    if set.status.as_ref() != Some(&status) {
        let prev_ready = previous.conditions.iter().find(|c| c.type_ == CONDITION_READY);
        if deleting && prev_ready.is_none_or(|c| c.reason != "Terminating") {
            publish(&ctx, &reference, EventType::Normal, "Terminating", &ready_message);
        }
        let prev_degraded = previous.conditions.iter().find(|c| c.type_ == CONDITION_DEGRADED);
        if degraded && prev_degraded.is_none_or(|c| c.message != degraded_message) && degraded_reason != "Orphaned" {
            publish(&ctx, &reference, EventType::Warning, degraded_reason, &degraded_message);
        }
        write_status(&ctx, &ns, &name, &status).await?;
    }

    // A failed write leaves the recover pending, so the retry releases what this pass could not.
    if let Some(nonce) = recover_nonce.as_ref().filter(|_| !retry_soon) {
        publish(
            &ctx,
            &reference,
            EventType::Normal,
            "Recovered",
            &format!("recover {nonce}: {recovered} orphaned listeners released for reassignment"),
        );
        let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {RECOVERED_ANNOTATION: nonce}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }

    if deleting && lease_views.is_empty() && !retry_soon {
        return finish_deletion(&ctx, &set, &ns, &name, &reference).await;
    }
    if retry_soon {
        return Ok(Requeue::requeue(Duration::from_millis(100)));
    }
    Ok(match next_expiry {
        Some(at) => Requeue::requeue(at.saturating_duration_since(Instant::now()) + Duration::from_millis(20)),
        None => Requeue::await_change(),
    })
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
