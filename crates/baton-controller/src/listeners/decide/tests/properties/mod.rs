//! Property tests of [`decide`](super::decide).
//!
//! * Over random worlds seen once (pods, listener Leases in every state, liveness in every
//!   state, stopped pods, recovers, ceilings, a memory that saw some Leases being deleted): a
//!   decision takes no listener from a holder that may still run it, gives new listeners only to
//!   pods that answer, never hands out a token at or below one a Lease of the listener carried,
//!   raises the ceiling exactly when it must, fences only pods holding acknowledged listeners
//!   (once each), gives the same answer twice and again later until its requeue.
//! * Over random histories of a small cluster ([`world`], [`api`], [`agent`], [`controller`]):
//!   time passing with requests in flight, reconciles (some from a cache that has not caught up),
//!   watches that stall (and deliver late, in order), Leases and liveness Leases deleted by hand,
//!   agents killed, revived, cut off and healed, pods deleted gracefully and by force (the
//!   garbage collector catching up later), suspensions, recovers, controller restarts, new pods
//!   (some with agents of the per-listener protocol): no listener is ever assigned while a pod
//!   may still run it, none ever runs on two pods, its tokens only rise and stay within the
//!   ceiling, every decision is the same decided twice, and a quiet cluster runs every listener.
use std::collections::BTreeSet;

use proptest::prelude::*;
use tokio::time::Instant;

use super::{lease, live_lease, pod, uid, wanted, Scene, D};
use crate::listeners::decide::*;
use world::op;

mod agent;
mod api;
mod controller;
mod tenure;
mod world;

/// What every decision must satisfy whatever it is made from: one write per listener; fences
/// only for pods holding an acknowledged listener, once each, on the liveness Lease judged;
/// liveness Leases made for exactly the selected, unstopped pods without one.
pub(super) fn check_decision(input: &Input, d: &Decision) -> Result<(), TestCaseError> {
    let mut listeners = BTreeSet::new();
    for w in &d.writes {
        prop_assert!(
            listeners.insert(w.change.listener()),
            "two writes of one listener: {:?}",
            d.writes
        );
    }
    let mut fenced = BTreeSet::new();
    for f in &d.fences {
        prop_assert!(fenced.insert(f.uid.as_str()), "{} fenced twice: {:?}", f.pod, d.fences);
        let holds = input.leases.iter().any(|l| {
            l.view.renewed
                && l.view.holder.as_deref() == Some(f.pod.as_str())
                && l.view.holder_uid.as_deref() == Some(f.uid.as_str())
        });
        prop_assert!(holds, "{} fenced but holds nothing acknowledged: {:?}", f.pod, d.fences);
        let judged = input.liveness.get(&f.uid).and_then(|l| l.lease.as_ref());
        prop_assert!(judged.is_none_or(|l| !l.fenced), "{} fenced again", f.pod);
        let on = judged.map(|l| (l.name.clone(), l.resource_version.clone()));
        prop_assert_eq!(&f.lease, &on, "the fence is conditional on the copy judged");
    }
    let creates: Vec<(String, String)> = input
        .pods
        .iter()
        .filter(|p| !input.deleting && p.selected && !input.stopped.contains(&p.uid))
        .filter(|p| input.liveness.get(&p.uid).is_none_or(|l| l.lease.is_none()))
        .map(|p| (p.name.clone(), p.uid.clone()))
        .collect();
    prop_assert_eq!(&d.liveness_creates, &creates);
    Ok(())
}

/// Whether the holder of `l` may still run its listener, by the rules (the module doc of
/// [`decide`](super)): not if the kubelet reported it stopped or a recover names it not live;
/// not if it never acknowledged and its agent is leaving (such an agent acknowledges nothing
/// more); while its own record is fresh; not if it never acknowledged; while its liveness is (or
/// was, not yet run out); then only until fenced (or, gone, its liveness Lease gone too).
fn may_run(input: &Input, l: &LeaseFacts) -> bool {
    let v = &l.view;
    let Some(holder) = v.holder.as_deref().filter(|h| !h.is_empty()) else {
        return false;
    };
    let holder_uid = v.holder_uid.as_deref().unwrap_or_default();
    if input.stopped.contains(holder_uid) || input.recover.is_some_and(|live| !live.contains(holder)) {
        return false;
    }
    let live = input.liveness.get(holder_uid);
    let leaving = live
        .and_then(|f| f.lease.as_ref())
        .is_some_and(|l| l.registered && l.leaving);
    if !v.renewed && leaving {
        return false;
    }
    if input.now < l.observed + l.duration {
        return true;
    }
    if !v.renewed {
        return false;
    }
    let base = live
        .and_then(|f| f.observed)
        .map_or(input.started, |o| o.max(input.started));
    if input.now < base + l.duration {
        return true;
    }
    let exists = input
        .pods
        .iter()
        .any(|p| p.name == holder && v.held_by(&p.name, &p.uid));
    match live.and_then(|f| f.lease.as_ref()) {
        Some(lease) => !lease.fenced,
        None => exists,
    }
}

/// Whether pod `name` may take a new listener: selected, Ready, its agent answering (not lapsed
/// in this set, unless a recover gives its renewing agent another chance), and, if its agent
/// never registered, no registered pod may take listeners ([`registered_may`]).
fn answers(input: &Input, d: &Decision, name: &str) -> bool {
    let Some(p) = input.pods.iter().find(|p| p.name == name) else {
        return false;
    };
    answering(input, d, p) && (is_registered(input, p) || !registered_may(input, d))
}

/// Whether pod `p` is selected and Ready and its agent answers (and is not leaving).
fn answering(input: &Input, d: &Decision, p: &PodFacts) -> bool {
    let live = input.liveness.get(&p.uid);
    let lease = live.and_then(|l| l.lease.as_ref());
    let stale = live.is_some_and(|l| l.silent(input.now, input.started, input.lease_duration));
    let another_chance = input.recover.is_some() && is_registered(input, p) && !stale;
    let silent = d.silent.iter().any(|s| s.pod == p.name);
    p.selected
        && p.eligible
        && !lease.is_some_and(|l| l.fenced || l.leaving)
        && !stale
        && !silent
        && (!d.lapsed.contains(&p.uid) || another_chance)
}

fn is_registered(input: &Input, p: &PodFacts) -> bool {
    input.liveness.get(&p.uid).is_some_and(LivenessFacts::registered)
}

/// Whether pods whose agents registered and answer may take every listener (`maxPerPod`
/// permitting): then no other pod gets one.
fn registered_may(input: &Input, d: &Decision) -> bool {
    let n = input
        .pods
        .iter()
        .filter(|p| is_registered(input, p) && answering(input, d, p))
        .count();
    let wanted = input.listeners.iter().filter(|l| !l.suspended).count();
    n > 0 && (input.max_per_pod == 0 || n * input.max_per_pod as usize >= wanted)
}

/// A world seen once: see [`world_strategy`].
#[derive(Clone, Debug)]
struct Seen {
    scene: Scene,
    /// The same world as an earlier decision saw it: some Leases still there, being deleted.
    before: Scene,
    now: Instant,
}

const POOL: usize = 4;
const IDS: usize = 5;

/// A pod: exists, selected, Ready, restarts.
type PodGen = (bool, bool, bool, i32);
/// A pod's liveness: none known, its Lease gone, unregistered, registered, fenced, registered
/// and leaving; when its agent was last seen writing it (‰ of the time since the start).
type LiveGen = (u8, Option<u16>);
/// A listener: wanted, suspended, without config.
type ListenerGen = (bool, bool, bool);
/// A Lease: held, its holder (POOL and POOL + 1 never exist), its uid right, acknowledged, token,
/// observed (‰), being deleted, adopted, release requested, gone since the earlier decision.
type LeaseGen = (bool, usize, bool, bool, i32, u16, bool, bool, bool, bool);
/// Stopped pods, a recover's live pods, the ceiling (consistent, none, low), the time since the
/// start (ms), maxPerPod, deleting, keep unknown.
type OtherGen = (Vec<bool>, Option<Vec<bool>>, (u8, i32), u64, u32, bool, bool);

fn world_strategy() -> impl Strategy<Value = Seen> {
    let pods = prop::collection::vec(
        (
            any::<bool>(),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.8),
            0i32..2,
        ),
        POOL,
    );
    let live = prop::collection::vec((0u8..6, prop::option::of(0u16..=1000)), POOL + 2);
    let listeners = prop::collection::vec(
        (
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.1),
        ),
        IDS,
    );
    let one = (
        any::<bool>(),
        0..POOL + 2,
        prop::bool::weighted(0.9),
        any::<bool>(),
        0i32..8,
        0u16..=1000,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    );
    let leases = prop::collection::vec(prop::option::weighted(0.8, one), IDS);
    let others = (
        prop::collection::vec(prop::bool::weighted(0.15), POOL + 2),
        prop::option::weighted(0.15, prop::collection::vec(any::<bool>(), POOL)),
        (0u8..3, 0i32..5),
        0u64..15_000,
        0u32..3,
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.1),
    );
    (pods, live, listeners, leases, others).prop_map(build)
}

/// Everything a [`Seen`] is built from.
type WorldGen = (
    Vec<PodGen>,
    Vec<LiveGen>,
    Vec<ListenerGen>,
    Vec<Option<LeaseGen>>,
    OtherGen,
);

fn build((pods, live, listeners, leases, others): WorldGen) -> Seen {
    let (stopped, recover, ceiling, span, max, deleting, keep_unknown) = others;
    let started = Instant::now();
    let now = started + Duration::from_millis(span);
    let at = |permille: u16| started + (now - started) * u32::from(permille) / 1000;
    let mut scene = Scene::new(&[], &[], started);
    for (i, (exists, selected, ready, restarts)) in pods.iter().enumerate() {
        if *exists {
            scene.pods.push(PodFacts {
                selected: *selected,
                eligible: *ready && !stopped[i],
                restarts: *restarts,
                ..pod(&format!("p{i}"))
            });
        }
    }
    for (i, (kind, observed)) in live.iter().enumerate() {
        let name = format!("p{i}");
        if stopped[i] {
            scene.stopped.insert(uid(&name));
        }
        let lease = match kind {
            0 => continue,
            1 => None,
            k => Some(LiveLease {
                leaving: *k == 5,
                ..live_lease(&name, *k == 3 || *k == 5, *k == 4)
            }),
        };
        // (The tracker reports a registered Lease as seen, at the latest when it first saw it.)
        let registered = lease.as_ref().is_some_and(|l| l.registered);
        let observed = observed.map(&at).or(registered.then(|| at(0)));
        scene.liveness.insert(
            uid(&name),
            LivenessFacts {
                wakes_after: None,
                registration_seen: None,
                lease,
                observed,
            },
        );
    }
    for (i, (present, suspended, no_config)) in listeners.iter().enumerate() {
        if *present {
            scene.listeners.push(Wanted {
                suspended: *suspended,
                no_config: *no_config,
                ..wanted(&format!("l{i}"))
            });
        }
    }
    let mut before = add_leases(&mut scene, &leases, at);
    let carried = before.leases.iter().map(|l| l.view.transitions).max();
    scene.ceiling = match ceiling {
        (0, extra) => carried.map(|c| c + extra).or((extra > 2).then_some(extra)),
        (1, _) => None,
        (_, low) => Some(low),
    };
    before.ceiling = scene.ceiling;
    scene.recover = recover.map(|live| {
        live.iter()
            .enumerate()
            .filter(|(_, l)| **l)
            .map(|(i, _)| format!("p{i}"))
            .collect()
    });
    for s in [&mut scene, &mut before] {
        s.max_per_pod = max;
        s.deleting = deleting;
        s.keep_unknown = keep_unknown;
    }
    Seen { scene, before, now }
}

/// Adds the Leases to `scene`; returns the scene an earlier decision saw, where the Leases gone
/// since were still there, being deleted.
fn add_leases(scene: &mut Scene, leases: &[Option<LeaseGen>], at: impl Fn(u16) -> Instant) -> Scene {
    let mut before = scene.clone();
    for (i, g) in leases.iter().enumerate() {
        let Some((held, holder, uid_ok, acked, token, observed, deleting, adopted, requested, gone)) = g else {
            continue;
        };
        let name = format!("p{holder}");
        let mut l = lease(
            &format!("l{i}"),
            held.then_some(name.as_str()),
            *token,
            *acked,
            at(*observed),
        );
        let label = if *uid_ok { uid(&name) } else { format!("uid-old-{name}") };
        l.view.holder_uid = Some(label.clone());
        l.labelled_uid = Some(label);
        l.view.release_requested = *requested && *held;
        l.terminating = *deleting || *gone;
        l.adopted = *adopted;
        before.leases.push(l.clone());
        if !gone {
            scene.leases.push(l);
        }
    }
    before
}

/// The decision of a world seen once, against the rules.
fn check_seen(seen: &Seen) -> Result<(), TestCaseError> {
    let (scene, now) = (&seen.scene, seen.now);
    let mut memory = Memory::default();
    decide(&seen.before.input(now), &mut memory);
    let input = scene.input(now);
    let mut again = memory.clone();
    let d = decide(&input, &mut memory);
    check_decision(&input, &d)?;
    // The same answer with the same memory, and again once it learnt from this one.
    prop_assert_eq!(&decide(&input, &mut again), &d);
    prop_assert_eq!(&decide(&input, &mut memory.clone()), &d);
    let lease_of = |id: &str| input.leases.iter().find(|l| l.view.listener == id);
    let mut highest = input.leases.iter().map(|l| l.view.transitions).max();
    for w in &d.writes {
        let listener = w.change.listener();
        let frees = matches!(
            w.change,
            Move::Assign { .. } | Move::RemoveFinalizer { .. } | Move::DeleteLease { .. }
        );
        if let Some(l) = lease_of(listener).filter(|_| frees) {
            prop_assert!(!may_run(&input, l), "{:?} while its holder may run it: {l:?}", w.change);
        }
        if let Move::RequestRelease {
            to: Some(to), holder, ..
        } = &w.change
        {
            // A handover its holder's agent will write: to a pod that answers, with the next
            // token, which the ceiling covers.
            prop_assert!(
                answers(&input, &d, &to.pod),
                "{listener} handed to {}, which does not answer",
                to.pod
            );
            prop_assert_ne!(&to.pod, holder);
            let l = lease_of(listener);
            prop_assert_eq!(Some(to.token), l.map(|l| l.view.transitions + 1));
            highest = highest.max(Some(to.token));
            continue;
        }
        let Move::Assign { pod, transitions, .. } = &w.change else {
            let adopts = matches!(w.change, Move::Adopt { .. });
            let old = lease_of(listener).is_some_and(|l| !l.adopted && !l.terminating);
            prop_assert!(
                !adopts || old,
                "{:?} of a Lease already adopted or being deleted",
                w.change
            );
            continue;
        };
        prop_assert!(
            answers(&input, &d, pod),
            "{listener} given to {pod}, which does not answer"
        );
        highest = highest.max(Some(*transitions));
        let carried = seen
            .before
            .leases
            .iter()
            .chain(input.leases)
            .filter(|l| l.view.listener == listener)
            .map(|l| l.view.transitions)
            .max();
        prop_assert!(
            carried.is_none_or(|c| *transitions > c),
            "{listener} at {transitions}, carried {carried:?}"
        );
        match (lease_of(listener), carried) {
            (Some(l), _) => prop_assert_eq!(*transitions, l.view.transitions + 1),
            (None, Some(c)) => prop_assert_eq!(*transitions, c + 1, "continues from the deleted Lease"),
            (None, None) => prop_assert_eq!(*transitions, input.ceiling.map_or(0, |c| c + 1)),
        }
    }
    // Every Lease of the older protocol with nothing else to do is adopted.
    for l in input.leases.iter().filter(|l| !l.adopted && !l.terminating) {
        prop_assert!(
            d.writes.iter().any(|w| w.change.listener() == l.view.listener),
            "{} not adopted",
            l.view.listener
        );
    }
    let expected = match (highest, input.ceiling) {
        (Some(h), Some(c)) if h <= c => Some(c),
        (Some(h), _) => Some(h + CEILING_RESERVE),
        (None, c) => c,
    };
    prop_assert_eq!(d.ceiling, expected);
    check_requeue(seen, &memory, &d)
}

/// Nothing changes by time alone before the requeue (unless at its floor), or before a
/// registered pod's renewals are due (the liveness tracker wakes the set then).
fn check_requeue(seen: &Seen, memory: &Memory, d: &Decision) -> Result<(), TestCaseError> {
    let now = seen.now;
    let timers = seen
        .scene
        .liveness
        .values()
        .filter(|l| l.lease.as_ref().is_some_and(|l| l.registered))
        .filter_map(|l| l.observed)
        .map(|o| o + D)
        .filter(|at| *at > now);
    // (A requeue at the floor says only that something changes sooner.)
    let wake = d
        .requeue
        .map(|r| if r > REQUEUE_FLOOR { now + r - EXPIRY_SLACK } else { now })
        .into_iter()
        .chain(timers)
        .min();
    let Some(before) = wake
        .and_then(|w| w.checked_sub(Duration::from_millis(1)))
        .filter(|b| *b > now)
    else {
        return Ok(());
    };
    let later = decide(&seen.scene.input(before), &mut memory.clone());
    prop_assert_eq!(
        &later.writes,
        &d.writes,
        "changed by {:?} before the requeue",
        before - now
    );
    prop_assert_eq!(&later.fences, &d.fences);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_decision_follows_the_rules_whatever_it_sees(seen in world_strategy()) {
        check_seen(&seen)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_listener_is_ever_assigned_while_a_pod_may_still_run_it(
        legacy in prop::collection::vec(prop::bool::weighted(0.2), 1..4),
        max in 0u32..3,
        seed in prop_oneof![Just(0u64), any::<u64>()],
        ops in prop::collection::vec(op(), 40..160),
    ) {
        let mut w = world::World::new(&legacy, max, seed);
        for op in &ops {
            w.step(op)?;
        }
        w.quiet()?;
        for _ in 0..80 {
            w.tick(false)?;
            w.reconcile(false)?;
        }
        let running = w
            .wanted
            .iter()
            .filter(|l| w.pods.iter().any(|p| p.agent.as_ref().is_some_and(|a| a.running.contains_key(&l.id))))
            .count();
        prop_assert_eq!(running, w.capacity(), "a quiet cluster runs what it can:\n{:?}", w);
    }
}
