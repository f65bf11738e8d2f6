//! Where a rollout's time goes: a timeline per wave of new pods, from the simulator's own
//! records (its store's pod and Rollout events as committed, its write log of the controller's
//! requests as they arrived). Enabled with `ROLLOUT_BENCH_TIMELINE=1`; the recording is an `Arc` clone per
//! pod event, the analysis runs after the rollout.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_sim::store::{EventKind, Stored};
use baton_sim::Sim;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

/// A gap between two consecutive creates longer than this starts a new wave (the waves are
/// a ready delay of 1 s apart; the creates of one wave come within a few hundred ms).
const WAVE_GAP: Duration = Duration::from_millis(400);

/// A pod's or the Rollout's event.
type PodEvent = (Instant, EventKind, Arc<Stored>);

/// Pod events recorded from the simulator's store while the rollout runs.
pub struct Recorder {
    events: Arc<Mutex<Vec<PodEvent>>>,
    lagged: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub fn start(sim: &Sim) -> Recorder {
        let mut rx = sim.core.store.subscribe();
        let events: Arc<Mutex<Vec<PodEvent>>> = Arc::default();
        let lagged: Arc<Mutex<u64>> = Arc::default();
        let (ev, lag) = (events.clone(), lagged.clone());
        let task = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) if (e.key.group.is_empty() && e.key.plural == "pods") || e.key.plural == "rollouts" => {
                        let at = Instant::now();
                        ev.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((at, e.kind, e.obj.clone()));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => *lag.lock().unwrap_or_else(|p| p.into_inner()) += n,
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Recorder { events, lagged, task }
    }

    /// Stop recording and print the timeline of the rollout that started at `start` and was
    /// seen healthy at `end`; `writes` are the simulator's write log entries of the controller.
    pub fn report(self, start: Instant, end: Instant, writes: &[baton_sim::handlers::WriteRecord]) {
        self.task.abort();
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()));
        let lagged = *self.lagged.lock().unwrap_or_else(|p| p.into_inner());
        let ms = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1000.0;
        let mut new_pods: Vec<(Instant, Option<Instant>)> = Vec::new();
        let mut created = std::collections::HashMap::new();
        let mut rollout_writes = Vec::new();
        for (at, kind, obj) in &events {
            // The Rollout (pods are named `svc-<ordinal>-<hash>`): its versions committed in
            // the first 100 ms show what the first reaction waited for.
            if obj.name == "svc" {
                if ms(*at) >= 100.0 {
                    continue;
                }
                let v = obj.value();
                let s = |p: &str| v.pointer(p).map(|x| x.to_string()).unwrap_or_default();
                rollout_writes.push(format!(
                    "{:.0} gen={} phase={} update={} batch={}",
                    ms(*at),
                    s("/metadata/generation"),
                    s("/status/phase"),
                    s("/status/updateRevision"),
                    s("/status/batchLabel")
                ));
                continue;
            }
            let v2 = obj
                .labels
                .iter()
                .any(|(k, v)| k == "app.kubernetes.io/version" && v == "v2");
            if !v2 {
                continue;
            }
            match kind {
                EventKind::Added => {
                    created.insert(obj.name.clone(), new_pods.len());
                    new_pods.push((*at, None));
                }
                EventKind::Modified if ready(obj) => {
                    if let Some(&i) = created.get(&obj.name) {
                        new_pods[i].1.get_or_insert(*at);
                    }
                }
                _ => {}
            }
        }
        let posts: Vec<Instant> = writes
            .iter()
            .filter(|w| w.method == "POST" && w.path.ends_with("/pods") && w.at >= start)
            .map(|w| w.at)
            .collect();
        let status: Vec<Instant> = writes
            .iter()
            .filter(|w| w.method == "PATCH" && w.path.ends_with("/status") && w.at >= start)
            .map(|w| w.at)
            .collect();
        println!(
            "\ntimeline (ms from the v2 apply; pod events as the store committed them{})",
            if lagged > 0 {
                format!("; {lagged} events LOST to lag")
            } else {
                String::new()
            }
        );
        println!(
            "{:>5} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "wave", "pods", "1st POST", "last POST", "1st add", "last add", "1st ready", "last ready", "→ next add"
        );
        let waves = split_waves(&new_pods);
        let mut post_i = 0;
        for (w, pods) in waves.iter().enumerate() {
            // A wave has at least one pod (see `split_waves`).
            let (Some(first_add), Some(last_add)) = (pods.iter().map(|p| p.0).min(), pods.iter().map(|p| p.0).max())
            else {
                continue;
            };
            let first_ready = pods.iter().filter_map(|p| p.1).min();
            let last_ready = pods.iter().filter_map(|p| p.1).max();
            // This wave's POSTs: those that arrived before its last create committed.
            let wave_posts: Vec<Instant> = posts[post_i..].iter().copied().take_while(|t| *t <= last_add).collect();
            post_i += wave_posts.len();
            let next = waves
                .get(w + 1)
                .and_then(|n| n.iter().map(|p| p.0).min())
                .unwrap_or(end);
            let opt = |t: Option<Instant>| t.map(|t| format!("{:.0}", ms(t))).unwrap_or_else(|| "-".into());
            println!(
                "{:>5} {:>5} {:>9} {:>9} {:>9.0} {:>9.0} {:>9} {:>9} {:>10}",
                w + 1,
                pods.len(),
                opt(wave_posts.first().copied()),
                opt(wave_posts.last().copied()),
                ms(first_add),
                ms(last_add),
                opt(first_ready),
                opt(last_ready),
                last_ready
                    .map(|r| format!("{:.0}", (next.saturating_duration_since(r)).as_secs_f64() * 1000.0))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        // The first reaction in detail: the controller's writes up to its first pod create.
        let first: Vec<String> = writes
            .iter()
            .filter(|w| w.at >= start)
            .take_while(|w| !(w.method == "POST" && w.path.ends_with("/pods")))
            .map(|w| {
                format!(
                    "{} {} {:.0}",
                    w.method,
                    w.path.trim_start_matches("/api/v1/namespaces/default/"),
                    ms(w.at)
                )
            })
            .collect();
        println!("writes before the first pod POST: {}", first.join(", "));
        println!("Rollout versions in the first 100 ms: {}", rollout_writes.join("; "));
        let st: Vec<String> = status.iter().map(|t| format!("{:.0}", ms(*t))).collect();
        println!("status PATCHes at: {}", st.join(" "));
        println!(
            "healthy seen at {:.0} ms (the last row's → next is last ready → healthy seen)",
            ms(end)
        );
    }
}

/// Waves: runs of creates with no gap longer than [`WAVE_GAP`].
fn split_waves(pods: &[(Instant, Option<Instant>)]) -> Vec<Vec<(Instant, Option<Instant>)>> {
    let mut sorted = pods.to_vec();
    sorted.sort_by_key(|p| p.0);
    let mut waves: Vec<Vec<(Instant, Option<Instant>)>> = Vec::new();
    for p in sorted {
        match waves.last_mut() {
            Some(w) if w.last().is_some_and(|l| p.0.saturating_duration_since(l.0) <= WAVE_GAP) => w.push(p),
            _ => waves.push(vec![p]),
        }
    }
    waves
}

/// Is the stored pod Ready (condition Ready True)?
fn ready(obj: &Stored) -> bool {
    let v: Value = obj.value();
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}
