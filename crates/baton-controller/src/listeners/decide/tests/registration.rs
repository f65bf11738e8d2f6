//! Pods whose agents never registered and pods whose agents register late: a registered pod runs
//! what pods without agents left, at once; such pods get nothing a registered pod may run; a
//! renewing pod is never said to have stopped; a recover gives a renewing pod another chance.
use proptest::prelude::*;

use super::properties::check_decision;

use super::*;

/// `pod`'s liveness Lease as the controller made it, no agent registered on it.
fn unregistered(pod: &str) -> LivenessFacts {
    LivenessFacts {
        wakes_after: None,
        registration_seen: None,
        lease: Some(live_lease(pod, false, false)),
        observed: None,
    }
}

/// `pod`'s agent registered (first seen at `since`), last seen renewing at `renewed`.
fn registered_since(pod: &str, since: Instant, renewed: Instant) -> LivenessFacts {
    LivenessFacts {
        registration_seen: Some(since),
        ..registered(pod, renewed)
    }
}

/// Why `pod` gets nothing new, if `d` names it.
fn why(d: &Decision, pod: &str) -> Option<Silence> {
    d.silent.iter().find(|s| s.pod == pod).map(|s| s.why)
}

#[test]
fn a_pod_whose_agent_registers_after_it_left_a_listener_runs_what_pods_without_agents_left() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut m = Memory::default();
    // No agent anywhere: x went to a, y to b; both lapsed there, then both went to c.
    let pods = ["a", "b", "c"];
    let mut scene = Scene::new(&["x", "y"], &pods, t0);
    for p in pods {
        scene = scene.live(p, unregistered(p));
    }
    let first = scene.clone().leases(vec![
        lease("x", Some("a"), 0, false, t),
        lease("y", Some("b"), 0, false, t),
    ]);
    let d = first.decide(t + D, &mut m);
    assert_eq!(assigns(&d), vec![to("x", "c", 1), to("y", "c", 1)]);
    let orphans = vec![
        lease("x", Some("c"), 1, false, t + D),
        lease("y", Some("c"), 1, false, t + D),
    ];
    let stuck = scene.clone().leases(orphans.clone());
    let d = stuck.decide(t + D * 2, &mut m);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(d.summary.orphaned, 2);
    assert!(matches!(d.blocked, Some(Blocked::AgentsNotRenewing { .. })));
    for p in pods {
        assert_eq!(why(&d, p), Some(Silence::NeverRenewed), "{:?}", d.silent);
    }
    // a's agent starts and registers: a takes both at once, and nobody calls it silent.
    let later = t + D * 3;
    let back = stuck.live("a", registered_since("a", later, later));
    let d = back.decide(later, &mut m);
    assert_eq!(assigns(&d), vec![to("x", "a", 2), to("y", "a", 2)]);
    assert!(takeover(&d, "x", "c", "did not acknowledge"), "{:?}", d.writes);
    assert_eq!(why(&d, "a"), None, "{:?}", d.silent);
    assert_eq!(d.blocked, None);
    // Acknowledged: both run on a; b and c are still named for what they are.
    let running = back.leases(vec![
        lease("x", Some("a"), 2, true, later),
        lease("y", Some("a"), 2, true, later),
    ]);
    let d = running.decide(later + secs(1), &mut m);
    assert_eq!((d.summary.running, d.summary.orphaned), (2, 0));
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(why(&d, "a"), None);
    assert_eq!(why(&d, "b"), Some(Silence::NeverRenewed));
}

#[test]
fn an_agent_registered_before_the_assignment_lapsed_keeps_the_lapse_until_it_registers_anew() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let renewing = t + secs(100);
    // p registered at t0 and renews, but left a unacknowledged (its agent serves other sets).
    let scene = Scene::new(&["a", "b"], &["p", "q"], t0)
        .live("p", registered_since("p", t0, renewing))
        .live("q", registered("q", renewing))
        .leases(vec![lease("a", Some("p"), 0, false, t)]);
    let mut m = Memory::default();
    let d = scene.decide(t + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 1), to("b", "q", 0)]);
    assert_eq!(
        why(&d, "p"),
        Some(Silence::NotServing),
        "renewing: not said to have stopped"
    );
    let d = scene
        .clone()
        .leases(vec![lease("a", Some("q"), 1, true, t + D)])
        .decide(t + D + secs(1), &mut m);
    assert_eq!(assigns(&d), vec![to("b", "q", 0)], "p still gets nothing here");
    // Its agent restarts and registers anew (a later registration): p may take b.
    let anew = scene
        .live("p", registered_since("p", t + D + secs(2), renewing))
        .leases(vec![lease("a", Some("q"), 1, true, t + D)]);
    let d = anew.decide(t + D + secs(2), &mut m);
    assert_eq!(assigns(&d), vec![to("b", "p", 0)]);
    assert_eq!(why(&d, "p"), None);
}

#[test]
fn a_registration_seen_in_the_pass_that_finds_the_lapse_is_a_new_chance_if_it_came_after_it() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // a went to p (no agent then) at t; p's agent registered at t + D + 1 s, after a lapsed; the
    // first pass after that finds both.
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", registered_since("p", t + D + secs(1), t + D + secs(1)))
        .live("q", unregistered("q"))
        .leases(vec![lease("a", Some("p"), 0, false, t)]);
    let d = scene.decide(t + D + secs(1), &mut Memory::default());
    // Free, and p may take it again (its agent acknowledges it under its registration).
    assert_eq!(assigns(&d), vec![to("a", "p", 1)]);
    assert_eq!(why(&d, "p"), None);
}

#[test]
fn pods_whose_agents_never_registered_get_nothing_a_registered_pod_may_run() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let renewing = t + secs(100);
    // u's agent never registered (its liveness Lease unregistered; v has none yet); r's did.
    let scene = Scene::new(&["a", "b", "c"], &["r", "u", "v"], t0)
        .live("r", registered("r", renewing))
        .live("u", unregistered("u"))
        .leases(vec![lease("c", Some("u"), 0, true, t)]);
    let d = scene.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "r", 0), to("b", "r", 0)]);
    assert!(d.writes.len() == 2, "u keeps what it runs, unasked: {:?}", d.writes);
    assert!(
        d.silent.is_empty(),
        "not being preferred is not silence: {:?}",
        d.silent
    );
    assert_eq!(d.blocked, None);
    // r's agent stops renewing: the others may take listeners (an agent of the per-listener
    // protocol shows itself only by acknowledging one).
    let d = scene
        .clone()
        .live("r", registered("r", t0))
        .decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "v", 0), to("b", "u", 0)]);
    // No registered pod at all (a controller upgraded before its agents): as before.
    let mut none = scene.clone();
    none.liveness.remove(&uid("r"));
    let d = none.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d).len(), 2, "{:?}", d.writes);
    // r cannot hold every listener (maxPerPod): the others take what it cannot.
    let mut full = scene;
    full.max_per_pod = 1;
    let d = full.decide(t, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "r", 0), to("b", "v", 0)]);
}

#[test]
fn a_pod_that_registered_is_judged_by_its_liveness_lease_not_by_an_earlier_lapse_elsewhere() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    // p, never registered, let a Lease of another set expire: unresponsive everywhere.
    let other = Scene::new(&["y"], &["p"], t0).leases(vec![lease("y", Some("p"), 0, true, t)]);
    let d = other.decide(t + D, &mut Memory::default());
    let mut unresponsive = Unresponsive::default();
    unresponsive.learn(&d, &other.pods, |_| false);
    assert!(unresponsive.contains(&other.pods[0]));
    let mut scene = Scene::new(&["a"], &["p"], t0);
    scene.unresponsive = unresponsive;
    let d = scene.decide(t + D, &mut Memory::default());
    assert!(assigns(&d).is_empty());
    assert!(why(&d, "p").is_some(), "{:?}", d.silent);
    // Its agent registers: p takes a in the pass that registration wakes.
    let d = scene
        .live("p", registered_since("p", t + D, t + D))
        .decide(t + D, &mut Memory::default());
    assert_eq!(assigns(&d), vec![to("a", "p", 0)]);
    assert!(d.silent.is_empty(), "{:?}", d.silent);
}

#[test]
fn a_recover_gives_a_renewing_pod_that_left_an_assignment_unacknowledged_another_chance() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let renewing = t + secs(100);
    // p, registered and renewing, left a unacknowledged; a waits, orphaned (q has no agent and
    // left it too).
    let scene = Scene::new(&["a"], &["p", "q"], t0)
        .live("p", registered_since("p", t0, renewing))
        .live("q", unregistered("q"));
    let mut m = Memory::default();
    let d = scene
        .clone()
        .leases(vec![lease("a", Some("p"), 0, false, t)])
        .decide(t + D, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "q", 1)]);
    let orphan = scene.leases(vec![lease("a", Some("q"), 1, false, t + D)]);
    let d = orphan.decide(t + D * 2, &mut m);
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
    assert_eq!(d.summary.orphaned, 1);
    assert_eq!(why(&d, "p"), Some(Silence::NotServing));
    assert_eq!(why(&d, "q"), Some(Silence::NeverRenewed));
    // `baton listeners recover`: both pods are live (Ready); p's agent renews, so it is tried again.
    let mut recover = orphan.clone();
    recover.recover = Some(["p".to_string(), "q".to_string()].into());
    let d = recover.decide(t + D * 2, &mut m);
    assert_eq!(assigns(&d), vec![to("a", "p", 2)]);
    assert_eq!(why(&d, "p"), None);
}

/// A small world of pods without agents, one of which gets an agent that registers at some point:
/// the listeners end up on it, each once, within a lease duration of its registration; it is never
/// named silent once registered; the others get nothing new once it is.
fn run_late_agent(
    pods: usize,
    listeners: usize,
    agent: usize,
    steps: &[u64],
    registers_at: u64,
) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let names: Vec<String> = (0..pods).map(|i| format!("p{i}")).collect();
    let ids: Vec<String> = (0..listeners).map(|i| format!("l{i}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut scene = Scene::new(&id_refs, &name_refs, t0);
    for n in &names {
        scene = scene.live(n, unregistered(n));
    }
    let mut m = Memory::default();
    let mut now = t0;
    let registered_at = t0 + Duration::from_millis(registers_at);
    let me = names[agent].clone();
    // When the controller first sees the registration.
    let mut seen = None;
    for step in steps {
        now += Duration::from_millis(*step);
        let up = now >= registered_at;
        if up {
            // The agent renews every step and acknowledges what is assigned to its pod.
            let since = *seen.get_or_insert(now);
            scene = scene.live(&me, registered_since(&me, since, now));
            for l in &mut scene.leases {
                if l.view.holder.as_deref() == Some(me.as_str()) && !l.view.renewed {
                    l.view.renewed = true;
                    l.observed = now;
                }
            }
        }
        let d = scene.decide(now, &mut m);
        check_decision(&scene.input(now), &d)?;
        if up {
            prop_assert!(why(&d, &me).is_none(), "{me} registered, named {:?}", d.silent);
            for (l, pod, _) in assigns(&d) {
                prop_assert_eq!(&pod, &me, "{} given to {} while {} is registered", l, pod, me);
            }
        }
        for (listener, pod, token) in assigns(&d) {
            let fresh = lease(&listener, Some(&pod), token, false, now);
            scene.leases.retain(|l| l.view.listener != listener);
            scene.leases.push(fresh);
        }
        // What others were given before the registration lapses within a lease duration; then
        // everything is on the agent's pod (acknowledged at its next step).
        if seen.is_some_and(|s| now >= s + D) {
            let on_me = scene
                .leases
                .iter()
                .filter(|l| l.view.holder.as_deref() == Some(me.as_str()))
                .count();
            prop_assert_eq!(on_me, listeners, "every listener on {}: {:?}", me, scene.leases);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_late_agent_runs_every_listener_and_is_never_called_silent(
        pods in 1usize..5,
        listeners in 1usize..5,
        agent in 0usize..5,
        steps in prop::collection::vec(50u64..3_000, 20..80),
        registers_at in 0u64..40_000,
    ) {
        run_late_agent(pods, listeners, agent % pods, &steps, registers_at)?;
    }
}

#[test]
fn a_handover_to_a_pod_whose_agent_is_leaving_is_taken_over_at_once_and_a_running_one_is_not() {
    let t0 = Instant::now();
    let t = t0 + secs(60);
    let mut m = Memory::default();
    // a's agent shuts down (its registration is marked leaving) just after x was handed to it
    // and before it saw the handover; y runs on a, acknowledged. b is registered.
    let mut leaving = registered("a", t);
    if let Some(l) = leaving.lease.as_mut() {
        l.leaving = true;
    }
    let scene = all_registered(Scene::new(&["x", "y"], &["a", "b"], t0), t)
        .live("a", leaving)
        .leases(vec![
            lease("x", Some("a"), 3, false, t),
            lease("y", Some("a"), 1, true, t),
        ]);
    let d = scene.decide(t + secs(1), &mut m);
    // x: nobody can run it, long before its duration is out. y: a may run it still, and a
    // release request is how it moves.
    assert_eq!(assigns(&d), vec![to("x", "b", 4)], "{:?}", d.writes);
    assert!(takeover(&d, "x", "a", "is shutting down"), "{:?}", d.writes);
    check_decision(&scene.input(t + secs(1)), &d)
        .map_err(|e| e.to_string())
        .unwrap();
    // The same handover to a pod whose agent is not leaving waits out its duration.
    let staying =
        all_registered(Scene::new(&["x"], &["a", "b"], t0), t).leases(vec![lease("x", Some("a"), 3, false, t)]);
    let d = staying.decide(t + secs(1), &mut Memory::default());
    assert!(assigns(&d).is_empty(), "{:?}", d.writes);
}
