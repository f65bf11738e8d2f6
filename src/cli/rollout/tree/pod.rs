//! What the CLI says about one pod of a Rollout: READY x/y, restarts, the status word kubectl and
//! Argo Rollouts' plugin show (a container's waiting or terminated reason, else the phase), and
//! why it is stuck when it is. Pure functions of the Pod object.
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};
use kube::ResourceExt;

use crate::api::rollout::labels;
use crate::cli::output;

/// Healthy, or Running and Ready.
pub const ICON_OK: &str = "✔";
/// Progressing, or a pod starting.
pub const ICON_PROGRESSING: &str = "◌";
/// Degraded, failed, or a crash-looping pod.
pub const ICON_BAD: &str = "✖";
/// Paused.
pub const ICON_PAUSED: &str = "॥";
/// A pod stuck short of Ready.
pub const ICON_WARNING: &str = "⚠";
/// Neither good nor bad (an older revision).
pub const ICON_NEUTRAL: &str = "•";

/// Waiting reasons of a container that is merely starting, not stuck.
const STARTING: &[&str] = &["ContainerCreating", "PodInitializing"];

/// One pod, as the tree and `status` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRow {
    pub name: String,
    /// Its instance (`<rollout>-<ordinal>`).
    pub instance: Option<String>,
    /// Hash of the revision it runs.
    pub hash: Option<String>,
    /// Containers Ready, of all.
    pub ready_containers: usize,
    pub containers: usize,
    pub restarts: i32,
    /// kubectl's STATUS word: `Running`, `Pending`, `CrashLoopBackOff`, `Terminating`, …
    pub status: String,
    /// The pod's Ready condition is True.
    pub ready: bool,
    pub created: Option<Timestamp>,
    /// Not Ready since (the Ready condition's last transition, else creation).
    unready_since: Option<Timestamp>,
    /// Why it cannot get Ready on its own: a waiting reason past starting, a failed container,
    /// unschedulable.
    problem: Option<String>,
    /// Why the Ready condition is False (`ContainersNotReady`: readiness failing).
    unready_reason: Option<String>,
}

fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn with_message(reason: &str, message: Option<&String>) -> String {
    match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{reason}: {m}"),
        None => reason.to_string(),
    }
}

/// The reason a container is not running, and whether it is a problem (kubectl's precedence:
/// waiting, then terminated).
fn container_reason(c: &ContainerStatus) -> Option<(String, bool)> {
    let state = c.state.as_ref()?;
    if let Some(w) = state.waiting.as_ref().and_then(|w| Some((w.reason.as_ref()?, w))) {
        let problem = !STARTING.contains(&w.0.as_str());
        let text = if problem {
            with_message(w.0, w.1.message.as_ref())
        } else {
            w.0.clone()
        };
        return Some((text, problem));
    }
    let t = state.terminated.as_ref()?;
    let reason = match (&t.reason, t.signal) {
        (Some(r), _) if !r.is_empty() => r.clone(),
        (_, Some(s)) if s != 0 => format!("Signal:{s}"),
        _ => format!("ExitCode:{}", t.exit_code),
    };
    Some((reason, t.exit_code != 0))
}

impl PodRow {
    pub fn of(pod: &Pod) -> PodRow {
        let spec_containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
        let st = pod.status.clone().unwrap_or_default();
        let mut status = st
            .reason
            .clone()
            .or_else(|| st.phase.clone())
            .unwrap_or_else(|| "Unknown".into());
        let mut problem = None;
        for c in st.init_container_statuses.iter().flatten() {
            if let Some((reason, bad)) = container_reason(c).filter(|(r, _)| r != "Completed") {
                status = format!("Init:{}", reason.split(':').next().unwrap_or_default());
                if bad {
                    problem = Some(format!("Init:{reason}"));
                }
                break;
            }
        }
        let statuses = st.container_statuses.clone().unwrap_or_default();
        let mut restarts = 0;
        let mut ready_containers = 0;
        for c in statuses.iter().rev() {
            restarts += c.restart_count;
            if c.ready {
                ready_containers += 1;
            }
            if let Some((reason, bad)) = container_reason(c) {
                status = reason.split(':').next().unwrap_or_default().to_string();
                if bad && problem.is_none() {
                    problem = Some(reason);
                }
            }
        }
        if let Some(c) = condition(pod, "PodScheduled").filter(|c| c.status == "False") {
            let reason = c.reason.clone().unwrap_or_else(|| "Unschedulable".into());
            problem.get_or_insert_with(|| with_message(&reason, c.message.as_ref()));
        }
        if pod.metadata.deletion_timestamp.is_some() {
            status = "Terminating".into();
        }
        let ready_cond = condition(pod, "Ready");
        let ready = ready_cond.is_some_and(|c| c.status == "True");
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let labels = pod.labels();
        PodRow {
            name: pod.name_any(),
            instance: labels.get(labels::INSTANCE).cloned(),
            hash: labels.get(labels::REVISION_HASH).cloned(),
            ready_containers,
            containers: spec_containers.max(statuses.len()),
            restarts,
            status,
            ready,
            created,
            unready_since: ready_cond
                .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
                .or(created),
            problem,
            unready_reason: ready_cond.filter(|c| c.status != "True").and_then(|c| c.reason.clone()),
        }
    }

    pub fn terminating(&self) -> bool {
        self.status == "Terminating"
    }

    /// `1/1`, as kubectl's READY column.
    pub fn ready_text(&self) -> String {
        format!("{}/{}", self.ready_containers, self.containers)
    }

    /// Why the pod is not Ready, when it is not (and not going away).
    pub fn not_ready_reason(&self, now: Timestamp) -> Option<String> {
        if self.ready || self.terminating() {
            return None;
        }
        if let Some(p) = &self.problem {
            return Some(p.clone());
        }
        let since = self
            .unready_since
            .map(|t| format!(" for {}", output::human_duration(now.duration_since(t))))
            .unwrap_or_default();
        match (&self.unready_reason, self.status.as_str()) {
            (_, "Pending" | "ContainerCreating" | "PodInitializing") => Some(format!("{}{since}", self.status)),
            (Some(r), _) => Some(format!("not Ready{since} ({r})")),
            (None, _) => Some(format!("not Ready{since}")),
        }
    }

    /// Why the pod is stuck short of Ready: a problem it cannot leave on its own, or not Ready
    /// for longer than `deadline` (the Rollout's progress deadline, after which the controller
    /// gives up on it too), or `failed` (its instance failed on its revision).
    pub fn stuck(&self, now: Timestamp, deadline: Duration, failed: bool) -> Option<String> {
        let reason = self.not_ready_reason(now)?;
        let long = self
            .unready_since
            .is_some_and(|t| now.duration_since(t).unsigned_abs() >= deadline);
        (self.problem.is_some() || long || failed).then_some(reason)
    }

    /// Argo Rollouts' pod icon for the status word; a Running pod that is not Ready is
    /// progressing, or a warning once stuck.
    pub fn icon(&self, stuck: bool) -> &'static str {
        let s = self.status.as_str();
        if stuck && !matches!(s, "CrashLoopBackOff" | "Failed") && !s.starts_with("ExitCode:") {
            return ICON_WARNING;
        }
        match s {
            _ if s.starts_with("Init:") => ICON_PROGRESSING,
            _ if s.starts_with("Signal") || s.starts_with("ExitCode") => ICON_BAD,
            _ if s.ends_with("Error") || s.starts_with("Err") => ICON_WARNING,
            "Running" | "Completed" if self.ready || s == "Completed" => ICON_OK,
            "Running" | "Pending" | "Terminating" | "ContainerCreating" => ICON_PROGRESSING,
            "Failed" | "InvalidImageName" | "CrashLoopBackOff" => ICON_BAD,
            "ImagePullBackOff" | "RegistryUnavailable" => ICON_WARNING,
            _ => "?",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-0-abc", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"baton.dev/instance": "web-0", "baton.dev/revision-hash": "abc"}},
            "spec": {"containers": [{"name": "app", "image": "web:v2"}]},
            "status": status,
        }))
        .expect("a pod")
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    #[test]
    fn a_crash_looping_pod_is_stuck_with_its_waiting_reason() {
        let p = PodRow::of(&pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "image": "web:v2",
            "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}}]}),
        ));
        assert_eq!(p.status, "CrashLoopBackOff");
        assert_eq!(p.restarts, 4);
        assert_eq!(p.ready_text(), "0/1");
        let now = at("2026-01-01T00:00:05Z");
        assert_eq!(
            p.stuck(now, Duration::from_secs(600), false).as_deref(),
            Some("CrashLoopBackOff: back-off restarting failed container")
        );
        assert_eq!(p.icon(true), ICON_BAD);
    }

    #[test]
    fn a_running_pod_not_ready_is_stuck_only_past_the_deadline_or_when_failed() {
        let p = PodRow::of(&pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "containerStatuses": [{"name": "app", "image": "web:v2", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]})));
        let now = at("2026-01-01T00:00:11Z");
        assert_eq!(
            p.not_ready_reason(now).as_deref(),
            Some("not Ready for 10s (ContainersNotReady)")
        );
        assert_eq!(p.stuck(now, Duration::from_secs(30), false), None);
        assert!(p.stuck(now, Duration::from_secs(10), false).is_some());
        assert!(p.stuck(now, Duration::from_secs(30), true).is_some());
        assert_eq!(p.icon(false), ICON_PROGRESSING);
        assert_eq!(p.icon(true), ICON_WARNING);
    }

    #[test]
    fn an_unschedulable_pod_says_why_and_a_ready_one_is_fine() {
        let p = PodRow::of(&pod(json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]})));
        assert_eq!(p.status, "Pending");
        let now = at("2026-01-01T00:00:02Z");
        assert_eq!(
            p.stuck(now, Duration::from_secs(600), false).as_deref(),
            Some("Unschedulable: 0/1 nodes are available")
        );
        let ok = PodRow::of(&pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "web:v2", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {}}}]})));
        assert_eq!(ok.not_ready_reason(now), None);
        assert_eq!(ok.icon(false), ICON_OK);
        assert_eq!(ok.ready_text(), "1/1");
    }

    #[test]
    fn image_pull_back_off_is_a_warning() {
        let p = PodRow::of(&pod(json!({"phase": "Pending", "containerStatuses": [{"name": "app",
            "image": "web:v2", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]})));
        assert_eq!(p.status, "ImagePullBackOff");
        assert_eq!(p.icon(true), ICON_WARNING);
        assert_eq!(
            p.stuck(at("2026-01-01T00:00:01Z"), Duration::from_secs(600), false)
                .as_deref(),
            Some("ImagePullBackOff")
        );
    }
}
