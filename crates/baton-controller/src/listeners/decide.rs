//! The ListenerSet reconcile's decisions, pure: what the caches show (pods, the set's listener
//! Leases, the pods' liveness Leases), the spec's listeners, the controller's memory and `now`
//! (monotonic) in; the Lease writes, the fences, the liveness Leases to create, the summary the
//! status is made from and when to look again out. No I/O and no clock: the shell
//! (`listeners::controller::reconcile`) reads, calls [`decide`], writes.
//!
//! # Rules decided here (on top of the [`assigner`]'s)
//!
//! * **Liveness per pod, ownership per listener.** A listener Lease changes only when its
//!   assignment does (assign, acknowledge, release request, release); its holder is alive while
//!   the holder's liveness Lease is renewed ([`crate::api::listenerset::liveness`]). A held
//!   listener is *valid* while either is fresh on this process's monotonic clock: its own Lease's
//!   holder record (assignment, acknowledgement, or a renewal by an agent of the per-listener
//!   protocol) was seen change less than `leaseDurationSeconds` ago (`LeaseFacts::observed`), or
//!   its holder is registered on its liveness Lease and was seen writing it less than that ago
//!   (`LivenessFacts::observed`). A controller that starts counts from its first sight of each.
//! * **A listener is taken from a pod only when that pod cannot be running it**:
//!   - the kubelet reported the pod stopped (`Input::stopped`), or a recover names it not live;
//!   - its agent never acknowledged this assignment and it is no longer valid (an
//!     acknowledgement is a conditional write of the Lease, so the takeover, conditional on the
//!     same Lease, and the acknowledgement can never both succeed);
//!   - or it is acknowledged, no longer valid, *and fenced*: the controller made a conditional
//!     write of the pod's liveness Lease after judging it expired ([`Fence`]), which succeeds only
//!     if the agent renewed nothing since the copy judged, and after which none of its renewals
//!     can succeed. The agent stops every listener at its last successful write's send time +
//!     duration − margin, before the controller (which saw that write later) judges it expired.
//!     A pod gone with its liveness Lease needs no fence: nothing can renew it. (A holder pod that
//!     is merely gone proves nothing: its containers may run on, so its listeners wait like any
//!     other's.)
//! * **Fenced pods get nothing new**, in any set, until their agent registers again (the fence is
//!   on the liveness Lease, so a restarted controller knows it too); nor do pods whose
//!   registration is stale, pods that left a listener of this set unacknowledged past its duration
//!   (their agent does not serve this set: remembered per set until the pod acknowledges one,
//!   restarts, its agent registers after that assignment lapsed, or a recover finds its agent
//!   renewing), nor pods that never registered and on which an agent of the per-listener protocol
//!   let a Lease expire ([`Unresponsive`], across sets). Such pods are not asked to give up what
//!   they hold either. A pod whose agent renews its registration is never named as stopped
//!   ([`Silence`]).
//! * **Registered pods first.** A pod whose agent never registered gets a new listener only while
//!   no registered, answering pod may take listeners (or those cannot hold them all within
//!   `maxPerPod`): agents of the per-listener protocol never register and show themselves only by
//!   acknowledging an assignment, which is all their compatibility needs.
//! * **A Lease being deleted** (it carries the finalizer [`LEASE_FINALIZER`], so it stays with
//!   its holder and token) is released by a live holder first (`lease-deleted`), then let go
//!   ([`Move::RemoveFinalizer`]) once nobody runs its listener; the listener then gets a new
//!   Lease, preferably on the pod that let it go.
//! * **Fencing tokens**: a handover raises the Lease's token by one; a listener without a Lease
//!   starts above the set's token ceiling (`status.fencingTokenCeiling`), which is raised before
//!   any Lease carries a higher token ([`Decision::ceiling`], written by the shell first).
//! * A fresh controller holds listeners without a Lease in a set that handed out tokens before
//!   for one lease duration: a Lease whose finalizer was removed by hand may have vanished while
//!   its holder still runs the listener, until that holder's own deadline.
//! * A listener whose config cannot be read is not assigned; a set being deleted is wound down
//!   ([`assigner::finalize`]).
//!
//! [`LEASE_FINALIZER`]: crate::api::listenerset::LEASE_FINALIZER

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::assigner::{self, LeaseView, ListenerView, Move, PodView, Summary};

/// Added to a requeue at the next expiry, so the next pass finds the Lease expired.
const EXPIRY_SLACK: Duration = Duration::from_millis(20);
/// The shortest time-driven requeue: expiries closer together than this are judged together
/// (a burst of assignments must not make one decision per listener as each expires).
const REQUEUE_FLOOR: Duration = Duration::from_millis(100);
/// How far above the highest token a raised ceiling goes: the ceiling is written again only
/// after that many more handovers of the listener with the highest token.
pub const CEILING_RESERVE: i32 = 16;

/// A pod of the set's namespace (every one with a name and uid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    /// Matches the set's selector.
    pub selected: bool,
    /// Ready, not terminating, not draining (the selector aside).
    pub eligible: bool,
    /// Ready (draining or terminating or not): tells a draining pod from one not Ready.
    pub ready: bool,
    /// Restarts of its containers, summed (a restarted agent is a new chance).
    pub restarts: i32,
    /// Its share of the listeners relative to other pods' (`baton.dev/listener-weight`).
    pub weight: u32,
    /// `(workload, revision)`: the workload that made it and the revision of its template (a
    /// Rollout's `baton.dev/revision-hash`), if known. Pods of one workload on two revisions are
    /// a rollout under way.
    pub revision: Option<(String, String)>,
}

/// A listener Lease of the set, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseFacts {
    /// The Lease's name.
    pub name: String,
    /// Its view; `expired` is ignored (decided here).
    pub view: LeaseView,
    /// When this controller first saw its holder record (holder, renewal, acquisition,
    /// transitions) as it is now.
    pub observed: Instant,
    /// Its `leaseDurationSeconds` (the set's default if unset).
    pub duration: Duration,
    /// It is being deleted (it stays while the finalizer is on it).
    pub terminating: bool,
    /// It carries the finalizer, the holder label and the protocol annotation.
    pub adopted: bool,
    /// The uid its holder label names: the pod that held it last (a release leaves the label).
    pub labelled_uid: Option<String>,
}

/// A pod's liveness Lease, as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveLease {
    pub name: String,
    pub resource_version: String,
    /// Its holder is the pod (the agent registered).
    pub registered: bool,
    /// The controller fenced it and no agent registered since.
    pub fenced: bool,
    /// Its agent is shutting down (the registration is marked leaving): the pod takes nothing
    /// new.
    pub leaving: bool,
}

/// What the controller knows of a pod's liveness.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessFacts {
    /// Its liveness Lease, if there is one.
    pub lease: Option<LiveLease>,
    /// When this controller last saw the pod's agent write it (registration or renewal), or
    /// first saw it registered; `None`: never.
    pub observed: Option<Instant>,
    /// How long after `observed` the liveness tracker wakes the pod's sets if no renewal comes
    /// (the liveness Lease's own duration); `None`: as soon as any of its listeners' Leases
    /// could lapse. A listener whose set has a shorter lease needs a timer of its own until the
    /// agent renews with that duration.
    pub wakes_after: Option<std::time::Duration>,
    /// When this controller first saw the registration its liveness Lease records now (a new
    /// registration number, or a Lease made anew); `None`: not registered, or not known when
    /// (as good as before anything this controller remembers).
    pub registration_seen: Option<Instant>,
}

impl LivenessFacts {
    /// Registered on its liveness Lease.
    pub fn registered(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| l.registered)
    }

    /// Registered, and its agent marked the registration leaving (it shuts down).
    pub fn leaving(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| l.registered && l.leaving)
    }

    /// Registered, and not seen writing its liveness Lease (never counting from before this
    /// controller `started`) for as long as that Lease says: its agent does not answer. The
    /// agent renews at a quarter of the shortest lease it holds and writes that as its
    /// liveness Lease's duration, so a pod that holds nothing of a set with a short lease is
    /// judged by its own, longer promise (`set_duration` only when the Lease has none).
    pub fn silent(&self, now: Instant, started: Instant, set_duration: std::time::Duration) -> bool {
        self.lease.as_ref().is_some_and(|l| l.registered)
            && self
                .observed
                .is_some_and(|o| now >= o.max(started) + self.wakes_after.unwrap_or(set_duration))
    }
}

/// A listener the spec asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub id: String,
    pub suspended: bool,
    /// Its config cannot be read (missing Secret or key): it is not started.
    pub no_config: bool,
}

/// Everything one decision is made from.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub deleting: bool,
    pub listeners: &'a [Wanted],
    /// The `listenersFrom` Secret is missing: Leases of listeners not in `listeners` stay.
    pub keep_unknown: bool,
    /// 0 = no limit.
    pub max_per_pod: u32,
    /// How loads are evened out; `None`: `Sticky`.
    pub rebalance: Option<&'a Rebalance>,
    /// Workloads of the selected pods (as [`PodFacts::revision`] names them) that are rolling out
    /// or scaling, as their own status says: evening out waits for them.
    pub under_way: &'a BTreeSet<String>,
    pub pods: &'a [PodFacts],
    pub leases: &'a [LeaseFacts],
    /// By pod uid: every pod of `pods` and every holder of `leases` (absent = no liveness Lease
    /// known).
    pub liveness: &'a BTreeMap<String, LivenessFacts>,
    /// `status.fencingTokenCeiling` (or what older status fields say); `None`: no token was
    /// ever handed out in this set.
    pub ceiling: Option<i32>,
    /// A recover is pending: the pods the API server lists as Ready and not terminating now.
    pub recover: Option<&'a BTreeSet<String>>,
    /// Pods an agent of the per-listener protocol let a Lease expire on (any set).
    pub unresponsive: &'a Unresponsive,
    /// Uids of pods the kubelet reported stopped (phase Succeeded/Failed, or every container
    /// terminated), existing or gone. Only this proves that a pod's listeners stopped.
    pub stopped: &'a BTreeSet<String>,
    /// The set's `leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// The set's own order of pods for ties ([`assigner::rank`]; from its uid): sets holding the
    /// same loads place listeners on different pods. 0: by name.
    pub seed: u64,
    /// When this controller started watching (a fresh controller's rule).
    pub started: Instant,
    pub now: Instant,
    /// What changed since the set's last pass, where the shell knows: the pass then sets the
    /// settled listeners aside at a cost that grows with the change ([`settled`]). `None`: the
    /// pass walks the set.
    pub delta: Option<Delta<'a>>,
}

/// What changed in [`Input`] since the set's last pass. Each number names one state: a pass
/// follows the last one kept only if `spec` and `shape` are that pass's and `from` its `to`;
/// else it reads the set whole.
#[derive(Clone, Copy, Debug)]
pub struct Delta<'a> {
    /// Names `Input::listeners`: another number, other listeners.
    pub spec: u64,
    /// Names the Leases of `Input::leases`, their order and listeners: another number, a Lease
    /// came, went or names another listener.
    pub shape: u64,
    /// The update of `Input::leases` before this one, and this one.
    pub from: u64,
    pub to: u64,
    /// Places in `Input::leases` whose facts were made between `from` and `to`.
    pub changed: &'a [usize],
}

/// `spec.rebalance` for a `Balanced` set, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebalance {
    pub max_skew: u32,
    /// `maxConcurrentMoves` as a count.
    pub max_moves: u32,
    pub min_residence: Duration,
}

/// How an assignment came about, for its Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HowAssigned {
    /// The listener had no Lease, or one nobody held before.
    Assigned,
    /// Its holder released it.
    Handover,
    /// Taken from holder pod `from`, which is gone, stopped or expired; `why` says which.
    Takeover { from: String, why: String },
    /// Its Lease was deleted (by hand): its holder stopped and released it, and it got a new one.
    Recreated,
}

/// One Lease write, and for an assignment how it came about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub change: Move,
    pub kind: Option<HowAssigned>,
}

/// A conditional write that ends a pod's liveness registration: clear its holder (on the copy
/// of version `lease.1`), or create it fenced when it has none (`lease: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub pod: String,
    pub uid: String,
    /// `(name, resourceVersion)` of the liveness Lease judged.
    pub lease: Option<(String, String)>,
}

/// What the shell does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Independent, conditional listener Lease writes.
    pub writes: Vec<Write>,
    /// Liveness fences: once one succeeds, that pod's acknowledged listeners may move (next pass).
    pub fences: Vec<Fence>,
    /// Selected pods with no liveness Lease yet: `(name, uid)`.
    pub liveness_creates: Vec<(String, String)>,
    /// The listeners' states before the writes (status is made from it).
    pub summary: Summary,
    /// Pods that may take listeners.
    pub eligible: usize,
    /// Why no pod may take a listener (`None`: some pod may).
    pub blocked: Option<Blocked>,
    /// Look again after this long (something expires then), unless something changes first.
    pub requeue: Option<Duration>,
    /// Leases a pending recover expired at once.
    pub recovered: usize,
    /// The token ceiling the status must carry before these writes go out (`None`: no token was
    /// ever handed out).
    pub ceiling: Option<i32>,
    /// Uids of pods an agent of the per-listener protocol let a Lease of this set expire on.
    pub lapsed: BTreeSet<String>,
    /// Uids of pods seen acknowledging or renewing a Lease of this set.
    pub renewed: BTreeSet<String>,
    /// Selected pods that get nothing new because their agent does not answer (by name).
    pub silent: Vec<Silent>,
    /// The fencing token of each listener that is pending or orphaned and has a Lease.
    pub tokens: BTreeMap<String, i32>,
    /// How balanced the set is and what evening out did ([`assigner::Balance`]).
    pub balance: assigner::Balance,
    /// Listeners asked to move to even out loads in the last minute (this decision's included).
    pub moves_last_minute: u32,
    /// The start or the end of a burst of evening-out moves, for its Event.
    pub burst: Option<Burst>,
    /// A new set waits for its pods to settle before placing its first listeners (see
    /// [`wait::first_placement`]).
    pub settling: bool,
}

/// A burst of evening-out moves: from the first move while the set was balanced to the moment
/// it is balanced again with nothing on the move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Burst {
    /// The first moves: how many, and the skew they start from.
    Started { moves: u32, skew: u32 },
    /// Balanced again: moves made in the burst, how long it took, the skew now.
    Ended { moves: u32, took: Duration, skew: u32 },
}

/// Decide one reconcile. See the module doc. Settled listeners ([`settled`]) are set aside as
/// counts where that decides the same as [`decide_full`].
pub fn decide(input: &Input, memory: &mut Memory) -> Decision {
    match settled::split(input, memory) {
        Some(split) => {
            let forget = Forget {
                wanted: &|id| split.wanted(id),
                fingerprint: split.fingerprint,
            };
            decide_with(input, memory, Some(&split), &forget)
        }
        None => decide_full(input, memory),
    }
}

/// Decide one reconcile looking at every listener one by one (what [`decide`] decides, at a cost
/// that grows with the set).
pub fn decide_full(input: &Input, memory: &mut Memory) -> Decision {
    let wanted: fnv::FnvHashSet<&str> = input.listeners.iter().map(|l| l.id.as_str()).collect();
    let forget = Forget {
        wanted: &|id| wanted.contains(id),
        fingerprint: Fingerprint::of_all(input.listeners.iter().map(|l| l.id.as_str())),
    };
    decide_with(input, memory, None, &forget)
}

/// Decide over the listeners `split` leaves, with its settled ones counted on their pods — or,
/// where that would have to look at those one by one, over all of `full`'s (what the memory
/// learnt by then, that pass learns the same again). `forget`: which listeners the memory
/// forgets.
fn decide_with(full: &Input, memory: &mut Memory, split: Option<&settled::Split>, forget: &Forget) -> Decision {
    let reduced = split.map(|s| s.input(full));
    let input = reduced.as_ref().unwrap_or(full);
    let none = settled::Tallies::default();
    let tallies = split.map_or(&none, |s| &s.tallies);
    let mut judged = judge::leases(input, memory);
    judged.renewed.extend(tallies.renewed.iter().map(|uid| uid.to_string()));
    memory.learn(input, &judged, &terminated_by(input), forget);
    let pods = pod_views(input, &judged, memory, tallies.count);
    if !tallies.holders_eligible(&pods) {
        return decide_with(full, memory, None, forget);
    }
    memory.note_pods(input, &pods);
    let silent = silent(input, &judged, memory);
    let listeners = listener_views(input, &judged, memory);
    let held = tallies.count
        + judged
            .views
            .iter()
            .filter(|l| l.holder.as_deref().is_some_and(|h| !h.is_empty()))
            .count();
    let first = wait::first_placement(input, memory.pods_since(), memory.first_wait(), held);
    memory.note_first_wait(first.is_some(), input.now);
    let Some((writes, held_back, balance)) = writes(input, &pods, &judged, &listeners, memory, &tallies.pods, first)
    else {
        return decide_with(full, memory, None, forget);
    };
    let (moves_last_minute, burst) = memory.note_balance(input.now, &balance, input.rebalance.map(|r| r.max_skew));
    let counted: Vec<ListenerView> = if input.deleting {
        judged
            .views
            .iter()
            .map(|l| ListenerView {
                id: l.listener.clone(),
                ..Default::default()
            })
            .collect()
    } else {
        listeners
    };
    let highest = writes
        .iter()
        .filter_map(|w| match &w.change {
            Move::Assign { transitions, .. } => Some(*transitions),
            // The holder's agent writes the handover with this token: the ceiling covers it first.
            Move::RequestRelease { to: Some(to), .. } => Some(to.token),
            _ => None,
        })
        .chain(judged.views.iter().map(|l| l.transitions))
        .chain(tallies.highest)
        .max();
    let ceiling = match (highest, input.ceiling) {
        (Some(h), Some(c)) if h <= c => Some(c),
        (Some(h), _) => Some(h.saturating_add(CEILING_RESERVE)),
        (None, c) => c,
    };
    let balance_wake = balance.wake.map(|d| input.now + d);
    let wake = [judged.next_expiry, held_back, balance_wake, memory.moves_expire_at()]
        .into_iter()
        .flatten()
        .min();
    let tokens = unrun_tokens(&judged, &writes);
    let mut summary = assigner::summarize(&counted, &pods, &judged.views);
    summary.add_settled(&tallies.pods);
    Decision {
        summary,
        eligible: pods.iter().filter(|p| p.eligible).count(),
        blocked: blocked::blocked(input, &pods),
        requeue: wake.map(|at| (at.saturating_duration_since(input.now) + EXPIRY_SLACK).max(REQUEUE_FLOOR)),
        recovered: judged.recovered,
        ceiling,
        lapsed: judged.lapsed.clone(),
        renewed: judged.renewed.clone(),
        fences: judged.fences,
        liveness_creates: liveness_creates(input),
        tokens,
        writes,
        silent,
        balance,
        moves_last_minute,
        burst,
        settling: first.is_some(),
    }
}

/// The tokens of listeners that have a Lease but no live holder, and are not assigned now.
fn unrun_tokens(judged: &Judged, writes: &[Write]) -> BTreeMap<String, i32> {
    let assigned: BTreeSet<&str> = writes
        .iter()
        .filter(|w| matches!(w.change, Move::Assign { .. }))
        .map(|w| w.change.listener())
        .collect();
    judged
        .views
        .iter()
        .filter(|l| l.expired || l.holder.is_none())
        .filter(|l| !assigned.contains(l.listener.as_str()))
        .map(|l| (l.listener.clone(), l.transitions))
        .collect()
}

/// Selected pods without a liveness Lease (and not gone or stopped): the controller creates one
/// for each, unregistered, for its agent to register on.
fn liveness_creates(input: &Input) -> Vec<(String, String)> {
    if input.deleting {
        return Vec::new();
    }
    input
        .pods
        .iter()
        .filter(|p| p.selected && !input.stopped.contains(&p.uid))
        .filter(|p| input.liveness.get(&p.uid).is_none_or(|l| l.lease.is_none()))
        .map(|p| (p.name.clone(), p.uid.clone()))
        .collect()
}

/// The spec's listeners; with `keep_unknown`, also the listeners of Leases the spec cannot name
/// now. A listener without a Lease starts above the ceiling; one whose Lease was deleted under
/// it prefers the pod that let it go.
fn listener_views(input: &Input, judged: &Judged, memory: &Memory) -> Vec<ListenerView> {
    let mut views: Vec<ListenerView> = input
        .listeners
        .iter()
        .map(|l| ListenerView {
            id: l.id.clone(),
            suspended: l.suspended,
            last_transitions: memory
                .last_token(&l.id)
                .or(input.ceiling)
                .filter(|_| !judged.by_listener.contains_key(l.id.as_str())),
            prefer: memory.preferred(&l.id),
        })
        .collect();
    if input.keep_unknown {
        let mut known: BTreeSet<String> = views.iter().map(|l| l.id.clone()).collect();
        for lease in &judged.views {
            if known.insert(lease.listener.clone()) {
                views.push(ListenerView {
                    id: lease.listener.clone(),
                    ..Default::default()
                });
            }
        }
    }
    views
}

/// The Lease writes: the assigner's moves (or the wind-down's) over the Leases that are not
/// being deleted, without assignments of listeners whose config cannot be read or that are held
/// back; the release requests and finalizer removals of Leases being deleted; adoptions of
/// Leases of the per-listener protocol. Also when a held-back listener may go (a fresh
/// controller's hold). `settled`: listeners held by each pod besides the Leases judged, counted
/// and not decided one by one; `None` where the assigner would have to.
fn writes(
    input: &Input,
    pods: &[PodView],
    judged: &Judged,
    listeners: &[ListenerView],
    memory: &Memory,
    settled: &BTreeMap<&str, usize>,
    first: Option<Instant>,
) -> Option<(Vec<Write>, Option<Instant>, assigner::Balance)> {
    let (hold, until) = held(input, judged, memory);
    // Only a set that keeps unknown Leases asks which listeners are wanted.
    let wanted: fnv::FnvHashSet<&str> = match input.keep_unknown {
        true => input.listeners.iter().map(|l| l.id.as_str()).collect(),
        false => Default::default(),
    };
    let no_config: BTreeSet<&str> = input
        .listeners
        .iter()
        .filter(|l| l.no_config)
        .map(|l| l.id.as_str())
        .chain(
            listeners
                .iter()
                .filter(|l| input.keep_unknown && !wanted.contains(l.id.as_str()))
                .map(|l| l.id.as_str()),
        )
        .chain(hold.iter().copied())
        .collect();
    let ghosts = ghosts(judged);
    let (leaving, staying): (Vec<&LeaseView>, Vec<&LeaseView>) = judged
        .views
        .iter()
        .map(|l| &**l)
        .partition(|l| judged.terminating.contains(l.listener.as_str()));
    let staying: Vec<&LeaseView> = staying
        .into_iter()
        .filter(|l| !ghosts.contains(l.listener.as_str()))
        .collect();
    let (mut planned, balance) = if input.deleting {
        (assigner::finalize(pods, &staying), assigner::Balance::default())
    } else {
        // A listener whose Lease is being deleted gets a new one only once it is gone.
        let free: Vec<&ListenerView> = listeners
            .iter()
            .filter(|l| !judged.terminating.contains(&l.id) && !ghosts.contains(l.id.as_str()))
            .collect();
        let unseen = ghosts.len() + leaving.len() + hold.len();
        // Listeners whose Leases are being deleted go back to the pods that let them go.
        let returning = memory.returning(&judged.terminating);
        let (balancing, recheck) = wait::balancing(input, memory.pods_since(), unseen);
        let (moves, mut balance) = assigner::assign_settled(
            &free,
            pods,
            &staying,
            input.max_per_pod,
            balancing.as_ref(),
            settled,
            &returning,
        )?;
        // Nothing wakes the set when a Rollout's status turns Healthy: look again.
        if balance.waiting.is_some() && recheck.is_some() {
            balance.wake = recheck;
        }
        (moves, balance)
    };
    planned.retain(|m| {
        let assign = matches!(m, Move::Assign { .. });
        let unstartable = assign && (no_config.contains(m.listener()) || first.is_some());
        !unstartable && !asks_silent(input, m)
    });
    release_bare(&mut planned, &no_config);
    planned.extend(leaving.iter().filter_map(|l| terminating_move(pods, l)));
    let moving: BTreeSet<&str> = planned.iter().map(Move::listener).collect();
    let adopt: Vec<Move> = input
        .leases
        .iter()
        .filter(|l| !l.adopted && !l.terminating && !moving.contains(l.view.listener.as_str()))
        .map(|l| Move::Adopt {
            listener: l.view.listener.clone(),
            resource_version: l.view.resource_version.clone(),
            holder_uid: l.view.holder.as_ref().and(l.view.holder_uid.clone()),
        })
        .collect();
    planned.extend(adopt);
    let writes = planned
        .into_iter()
        .map(|change| {
            let kind = matches!(change, Move::Assign { .. }).then(|| kind_of(input, judged, memory, change.listener()));
            Write { change, kind }
        })
        .collect();
    let until = [until, first].into_iter().flatten().min();
    Some((writes, until, balance))
}

/// A listener that may not be assigned now (of `no_config`) is not handed over either: it is
/// released bare.
fn release_bare(planned: &mut [Move], no_config: &BTreeSet<&str>) {
    for m in planned {
        if let Move::RequestRelease {
            listener,
            to: to @ Some(_),
            ..
        } = m
        {
            if no_config.contains(listener.as_str()) {
                *to = None;
            }
        }
    }
}

/// Whether `m` asks a selected, Ready pod to give a listener up only because its agent does not
/// answer: such a pod gets nothing new, but what it holds stays valid until it is fenced, and the
/// request would be one write per listener to an agent that may not be listening.
fn asks_silent(input: &Input, m: &Move) -> bool {
    matches!(m, Move::RequestRelease { holder, reason: assigner::ReleaseReason::HolderNotEligible, .. }
        if input.pods.iter().any(|p| p.name == *holder && p.selected && p.eligible))
}

/// Listeners a fresh controller holds back (no Lease, never seen by it, in a set that handed
/// out tokens before, within one lease duration of its start), and when it lets them go.
fn held<'a>(input: &'a Input, judged: &Judged, memory: &Memory) -> (BTreeSet<&'a str>, Option<Instant>) {
    let until = input.started + input.lease_duration;
    if input.ceiling.is_none() || input.now >= until || input.deleting {
        return (BTreeSet::new(), None);
    }
    let hold: BTreeSet<&str> = input
        .listeners
        .iter()
        .filter(|l| !l.suspended && !judged.by_listener.contains_key(l.id.as_str()))
        .filter(|l| memory.last_token(&l.id).is_none())
        .map(|l| l.id.as_str())
        .collect();
    let when = (!hold.is_empty()).then_some(until);
    (hold, when)
}

/// How `listener` comes to its new holder, from the Lease it has now (or, with its Lease gone,
/// from how its last holder let it go).
fn kind_of(input: &Input, judged: &Judged, memory: &Memory, listener: &str) -> HowAssigned {
    let Some((i, prior)) = judged
        .by_listener
        .get(listener)
        .and_then(|i| Some((*i, judged.views.get(*i)?)))
    else {
        return memory.ended_kind(listener);
    };
    let Some(holder) = prior.holder.as_deref().filter(|h| !h.is_empty()) else {
        return if prior.transitions == 0 && !prior.renewed {
            HowAssigned::Assigned
        } else {
            HowAssigned::Handover
        };
    };
    HowAssigned::Takeover {
        from: holder.to_string(),
        why: judge::why_expired(input, judged, i),
    }
}

mod blocked;
mod confirm;
mod eligible;
mod expected;
mod gone;
mod judge;
mod memory;
mod settled;
#[cfg(test)]
mod tests;
mod unresponsive;
mod wait;

pub use blocked::Blocked;
pub use confirm::{confirmed, to_confirm};
use eligible::pod_views;
pub use expected::UnseenWrites;
use gone::{ghosts, terminated_by, terminating_move};
use judge::Judged;
pub use memory::Memory;
pub use memory::MOVES_WINDOW;
use memory::{Fingerprint, Forget};
use unresponsive::silent;
pub use unresponsive::{Silence, Silent, Unresponsive};
pub use wait::{FIRST_PLACEMENT_MAX, PODS_SETTLE, ROLLOUT_RECHECK};
