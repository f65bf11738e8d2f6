//! The ListenerSet reconciler: caches → [`assigner::assign`] → conditional Lease writes →
//! status. The protocol itself is documented in [`crate::listeners::assigner`].
//!
//! * Caches: pods and listener Leases come from [`SharedCaches`] (shared with the Rollout
//!   controller when run from [`crate::operator::run`]); Secrets (keys only, values stripped)
//!   and ListenerSets from this controller's own watches.
//! * Expiry: a Lease is expired when `leaseDurationSeconds` have passed on this process's
//!   monotonic clock since it first saw the Lease's current `resourceVersion` (client-go's
//!   rule). `renewTime` is never compared with the local wall clock. A controller that starts
//!   (or takes over) therefore waits a full duration before judging any Lease expired.
//! * Every Lease write is conditional: creates fail on AlreadyExists, updates carry the
//!   `resourceVersion` the decision was made on, deletes carry it as a precondition. A 409
//!   just means "someone else acted first": the reconcile is retried from fresh caches.
//! * `baton listeners recover` sets [`RECOVER_ANNOTATION`] to a nonce; the next reconcile treats
//!   Leases whose holder pod is gone, not Ready or terminating as expired at once (orphans
//!   only: Leases of Ready holders are never touched), then records the nonce in
//!   [`RECOVERED_ANNOTATION`].
//! * Deletion: every ListenerSet gets [`FINALIZER`] before any of its Leases is written. Once it
//!   is being deleted, every listener is treated as removed ([`assigner::finalize`]): live holders
//!   are asked to release, a Lease is deleted only once released, expired or its holder is gone,
//!   and the finalizer goes when the API server lists no Lease of the set any more.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::{Publisher, Severity as EventType};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector, MicroTime, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api::listenerset::{
    self, lease_name, ListenerSet, ListenerSetStatus, CONDITION_DEGRADED, CONDITION_READY, DRAIN_ANNOTATION,
    LISTENERSET_LABEL, LISTENER_LABEL, RELEASE_REQUESTED_ANNOTATION,
};
use crate::api::rollout::Rollout;
use crate::error::{is_status, Error, Result};
use crate::listeners::assigner::{self, ListenerState, ListenerView, Move, PodView};
use crate::listeners::{CONFIG_ANNOTATION, FINALIZER, MANAGER, RECOVERED_ANNOTATION, RECOVER_ANNOTATION};

/// Settings of the ListenerSet controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Namespace to watch; None = all.
    pub namespace: Option<String>,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Reporting instance for events.
    pub instance: String,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            concurrency: 8,
            instance: "baton".into(),
        }
    }
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub lease_creates: AtomicU64,
    pub lease_updates: AtomicU64,
    pub lease_deletes: AtomicU64,
    pub release_requests: AtomicU64,
    pub conflicts: AtomicU64,
    pub status_writes: AtomicU64,
    pub takeovers: AtomicU64,
    pub handovers: AtomicU64,
}

impl Stats {
    /// Every API write this controller made (Leases, status, recover annotations).
    pub fn writes(&self) -> u64 {
        self.lease_creates.load(Ordering::Relaxed)
            + self.lease_updates.load(Ordering::Relaxed)
            + self.lease_deletes.load(Ordering::Relaxed)
            + self.release_requests.load(Ordering::Relaxed)
            + self.status_writes.load(Ordering::Relaxed)
    }
}

fn api<K>(client: &kube::Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

/// Pods are cached with what the controllers read: metadata and status.
fn slim_pod(p: &mut Pod) {
    p.metadata.managed_fields = None;
    p.spec = None;
}

/// Secrets are cached with their keys only: values are never held in memory.
fn strip_secret(s: &mut Secret) {
    s.metadata.managed_fields = None;
    s.metadata.annotations = None;
    s.string_data = None;
    if let Some(data) = s.data.as_mut() {
        for v in data.values_mut() {
            *v = ByteString(Vec::new());
        }
    }
}

/// A stream of changed (applied or deleted) objects of one shared watch.
/// (namespace, set, listener) of an observed Lease.
type LeaseKey = (String, String, String);

pub type Events<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// Watch caches of pods (all of them, slimmed) and of listener Leases, each one watch shared by
/// every controller that subscribes: [`pod_events`](Self::pod_events) /
/// [`lease_events`](Self::lease_events) hand out streams of every touched (applied or deleted)
/// object, fanned out over unbounded channels; then drive the watches with
/// [`drive`](Self::drive).
///
/// (kube-runtime's own shared streams are not used: a `ReflectHandle` whose object was deleted
/// before it was read returns `Pending` without a waker and stalls forever, and deletions are
/// not dispatched at all — a deleted pod must trigger an immediate takeover.)
pub struct SharedCaches {
    pub pods: Store<Pod>,
    pub leases: Store<Lease>,
    pod_writer: reflector::store::Writer<Pod>,
    lease_writer: reflector::store::Writer<Lease>,
    pod_subs: Vec<futures::channel::mpsc::UnboundedSender<Pod>>,
    lease_subs: Vec<futures::channel::mpsc::UnboundedSender<Lease>>,
    pod_api: Api<Pod>,
    lease_api: Api<Lease>,
    /// Changes are passed to subscribers only while this is set (a standby keeps its caches warm
    /// but runs no controller).
    forward: Arc<std::sync::atomic::AtomicBool>,
}

fn fan_in<K: Send + 'static>(rx: futures::channel::mpsc::UnboundedReceiver<K>) -> Events<K> {
    rx.map(Ok).boxed()
}

impl SharedCaches {
    pub fn new(client: &kube::Client, namespace: &Option<String>) -> Self {
        let (pods, pod_writer) = reflector::store();
        let (leases, lease_writer) = reflector::store();
        SharedCaches {
            pods,
            leases,
            pod_writer,
            lease_writer,
            pod_subs: Vec::new(),
            lease_subs: Vec::new(),
            pod_api: api(client, namespace),
            lease_api: api(client, namespace),
            forward: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// A stream of pod changes (subscribe before [`drive`](Self::drive)).
    pub fn pod_events(&mut self) -> Events<Pod> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        self.pod_subs.push(tx);
        fan_in(rx)
    }

    /// A stream of listener Lease changes (subscribe before [`drive`](Self::drive)).
    pub fn lease_events(&mut self) -> Events<Lease> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        self.lease_subs.push(tx);
        fan_in(rx)
    }

    /// For the Rollout controller: does pod `name` in `ns` hold a listener Lease?
    pub fn listener_holders(&self) -> crate::rollout::controller::HoldsListeners {
        let leases = self.leases.clone();
        Arc::new(move |ns: &str, pod: &str| {
            leases.state().iter().any(|l| {
                l.metadata.namespace.as_deref() == Some(ns)
                    && l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(pod)
            })
        })
    }

    /// Use `gate` as the switch that passes changes on to subscribers (default: always on).
    pub fn set_forwarding(&mut self, gate: Arc<std::sync::atomic::AtomicBool>) {
        self.forward = gate;
    }

    /// Run the watches until dropped.
    pub fn drive(self) -> impl Future<Output = ()> + Send + 'static {
        let pods = watcher(self.pod_api, watcher::Config::default())
            .default_backoff()
            .modify(slim_pod)
            .reflect(self.pod_writer)
            .touched_objects();
        let leases = watcher(self.lease_api, watcher::Config::default().labels(LISTENERSET_LABEL))
            .default_backoff()
            .modify(|l: &mut Lease| l.metadata.managed_fields = None)
            .reflect(self.lease_writer)
            .touched_objects();
        let pods = fan_out(pods, self.pod_subs, self.forward.clone(), "pod watch");
        let leases = fan_out(leases, self.lease_subs, self.forward, "lease watch");
        async move {
            futures::join!(pods, leases);
        }
    }
}

/// Pass every change to each subscriber while `gate` is open.
fn fan_out<K: Clone + Send + 'static>(
    changes: impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    subscribers: Vec<futures::channel::mpsc::UnboundedSender<K>>,
    gate: Arc<std::sync::atomic::AtomicBool>,
    what: &'static str,
) -> impl Future<Output = ()> + Send + 'static {
    changes.for_each(move |r| {
        match r {
            Ok(obj) if gate.load(std::sync::atomic::Ordering::Relaxed) => {
                for s in &subscribers {
                    let _ = s.unbounded_send(obj.clone());
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "{what}"),
        }
        async {}
    })
}

/// The fields only a holder's renewals (or an assignment) change.
fn holder_record(lease: &Lease) -> String {
    let spec = lease.spec.as_ref();
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        spec.and_then(|s| s.holder_identity.as_deref()),
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.lease_transitions),
    )
}

/// For the Rollout controller: a listener Lease changed; if its (last) owner pod is being drained,
/// the Rollout owning that pod should look again (it may be waiting for the pod to hold nothing).
pub fn draining_rollout_of_lease(pods: &Store<Pod>, lease: &Lease) -> Option<ObjectRef<Rollout>> {
    let ns = lease.metadata.namespace.as_deref()?;
    let owner = lease
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Pod" && o.api_version == "v1")?;
    let pod = pods.get(&ObjectRef::new(&owner.name).within(ns))?;
    pod.metadata.annotations.as_ref()?.get(DRAIN_ANNOTATION)?;
    let rollout = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Rollout")?;
    Some(ObjectRef::new(&rollout.name).within(ns))
}

/// Whether `labels` match a LabelSelector (matchLabels and matchExpressions). An empty selector
/// matches nothing here (the spec check rejects it).
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let ml = sel.match_labels.as_ref().filter(|m| !m.is_empty());
    let me = sel.match_expressions.as_ref().filter(|e| !e.is_empty());
    if ml.is_none() && me.is_none() {
        return false;
    }
    if let Some(ml) = ml {
        if !ml.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    for expr in me.into_iter().flatten() {
        let values = expr.values.as_deref().unwrap_or(&[]);
        let have = labels.get(&expr.key);
        let ok = match expr.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// What a reconcile needs.
pub struct Context {
    pub client: kube::Client,
    pub events: Publisher,
    pub pods: Store<Pod>,
    pub leases: Store<Lease>,
    pub secrets: Store<Secret>,
    /// (namespace, set, lease name) → (resourceVersion, when this process first saw it).
    observed: Mutex<HashMap<LeaseKey, (String, Instant)>>,
    pub stats: Arc<Stats>,
}

/// Run the ListenerSet controller on its own caches until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    cfg: ControllerConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    run_standalone(client, cfg, Arc::new(Stats::default()), shutdown).await
}

/// [`run`], counting into `stats` (readable while it runs).
pub async fn run_standalone(
    client: kube::Client,
    cfg: ControllerConfig,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    let mut caches = SharedCaches::new(&client, &cfg.namespace);
    let pods = caches.pods.clone();
    let leases = caches.leases.clone();
    let pod_events = caches.pod_events();
    let lease_events = caches.lease_events();
    let drive = caches.drive();
    let ctrl = run_counted(client, cfg, pods, pod_events, leases, lease_events, stats, shutdown);
    tokio::pin!(drive);
    tokio::pin!(ctrl);
    loop {
        tokio::select! {
            stats = &mut ctrl => return stats,
            _ = &mut drive => {}
        }
    }
}

/// Run the ListenerSet controller on caches shared with others (see [`SharedCaches`]).
pub async fn run_shared(
    client: kube::Client,
    cfg: ControllerConfig,
    pods: Store<Pod>,
    pod_events: Events<Pod>,
    leases: Store<Lease>,
    lease_events: Events<Lease>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    run_counted(client, cfg, pods, pod_events, leases, lease_events, stats, shutdown).await
}

/// [`run_shared`], counting into `stats` (readable while it runs).
#[allow(clippy::too_many_arguments)]
pub async fn run_counted(
    client: kube::Client,
    cfg: ControllerConfig,
    pods: Store<Pod>,
    pod_events: Events<Pod>,
    leases: Store<Lease>,
    lease_events: Events<Lease>,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Arc<Stats> {
    let (secrets, secret_writer) = reflector::store();
    let secret_stream = watcher(api::<Secret>(&client, &cfg.namespace), watcher::Config::default())
        .default_backoff()
        .modify(strip_secret)
        .reflect(secret_writer)
        .touched_objects();
    let ctx = Arc::new(Context {
        client: client.clone(),
        events: Publisher::new(client.clone(), MANAGER, cfg.instance.clone()),
        pods,
        leases,
        secrets,
        observed: Mutex::new(HashMap::new()),
        stats: stats.clone(),
    });
    let controller = Controller::new(api::<ListenerSet>(&client, &cfg.namespace), watcher::Config::default());
    let sets = controller.store();
    let (s1, s2) = (sets.clone(), sets.clone());
    info!(
        namespace = cfg.namespace.as_deref().unwrap_or("<all>"),
        "starting the ListenerSet controller"
    );
    controller
        .watches_stream(secret_stream, move |s: Secret| sets_using_secret(&s1, &s))
        .watches_stream(pod_events, move |p: Pod| sets_selecting(&s2, &p))
        .watches_stream(lease_events, |l: Lease| set_of_lease(&l))
        .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                debug!(error = %e, "listenerset controller");
            }
        })
        .await;
    ctx.events.drain(Duration::from_secs(2)).await;
    info!("the ListenerSet controller stopped");
    stats
}

fn sets_using_secret(sets: &Store<ListenerSet>, secret: &Secret) -> Vec<ObjectRef<ListenerSet>> {
    let ns = secret.metadata.namespace.as_deref();
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    sets.state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| {
            s.spec
                .listeners_from
                .as_ref()
                .is_some_and(|f| f.secret_ref.name == name)
                || s.spec
                    .listeners
                    .iter()
                    .any(|l| l.config_ref.as_ref().is_some_and(|c| c.secret_key_ref.name == name))
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn sets_selecting(sets: &Store<ListenerSet>, pod: &Pod) -> Vec<ObjectRef<ListenerSet>> {
    let ns = pod.metadata.namespace.as_deref();
    sets.state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| selector_matches(&s.spec.selector, pod.metadata.labels.as_ref()))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn set_of_lease(lease: &Lease) -> Option<ObjectRef<ListenerSet>> {
    let set = lease.metadata.labels.as_ref()?.get(LISTENERSET_LABEL)?;
    let ns = lease.metadata.namespace.as_deref()?;
    Some(ObjectRef::new(set).within(ns))
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

/// One listener after merging `listeners` and `listenersFrom`.
#[derive(Debug, Clone)]
struct Resolved {
    id: String,
    suspended: bool,
    /// `<secret>/<key>` holding its config.
    config: Option<(String, String)>,
    /// Why its config cannot be read (missing Secret or key), if so.
    config_problem: Option<String>,
}

/// What the spec asks for, with the problems found on the way.
struct Desired {
    listeners: Vec<Resolved>,
    problems: Vec<String>,
    /// The listenersFrom Secret is missing: Leases of unknown listeners must not be removed.
    keep_unknown: bool,
}

fn resolve(set: &ListenerSet, ns: &str, secrets: &Store<Secret>) -> Desired {
    let mut problems = Vec::new();
    let mut map: BTreeMap<String, Resolved> = BTreeMap::new();
    let mut keep_unknown = false;
    if let Some(from) = &set.spec.listeners_from {
        let name = &from.secret_ref.name;
        match secrets.get(&ObjectRef::new(name).within(ns)) {
            Some(secret) => {
                for key in secret.data.iter().flatten().map(|(k, _)| k) {
                    if let Err(e) = listenerset::validate_listener_id(key) {
                        problems.push(format!("Secret {name} key {e}; rename the key"));
                        continue;
                    }
                    map.insert(
                        key.clone(),
                        Resolved {
                            id: key.clone(),
                            suspended: false,
                            config: Some((name.clone(), key.clone())),
                            config_problem: None,
                        },
                    );
                }
            }
            None => {
                keep_unknown = true;
                problems.push(format!(
                    "Secret {ns}/{name} (spec.listenersFrom.secretRef) does not exist: create it; listeners \
                     already running keep running"
                ));
            }
        }
    }
    for l in &set.spec.listeners {
        map.insert(
            l.id.clone(),
            Resolved {
                id: l.id.clone(),
                suspended: l.suspend,
                config: l
                    .config_ref
                    .as_ref()
                    .map(|c| (c.secret_key_ref.name.clone(), c.secret_key_ref.key.clone())),
                config_problem: None,
            },
        );
    }
    for r in map.values_mut() {
        let Some((secret, key)) = &r.config else { continue };
        let problem = match secrets.get(&ObjectRef::new(secret).within(ns)) {
            None => Some(format!("listener {}: Secret {ns}/{secret} does not exist", r.id)),
            Some(s) if !s.data.as_ref().is_some_and(|d| d.contains_key(key)) => {
                Some(format!("listener {}: Secret {ns}/{secret} has no key {key:?}", r.id))
            }
            Some(_) => None,
        };
        if let Some(p) = &problem {
            if !r.suspended {
                problems.push(format!("{p}; it is not started until the Secret has it"));
            }
        }
        r.config_problem = problem;
    }
    Desired {
        listeners: map.into_values().collect(),
        problems,
        keep_unknown,
    }
}

fn lease_duration(lease: &Lease, default: i32) -> Duration {
    let secs = lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .unwrap_or(default);
    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1))
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// How a successful Assign happened, for the Event.
enum Kind {
    Assigned,
    Handover,
    Takeover(String),
}

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
    let _ = ctx.secrets.wait_until_ready().await;
    let _ = ctx.pods.wait_until_ready().await;
    let _ = ctx.leases.wait_until_ready().await;
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
                condition(&previous, CONDITION_READY, false, "InvalidSpec", &message, &set),
                condition(&previous, CONDITION_DEGRADED, true, "InvalidSpec", &message, &set),
            ],
            ..previous.clone()
        };
        if set.status.as_ref() != Some(&status) {
            publish(&ctx, &reference, EventType::Warning, "InvalidSpec", &message);
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

    let mut next_expiry: Option<Instant> = None;
    let mut lease_views = Vec::new();
    let mut lease_by_listener: BTreeMap<String, Arc<Lease>> = BTreeMap::new();
    let mut recovered = 0usize;
    {
        let mut observed = ctx.observed.lock().unwrap_or_else(|p| p.into_inner());
        let current: BTreeSet<String> = leases.iter().map(|l| l.name_any()).collect();
        observed.retain(|(n, s, lname), _| n != &ns || s != &name || current.contains(lname));
        for lease in &leases {
            let lname = lease.name_any();
            // Expiry counts from the last change the *holder* made (holder, renewal, transitions),
            // like client-go's observed record: the controller's own writes (release requests)
            // must not look like signs of life from a dead holder.
            let rv = holder_record(lease);
            let entry = observed
                .entry((ns.clone(), name.clone(), lname))
                .or_insert_with(|| (rv.clone(), now));
            if entry.0 != rv {
                *entry = (rv, now);
            }
            let duration = lease_duration(lease, default_duration);
            let expires_at = entry.1 + duration;
            let mut expired = holder_of(lease).is_some() && now >= expires_at;
            if let (Some(holder), Some(live_now)) = (holder_of(lease), &live_now) {
                let live = live_now.contains(holder);
                if !live && !expired {
                    expired = true;
                    recovered += 1;
                }
            }
            if holder_of(lease).is_some() && !expired {
                next_expiry = Some(next_expiry.map_or(expires_at, |t| t.min(expires_at)));
            }
            if let Some(view) = assigner::lease_view(lease, &name, expired) {
                lease_by_listener.insert(view.listener.clone(), lease.clone());
                lease_views.push(view);
            }
        }
    }

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

    let last: BTreeMap<&str, i32> = previous
        .assignments
        .iter()
        .map(|a| (a.listener.as_str(), a.transitions))
        .collect();
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
                    let prior = lease_by_listener.get(listener);
                    let kind = match prior.map(|l| (l, holder_of(l))) {
                        None => Kind::Assigned,
                        Some((_, None)) => Kind::Handover,
                        Some((l, Some(h))) => {
                            let uid = lease_views
                                .iter()
                                .find(|v| &v.listener == listener)
                                .and_then(|v| v.holder_uid.clone());
                            let gone = pod_by_name
                                .get(h)
                                .is_none_or(|p| uid.is_some() && p.metadata.uid != uid);
                            let why = if gone {
                                format!("holder pod {h} is gone")
                            } else if recover_nonce.is_some() {
                                format!("recovered from holder pod {h}, which is not live")
                            } else {
                                format!(
                                    "the Lease of holder pod {h} expired ({}s without renewal)",
                                    lease_duration(l, default_duration).as_secs()
                                )
                            };
                            Kind::Takeover(why)
                        }
                    };
                    let (reason, note, type_) = match kind {
                        Kind::Assigned => (
                            "Assigned",
                            format!("listener {listener} assigned to pod {pod} (fencing token {transitions})"),
                            EventType::Normal,
                        ),
                        Kind::Handover => {
                            ctx.stats.handovers.fetch_add(1, Ordering::Relaxed);
                            (
                                "Handover",
                                format!("listener {listener} handed over to pod {pod} (fencing token {transitions})"),
                                EventType::Normal,
                            )
                        }
                        Kind::Takeover(why) => {
                            ctx.stats.takeovers.fetch_add(1, Ordering::Relaxed);
                            (
                                "Takeover",
                                format!(
                                    "listener {listener} taken over by pod {pod} (fencing token {transitions}): {why}"
                                ),
                                EventType::Warning,
                            )
                        }
                    };
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
    let assignments = summary
        .states
        .iter()
        .filter_map(|(id, state)| match state {
            ListenerState::Running { pod, transitions } => Some(listenerset::Assignment {
                listener: id.clone(),
                pod: pod.clone(),
                since: lease_by_listener
                    .get(id)
                    .and_then(|l| l.spec.as_ref()?.acquire_time.as_ref())
                    // Status stores whole seconds: truncate, or the stored status never equals the
                    // computed one and is rewritten on every reconcile.
                    .and_then(|t| jiff::Timestamp::from_second(t.0.as_second()).ok())
                    .map(Time),
                transitions: *transitions,
            }),
            _ => None,
        })
        .collect();
    let wanted = summary.listeners - summary.suspended;
    let (all_running, ready_reason, ready_message, degraded, degraded_reason, degraded_message) = if deleting {
        let message = terminating_message(&summary);
        (false, "Terminating", message.clone(), false, "Terminating", message)
    } else {
        let all_running = summary.running >= wanted && summary.pending == 0 && summary.orphaned == 0;
        let (ready_reason, ready_message) = if all_running {
            (
                "AllRunning",
                format!("{} of {} listeners running", summary.running, wanted),
            )
        } else if eligible == 0 {
            (
                "NoEligiblePods",
                format!(
                "{} listeners wait for a pod: no pod matching spec.selector is Ready (and not draining or terminating)",
                wanted - summary.running
            ),
            )
        } else {
            (
                "ListenersNotRunning",
                format!(
                    "{} of {} listeners running ({} pending, {} orphaned)",
                    summary.running, wanted, summary.pending, summary.orphaned
                ),
            )
        };
        let (degraded, degraded_reason, degraded_message) = if !desired.problems.is_empty() {
            (true, "MissingSecret", desired.problems.join("; "))
        } else if !all_running && eligible == 0 {
            (true, "NoEligiblePods", ready_message.clone())
        } else if summary.orphaned > 0 {
            (
                true,
                "Orphaned",
                format!(
                    "{} listeners have a gone or expired holder and are being taken over",
                    summary.orphaned
                ),
            )
        } else {
            (false, "AsExpected", "nothing needs attention".to_string())
        };
        (
            all_running,
            ready_reason,
            ready_message,
            degraded,
            degraded_reason,
            degraded_message,
        )
    };
    let status = ListenerSetStatus {
        observed_generation: set.metadata.generation,
        listeners: summary.listeners,
        running: summary.running,
        pending: summary.pending,
        orphaned: summary.orphaned,
        suspended: summary.suspended,
        assignments,
        conditions: vec![
            condition(
                &previous,
                CONDITION_READY,
                all_running,
                ready_reason,
                &ready_message,
                &set,
            ),
            condition(
                &previous,
                CONDITION_DEGRADED,
                degraded,
                degraded_reason,
                &degraded_message,
                &set,
            ),
        ],
    };
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

fn terminating_message(summary: &assigner::Summary) -> String {
    if summary.listeners == 0 {
        return "the ListenerSet is being deleted: no Lease is left".to_string();
    }
    format!(
        "the ListenerSet is being deleted: {} Leases left, {} of them held by a pod that was asked to stop the \
         listener; each Lease is deleted once its holder released it or it expired, then the ListenerSet goes",
        summary.listeners, summary.running
    )
}

/// Add [`FINALIZER`], conditional on the `resourceVersion` read (a 409 just retries).
async fn add_finalizer(ctx: &Context, set: &ListenerSet, ns: &str, name: &str) -> Result<()> {
    let mut finalizers = set.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": set.resource_version()}});
    let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    debug!(listenerset = %name, "finalizer added");
    Ok(())
}

/// No Lease of a deleted set is left in the cache: confirm with the API server, then let the set go.
async fn finish_deletion(
    ctx: &Context,
    set: &ListenerSet,
    ns: &str,
    name: &str,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
) -> Result<Requeue> {
    // The cache may not have seen a Lease our previous reconcile created yet: ask the server. (A
    // name that is no label value cannot label a Lease, so none can exist.)
    if listenerset::is_label_value(name) {
        let lp = ListParams::default().labels(&format!("{LISTENERSET_LABEL}={name},{LISTENER_LABEL}"));
        let left = Api::<Lease>::namespaced(ctx.client.clone(), ns).list(&lp).await?;
        if !left.items.is_empty() {
            debug!(listenerset = %name, left = left.items.len(), "deleted set: Leases not cached yet");
            return Ok(Requeue::requeue(Duration::from_millis(500)));
        }
    }
    if let Some(index) = set.finalizers().iter().position(|f| f == FINALIZER) {
        // Remove exactly our entry, and only if it is still where we saw it.
        let path = format!("/metadata/finalizers/{index}");
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": path, "value": FINALIZER},
            {"op": "remove", "path": path},
        ]))?;
        let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), ns);
        match api
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(Requeue::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    info!(listenerset = %name, "every Lease deleted: finalizer removed");
    publish(
        ctx,
        reference,
        EventType::Normal,
        "Finalized",
        "every listener stopped and every Lease deleted: the ListenerSet goes",
    );
    Ok(Requeue::await_change())
}

fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    // Events are informative: never hold a handover up for one.
    ctx.events
        .publish_in_background(reference.clone(), vec![(type_, reason.to_string(), note.to_string())]);
}

fn condition(
    previous: &ListenerSetStatus,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    set: &ListenerSet,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    let since = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: since,
        observed_generation: set.metadata.generation,
    }
}

async fn write_status(ctx: &Context, ns: &str, name: &str, status: &ListenerSetStatus) -> Result<()> {
    let api: Api<ListenerSet> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "ListenerSet",
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await?;
    ctx.stats.status_writes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

#[allow(clippy::too_many_arguments)]
async fn apply_move(
    api: &Api<Lease>,
    ns: &str,
    set: &str,
    m: &Move,
    lease: Option<Arc<Lease>>,
    config: Option<String>,
    default_duration: i32,
    stats: &Stats,
) -> Result<(), kube::Error> {
    match m {
        Move::Assign {
            listener,
            pod,
            pod_uid,
            from_resource_version,
            transitions,
        } => {
            let mut l = match (&lease, from_resource_version) {
                (Some(l), Some(_)) => (**l).clone(),
                _ => Lease {
                    metadata: ObjectMeta {
                        name: Some(lease_name(set, listener)),
                        namespace: Some(ns.to_string()),
                        ..Default::default()
                    },
                    spec: None,
                },
            };
            let labels = l.metadata.labels.get_or_insert_with(BTreeMap::new);
            labels.insert(LISTENERSET_LABEL.into(), set.into());
            labels.insert(LISTENER_LABEL.into(), listener.clone());
            let annotations = l.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.remove(RELEASE_REQUESTED_ANNOTATION);
            match config {
                Some(c) => annotations.insert(CONFIG_ANNOTATION.into(), c),
                None => annotations.remove(CONFIG_ANNOTATION),
            };
            l.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod.clone(),
                uid: pod_uid.clone(),
                ..Default::default()
            }]);
            l.metadata.resource_version = from_resource_version.clone();
            let now = now_micro();
            l.spec = Some(LeaseSpec {
                holder_identity: Some(pod.clone()),
                lease_duration_seconds: Some(default_duration),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(*transitions),
                ..Default::default()
            });
            if from_resource_version.is_some() {
                api.replace(&lease_name_of(&l), &PostParams::default(), &l).await?;
                stats.lease_updates.fetch_add(1, Ordering::Relaxed);
            } else {
                api.create(&PostParams::default(), &l).await?;
                stats.lease_creates.fetch_add(1, Ordering::Relaxed);
            }
        }
        Move::RequestRelease {
            resource_version,
            reason,
            ..
        } => {
            let Some(lease) = lease else { return Ok(()) };
            let mut l = (*lease).clone();
            l.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(RELEASE_REQUESTED_ANNOTATION.into(), reason.as_str().into());
            l.metadata.resource_version = Some(resource_version.clone());
            api.replace(&lease_name_of(&l), &PostParams::default(), &l).await?;
            stats.release_requests.fetch_add(1, Ordering::Relaxed);
        }
        Move::DeleteLease { resource_version, .. } => {
            let Some(lease) = lease else { return Ok(()) };
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(resource_version.clone()),
                    uid: None,
                }),
                ..Default::default()
            };
            match api.delete(&lease_name_of(&lease), &dp).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e),
            }
            stats.lease_deletes.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn lease_name_of(l: &Lease) -> String {
    l.metadata.name.clone().unwrap_or_default()
}

/// Requeue with a short backoff after an error; conflicts retry fast.
pub fn error_policy(set: Arc<ListenerSet>, err: &Error, _ctx: Arc<Context>) -> Requeue {
    warn!(listenerset = %set.name_any(), error = %err, "reconcile failed");
    match err {
        Error::Kube(kube::Error::Api(s)) if s.code == 409 => Requeue::requeue(Duration::from_millis(100)),
        _ => Requeue::requeue(Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests;
