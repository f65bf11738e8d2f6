//! Property tests: random specs, pods and histories respect the budgets and pins, plans are
//! deterministic and settle, and random rollouts converge.

use super::*;

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
                p.drain,
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
        prop::sample::select(vec![0u8, 0, 0, 0, 1, 2, 3, 4, 5]),
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
                4 => p.drain = Some(crate::api::pod::Drain::Since(at(1000 - ago))),
                5 => p.drain = Some(crate::api::pod::Drain::ByHand),
                _ => {}
            }
            p.holds_listeners = holds;
            p
        })
}

/// The generated pods, slot by slot, named as the controller names them (one pod per name).
fn place_pods(pods: Vec<Vec<ObservedPod>>) -> Vec<ObservedPod> {
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
    observed
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
        prop::option::of(prop::sample::select(vec![
            PodReplacementPolicy::TerminationStarted,
            PodReplacementPolicy::TerminationComplete,
        ])),
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
                policy,
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
                s.strategy.pod_replacement_policy = policy;
                if super::budgets(&s.strategy, replicas) == (1, 0)
                    && matches!(&s.strategy.max_surge, IntOrString::Int(0))
                {
                    s.strategy.max_surge = IntOrString::Int(1);
                }
                s.min_ready_seconds = min_ready;
                s.paused = paused;
                s.auto_rollback = auto;
                s.strategy.pause = pause(Some("10s"));
                if let Some(slot) = pin {
                    if (slot as i32) < replicas {
                        s.pins = vec![Pin {
                            instances: vec![slot_name(NAME, slot as i32)],
                            version: "v1".into(),
                        }];
                    }
                }
                let observed = place_pods(pods);
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
                            started_at: Some(MicroTime(at(990))),
                            pause_started_at: pause_ago.map(|a| MicroTime(at(1000 - a))),
                            bake_started_at: None,
                        }),
                        ..Default::default()
                    };
                    if rollback {
                        st.failed_update = Some(FailedUpdate {
                            revision: target.name,
                            version: version.into(),
                            reason: FailureReason::ProgressDeadlineExceeded,
                            instances: vec![],
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
