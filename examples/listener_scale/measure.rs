//! What the scale benchmark reads: the simulator's audit counts, `/proc` of the controller and
//! the sidecars, and the apps' log of starts and stops.
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::harness::app::Interval;
use crate::harness::{pod_of, Ns};

/// Requests answered in the benchmark's namespace, by (who, resource, verb); who is `agents`,
/// `controller` or `other`.
pub type Requests = BTreeMap<(String, String, String), u64>;

fn is_write(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "patch" | "delete")
}

fn who(user: &str) -> &'static str {
    if user.starts_with("agent-") {
        "agents"
    } else if user.starts_with("ctl-") {
        "controller"
    } else {
        "other"
    }
}

/// Writes (create/update/patch/delete) answered in the benchmark's namespace.
pub fn writes(ns: &Ns) -> Requests {
    let mut out = Requests::new();
    // On the real control plane: kube-apiserver's audit log (every write, its user and verb).
    if let Some(real) = ns.cluster.real() {
        for w in real.audited_writes(0) {
            if is_write(&w.verb) && w.namespace == ns.name {
                *out.entry((who(&w.user).to_string(), w.resource, w.verb)).or_insert(0) += 1;
            }
        }
        return out;
    }
    sim_requests(ns, is_write)
}

/// Reads (get/list) answered in the benchmark's namespace: the simulator's alone (the real
/// control plane's audit log keeps writes only).
pub fn reads(ns: &Ns) -> Requests {
    if ns.cluster.real().is_some() {
        return Requests::new();
    }
    sim_requests(ns, |verb| matches!(verb, "get" | "list"))
}

fn sim_requests(ns: &Ns, verbs: impl Fn(&str) -> bool) -> Requests {
    ns.sim_counts(|k| verbs(&k.verb).then(|| (who(&k.user).to_string(), k.resource.clone(), k.verb.clone())))
}

/// `after - before`, dropping what did not change.
pub fn delta(after: &Requests, before: &Requests) -> Requests {
    after
        .iter()
        .filter_map(|(k, n)| {
            let d = n.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Requests of `who` in `d`.
pub fn total(d: &Requests, who: &str) -> u64 {
    d.iter().filter(|(k, _)| k.0 == who).map(|(_, n)| n).sum()
}

/// `who resource verb n` for each entry, per second when `secs` is given.
pub fn lines(d: &Requests, secs: Option<f64>) -> Vec<String> {
    d.iter()
        .map(|((who, res, verb), n)| match secs {
            Some(s) => format!("{who} {res} {verb} {:.2}/s", *n as f64 / s),
            None => format!("{who} {res} {verb} {n}"),
        })
        .collect()
}

/// Kernel clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
const TICKS: f64 = 100.0;

/// (CPU time, RSS in KiB) of `pid` now.
pub fn proc_stat(pid: u32) -> (Duration, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let cpu = Duration::from_secs_f64((field(11) + field(12)) as f64 / TICKS);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

/// CPU use of processes over a window.
pub struct Cpu {
    pids: Vec<u32>,
    before: Vec<Duration>,
    at: Instant,
}

/// Per process: share of one core over the window, RSS in KiB at its end.
pub struct Usage {
    pub cpu: Vec<f64>,
    pub rss_kib: Vec<u64>,
}

impl Usage {
    pub fn max_cpu(&self) -> f64 {
        self.cpu.iter().copied().fold(0.0, f64::max)
    }
    pub fn mean_cpu(&self) -> f64 {
        self.cpu.iter().sum::<f64>() / self.cpu.len().max(1) as f64
    }
    pub fn max_rss_mib(&self) -> f64 {
        self.rss_kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0
    }
}

impl Cpu {
    pub fn start(pids: Vec<u32>) -> Cpu {
        let before = pids.iter().map(|p| proc_stat(*p).0).collect();
        Cpu {
            pids,
            before,
            at: Instant::now(),
        }
    }

    pub fn stop(&self) -> Usage {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        let now: Vec<(Duration, u64)> = self.pids.iter().map(|p| proc_stat(*p)).collect();
        Usage {
            cpu: now
                .iter()
                .zip(&self.before)
                .map(|((c, _), b)| c.saturating_sub(*b).as_secs_f64() / secs * 100.0)
                .collect(),
            rss_kib: now.iter().map(|(_, r)| *r).collect(),
        }
    }
}

/// The pids of every pod's agent now.
pub fn agent_pids(ns: &Ns) -> Vec<u32> {
    ns.pod_names()
        .iter()
        .filter_map(|p| ns.pod(p).ok()?.sidecar_pid())
        .collect()
}

/// The CPU times of the controller, of every agent and of this process (the simulator, the apps
/// and the sampler) at one instant; [`CpuSplit::since`] gives what each side spent from it.
pub struct CpuSplit {
    controller: (u32, Duration),
    agents: Vec<(u32, Duration)>,
    harness: Duration,
    at: Instant,
}

/// What each side spent over a window of `wall`.
pub struct CpuSpent {
    controller: Duration,
    agents: Duration,
    harness: Duration,
    wall: Duration,
}

impl CpuSplit {
    pub fn now(ns: &Ns, controller: u32) -> CpuSplit {
        CpuSplit {
            controller: (controller, proc_stat(controller).0),
            agents: agent_pids(ns).into_iter().map(|p| (p, proc_stat(p).0)).collect(),
            harness: proc_stat(std::process::id()).0,
            at: Instant::now(),
        }
    }

    /// What was spent from `self` until now, process by process (an agent killed meanwhile
    /// counts nothing).
    pub fn since(&self) -> CpuSpent {
        let spent = |(pid, was): &(u32, Duration)| proc_stat(*pid).0.saturating_sub(*was);
        CpuSpent {
            controller: spent(&self.controller),
            agents: self.agents.iter().map(spent).sum(),
            harness: proc_stat(std::process::id()).0.saturating_sub(self.harness),
            wall: self.at.elapsed(),
        }
    }
}

impl std::fmt::Display for CpuSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wall = self.wall.as_secs_f64();
        let s = |d: Duration| d.as_secs_f64();
        write!(
            f,
            "controller {:.2} s, agents {:.2} s, simulator and apps {:.2} s over {wall:.2} s (two cores: {:.2} s)",
            s(self.controller),
            s(self.agents),
            s(self.harness),
            wall * 2.0
        )
    }
}

/// The `p`th percentile (0..=1) of `sorted`.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `d` in milliseconds, or seconds from 10 s on.
pub fn show(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// How the listeners that ran on `pod` at `t0` moved: for each, (its stop on `pod`, its next
/// start on another pod), from the apps' log. A listener not (yet) started elsewhere is absent.
pub fn moves(log: &[Interval], pod: &str, t0: Instant) -> BTreeMap<String, (Instant, Instant)> {
    let mut out = BTreeMap::new();
    for i in log.iter().filter(|i| pod_of(&i.app) == pod && i.start <= t0) {
        let Some(end) = i.end.filter(|e| *e >= t0) else {
            continue;
        };
        let next = log
            .iter()
            .filter(|j| j.listener == i.listener && pod_of(&j.app) != pod && j.start >= end)
            .map(|j| j.start)
            .min();
        if let Some(next) = next {
            out.insert(i.listener.clone(), (end, next));
        }
    }
    out
}

/// The listeners running on `pod` now.
pub fn on_pod(ns: &Ns, pod: &str) -> Vec<String> {
    ns.running_on()
        .into_iter()
        .filter(|(_, p)| p == pod)
        .map(|(l, _)| l)
        .collect()
}

/// The pod running the most listeners now, other than those in `not`.
pub fn busiest(ns: &Ns, not: &[String]) -> Option<(String, usize)> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for pod in ns.running_on().into_values() {
        *count.entry(pod).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|(p, _)| !not.contains(p))
        .max_by_key(|(_, n)| *n)
}

/// When things happened after `t0`, per kind: (first, median, last) of the writes of the
/// controller, of `pod`'s agent and of the other agents, and of the apps' stops on `pod` and
/// starts elsewhere.
pub fn timeline(ns: &Ns, pod: &str, t0: Instant) -> String {
    let t0s = t0.into_std();
    let mine = format!("agent-{}-{pod}", ns.name);
    let mut by: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for (identity, at) in writes_since(ns, t0s) {
        let who = if identity.contains(&mine) {
            "its agent's writes"
        } else if identity.contains("agent-") {
            "other agents' writes"
        } else if identity.contains("ctl-") {
            "controller writes"
        } else {
            continue;
        };
        by.entry(who).or_default().push(at);
    }
    for i in ns.log.snapshot() {
        if pod_of(&i.app) == pod {
            if let Some(end) = i.end.filter(|e| *e >= t0) {
                by.entry("app stops").or_default().push(end - t0);
            }
        } else if i.start >= t0 {
            by.entry("app starts").or_default().push(i.start - t0);
        }
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort();
            format!(
                "{k} {}: {} / {} / {}",
                v.len(),
                show(pct(&v, 0.0)),
                show(pct(&v, 0.5)),
                show(pct(&v, 1.0))
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every write since `t0`: (identity, time after `t0`) — baton-sim's request log, or
/// kube-apiserver's audit log (its wall-clock times placed on the monotonic clock by the offset
/// of the two clocks now).
fn writes_since(ns: &Ns, t0: std::time::Instant) -> Vec<(String, Duration)> {
    if let Some(real) = ns.cluster.real() {
        let (wall_now, mono_now) = (jiff::Timestamp::now(), std::time::Instant::now());
        let since_t0 = mono_now.duration_since(t0);
        return real
            .audited_writes(0)
            .into_iter()
            .filter_map(|w| {
                let ago = wall_now.duration_since(w.at?).unsigned_abs();
                Some((w.user, since_t0.checked_sub(ago)?))
            })
            .collect();
    }
    ns.cluster
        .sim()
        .core
        .writes()
        .into_iter()
        .filter(|w| w.at >= t0)
        .map(|w| (w.identity, w.at - t0))
        .collect()
}
