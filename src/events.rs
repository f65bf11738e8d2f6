//! Publishing `events.k8s.io/v1` Events, one object per occurrence.
//!
//! kube-runtime's `Recorder` folds events with the same type, reason and action into one series
//! for minutes and keeps the first note, so "batch 2/3 started" would be shown as a repeat of
//! "batch 1/3 started". Operators read these notes, so each event is its own object here.
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

/// Who publishes: controller name and instance (pod) name.
#[derive(Clone)]
pub struct Publisher {
    pub client: kube::Client,
    pub controller: String,
    pub instance: String,
    /// Events published in the background; [`Publisher::drain`] waits for them, so a
    /// controller that stops (e.g. loses leadership) writes nothing afterwards.
    tasks: tokio_util::task::TaskTracker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

impl Publisher {
    pub fn new(client: kube::Client, controller: impl Into<String>, instance: impl Into<String>) -> Self {
        Publisher {
            client,
            controller: controller.into(),
            instance: instance.into(),
            tasks: Default::default(),
        }
    }

    /// Publish events in order without holding up the caller.
    pub fn publish_in_background(&self, regarding: ObjectReference, events: Vec<(Severity, String, String)>) {
        let me = self.clone();
        // In the caller's span: its lines carry the reconcile they come from.
        self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            for (severity, reason, note) in events {
                if let Err(e) = me.publish(&regarding, severity, &reason, &note).await {
                    tracing::debug!(error = %e, "publishing an event failed");
                }
            }
        }));
    }

    /// Wait (bounded) for background publishing to finish; later calls publish nothing.
    pub async fn drain(&self, timeout: std::time::Duration) {
        self.tasks.close();
        let _ = tokio::time::timeout(timeout, self.tasks.wait()).await;
    }

    /// Create one Event about `regarding` (its namespace is the event's namespace).
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let ns = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or("object"),
            now.as_nanosecond()
        );
        // Notes are limited to 1 kB by the API.
        let note: String = note.chars().take(1000).collect();
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note),
            type_: Some(match severity {
                Severity::Normal => "Normal".into(),
                Severity::Warning => "Warning".into(),
            }),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        Api::<Event>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &ev)
            .await
            .map(|_| ())
    }
}
