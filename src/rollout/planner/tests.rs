//! Unit tests of the parent module.
use super::*;
use crate::api::rollout::{Pause, Pin};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;

const NAME: &str = "svc";

fn t0() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

fn at(secs: i64) -> Timestamp {
    add_secs(t0(), secs)
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn spec(version: &str, replicas: i32) -> RolloutSpec {
    let labels: BTreeMap<String, String> = [("app".to_string(), NAME.to_string())].into();
    RolloutSpec {
        replicas,
        selector: LabelSelector {
            match_labels: Some(labels.clone()),
            match_expressions: None,
        },
        version: version.into(),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some(format!("svc:{version}")),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        },
        strategy: RolloutStrategy {
            batches: vec![IntOrString::Int(1), pct("50%"), pct("100%")],
            pause: None,
            max_surge: IntOrString::Int(1),
            max_unavailable: IntOrString::Int(0),
        },
        min_ready_seconds: 0,
        progress_deadline_seconds: 60,
        auto_rollback: true,
        paused: false,
        revision_history_limit: 10,
        pins: vec![],
    }
}

fn hash_of(version: &str) -> String {
    let s = spec(version, 1);
    revision_hash(&s.template, version)
}

fn rev(version: &str, number: i64) -> RevisionInfo {
    let hash = hash_of(version);
    RevisionInfo {
        name: revision_name(NAME, &hash),
        revision: number,
        hash,
        version: version.into(),
    }
}

fn ready_pod(slot: i32, version: &str, since: Timestamp) -> ObservedPod {
    let hash = hash_of(version);
    ObservedPod {
        version: version.into(),
        ready: true,
        ready_since: Some(since),
        created: Some(since),
        ..ObservedPod::new(pod_name(NAME, slot, &hash), slot, hash)
    }
}

fn input(spec: RolloutSpec, pods: Vec<ObservedPod>, revisions: Vec<RevisionInfo>) -> PlanInput {
    PlanInput {
        name: NAME.into(),
        generation: 1,
        spec,
        requests: ActionRequests::default(),
        status: None,
        pods,
        revisions,
        now: at(1000),
        drain_timeout: DEFAULT_DRAIN_TIMEOUT,
    }
}

/// A Healthy rollout of `version` on `replicas` slots.
fn healthy(version: &str, replicas: i32) -> PlanInput {
    let pods = (0..replicas).map(|s| ready_pod(s, version, at(0))).collect();
    let mut inp = input(spec(version, replicas), pods, vec![rev(version, 1)]);
    let first = plan(&inp);
    assert_eq!(
        first.status.phase,
        Some(RolloutPhase::Healthy),
        "{:?}",
        first.status.message
    );
    inp.status = Some(first.status);
    inp
}

fn creates(p: &Plan) -> Vec<(i32, String)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod { slot, version, .. } => Some((*slot, version.clone())),
            _ => None,
        })
        .collect()
}

fn deletes(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn condition<'s>(st: &'s RolloutStatus, type_: &str) -> &'s Condition {
    st.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

fn has_event(p: &Plan, reason: &str) -> bool {
    p.events.iter().any(|e| e.reason == reason)
}

// ---- a small world: applies actions, pods become ready after some ticks -------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    ReadyAfter(i64),
    NeverReady,
    CrashLoop,
}

struct World {
    input: PlanInput,
    behaviour: BTreeMap<String, Behaviour>,
    /// Pod name -> remaining ticks before it is gone (terminating).
    grace: BTreeMap<String, i64>,
    events: Vec<PlanEvent>,
}

impl World {
    fn new(inp: PlanInput) -> Self {
        Self {
            input: inp,
            behaviour: BTreeMap::new(),
            grace: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn apply(&mut self, p: &Plan) {
        let now = self.input.now;
        for action in &p.actions {
            match action {
                Action::CreateRevision {
                    name,
                    hash,
                    revision,
                    version,
                    ..
                } => self.input.revisions.push(RevisionInfo {
                    name: name.clone(),
                    revision: *revision,
                    hash: hash.clone(),
                    version: version.clone(),
                }),
                Action::DeleteRevision { name } => self.input.revisions.retain(|r| &r.name != name),
                Action::CreatePod {
                    name,
                    slot,
                    hash,
                    version,
                    ..
                } => {
                    assert!(
                        !self.input.pods.iter().any(|p| &p.name == name),
                        "pod {name} created twice"
                    );
                    let mut pod = ObservedPod::new(name.clone(), *slot, hash.clone());
                    pod.version = version.clone();
                    pod.created = Some(now);
                    self.input.pods.push(pod);
                }
                Action::DeletePod { name } => {
                    if let Some(pod) = self.input.pods.iter_mut().find(|p| &p.name == name) {
                        let grace = if pod.failed { 0 } else { 1 };
                        pod.terminating = true;
                        pod.ready = false;
                        self.grace.insert(name.clone(), grace);
                    }
                }
                Action::DrainPod { name } => {
                    if let Some(pod) = self.input.pods.iter_mut().find(|p| &p.name == name) {
                        pod.drain_requested_at = Some(now);
                    }
                }
                Action::UndrainPod { name } => {
                    if let Some(pod) = self.input.pods.iter_mut().find(|p| &p.name == name) {
                        pod.drain_requested_at = None;
                    }
                }
            }
        }
        self.input.status = Some(p.status.clone());
        self.events.extend(p.events.iter().cloned());
    }

    fn tick(&mut self) {
        self.input.now = add_secs(self.input.now, 1);
        let now = self.input.now;
        let gone: Vec<String> = self
            .grace
            .iter_mut()
            .filter_map(|(name, left)| {
                *left -= 1;
                (*left < 0).then(|| name.clone())
            })
            .collect();
        for name in gone {
            self.grace.remove(&name);
            self.input.pods.retain(|p| p.name != name);
        }
        for pod in self.input.pods.iter_mut().filter(|p| !p.terminating) {
            let behaviour = self
                .behaviour
                .get(&pod.version)
                .copied()
                .unwrap_or(Behaviour::ReadyAfter(2));
            let age = pod.created.map_or(0, |c| now.duration_since(c).as_secs());
            match behaviour {
                Behaviour::ReadyAfter(n) if age >= n && !pod.ready => {
                    pod.ready = true;
                    pod.ready_since = Some(now);
                }
                Behaviour::CrashLoop if age >= 2 => {
                    pod.crash_looping = true;
                    pod.restarts += 1;
                }
                _ => {}
            }
        }
    }

    /// Plan, check invariants, apply, tick; returns the plan.
    fn step(&mut self) -> Plan {
        let p = plan(&self.input);
        check_invariants(&self.input, &p);
        self.apply(&p);
        self.tick();
        p
    }

    fn run_until(&mut self, max: usize, done: impl Fn(&RolloutStatus) -> bool) -> usize {
        for i in 0..max {
            let p = self.step();
            if done(&p.status) && p.actions.is_empty() {
                return i;
            }
        }
        panic!(
            "did not converge: {:?}\nevents: {:#?}",
            self.input.status.as_ref().map(|s| (&s.phase, &s.message)),
            self.events
        );
    }

    fn versions(&self) -> BTreeMap<String, i32> {
        self.input.status.clone().unwrap_or_default().versions
    }
}

// ---- invariants checked on every plan (also by the property tests) -------------------

fn serving_slots(pods: &[ObservedPod], replicas: i32) -> BTreeSet<i32> {
    pods.iter()
        .filter(|p| p.serving() && p.slot >= 0 && p.slot < replicas)
        .map(|p| p.slot)
        .collect()
}

fn extra_pods(pods: &[ObservedPod], replicas: i32) -> i64 {
    let mut per_slot: BTreeMap<i32, i64> = BTreeMap::new();
    for p in pods.iter().filter(|p| !p.failed) {
        *per_slot.entry(p.slot).or_default() += 1;
    }
    per_slot
        .iter()
        .map(|(slot, n)| {
            if *slot < 0 || *slot >= replicas {
                *n
            } else {
                (n - 1).max(0)
            }
        })
        .sum()
}

/// The observed pods after the plan's pod actions (deletes → terminating).
fn after(inp: &PlanInput, p: &Plan) -> Vec<ObservedPod> {
    let mut pods = inp.pods.clone();
    for action in &p.actions {
        match action {
            Action::CreatePod {
                name,
                slot,
                hash,
                version,
                ..
            } => {
                let mut pod = ObservedPod::new(name.clone(), *slot, hash.clone());
                pod.version = version.clone();
                pod.created = Some(inp.now);
                pods.push(pod);
            }
            Action::DeletePod { name } => {
                for pod in pods.iter_mut().filter(|p| &p.name == name) {
                    pod.terminating = true;
                }
            }
            Action::DrainPod { name } => {
                for pod in pods.iter_mut().filter(|p| &p.name == name) {
                    pod.drain_requested_at = Some(inp.now);
                }
            }
            Action::UndrainPod { name } => {
                for pod in pods.iter_mut().filter(|p| &p.name == name) {
                    pod.drain_requested_at = None;
                }
            }
            _ => {}
        }
    }
    pods
}

fn check_invariants(inp: &PlanInput, p: &Plan) {
    let replicas = inp.spec.replicas.max(0);
    let (max_surge, max_unavailable) = budgets(&inp.spec.strategy, replicas);
    let next = after(inp, p);
    // (a) deletes/drains never take more than maxUnavailable slots down.
    // Withdrawn drain requests count as serving before the plan, too.
    let mut undrained = inp.pods.clone();
    for pod in &mut undrained {
        if p.actions.contains(&Action::UndrainPod { name: pod.name.clone() }) {
            pod.drain_requested_at = None;
        }
    }
    let before = serving_slots(&undrained, replicas);
    let now_serving = serving_slots(&next, replicas);
    let unavailable_before = i64::from(replicas) - before.len() as i64;
    let lost = before.difference(&now_serving).count() as i64;
    assert!(
        lost <= (i64::from(max_unavailable) - unavailable_before).max(0),
        "lost {lost} serving slots (maxUnavailable {max_unavailable}, unavailable before {unavailable_before}): {:?}",
        p.actions
    );
    // (b) creates never push extra pods beyond maxSurge (or beyond what was already there).
    let extra_before = extra_pods(&inp.pods, replicas);
    let extra_after = extra_pods(&next, replicas);
    if creates(p).iter().any(|_| true) {
        assert!(
            extra_after <= i64::from(max_surge).max(extra_before),
            "extra pods {extra_after} > maxSurge {max_surge} (before {extra_before}): {:?}",
            p.actions
        );
    }
    // (c) pinned slots only ever get pods of their pinned version.
    for pin in &inp.spec.pins {
        for instance in &pin.instances {
            if let Some(slot) = parse_slot(&inp.name, instance) {
                for a in &p.actions {
                    if let Action::CreatePod { slot: s, version, .. } = a {
                        if *s == slot {
                            assert_eq!(version, &pin.version, "pinned slot {slot} got {version}");
                        }
                    }
                }
            }
        }
    }
    // Never a duplicate create, never a create of an existing name.
    let mut names = BTreeSet::new();
    for a in &p.actions {
        if let Action::CreatePod { name, .. } = a {
            assert!(names.insert(name.clone()), "duplicate create {name}");
            assert!(!inp.pods.iter().any(|p| &p.name == name), "{name} exists");
        }
    }
}

// ---- unit tests ----------------------------------------------------------------------

#[test]
fn revision_hash_is_stable_short_and_sensitive() {
    let s = spec("v1", 3);
    let h = revision_hash(&s.template, "v1");
    assert_eq!(h.len(), 10);
    assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(h, revision_hash(&s.clone().template, "v1"));
    assert_ne!(h, revision_hash(&s.template, "v2"));
    assert_ne!(h, revision_hash(&spec("v2", 3).template, "v1"));
    let restarted = effective_template(&s, Some("2024-01-01T00:00:00Z"));
    assert_ne!(h, revision_hash(&restarted, "v1"));
    // Known value: the hash must not change across releases.
    assert_eq!(h, hash_of("v1"));
}

#[test]
fn names_and_slots() {
    assert_eq!(slot_name("a", 3), "a-3");
    assert_eq!(pod_name("a", 3, "ff"), "a-3-ff");
    assert_eq!(revision_name("a", "ff"), "a-ff");
    assert_eq!(parse_slot("a", "a-12"), Some(12));
    assert_eq!(parse_slot("a", "a-012"), None);
    assert_eq!(parse_slot("a", "b-1"), None);
    assert_eq!(parse_slot("a", "a-"), None);
    let l = pod_labels("a", 2, "ff", "v1");
    assert_eq!(l[labels::SLOT], "2");
    assert_eq!(l[labels::VERSION], "v1");
}

#[test]
fn batch_counts_round_up_dedup_and_end_at_total() {
    let mut st = RolloutStrategy::default();
    assert_eq!(batch_counts(&st, 4), vec![4]);
    st.batches = vec![IntOrString::Int(1), pct("50%"), pct("100%")];
    assert_eq!(batch_counts(&st, 4), vec![1, 2, 4]);
    assert_eq!(batch_counts(&st, 3), vec![1, 2, 3]);
    assert_eq!(batch_counts(&st, 1), vec![1]);
    assert_eq!(batch_counts(&st, 0), Vec::<usize>::new());
    st.batches = vec![pct("10%"), IntOrString::Int(2)];
    assert_eq!(batch_counts(&st, 10), vec![1, 2, 10]);
    st.batches = vec![IntOrString::Int(0), IntOrString::Int(20)];
    assert_eq!(batch_counts(&st, 5), vec![5]);
}

#[test]
fn budgets_round_like_deployments() {
    let mut st = RolloutStrategy::default();
    assert_eq!(budgets(&st, 10), (1, 0));
    st.max_surge = pct("25%");
    st.max_unavailable = pct("25%");
    assert_eq!(budgets(&st, 10), (3, 2));
    st.max_surge = IntOrString::Int(0);
    st.max_unavailable = pct("10%");
    assert_eq!(budgets(&st, 5), (1, 0));
}

#[test]
fn action_requests_from_annotations() {
    let a: BTreeMap<String, String> = [
        (annotations::PROMOTE.to_string(), "n1".to_string()),
        (annotations::RESTARTED_AT.to_string(), "t".to_string()),
        (annotations::ABORT.to_string(), String::new()),
    ]
    .into();
    let r = ActionRequests::from_annotations(&a);
    assert_eq!(r.promote.as_deref(), Some("n1"));
    assert_eq!(r.restarted_at.as_deref(), Some("t"));
    assert_eq!(r.abort, None);
}

#[test]
fn first_rollout_creates_revision_and_every_slot_at_once() {
    let p = plan(&input(spec("v1", 3), vec![], vec![]));
    assert!(matches!(
        &p.actions[0],
        Action::CreateRevision { revision: 1, version, .. } if version == "v1"
    ));
    assert_eq!(creates(&p), vec![(0, "v1".into()), (1, "v1".into()), (2, "v1".into())]);
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(p.status.current_revision, None);
    assert_eq!(p.status.update_revision, Some(rev("v1", 1).name));
    assert_eq!(p.status.batch_label.as_deref(), Some("1/1"));
    assert!(has_event(&p, "BatchStarted"));
    assert_eq!(condition(&p.status, CONDITION_AVAILABLE).status, "False");
    assert_eq!(condition(&p.status, CONDITION_INVALID_SPEC).status, "False");
}

#[test]
fn healthy_rollout_is_quiet_and_status_is_stable() {
    let inp = healthy("v1", 3);
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.events.is_empty(), "{:?}", p.events);
    assert_eq!(Some(&p.status), inp.status.as_ref());
    let st = &p.status;
    assert_eq!(st.phase, Some(RolloutPhase::Healthy));
    assert_eq!(st.current_revision, Some(rev("v1", 1).name));
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.available_replicas,
            st.updated_replicas
        ),
        (3, 3, 3, 3)
    );
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(st.instances.len(), 3);
    assert_eq!(st.instances[1].name, "svc-1");
    assert_eq!(st.instances[1].revision, 1);
    assert_eq!(st.selector.as_deref(), Some("app=svc"));
    assert_eq!(condition(st, CONDITION_AVAILABLE).status, "True");
    let prog = condition(st, CONDITION_PROGRESSING);
    assert_eq!(
        (prog.status.as_str(), prog.reason.as_str()),
        ("True", "NewRevisionAvailable")
    );
    assert_eq!(p.requeue_after, None);
}

#[test]
fn condition_transition_time_only_moves_on_status_change() {
    let mut inp = healthy("v1", 2);
    let before = condition(inp.status.as_ref().unwrap(), CONDITION_AVAILABLE).clone();
    inp.now = at(5000);
    let p = plan(&inp);
    assert_eq!(condition(&p.status, CONDITION_AVAILABLE), &before);
    inp.pods.truncate(0);
    let p = plan(&inp);
    let c = condition(&p.status, CONDITION_AVAILABLE);
    assert_eq!(c.status, "False");
    assert_eq!(c.last_transition_time, Time(at(5000)));
}

#[test]
fn batch_one_surges_a_single_new_pod_and_keeps_the_old_one() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    let p = plan(&inp);
    assert!(matches!(&p.actions[0], Action::CreateRevision { revision: 2, .. }));
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
    assert!(deletes(&p).is_empty());
    assert_eq!(p.status.batch.as_ref().map(|b| (b.current, b.total)), Some((1, 3)));
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    assert_eq!(p.status.current_revision, Some(rev("v1", 1).name));
    assert!(has_event(&p, "BatchStarted"));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(60)), "progress deadline");
}

#[test]
fn old_pod_goes_only_once_the_new_one_is_available() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.min_ready_seconds = 10;
    inp.spec.progress_deadline_seconds = 100;
    inp.revisions.push(rev("v2", 2));
    let mut new = ready_pod(0, "v2", at(995));
    new.ready = false;
    inp.pods.push(new.clone());
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    // Ready, but not for minReadySeconds yet.
    new.ready = true;
    inp.pods.pop();
    inp.pods.push(new.clone());
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(5)));
    inp.now = at(1005);
    let p = plan(&inp);
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
}

#[test]
fn max_unavailable_replaces_in_place_without_surge() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.strategy.batches = vec![];
    inp.spec.strategy.max_surge = IntOrString::Int(0);
    inp.spec.strategy.max_unavailable = IntOrString::Int(1);
    let p = plan(&inp);
    assert!(creates(&p).is_empty());
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn converges_through_batches_and_pauses() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.pause = Some(Pause {
        duration: Some("5s".into()),
    });
    let mut w = World::new(inp);
    let mut saw = BTreeSet::new();
    for _ in 0..200 {
        let p = w.step();
        if let Some(b) = &p.status.batch {
            saw.insert(b.current);
        }
        if p.status.message.as_deref().unwrap_or("").contains("paused for") {
            assert!(p.requeue_after.is_some());
            assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
            assert_eq!(condition(&p.status, CONDITION_PROGRESSING).reason, "BatchPaused");
        }
        // At most batch-count pods on v2 before the batch advances.
        let b = p.status.batch.clone().unwrap();
        let limit = [1, 2, 4][usize::try_from(b.current).unwrap() - 1];
        assert!(p.status.updated_replicas <= limit, "{:?}", p.status);
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(saw, [1, 2, 3].into());
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.phase, Some(RolloutPhase::Healthy));
    assert_eq!(st.versions, [("v2".to_string(), 4)].into());
    assert_eq!(st.current_revision, Some(rev("v2", 2).name));
    let reasons: Vec<&str> = w.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "BatchCompleted").count(),
        2,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"RolloutCompleted"));
}

#[test]
fn pause_without_duration_waits_for_promote_once_per_nonce() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.pause = Some(Pause { duration: None });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 1), ("v2".to_string(), 1)].into());
    assert!(st.message.unwrap().contains("waiting for promotion"));
    // Stays paused, no requeue needed (promotion is an annotation change).
    let p = plan(&w.input);
    assert!(p.actions.is_empty());
    assert_eq!(p.requeue_after, None);
    w.input.requests.promote = Some("n1".into());
    let p = w.step();
    assert!(has_event(&p, "Promoted"));
    assert_eq!(p.status.batch.as_ref().unwrap().current, 2);
    assert_eq!(p.status.actions.as_ref().unwrap().promote.as_deref(), Some("n1"));
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 2)].into());
    // The same nonce does nothing for the next rollout.
    w.input.spec = spec("v3", 2);
    w.input.spec.strategy.pause = Some(Pause { duration: None });
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    assert_eq!(w.versions(), [("v2".to_string(), 1), ("v3".to_string(), 1)].into());
}

#[test]
fn never_ready_version_rolls_back_automatically() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    let mut saw_rolling_back = false;
    for _ in 0..200 {
        let p = w.step();
        saw_rolling_back |= p.status.phase == Some(RolloutPhase::RollingBack);
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert!(saw_rolling_back);
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.phase, Some(RolloutPhase::Healthy));
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(st.version.as_deref(), Some("v1"));
    let prog = condition(&st, CONDITION_PROGRESSING);
    assert_eq!((prog.status.as_str(), prog.reason.as_str()), ("False", "RolledBack"));
    assert!(
        prog.message.contains("v2") && prog.message.contains("not healthy within 60s"),
        "{}",
        prog.message
    );
    assert_eq!(condition(&st, CONDITION_AVAILABLE).status, "True");
    assert_eq!(st.failed_update.as_ref().unwrap().version, "v2");
    assert!(w
        .events
        .iter()
        .any(|e| e.reason == "BatchFailed" && e.type_ == EventType::Warning));
    assert!(w.events.iter().any(|e| e.reason == "RolledBack"));
    // It stays rolled back: no new attempt at v2 without a retry or a spec change.
    for _ in 0..100 {
        let p = w.step();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }
    assert!(w.events.iter().filter(|e| e.reason == "RolledBack").count() == 1);
}

#[test]
fn crash_loop_fails_the_batch_at_once() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.progress_deadline_seconds = 10_000;
    inp.revisions.push(rev("v2", 2));
    let mut bad = ready_pod(0, "v2", at(990));
    bad.ready = false;
    bad.crash_looping = true;
    bad.restarts = 4;
    inp.pods.push(bad.clone());
    inp.status.as_mut().unwrap().update_revision = Some(rev("v2", 2).name);
    inp.status.as_mut().unwrap().batch = Some(BatchStatus {
        current: 1,
        total: 3,
        started_at: Some(Time(at(990))),
        pause_started_at: None,
    });
    let p = plan(&inp);
    assert_eq!(p.status.phase, Some(RolloutPhase::RollingBack));
    assert_eq!(deletes(&p), vec![bad.name.clone()]);
    assert!(p.status.message.as_ref().unwrap().contains("crash-looping"));
    assert_eq!(p.status.failed_update.as_ref().unwrap().reason, "PodCrashLooping");
}

#[test]
fn without_auto_rollback_the_rollout_stops_and_names_the_holdouts() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.auto_rollback = false;
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    w.run_until(100, |s| s.phase == Some(RolloutPhase::Degraded));
    let st = w.input.status.clone().unwrap();
    let prog = condition(&st, CONDITION_PROGRESSING);
    assert_eq!(
        (prog.status.as_str(), prog.reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    assert!(
        st.message.as_ref().unwrap().contains("svc-0 (not ready)"),
        "{:?}",
        st.message
    );
    assert_eq!(condition(&st, CONDITION_AVAILABLE).status, "True");
    for _ in 0..20 {
        let p = w.step();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
    }
    // Abort returns the instance even without autoRollback.
    w.input.requests.abort = Some("a1".into());
    w.run_until(50, |s| s.phase == Some(RolloutPhase::Healthy));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(condition(&st, CONDITION_PROGRESSING).reason, "RolloutAborted");
}

#[test]
fn retry_rolls_the_failed_revision_out_again_from_batch_one() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::NeverReady);
    w.run_until(200, |s| {
        s.phase == Some(RolloutPhase::Healthy) && s.failed_update.is_some()
    });
    w.behaviour.insert("v2".into(), Behaviour::ReadyAfter(1));
    w.input.requests.retry = Some("r1".into());
    let p = w.step();
    assert!(has_event(&p, "RetryRequested"));
    assert_eq!(p.status.batch.as_ref().unwrap().current, 1);
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
    w.run_until(100, |s| {
        s.phase == Some(RolloutPhase::Healthy) && s.failed_update.is_none()
    });
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn abort_mid_rollout_returns_to_current_revision() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.pause = Some(Pause { duration: None });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    w.input.requests.abort = Some("x".into());
    let p = w.step();
    assert!(has_event(&p, "RolloutAborted"));
    assert_eq!(p.status.phase, Some(RolloutPhase::RollingBack));
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v1".to_string(), 4)].into());
    // Handled once: the nonce stays in the annotation, nothing more happens.
    for _ in 0..5 {
        assert!(w.step().events.is_empty());
    }
}

#[test]
fn new_spec_mid_rollout_supersedes_the_old_target() {
    let mut inp = healthy("v1", 4);
    inp.spec = spec("v2", 4);
    inp.spec.strategy.pause = Some(Pause { duration: None });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    assert_eq!(w.versions().get("v2"), Some(&1));
    w.input.spec = spec("v3", 4);
    let p = w.step();
    assert!(has_event(&p, "BatchStarted"));
    assert_eq!(p.status.batch.as_ref().unwrap().current, 1);
    assert_eq!(p.status.current_revision, Some(rev("v1", 1).name));
    // The v2 instance is the first one moved to v3.
    assert_eq!(creates(&p), vec![(0, "v3".into())]);
    w.run_until(100, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v3".to_string(), 4)].into());
}

#[test]
fn missing_and_failed_pods_are_recreated() {
    let mut inp = healthy("v1", 3);
    inp.pods.remove(1);
    inp.pods[0].failed = true;
    inp.pods[0].ready = false;
    let p = plan(&inp);
    assert_eq!(deletes(&p), vec![pod_name(NAME, 0, &hash_of("v1"))]);
    assert_eq!(creates(&p), vec![(1, "v1".into())]);
    assert_eq!(p.status.phase, Some(RolloutPhase::Progressing));
    let mut w = World::new(inp);
    w.run_until(20, |s| s.phase == Some(RolloutPhase::Healthy));
}

#[test]
fn scale_up_adds_slots_and_scale_down_removes_highest_first() {
    let mut inp = healthy("v1", 3);
    inp.spec.replicas = 5;
    let p = plan(&inp);
    assert_eq!(creates(&p), vec![(3, "v1".into()), (4, "v1".into())]);
    inp.spec.replicas = 1;
    let p = plan(&inp);
    assert_eq!(
        deletes(&p),
        vec![pod_name(NAME, 2, &hash_of("v1")), pod_name(NAME, 1, &hash_of("v1"))]
    );
    assert!(creates(&p).is_empty());
}

#[test]
fn scale_up_mid_rollout_fills_the_batch_with_new_slots() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.batches = vec![pct("50%")];
    inp.spec.strategy.pause = Some(Pause { duration: None });
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Paused));
    w.input.spec.replicas = 4;
    let p = w.step();
    // 50% of 4 = 2: slot 0 (already v2) plus the new slot 2; slot 3 starts on v1.
    assert_eq!(creates(&p), vec![(2, "v2".into()), (3, "v1".into())]);
}

#[test]
fn pins_hold_instances_outside_the_batches() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.strategy.batches = vec![IntOrString::Int(1)];
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-2".into()],
        version: "v1".into(),
    }];
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 1), ("v2".to_string(), 2)].into());
    assert!(st.instances[2].pinned);
    assert_eq!(st.instances[2].version.as_deref(), Some("v1"));
    assert_eq!(st.progress.as_ref().unwrap().total, 2);
    assert_eq!(st.batch.as_ref().unwrap().total, 2);
    // Pin a healthy v2 instance back to v1 (single-instance rollback).
    w.input.spec.pins[0].instances.push("svc-0".into());
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v1".to_string(), 2), ("v2".to_string(), 1)].into());
    // Unpin: back to the spec version.
    w.input.spec.pins.clear();
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn unknown_pin_version_or_instance_moves_nothing() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-1".into()],
        version: "v0.9".into(),
    }];
    let p = plan(&inp);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let c = condition(&p.status, CONDITION_INVALID_SPEC);
    assert_eq!(c.status, "True");
    assert!(
        c.message.contains("v0.9") && c.message.contains("known: v1"),
        "{}",
        c.message
    );
    assert!(p
        .events
        .iter()
        .any(|e| e.reason == "InvalidSpec" && e.type_ == EventType::Warning));
    assert_eq!(p.status.phase, Some(RolloutPhase::Degraded));
    // Stable across reconciles: no new event for the same problem.
    let mut again = inp.clone();
    again.status = Some(p.status.clone());
    let p2 = plan(&again);
    assert!(p2.events.is_empty());
    assert_eq!(p2.status, p.status);
    // Unknown instance.
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-7".into()],
        version: "v1".into(),
    }];
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert!(condition(&p.status, CONDITION_INVALID_SPEC)
        .message
        .contains("\"svc-7\""));
}

#[test]
fn invalid_spec_moves_nothing_and_says_what_to_fix() {
    let mut inp = healthy("v1", 3);
    inp.spec.strategy.max_surge = IntOrString::Int(0);
    inp.spec.strategy.max_unavailable = IntOrString::Int(0);
    inp.spec.version = "v2".into();
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert!(condition(&p.status, CONDITION_INVALID_SPEC)
        .message
        .contains("set maxSurge to 1"));
    // Nonces are not consumed while invalid.
    inp.requests.abort = Some("a".into());
    assert_eq!(plan(&inp).status.actions, inp.status.as_ref().unwrap().actions);
}

#[test]
fn paused_stops_progress_but_recreates_missing_pods() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.paused = true;
    inp.pods.remove(2);
    let p = plan(&inp);
    assert_eq!(creates(&p), vec![(2, "v1".into())]);
    assert!(deletes(&p).is_empty());
    assert!(has_event(&p, "Paused"));
    assert_eq!(p.status.phase, Some(RolloutPhase::Paused));
    let prog = condition(&p.status, CONDITION_PROGRESSING);
    assert_eq!(
        (prog.status.as_str(), prog.reason.as_str()),
        ("Unknown", "RolloutPaused")
    );
    // Time passes while paused: no deadline.
    let mut w = World::new(inp);
    for _ in 0..200 {
        let p = w.step();
        assert_ne!(p.status.phase, Some(RolloutPhase::RollingBack));
    }
    w.input.spec.paused = false;
    let p = w.step();
    assert!(has_event(&p, "Resumed"));
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v2".to_string(), 3)].into());
}

#[test]
fn restart_annotation_rolls_a_new_revision_in_batches() {
    let mut inp = healthy("v1", 3);
    inp.requests.restarted_at = Some("2024-05-01T00:00:00Z".into());
    let p = plan(&inp);
    let Action::CreateRevision { template, version, .. } = &p.actions[0] else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(version, "v1");
    assert_eq!(
        template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[annotations::RESTARTED_AT],
        "2024-05-01T00:00:00Z"
    );
    assert_eq!(creates(&p), vec![(0, "v1".into())]);
    let mut w = World::new(inp);
    w.run_until(60, |s| s.phase == Some(RolloutPhase::Healthy));
    assert!(w.input.pods.iter().all(|p| p.revision_hash != hash_of("v1")));
}

#[test]
fn pods_holding_listeners_are_drained_before_deletion() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.revisions.push(rev("v2", 2));
    for pod in &mut inp.pods {
        pod.holds_listeners = true;
    }
    inp.pods.push(ready_pod(0, "v2", at(0)));
    inp.status.as_mut().unwrap().update_revision = Some(rev("v2", 2).name);
    inp.status.as_mut().unwrap().batch = Some(BatchStatus {
        current: 1,
        total: 2,
        started_at: Some(Time(at(990))),
        pause_started_at: None,
    });
    let old = pod_name(NAME, 0, &hash_of("v1"));
    let p = plan(&inp);
    assert_eq!(p.actions, vec![Action::DrainPod { name: old.clone() }]);
    inp.pods[0].drain_requested_at = Some(inp.now);
    let p = plan(&inp);
    assert!(p.actions.is_empty());
    assert_eq!(p.requeue_after, Some(DEFAULT_DRAIN_TIMEOUT));
    // Listeners moved: delete.
    inp.pods[0].holds_listeners = false;
    assert_eq!(plan(&inp).actions, vec![Action::DeletePod { name: old.clone() }]);
    // Or the drain timed out.
    inp.pods[0].holds_listeners = true;
    inp.now = add_duration(inp.now, DEFAULT_DRAIN_TIMEOUT);
    assert_eq!(plan(&inp).actions, vec![Action::DeletePod { name: old }]);
}

#[test]
fn old_revisions_are_pruned_but_never_in_use_ones() {
    let mut inp = healthy("v5", 2);
    inp.spec.revision_history_limit = 1;
    inp.revisions = vec![rev("v1", 1), rev("v2", 2), rev("v3", 3), rev("v4", 4), rev("v5", 5)];
    inp.spec.pins = vec![Pin {
        instances: vec!["svc-1".into()],
        version: "v1".into(),
    }];
    inp.pods.push(ready_pod(0, "v2", at(0)));
    let p = plan(&inp);
    let pruned: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRevision { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    // v5 target/current, v1 pinned, v2 has a pod, v4 kept by the limit.
    assert_eq!(pruned, vec![rev("v3", 3).name.as_str()]);
}

#[test]
fn lost_status_is_rebuilt_from_the_cluster() {
    let mut inp = healthy("v1", 3);
    inp.status = None;
    inp.spec = spec("v2", 3);
    let p = plan(&inp);
    // Batched, not all at once: the running revision is taken as the healthy one.
    assert_eq!(p.status.current_revision, Some(rev("v1", 1).name));
    assert_eq!(creates(&p), vec![(0, "v2".into())]);
}

#[test]
fn requeue_covers_pause_and_deadline() {
    let mut inp = healthy("v1", 2);
    inp.spec = spec("v2", 2);
    inp.spec.strategy.pause = Some(Pause {
        duration: Some("1m".into()),
    });
    let mut w = World::new(inp);
    let p = w.run_until(30, |s| s.message.as_deref().unwrap_or("").contains("paused for"));
    assert!(p < 30);
    let p = plan(&w.input);
    let left = p.requeue_after.unwrap();
    assert!(
        left <= Duration::from_secs(60) && left > Duration::from_secs(50),
        "{left:?}"
    );
}

// ---- simulation from the brief ------------------------------------------------------

#[test]
fn simulation_v1_to_v2_converges_and_v3_rolls_back() {
    let mut inp = input(spec("v1", 4), vec![], vec![]);
    inp.spec.min_ready_seconds = 1;
    let mut w = World::new(inp);
    w.run_until(30, |s| s.phase == Some(RolloutPhase::Healthy));
    assert_eq!(w.versions(), [("v1".to_string(), 4)].into());

    w.input.spec = spec("v2", 4);
    w.input.spec.min_ready_seconds = 1;
    w.input.spec.strategy.pause = Some(Pause {
        duration: Some("3s".into()),
    });
    w.run_until(200, |s| s.phase == Some(RolloutPhase::Healthy));
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v2".to_string(), 4)].into());
    assert_eq!(st.updated_replicas, 4);
    assert_eq!(st.progress.as_ref().unwrap().completed, 4);
    assert!(w.input.pods.iter().all(|p| p.version == "v2"));

    let mut v3 = spec("v3", 4);
    v3.min_ready_seconds = 1;
    v3.progress_deadline_seconds = 20;
    w.input.spec = v3;
    w.behaviour.insert("v3".into(), Behaviour::NeverReady);
    let mut phases = Vec::new();
    for _ in 0..300 {
        let p = w.step();
        if phases.last() != p.status.phase.as_ref() {
            phases.push(p.status.phase.unwrap());
        }
        if p.status.phase == Some(RolloutPhase::Healthy) && p.actions.is_empty() {
            break;
        }
    }
    assert_eq!(
        phases,
        vec![
            RolloutPhase::Progressing,
            RolloutPhase::RollingBack,
            RolloutPhase::Healthy
        ]
    );
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v2".to_string(), 4)].into());
    assert_eq!(condition(&st, CONDITION_PROGRESSING).reason, "RolledBack");
    assert_eq!(condition(&st, CONDITION_AVAILABLE).status, "True");
    assert!(w.input.pods.iter().all(|p| p.version == "v2"));
}

#[test]
fn simulation_crash_looping_version_rolls_back_before_the_deadline() {
    let mut inp = healthy("v1", 3);
    inp.spec = spec("v2", 3);
    inp.spec.progress_deadline_seconds = 10_000;
    let mut w = World::new(inp);
    w.behaviour.insert("v2".into(), Behaviour::CrashLoop);
    let steps = w.run_until(50, |s| s.phase == Some(RolloutPhase::Healthy));
    assert!(steps < 50);
    let st = w.input.status.clone().unwrap();
    assert_eq!(st.versions, [("v1".to_string(), 3)].into());
    assert_eq!(st.failed_update.as_ref().unwrap().reason, "PodCrashLooping");
    assert_eq!(condition(&st, CONDITION_PROGRESSING).reason, "RolledBack");
}

// ---- property tests -----------------------------------------------------------------

fn arb_int_or_pct() -> impl Strategy<Value = IntOrString> {
    prop_oneof![
        (0i32..4).prop_map(IntOrString::Int),
        prop::sample::select(vec!["0%", "25%", "50%", "100%"]).prop_map(|s| IntOrString::String(s.to_string())),
    ]
}

#[derive(Clone)]
struct Scenario {
    input: PlanInput,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.input;
        let s = &i.spec;
        writeln!(
            f,
            "replicas={} version={} batches={:?} surge={:?} unavail={:?} minReady={} paused={} auto={} pins={:?}",
            s.replicas,
            s.version,
            s.strategy.batches,
            s.strategy.max_surge,
            s.strategy.max_unavailable,
            s.min_ready_seconds,
            s.paused,
            s.auto_rollback,
            s.pins
        )?;
        if let Some(st) = &i.status {
            writeln!(
                f,
                "status current={:?} update={:?} batch={:?} failed={:?}",
                st.current_revision, st.update_revision, st.batch, st.failed_update
            )?;
        }
        for p in &i.pods {
            writeln!(
                f,
                "pod {} slot={} {} ready={} since={:?} crash={} failed={} term={} drain={:?} holds={}",
                p.name,
                p.slot,
                p.version,
                p.ready,
                p.ready_since.map(|t| t.duration_since(i.now).as_secs()),
                p.crash_looping,
                p.failed,
                p.terminating,
                p.drain_requested_at.map(|t| t.duration_since(i.now).as_secs()),
                p.holds_listeners
            )?;
        }
        Ok(())
    }
}

fn arb_pod(slot: i32) -> impl Strategy<Value = ObservedPod> {
    (
        prop::sample::select(vec!["v1", "v2", "v3"]),
        any::<bool>(),
        0i64..20,
        prop::sample::select(vec![0u8, 0, 0, 0, 1, 2, 3, 4]),
        any::<bool>(),
    )
        .prop_map(move |(version, ready, ago, flag, holds)| {
            let mut p = ready_pod(slot, version, at(1000 - ago));
            p.ready = ready;
            match flag {
                1 => {
                    p.terminating = true;
                    p.ready = false;
                }
                2 => {
                    p.failed = true;
                    p.ready = false;
                }
                3 => p.crash_looping = true,
                4 => p.drain_requested_at = Some(at(1000 - ago)),
                _ => {}
            }
            p.holds_listeners = holds;
            p
        })
}

fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        0i32..6,
        prop::collection::vec(arb_int_or_pct(), 0..4),
        arb_int_or_pct(),
        arb_int_or_pct(),
        0i32..4,
        prop::sample::select(vec!["v1", "v2", "v3"]),
        prop::option::of(prop::sample::select(vec!["v1", "v2"])),
        any::<bool>(),
        prop::option::of(0usize..6),
        prop::collection::vec(prop::collection::vec(arb_pod(0), 0..3), 0..7),
        (any::<bool>(), 0i32..4, prop::option::of(0i64..30), any::<bool>()),
    )
        .prop_map(
            |(
                replicas,
                batches,
                surge,
                unavailable,
                min_ready,
                version,
                current,
                paused,
                pin,
                pods,
                (rollback, batch, pause_ago, auto),
            )| {
                let mut s = spec(version, replicas);
                let mut counts: Vec<i32> = batches
                    .iter()
                    .map(|b| scaled_value(b, replicas, true).unwrap_or(0))
                    .collect();
                counts.sort();
                s.strategy.batches = counts.into_iter().map(IntOrString::Int).collect();
                s.strategy.max_surge = surge;
                s.strategy.max_unavailable = unavailable;
                if super::budgets(&s.strategy, replicas) == (1, 0)
                    && matches!(&s.strategy.max_surge, IntOrString::Int(0))
                {
                    s.strategy.max_surge = IntOrString::Int(1);
                }
                s.min_ready_seconds = min_ready;
                s.paused = paused;
                s.auto_rollback = auto;
                s.strategy.pause = Some(Pause {
                    duration: Some("10s".into()),
                });
                if let Some(slot) = pin {
                    if (slot as i32) < replicas {
                        s.pins = vec![Pin {
                            instances: vec![slot_name(NAME, slot as i32)],
                            version: "v1".into(),
                        }];
                    }
                }
                let mut observed = Vec::new();
                let mut names = BTreeSet::new();
                for (slot, slot_pods) in pods.into_iter().enumerate() {
                    for mut p in slot_pods {
                        p.slot = slot as i32;
                        p.name = pod_name(NAME, p.slot, &p.revision_hash);
                        if names.insert(p.name.clone()) {
                            observed.push(p);
                        }
                    }
                }
                let revisions = vec![rev("v1", 1), rev("v2", 2), rev("v3", 3)];
                let mut inp = input(s, observed, revisions);
                if let Some(c) = current {
                    let target = rev(version, 0);
                    let mut st = RolloutStatus {
                        current_revision: Some(rev(c, 0).name),
                        update_revision: Some(target.name.clone()),
                        batch: Some(BatchStatus {
                            current: batch,
                            total: 3,
                            started_at: Some(Time(at(990))),
                            pause_started_at: pause_ago.map(|a| Time(at(1000 - a))),
                        }),
                        ..Default::default()
                    };
                    if rollback {
                        st.failed_update = Some(FailedUpdate {
                            revision: target.name,
                            version: version.into(),
                            reason: "ProgressDeadlineExceeded".into(),
                            message: "x".into(),
                            rolled_back: auto,
                            batch: 1,
                            at: None,
                        });
                    }
                    inp.status = Some(st);
                }
                Scenario { input: inp }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_plans_respect_budgets_and_pins(sc in arb_scenario()) {
        let p = plan(&sc.input);
        check_invariants(&sc.input, &p);
    }

    #[test]
    fn prop_plan_is_deterministic_and_settles(sc in arb_scenario()) {
        let p1 = plan(&sc.input);
        prop_assert_eq!(&p1, &plan(&sc.input));
        // Apply the plan with no time passing. Unless the rollout itself moved on (a batch
        // advanced or failed because of what the first plan did), nothing destructive is
        // left to do.
        let mut w = World::new(sc.input.clone());
        w.apply(&p1);
        let p2 = plan(&w.input);
        check_invariants(&w.input, &p2);
        let moved_on = p2.status.batch.as_ref().map(|b| b.current) != p1.status.batch.as_ref().map(|b| b.current)
            || p2.status.failed_update != p1.status.failed_update
            || p2.status.current_revision != p1.status.current_revision;
        if !moved_on {
            let destructive: Vec<&Action> = p2
                .actions
                .iter()
                .filter(|a| matches!(a, Action::DeletePod { .. } | Action::DrainPod { .. } | Action::DeleteRevision { .. }))
                .collect();
            prop_assert!(destructive.is_empty(), "second plan: {:?}\nfirst: {:?}", p2.actions, p1.actions);
        }
        // Without time passing the state reaches a fixpoint: no actions, same status.
        let mut last = p2;
        let mut settled = false;
        for _ in 0..8 {
            w.apply(&last);
            let next = plan(&w.input);
            check_invariants(&w.input, &next);
            let done = next.actions.is_empty() && next.status == last.status;
            last = next;
            if done {
                settled = true;
                break;
            }
        }
        prop_assert!(settled, "no fixpoint: {:?}", last.actions);
    }

    #[test]
    fn prop_random_rollouts_converge(
        replicas in 1i32..6,
        batches in prop::collection::vec(1i32..6, 0..3),
        surge in 0i32..3,
        unavailable in 0i32..3,
    ) {
        let mut s = spec("v1", replicas);
        let mut batches = batches;
        batches.sort();
        s.strategy.batches = batches.into_iter().map(IntOrString::Int).collect();
        s.strategy.max_surge = IntOrString::Int(if surge == 0 && unavailable == 0 { 1 } else { surge });
        s.strategy.max_unavailable = IntOrString::Int(unavailable);
        let mut w = World::new(input(s.clone(), vec![], vec![]));
        w.run_until(100, |st| st.phase == Some(RolloutPhase::Healthy));
        let mut v2 = spec("v2", replicas);
        v2.strategy = s.strategy.clone();
        w.input.spec = v2;
        w.run_until(300, |st| st.phase == Some(RolloutPhase::Healthy));
        prop_assert_eq!(w.versions(), [("v2".to_string(), replicas)].into());
    }
}
