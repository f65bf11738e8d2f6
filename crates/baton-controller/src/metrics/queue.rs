//! What kube-runtime does not expose: its work queue. Each trigger stream of a controller is
//! probed (an object a change maps to is *added*; adding one already waiting changes nothing, as
//! kube-runtime merges them), and each reconcile *starts* it: depth is what waits, latency the
//! time from the first change to the reconcile's start. And [`instrumented`]: one reconcile
//! under a span (`controller`, `namespace`, `name`, `reconcile_id`) that every log line of the
//! reconcile carries, timed and counted by result.
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::Resource;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tracing::Instrument;

use super::{ControllerLabel, Metrics};

/// Waiting entries older than this are dropped (a trigger for an object no reconcile will
/// start, e.g. one deleted meanwhile that kube-runtime reports as not found before we see it).
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// How often [`WorkQueue::add`] looks for such entries: a sweep visits every waiting entry, so
/// sweeping on every add made a mass update quadratic (every pod event of N Rollouts
/// swept up to N entries).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The series one queue feeds (baton's, and client-go's twins).
pub struct Series {
    pub depth: Gauge,
    pub adds: Counter,
    pub latency: Histogram,
}

/// One controller's work queue, as seen from its triggers and reconciles.
pub struct WorkQueue {
    pub controller: String,
    /// `namespace/name` → when its first unreconciled change was seen.
    waiting: Mutex<HashMap<String, Instant>>,
    /// When `waiting` was last swept of entries older than [`FORGET_AFTER`].
    swept: Mutex<Instant>,
    series: [Series; 2],
}

/// The queue key of an object.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or(""))
}

impl WorkQueue {
    pub fn new(controller: &str, baton: Series, runtime: Series) -> Self {
        WorkQueue {
            controller: controller.to_string(),
            waiting: Mutex::new(HashMap::new()),
            swept: Mutex::new(Instant::now()),
            series: [baton, runtime],
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Instant>) -> R) -> R {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut w);
        for s in &self.series {
            s.depth.set(i64::try_from(w.len()).unwrap_or(i64::MAX));
        }
        r
    }

    /// A change triggered `key`.
    pub fn add(&self, key: String) {
        for s in &self.series {
            s.adds.inc();
        }
        let now = Instant::now();
        let sweep = {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            let due = now.saturating_duration_since(*swept) >= SWEEP_EVERY;
            if due {
                *swept = now;
            }
            due
        };
        self.with(|w| {
            if sweep {
                w.retain(|_, t| now.saturating_duration_since(*t) < FORGET_AFTER);
            }
            w.entry(key).or_insert(now);
        });
    }

    /// A change triggered the objects `refs` (returned as they are, for a trigger mapper).
    pub fn add_refs<K: Resource>(&self, refs: Vec<ObjectRef<K>>) -> Vec<ObjectRef<K>> {
        for r in &refs {
            self.add(key(r.namespace.as_deref(), &r.name));
        }
        refs
    }

    /// The reconcile of `key` starts: it leaves the queue. How long it waited there, if a change
    /// queued it.
    pub fn start(&self, key: &str) -> Option<Duration> {
        let waited = self.with(|w| w.remove(key))?.elapsed();
        for s in &self.series {
            s.latency.observe(waited.as_secs_f64());
        }
        Some(waited)
    }

    /// `key` will not be reconciled (kube-runtime found no such object).
    pub fn forget(&self, key: &str) {
        self.with(|w| w.remove(key));
    }
}

/// `stream` of a controller whose queue is `queue`: each object adds the keys `keys` maps it to.
pub fn probe<K, E, S>(
    queue: std::sync::Arc<WorkQueue>,
    stream: S,
    keys: impl Fn(&K) -> Vec<String> + Send + 'static,
) -> impl Stream<Item = Result<K, E>> + Send + 'static
where
    S: Stream<Item = Result<K, E>> + Send + 'static,
    K: Send + 'static,
    E: Send + 'static,
{
    stream.inspect(move |r| {
        if let Ok(obj) = r {
            for k in keys(obj) {
                queue.add(k);
            }
        }
    })
}

/// The key of an object itself.
pub fn own_key<K: Resource>(obj: &K) -> Vec<String> {
    let m = obj.meta();
    m.name
        .as_deref()
        .map(|n| key(m.namespace.as_deref(), n))
        .into_iter()
        .collect()
}

/// The keys of the owners of `obj` of kind `kind` (what kube-runtime's `owns` triggers).
pub fn owner_keys<K: Resource>(obj: &K, kind: &str) -> Vec<String> {
    let m = obj.meta();
    m.owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == kind)
        .map(|o| key(m.namespace.as_deref(), &o.name))
        .collect()
}

/// Decrements a gauge when dropped (a reconcile cancelled at shutdown still ends).
struct Running(Gauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Run `work`, the reconcile of `obj` by `controller`, under a `reconcile` span with
/// `controller`, `namespace`, `name` and a fresh `reconcile_id`; time it, count its result
/// (`success`, `requeue`, `error`, by `label` of the error), take it off the work queue, and
/// hand a failure to `failed` inside the span (the backoff logs and counts it there).
pub async fn instrumented<K, E, Fut>(
    metrics: &Metrics,
    controller: &'static str,
    obj: &K,
    work: Fut,
    label: fn(&E) -> &'static str,
    failed: impl FnOnce(&E),
) -> Result<Action, E>
where
    K: Resource<DynamicType = ()>,
    Fut: Future<Output = Result<Action, E>>,
{
    let meta = obj.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let queued = metrics.queue(controller).start(&key(Some(&namespace), &name));
    crate::malloc::note_activity();
    let id = uuid::Uuid::new_v4();
    let span = tracing::info_span!("reconcile", controller, namespace = %namespace, name = %name, reconcile_id = %id);
    let gauge = metrics
        .reconcile_active
        .get_or_create(&ControllerLabel {
            controller: controller.to_string(),
        })
        .clone();
    gauge.inc();
    let running = Running(gauge);
    let started = Instant::now();
    let out = work.instrument(span.clone()).await;
    drop(running);
    let result = match &out {
        Ok(a) if *a == Action::await_change() => "success",
        Ok(_) => "requeue",
        Err(_) => "error",
    };
    let error = out.as_ref().err();
    let took = started.elapsed();
    metrics.observe_reconcile(controller, took.as_secs_f64(), result, error.map(label));
    span.in_scope(|| tracing::debug!(?took, ?queued, result, "reconciled"));
    if let Some(e) = error {
        span.in_scope(|| failed(e));
    }
    out
}
