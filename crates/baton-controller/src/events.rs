//! Publishing Events: repeats aggregated into series, transitions once.
//!
//! Events are written through core/v1 with both generations of fields: the events.k8s.io/v1
//! ones (`eventTime`, `series`, `reportingComponent`/`reportingInstance`, `action`) and
//! `firstTimestamp`/`lastTimestamp`/`count`, as client-go's `tools/record` writes them.
//! `kubectl describe` orders Events by `lastTimestamp` alone, and kube-apiserver refuses those
//! fields through events.k8s.io/v1 (`deprecatedLastTimestamp` "needs to be unset" on create,
//! immutable on update): Events written there all have none, and `describe` shows them in the
//! order the API lists them, i.e. by name. Readers of events.k8s.io/v1 see the same objects
//! (one store, `deprecated*` being these fields).
//!
//! Two kinds of occurrence (Events per Rollout update, and what they cost etcd):
//! * *Transitions* (a batch started or completed, a rollout completed or failed) carry a key that
//!   names the transition ([`Occurrence::once`]): the Event's name is derived from it, so a second
//!   report of the same transition — from a reconcile that planned from a stale cache, or from a
//!   restarted controller — finds the first one (`AlreadyExists`) and writes nothing new.
//! * Everything else is aggregated like client-go's `tools/events` `EventBroadcaster`: the first
//!   occurrence is created; an isomorphic one within [`SERIES_WINDOW`] of the last (same
//!   regarding object, type, reason, reporting controller and instance — and, unlike client-go,
//!   the same note: baton's notes carry the facts, see below) patches `series.count` and
//!   `series.lastObservedTime` of that Event instead of making a new object. client-go patches
//!   at the second occurrence and then only every 30 minutes; here later occurrences are
//!   counted in memory and written at most every [`SERIES_FLUSH`] (and when publishing stops).
//!
//! kube-runtime's `Recorder` folds events with the same type, reason and action whatever their
//! note, so "batch 2/3 started" would be shown as a repeat of "batch 1/3 started": hence this
//! module rather than the `Recorder`.
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSeries, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

/// An isomorphic occurrence this long after the last one starts a new Event (client-go's
/// `finishTime`).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Least time between two writes of one series' count.
pub const SERIES_FLUSH: Duration = Duration::from_secs(30);

/// Who publishes: controller name and instance (pod) name.
#[derive(Clone)]
pub struct Publisher {
    pub client: kube::Client,
    pub controller: String,
    pub instance: String,
    /// Events published in the background; [`Publisher::drain`] waits for them, so a
    /// controller that stops (e.g. loses leadership) writes nothing afterwards.
    tasks: tokio_util::task::TaskTracker,
    /// Cancelled by [`Publisher::drain`]: series counts waiting for their flush are written.
    stopping: tokio_util::sync::CancellationToken,
    series: Arc<Mutex<SeriesCache>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Normal,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Normal => "Normal",
            Severity::Warning => "Warning",
        }
    }
}

/// One thing to report about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub severity: Severity,
    pub reason: String,
    pub note: String,
    /// A transition's key (unique per transition of the regarding object): reported once,
    /// under a name derived from it.
    pub once: Option<String>,
}

impl Occurrence {
    pub fn new(severity: Severity, reason: impl Into<String>, note: impl Into<String>) -> Self {
        Occurrence {
            severity,
            reason: reason.into(),
            // Notes are limited to 1 kB by the API.
            note: note.into().chars().take(1000).collect(),
            once: None,
        }
    }

    /// This occurrence is the transition `key`: published once.
    pub fn once(mut self, key: impl Into<String>) -> Self {
        self.once = Some(key.into());
        self
    }
}

/// What makes two occurrences one series (the publisher's controller and instance are fixed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    /// API version, kind, namespace, name and uid of the regarding object.
    regarding: [Option<String>; 5],
    severity: Severity,
    reason: String,
    note: String,
}

impl SeriesKey {
    fn new(regarding: &ObjectReference, o: &Occurrence) -> Self {
        let r = regarding;
        SeriesKey {
            regarding: [
                r.api_version.clone(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
                r.uid.clone(),
            ],
            severity: o.severity,
            reason: o.reason.clone(),
            note: o.note.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Series {
    /// The Event's name.
    name: String,
    /// Occurrences so far, and as last written.
    count: i32,
    written: i32,
    last: Timestamp,
    /// A flush of the count is scheduled.
    flushing: bool,
}

/// What to write for an occurrence of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A new Event of this name.
    Create(String),
    /// Patch the series of Event `name` to `count`, last seen at `last`.
    Patch { name: String, count: i32, last: Timestamp },
    /// Counted; a flush of the series is to be scheduled (after [`SERIES_FLUSH`]).
    ScheduleFlush,
    /// Counted; a flush is already scheduled.
    Counted,
}

/// The series seen recently (pure: times are given).
#[derive(Debug, Default)]
struct SeriesCache {
    series: HashMap<SeriesKey, Series>,
    /// Transition keys already reported (name → when), to skip their create.
    once: HashMap<String, Timestamp>,
}

fn older_than(t: Timestamp, now: Timestamp, d: Duration) -> bool {
    now.duration_since(t).unsigned_abs() >= d && t < now
}

impl SeriesCache {
    /// An occurrence of `key` at `now`; `fresh` is the name for a new Event.
    fn occur(&mut self, key: SeriesKey, now: Timestamp, fresh: impl FnOnce() -> String) -> Step {
        self.expire(now);
        match self.series.get_mut(&key) {
            Some(s) => {
                s.count += 1;
                s.last = now;
                if s.written == 1 {
                    // The second occurrence makes the Event a series at once (as client-go).
                    s.written = s.count;
                    Step::Patch {
                        name: s.name.clone(),
                        count: s.count,
                        last: now,
                    }
                } else if s.flushing {
                    Step::Counted
                } else {
                    s.flushing = true;
                    Step::ScheduleFlush
                }
            }
            None => {
                let name = fresh();
                let series = Series {
                    name: name.clone(),
                    count: 1,
                    written: 1,
                    last: now,
                    flushing: false,
                };
                self.series.insert(key, series);
                Step::Create(name)
            }
        }
    }

    /// The scheduled flush of `key`: the patch to write, if its count moved.
    fn flush(&mut self, key: &SeriesKey) -> Option<Step> {
        let s = self.series.get_mut(key)?;
        s.flushing = false;
        if s.count == s.written {
            return None;
        }
        s.written = s.count;
        Some(Step::Patch {
            name: s.name.clone(),
            count: s.count,
            last: s.last,
        })
    }

    /// Is transition `name` reported already (by this publisher, recently)? Records it if not.
    fn first_report(&mut self, name: &str, now: Timestamp) -> bool {
        self.expire(now);
        self.once.insert(name.to_string(), now).is_none()
    }

    /// Series whose last occurrence is older than the window end (their count was flushed
    /// when their flush ran); transition names likewise.
    fn expire(&mut self, now: Timestamp) {
        self.series
            .retain(|_, s| s.flushing || !older_than(s.last, now, SERIES_WINDOW));
        self.once.retain(|_, t| !older_than(*t, now, SERIES_WINDOW));
    }
}

/// A DNS-subdomain name for the transition `key` of `regarding`: the same for every report
/// (whatever its note says besides).
fn once_name(regarding: &ObjectReference, o: &Occurrence, key: &str) -> String {
    let mut h = fnv::FnvHasher::default();
    (regarding.uid.as_deref(), regarding.kind.as_deref(), key, &o.reason).hash(&mut h);
    format!("{}.{:016x}", object_name(regarding), h.finish())
}

fn object_name(regarding: &ObjectReference) -> String {
    regarding
        .name
        .as_deref()
        .unwrap_or("object")
        .chars()
        .take(200)
        .collect()
}

impl Publisher {
    pub fn new(client: kube::Client, controller: impl Into<String>, instance: impl Into<String>) -> Self {
        Publisher {
            client,
            controller: controller.into(),
            instance: instance.into(),
            tasks: Default::default(),
            stopping: Default::default(),
            series: Default::default(),
        }
    }

    /// Publish occurrences in order without holding up the caller.
    pub fn publish_in_background(&self, regarding: ObjectReference, occurrences: Vec<Occurrence>) {
        let me = self.clone();
        // In the caller's span: its lines carry the reconcile they come from.
        self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            for o in occurrences {
                if let Err(e) = me.publish_occurrence(&regarding, &o).await {
                    tracing::debug!(error = %e, "publishing an event failed");
                }
            }
        }));
    }

    /// Wait (bounded) for background publishing to finish, pending series counts written;
    /// later calls publish nothing.
    pub async fn drain(&self, timeout: Duration) {
        self.stopping.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(timeout, self.tasks.wait()).await;
    }

    /// Report `note` about `regarding` (its namespace is the event's namespace), as a new Event
    /// or a series count.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        self.publish_occurrence(regarding, &Occurrence::new(severity, reason, note))
            .await
    }

    /// Publish one occurrence: see the module documentation.
    pub async fn publish_occurrence(&self, regarding: &ObjectReference, o: &Occurrence) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        if let Some(key) = &o.once {
            let name = once_name(regarding, o, key);
            if !self.lock().first_report(&name, now) {
                return Ok(());
            }
            return match self.create(regarding, o, name, now).await {
                Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Ok(()),
                other => other,
            };
        }
        let key = SeriesKey::new(regarding, o);
        let fresh = || format!("{}.{:x}", object_name(regarding), now.as_nanosecond());
        let step = self.lock().occur(key.clone(), now, fresh);
        self.write(regarding, o, step, now, key).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn write(
        &self,
        regarding: &ObjectReference,
        o: &Occurrence,
        step: Step,
        now: Timestamp,
        key: SeriesKey,
    ) -> Result<(), kube::Error> {
        match step {
            Step::Create(name) => self.create(regarding, o, name, now).await,
            Step::Patch { name, count, last } => self.patch_series(regarding, o, &name, count, last, now).await,
            Step::Counted => Ok(()),
            Step::ScheduleFlush => {
                let (me, regarding, o) = (self.clone(), regarding.clone(), o.clone());
                self.tasks.spawn(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(SERIES_FLUSH) => {}
                        _ = me.stopping.cancelled() => {}
                    }
                    let step = me.lock().flush(&key);
                    if let Some(Step::Patch { name, count, last }) = step {
                        let r = me.patch_series(&regarding, &o, &name, count, last, Timestamp::now());
                        if let Err(e) = r.await {
                            tracing::debug!(error = %e, "writing an event series failed");
                        }
                    }
                });
                Ok(())
            }
        }
    }

    fn event(&self, regarding: &ObjectReference, o: &Occurrence, name: String, now: Timestamp) -> Event {
        let ns = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ns),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            action: Some(o.reason.clone()),
            reason: Some(o.reason.clone()),
            message: Some(o.note.clone()),
            type_: Some(o.severity.as_str().into()),
            involved_object: regarding.clone(),
            reporting_component: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }

    fn api(&self, regarding: &ObjectReference) -> Api<Event> {
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        Api::namespaced(self.client.clone(), ns)
    }

    async fn create(
        &self,
        regarding: &ObjectReference,
        o: &Occurrence,
        name: String,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let ev = self.event(regarding, o, name, now);
        self.api(regarding)
            .create(&PostParams::default(), &ev)
            .await
            .map(|_| ())
    }

    /// Patch the series of Event `name`; an Event gone meanwhile is created again with it (as
    /// client-go does).
    async fn patch_series(
        &self,
        regarding: &ObjectReference,
        o: &Occurrence,
        name: &str,
        count: i32,
        last: Timestamp,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let series = EventSeries {
            count: Some(count),
            last_observed_time: Some(MicroTime(last)),
        };
        // lastTimestamp moves with the series: it is what `kubectl describe` orders by.
        let patch = serde_json::json!({
            "series": series,
            "count": count,
            "lastTimestamp": Time(last),
        });
        let api = self.api(regarding);
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let mut ev = self.event(regarding, o, name.to_string(), now);
                ev.series = Some(series);
                ev.count = Some(count);
                ev.last_timestamp = Some(Time(last));
                api.create(&PostParams::default(), &ev).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn key(note: &str) -> SeriesKey {
        let regarding = ObjectReference {
            kind: Some("Rollout".into()),
            namespace: Some("ns".into()),
            name: Some("web".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        };
        SeriesKey::new(&regarding, &Occurrence::new(Severity::Warning, "ActionIgnored", note))
    }

    #[test]
    fn repeats_become_one_event_with_a_count() {
        let mut c = SeriesCache::default();
        let k = key("promote requested, nothing done");
        assert_eq!(
            c.occur(k.clone(), at(0), || "web.1".into()),
            Step::Create("web.1".into())
        );
        // The second occurrence patches the series at once.
        assert_eq!(
            c.occur(k.clone(), at(5), || "web.2".into()),
            Step::Patch {
                name: "web.1".into(),
                count: 2,
                last: at(5)
            }
        );
        // Later ones are counted and flushed together.
        assert_eq!(c.occur(k.clone(), at(6), || "web.3".into()), Step::ScheduleFlush);
        assert_eq!(c.occur(k.clone(), at(7), || "web.4".into()), Step::Counted);
        assert_eq!(
            c.flush(&k),
            Some(Step::Patch {
                name: "web.1".into(),
                count: 4,
                last: at(7)
            })
        );
        assert_eq!(c.flush(&k), None, "nothing new to write");
    }

    #[test]
    fn another_note_or_a_repeat_after_the_window_is_a_new_event() {
        let mut c = SeriesCache::default();
        assert_eq!(
            c.occur(key("a"), at(0), || "web.1".into()),
            Step::Create("web.1".into())
        );
        assert_eq!(
            c.occur(key("b"), at(1), || "web.2".into()),
            Step::Create("web.2".into())
        );
        let later = at(SERIES_WINDOW.as_secs() as i64 + 1);
        assert_eq!(
            c.occur(key("a"), later, || "web.3".into()),
            Step::Create("web.3".into())
        );
    }

    #[test]
    fn a_transition_is_reported_once() {
        let regarding = ObjectReference {
            kind: Some("Rollout".into()),
            name: Some("web".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        };
        let o = Occurrence::new(Severity::Normal, "BatchStarted", "batch 2/3").once("g2/web-abc/b2");
        let name = once_name(&regarding, &o, "g2/web-abc/b2");
        assert_eq!(name, once_name(&regarding, &o.clone(), "g2/web-abc/b2"), "stable");
        assert!(name.starts_with("web."));
        assert_ne!(name, once_name(&regarding, &o, "g3/web-abc/b2"));
        let mut c = SeriesCache::default();
        assert!(c.first_report(&name, at(0)));
        assert!(!c.first_report(&name, at(1)));
    }
}
