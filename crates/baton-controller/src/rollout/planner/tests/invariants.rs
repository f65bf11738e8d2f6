//! Invariants checked on every plan (also by the property tests).

use super::*;

fn serving_slots(pods: &[ObservedPod], replicas: i32) -> BTreeSet<i32> {
    pods.iter()
        .filter(|p| p.serving() && p.slot >= 0 && p.slot < replicas)
        .map(|p| p.slot)
        .collect()
}

/// Pods beyond one per slot (all of a slot out of range); terminating pods count unless
/// `started` (TerminationStarted).
fn extra_pods(pods: &[ObservedPod], replicas: i32, started: bool) -> i64 {
    let mut per_slot: BTreeMap<i32, i64> = BTreeMap::new();
    let counts = |p: &&ObservedPod| !p.failed && (!started || !p.terminating);
    for p in pods.iter().filter(counts) {
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
            Action::CreatePod { .. } => pods.extend(created_pod(action, inp.now)),
            Action::DeletePod { name } => {
                for pod in pods.iter_mut().filter(|p| &p.name == name) {
                    pod.terminating = true;
                }
            }
            Action::DrainPod { name } => {
                for pod in pods.iter_mut().filter(|p| &p.name == name) {
                    pod.drain = Some(crate::api::pod::Drain::Since(inp.now));
                }
            }
            Action::UndrainPod { name } => {
                for pod in pods.iter_mut().filter(|p| &p.name == name) {
                    pod.drain = None;
                }
            }
            _ => {}
        }
    }
    pods
}

pub(super) fn check_invariants(inp: &PlanInput, p: &Plan) {
    let replicas = inp.spec.replicas.max(0);
    let (max_surge, max_unavailable) = budgets(&inp.spec.strategy, replicas);
    let next = after(inp, p);
    // (a) deletes/drains never take more than maxUnavailable slots down.
    // Withdrawn drain requests count as serving before the plan, too.
    let mut undrained = inp.pods.clone();
    for pod in &mut undrained {
        if p.actions.contains(&Action::UndrainPod { name: pod.name.clone() }) {
            pod.drain = None;
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
    let held = inp.pods.iter().any(|p| p.holds_listeners);
    let policy = PodReplacementPolicy::effective(inp.spec.strategy.pod_replacement_policy, held);
    let started = policy == PodReplacementPolicy::TerminationStarted;
    let extra_before = extra_pods(&inp.pods, replicas, started);
    let extra_after = extra_pods(&next, replicas, started);
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
    // (d) no pod of a new update revision starts before its preRollout hook succeeded, and a
    // hook's Job is never created while one exists for the same revision and hook.
    check_hooks(inp, p);
    check_status(inp, &p.status);
    // Never a duplicate create, never a create of an existing name.
    let mut names = BTreeSet::new();
    for a in &p.actions {
        if let Action::CreatePod { name, .. } = a {
            assert!(names.insert(name.clone()), "duplicate create {name}");
            assert!(!inp.pods.iter().any(|p| &p.name == name), "{name} exists");
        }
    }
}

/// Invariant (d): hooks gate pods, and run once per revision and hook.
fn check_hooks(inp: &PlanInput, p: &Plan) {
    use crate::api::rollout::hooks::hook_names::PRE_ROLLOUT;
    let current = p.status.current_revision.as_deref();
    let update = p.status.update_revision.as_deref();
    if inp.spec.hooks.pre_rollout.is_some() && update != current {
        let pre_done = |hash: &str| {
            inp.jobs.iter().any(|j| {
                j.revision_hash == hash
                    && j.hook.as_deref() == Some(PRE_ROLLOUT)
                    && matches!(j.state, JobState::Succeeded { .. })
            })
        };
        for a in &p.actions {
            if let Action::CreatePod {
                revision, hash, name, ..
            } = a
            {
                if Some(revision.as_str()) == update {
                    assert!(
                        pre_done(hash),
                        "pod {name} of {revision} created before its preRollout hook succeeded"
                    );
                }
            }
        }
    }
    for a in &p.actions {
        if let Action::CreateJob { name, labels: l, .. } = a {
            let hash = l.get(labels::REVISION_HASH);
            let hook = l.get(labels::HOOK);
            let twin = inp.jobs.iter().any(|j| {
                &j.name == name || (hook.is_some() && Some(&j.revision_hash) == hash && j.hook.as_ref() == hook)
            });
            assert!(!twin, "Job {name} created while one exists for its revision and hook");
        }
    }
}

/// What the status may claim, given the pods the plan saw.
pub(super) fn check_status(inp: &PlanInput, st: &RolloutStatus) {
    use crate::api::rollout::reasons::find;
    let replicas = inp.spec.replicas.max(0);
    // The status and every condition describe this generation.
    assert_eq!(st.observed_generation, Some(inp.generation));
    for c in &st.conditions {
        assert_eq!(c.observed_generation, Some(inp.generation), "{c:?}");
    }
    // Exactly one of Ready, Reconciling and Stalled; Ready only when Healthy; Stalled only
    // when stopped or rolled back.
    let is_true = |t: ConditionType| find(&st.conditions, t).is_some_and(|c| c.status == "True");
    let phase = st.phase.expect("a phase");
    let gate = [ConditionType::Ready, ConditionType::Reconciling, ConditionType::Stalled];
    assert_eq!(gate.iter().filter(|t| is_true(**t)).count(), 1, "{:?}", st.conditions);
    assert_eq!(
        is_true(ConditionType::Ready),
        phase == RolloutPhase::Healthy,
        "{phase:?}"
    );
    assert_eq!(
        is_true(ConditionType::Stalled),
        matches!(phase, RolloutPhase::Degraded | RolloutPhase::RolledBack),
        "{phase:?}"
    );
    // Progress adds up; nothing is pending once rolled back.
    if let Some(pr) = &st.progress {
        assert_eq!(
            pr.completed + pr.failed + pr.pending + pr.rolled_back,
            pr.total,
            "{pr:?}"
        );
        assert!(pr.completed >= 0 && pr.failed >= 0 && pr.pending >= 0 && pr.rolled_back >= 0);
        if phase == RolloutPhase::RolledBack {
            assert_eq!(pr.pending, 0, "{pr:?}");
        }
    }
    // No status says Healthy or Ready about a revision that no pod serves: every unpinned
    // instance serves the update revision.
    let pinned: BTreeSet<i32> = inp
        .spec
        .pins
        .iter()
        .flat_map(|p| p.instances.iter())
        .filter_map(|i| parse_slot(&inp.name, i))
        .collect();
    let unpinned: Vec<i32> = (0..replicas).filter(|s| !pinned.contains(s)).collect();
    let serves = |slot: i32, hash: &str| {
        inp.pods
            .iter()
            .any(|p| p.slot == slot && p.serving() && p.revision_hash == hash)
    };
    let hash_of_name = |name: &Option<String>| {
        name.as_deref()
            .and_then(|n| n.strip_prefix(&format!("{}-", inp.name)))
            .map(str::to_string)
    };
    if phase == RolloutPhase::Healthy {
        let update = hash_of_name(&st.update_revision).expect("an update revision");
        for slot in &unpinned {
            assert!(
                serves(*slot, &update),
                "Healthy, but slot {slot} does not serve {update}"
            );
        }
        if !unpinned.is_empty() {
            assert_eq!(
                st.current_revision, st.update_revision,
                "Healthy on an unfinished rollout"
            );
        }
    }
    if phase == RolloutPhase::RolledBack {
        let current = hash_of_name(&st.current_revision).expect("a current revision");
        let update = hash_of_name(&st.update_revision).expect("an update revision");
        for slot in &unpinned {
            assert!(
                serves(*slot, &current),
                "RolledBack, but slot {slot} does not serve {current}"
            );
            assert!(
                !serves(*slot, &update),
                "RolledBack, but slot {slot} serves the failed {update}"
            );
        }
    }
    // VERSION is the version of the last healthy revision, never one that is only wanted.
    if let (Some(v), Some(current)) = (&st.version, &st.current_revision) {
        if let Some(r) = inp.revisions.iter().find(|r| &r.name == current) {
            assert_eq!(&r.version, v);
        }
    }
    if st.current_revision.is_none() {
        assert_eq!(st.version, None);
    }
}
