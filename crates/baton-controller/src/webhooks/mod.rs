//! Webhook notifications, shared by the Rollout and ListenerSet controllers: each decides
//! (purely) which [`Message`]s a reconcile makes; here they go to an ordered queue per object
//! and sink, delivered by a task of its own, so no webhook ever holds a reconcile worker. A
//! failed attempt is retried with exponential backoff ([`Config`], [`schedule`]) until the
//! message has waited `retry_for`; a message is delivered before the next one of its queue is
//! tried, so a receiver sees an object's events in order. Failures are Warning Events
//! (`NotificationFailed`) and `baton_notifications_total`.
//!
//! The queues live in memory: what is still queued when the controller exits is not sent (the
//! next leader does not re-decide transitions the status already records). Each message carries
//! an idempotency key, so a receiver can drop a transition reported twice (a decision from a
//! stale cache, a controller failover).
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::mpsc;

use crate::api::notifications::{Notification, NotificationFormat};
use crate::events::Publisher;
use crate::metrics::NotificationLabels;

pub mod client;
mod deliver;
mod error;
pub mod format;
pub mod schedule;
pub mod sink;

pub use error::{SecretsNotRead, SinkError};
pub use sink::{SecretsReadable, SECRET_TTL};

/// Retry settings of deliveries.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a message is retried after it was queued (`--notification-retry-seconds`).
    pub retry_for: Duration,
    /// The wait after the first failed attempt; it doubles after each.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
}

/// Default bound on retrying one message.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(600);

impl Default for Config {
    fn default() -> Self {
        Config {
            retry_for: DEFAULT_RETRY_FOR,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// The kind of object a message is about: its CloudEvents `type` prefix and its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceKind {
    /// `dev.baton.<kind>.`
    pub type_prefix: &'static str,
    /// The plural of the resource (`rollouts`), for the CloudEvents `source`.
    pub plural: &'static str,
}

/// One message, whatever its format.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The idempotency key (also the CloudEvents `id`).
    pub id: String,
    /// The subscription word of the event.
    pub event: &'static str,
    pub kind: SourceKind,
    /// The object's name and namespace.
    pub name: String,
    pub namespace: String,
    /// What happened, for people.
    pub message: String,
    pub time: jiff::Timestamp,
    /// The body of the `json` format (and the data of the CloudEvents ones).
    pub data: serde_json::Value,
}

/// A message for sink `sink` (its index in `spec.notifications`).
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub sink: usize,
    pub message: Message,
}

/// Message ids remembered per object, to send a transition reported twice only once.
const SEEN: usize = 256;

/// One message waiting in a queue.
struct Queued {
    regarding: ObjectReference,
    namespace: String,
    secret: String,
    format: NotificationFormat,
    message: Message,
    queued: Instant,
}

/// The queues of every object of one controller, by object uid and sink index.
pub struct Notifier {
    cfg: Config,
    http: Option<client::HttpClient>,
    sinks: sink::Sinks,
    events: Publisher,
    counts: Family<NotificationLabels, Counter>,
    queues: Mutex<HashMap<(String, usize), mpsc::UnboundedSender<Queued>>>,
    seen: Mutex<HashMap<String, VecDeque<(String, usize)>>>,
}

impl Notifier {
    /// A notifier reporting failures with `events` (the controller's own publisher).
    pub fn new(
        client: kube::Client,
        access: sink::SecretsReadable,
        events: Publisher,
        counts: Family<NotificationLabels, Counter>,
        cfg: Config,
    ) -> Arc<Self> {
        Arc::new(Notifier {
            cfg,
            http: client::http_client(),
            sinks: sink::Sinks::new(client, access),
            events,
            counts,
            queues: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// What is wrong with the sinks of an object in `ns`, in the words of condition
    /// `NotificationsReady` (None without sinks; empty: nothing).
    pub async fn problems<E>(&self, ns: &str, sinks: &[Notification<E>]) -> Option<Vec<String>> {
        if sinks.is_empty() {
            return None;
        }
        let mut problems = Vec::new();
        for s in sinks {
            if let Err(e) = self.sinks.resolve(ns, &s.sink.secret_ref.name).await {
                let why = e.to_string();
                if !problems.contains(&why) {
                    problems.push(why);
                }
            }
        }
        Some(problems)
    }

    /// Queue `out` for the object of uid `uid` in `ns` (`regarding`), whose sinks are `sinks`.
    /// A message already queued for a sink (by id) is not queued again.
    pub fn send<E>(
        self: &Arc<Self>,
        regarding: &ObjectReference,
        uid: &str,
        ns: &str,
        sinks: &[Notification<E>],
        out: Vec<Outgoing>,
    ) {
        for o in out {
            let Some(sink) = sinks.get(o.sink) else { continue };
            if !self.first_time(uid, &o.message.id, o.sink) {
                continue;
            }
            let q = Queued {
                regarding: regarding.clone(),
                namespace: ns.to_string(),
                secret: sink.sink.secret_ref.name.clone(),
                format: sink.format,
                message: o.message,
                queued: Instant::now(),
            };
            self.enqueue(uid, o.sink, q);
        }
    }

    /// Is message `id` for `sink` new for object `uid`? Remembers it.
    fn first_time(&self, uid: &str, id: &str, sink: usize) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let ids = seen.entry(uid.to_string()).or_default();
        if ids.iter().any(|(i, s)| i == id && *s == sink) {
            return false;
        }
        if ids.len() >= SEEN {
            ids.pop_front();
        }
        ids.push_back((id.to_string(), sink));
        true
    }

    /// Put `q` in the queue of (`uid`, `sink`), starting its task if it has none.
    fn enqueue(self: &Arc<Self>, uid: &str, sink: usize, q: Queued) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let key = (uid.to_string(), sink);
        let q = match queues.get(&key) {
            Some(tx) => match tx.send(q) {
                Ok(()) => return,
                Err(mpsc::error::SendError(q)) => q,
            },
            None => q,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // Cannot fail: the receiver is alive.
        let _ = tx.send(q);
        queues.insert(key, tx);
        tokio::spawn(deliver::run_queue(self.clone(), rx));
    }

    /// Object `uid` is gone: its queues end once they are delivered.
    pub fn forget(&self, uid: &str) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(u, _), _| u != uid);
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    fn count(&self, result: &str) {
        self.counts
            .get_or_create(&NotificationLabels {
                result: result.to_string(),
            })
            .inc();
    }
}
