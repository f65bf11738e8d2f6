//! A small world for the tests: applies a plan's actions, and pods become ready (or not) after
//! some ticks.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Behaviour {
    ReadyAfter(i64),
    NeverReady,
    CrashLoop,
}

pub(super) struct World {
    pub(super) input: PlanInput,
    pub(super) behaviour: BTreeMap<String, Behaviour>,
    /// Pod name -> remaining ticks before it is gone (terminating).
    pub(super) grace: BTreeMap<String, i64>,
    pub(super) events: Vec<PlanEvent>,
    /// Job name -> (created at, succeeds): a Job finishes 2 ticks after it was created.
    pub(super) jobs: BTreeMap<String, (Timestamp, bool)>,
    /// Whether a new Job succeeds, by its hook (or check) label; default: it does.
    pub(super) job_outcome: BTreeMap<String, bool>,
    /// Every Job created, in order.
    pub(super) jobs_created: Vec<String>,
}

impl World {
    pub(super) fn new(inp: PlanInput) -> Self {
        Self {
            input: inp,
            behaviour: BTreeMap::new(),
            grace: BTreeMap::new(),
            events: Vec::new(),
            jobs: BTreeMap::new(),
            job_outcome: BTreeMap::new(),
            jobs_created: Vec::new(),
        }
    }

    pub(super) fn apply(&mut self, p: &Plan) {
        let now = self.input.now;
        for action in &p.actions {
            match action {
                Action::CreateRevision {
                    name,
                    hash,
                    revision,
                    version,
                    template,
                    ..
                } => self.input.revisions.push(RevisionInfo {
                    name: name.clone(),
                    revision: *revision,
                    hash: hash.clone(),
                    version: version.clone(),
                    template: template.clone(),
                }),
                Action::DeleteRevision { name } => self.input.revisions.retain(|r| &r.name != name),
                Action::CreatePod { name, slot, .. } => {
                    assert!(
                        !self.input.pods.iter().any(|p| &p.name == name),
                        "pod {name} created twice"
                    );
                    let pods = created_pod(action, now).map(|pod| ObservedPod {
                        ip: Some(format!("10.0.0.{slot}")),
                        ..pod
                    });
                    self.input.pods.extend(pods);
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
                        pod.drain = Some(crate::api::pod::Drain::Since(now));
                    }
                }
                Action::UndrainPod { name } => {
                    if let Some(pod) = self.input.pods.iter_mut().find(|p| &p.name == name) {
                        pod.drain = None;
                    }
                }
                Action::CreateJob { name, labels, .. } => {
                    assert!(
                        !self.input.jobs.iter().any(|j| &j.name == name),
                        "Job {name} created while it exists"
                    );
                    let hash = labels
                        .get(crate::api::rollout::labels::REVISION_HASH)
                        .cloned()
                        .unwrap_or_default();
                    let hook = labels.get(crate::api::rollout::labels::HOOK).cloned();
                    let kind = hook
                        .clone()
                        .or_else(|| labels.get(crate::api::rollout::labels::CHECK).cloned());
                    let succeeds = kind.and_then(|k| self.job_outcome.get(&k).copied()).unwrap_or(true);
                    self.jobs.insert(name.clone(), (now, succeeds));
                    self.jobs_created.push(name.clone());
                    self.input.jobs.push(ObservedJob {
                        name: name.clone(),
                        revision_hash: hash,
                        hook,
                        state: JobState::Running,
                    });
                }
                Action::DeleteJob { name } => {
                    self.jobs.remove(name);
                    self.input.jobs.retain(|j| &j.name != name);
                }
                Action::ScaleWorkload { replicas, .. } => {
                    if let Some(WorkloadRead::Found(d)) = self.input.workload.as_mut() {
                        d.replicas = *replicas;
                    }
                }
            }
        }
        self.input.status = Some(p.status.clone());
        self.events.extend(p.events.iter().cloned());
    }

    pub(super) fn tick(&mut self) {
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
        for job in self.input.jobs.iter_mut().filter(|j| j.state == JobState::Running) {
            let Some((created, succeeds)) = self.jobs.get(&job.name).copied() else {
                continue;
            };
            if now.duration_since(created).as_secs() >= 2 {
                job.state = if succeeds {
                    JobState::Succeeded { at: Some(now) }
                } else {
                    JobState::Failed {
                        why: format!(
                            "Job {} BackoffLimitExceeded; failed pod {}-x: container ended with exit code 1 (Error)",
                            job.name, job.name
                        ),
                    }
                };
            }
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

    /// A new spec, as an API server stores it: the generation moves on.
    pub(super) fn set_spec(&mut self, spec: RolloutSpec) {
        self.input.spec = spec;
        self.input.generation += 1;
    }

    /// Plan, check invariants, apply, tick; returns the plan.
    pub(super) fn step(&mut self) -> Plan {
        let p = plan(&self.input);
        check_invariants(&self.input, &p);
        self.apply(&p);
        self.tick();
        p
    }

    pub(super) fn run_until(&mut self, max: usize, done: impl Fn(&RolloutStatus) -> bool) -> usize {
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

    pub(super) fn versions(&self) -> BTreeMap<String, i32> {
        self.input.status.clone().unwrap_or_default().versions
    }
}
