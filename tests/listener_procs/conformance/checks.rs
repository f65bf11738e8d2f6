//! The application's contract, judged from what each app was told and said (its tap) and what it
//! logged (its starts and stops), beyond the harness's own checks of the whole run (duplicates,
//! tokens): rule 2 (acknowledge only once everything the version dropped has stopped), rule 3
//! (stop at `validUntil`) and rule 5's end (an app stops every listener itself before it exits).
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::harness::app::Interval;
use crate::harness::tap::TapLog;
use crate::harness::Ns;

/// How much later than the ack the harness may read a stop line the app wrote before it. The
/// app prints the stop before its client learns of it and acknowledges, but the harness reads
/// the app's stdout and the tap's socket on tasks of their own, which a loaded 2-core machine
/// runs tens of milliseconds apart; an ack before a stop of `STOP_SECONDS` (≥ 0.5 s in the cases
/// that stop listeners) stands out well beyond it.
pub const ACK_SLACK: Duration = Duration::from_millis(200);

/// How long after its `validUntil` a listener's stop may be logged, beyond the app's own stop
/// time: the client's timer firing, the app printing its stop line and the harness reading it,
/// on a loaded 2-core machine. It stays below the agent's safety margin at the cases' lease
/// (0.8 s at 4 s), which is all that keeps a late stop from meeting another pod's start.
pub const LATE: Duration = Duration::from_millis(500);

/// How much before its `validUntil` a stop may be logged. The client turns `validUntil` into a
/// deadline on its monotonic clock from its monotonic and wall clocks read one after the other
/// as the document arrives, the tap from the harness's two clocks read the same way as it hands
/// the document over: one machine, one offset between the clocks, so the two deadlines differ
/// by the time between each pair of reads (microseconds; TypeScript's millisecond `Date.now()`
/// moves its deadline later, not earlier). 20 ms is the sampler's grain.
pub const EARLY: Duration = Duration::from_millis(20);

/// The intervals of `app`, by listener.
pub fn intervals_of(ns: &Ns, app: &str) -> Vec<Interval> {
    ns.log.snapshot().into_iter().filter(|i| i.app == app).collect()
}

/// The latest `validUntil` the app behind `tap` was told for `key` with `token` up to `until`
/// (None: never told one).
pub fn valid_until(tap: &TapLog, key: &str, token: i32, until: Instant) -> Option<Instant> {
    tap.documents()
        .iter()
        .filter(|d| d.at <= until)
        .filter_map(|d| d.valid_until(key, token).flatten())
        .max()
}

/// Every breach of rules 2, 3 and 5 by the apps of `ns` that run behind a tap; `stop` is how
/// long the apps take to stop a listener.
pub fn contract(ns: &Ns, stop: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let all = ns.log.snapshot();
    let t0 = all.iter().map(|i| i.start).min().unwrap_or_else(Instant::now);
    let at = |i: Instant| format!("+{:.3}s", i.saturating_duration_since(t0).as_secs_f64());
    for name in ns.pod_names() {
        let Ok(pod) = ns.pod(&name) else { continue };
        let app = pod.app.id.clone();
        for l in ns.log.unstopped(&app) {
            out.push(format!("{app} ended while running {l}: it never logged its stop"));
        }
        let Some(tap) = pod.app.tap.as_ref() else { continue };
        let mine: Vec<&Interval> = all.iter().filter(|i| i.app == app).collect();
        out.extend(acked_too_early(tap, &app, &mine, &at));
        for i in &mine {
            let end = i.end.unwrap_or_else(Instant::now);
            let Some(until) = valid_until(tap, &i.listener, i.token, end) else {
                continue;
            };
            if end > until + stop + LATE {
                out.push(format!(
                    "{app} ran {} (token {}) until {}: {:?} past its validUntil ({}), stops taking {stop:?}",
                    i.listener,
                    i.token,
                    if i.end.is_some() { at(end) } else { "now".into() },
                    end - until,
                    at(until)
                ));
            }
        }
    }
    out
}

/// Each version the app behind `tap` was told, as first delivered (a long poll that times out
/// hands the same version over again).
fn first_deliveries(tap: &TapLog) -> BTreeMap<u64, crate::harness::tap::Delivered> {
    let mut docs = BTreeMap::new();
    for d in tap.documents() {
        docs.entry(d.doc.version).or_insert(d);
    }
    docs
}

/// Rule 2: each acknowledgement the sidecar accepted came once every listener that ran when its
/// version arrived, and that the version does not list (with that token), had stopped.
fn acked_too_early(tap: &TapLog, app: &str, mine: &[&Interval], at: &dyn Fn(Instant) -> String) -> Vec<String> {
    let docs = first_deliveries(tap);
    let mut out = Vec::new();
    for ack in tap
        .acks()
        .iter()
        .filter(|a| a.status.is_some_and(|s| (200..300).contains(&s)))
    {
        let Some(doc) = docs.get(&ack.version).filter(|d| d.at <= ack.at) else {
            out.push(format!(
                "{app} acknowledged version {} at {} before receiving it",
                ack.version,
                at(ack.at)
            ));
            continue;
        };
        for i in mine
            .iter()
            .filter(|i| i.start < doc.at && !doc.lists(&i.listener, i.token))
        {
            if i.end.is_none_or(|e| e > ack.at + ACK_SLACK) {
                out.push(format!(
                    "{app} acknowledged version {} at {} while {} (token {}), which it drops, ran until {}",
                    ack.version,
                    at(ack.at),
                    i.listener,
                    i.token,
                    i.end.map_or_else(|| "now".into(), at)
                ));
            }
        }
    }
    out
}

/// The last acknowledgement the sidecar accepted from the app behind `tap` of a version that
/// lists none of `keys`: when it came.
pub fn acked_without(tap: &TapLog, keys: &[String]) -> Option<Instant> {
    let docs = first_deliveries(tap);
    tap.acks()
        .iter()
        .filter(|a| a.status.is_some_and(|s| (200..300).contains(&s)))
        .filter(|a| {
            docs.get(&a.version).is_some_and(|d| {
                d.doc
                    .listeners
                    .iter()
                    .all(|e| !keys.contains(&format!("{}/{}", e.listener_set, e.id)))
            })
        })
        .map(|a| a.at)
        .max()
}

/// What each app ran, was told and acknowledged, in order (for a failure's message).
pub fn timeline(ns: &Ns) -> String {
    let all = ns.log.snapshot();
    let t0 = all.iter().map(|i| i.start).min().unwrap_or_else(Instant::now);
    let at = |i: Instant| format!("+{:.3}s", i.saturating_duration_since(t0).as_secs_f64());
    let mut events: Vec<(Instant, String)> = Vec::new();
    for i in &all {
        events.push((i.start, format!("{} starts {} (token {})", i.app, i.listener, i.token)));
        if let Some(e) = i.end {
            events.push((e, format!("{} stopped {}", i.app, i.listener)));
        }
    }
    for name in ns.pod_names() {
        let Ok(pod) = ns.pod(&name) else { continue };
        let Some(tap) = pod.app.tap.as_ref() else { continue };
        for d in tap.documents() {
            let listed: Vec<String> = d
                .doc
                .listeners
                .iter()
                .map(|e| format!("{}/{}@{}", e.listener_set, e.id, e.fencing_token))
                .collect();
            events.push((
                d.at,
                format!("{} told version {}: {listed:?}", pod.app.id, d.doc.version),
            ));
        }
        for a in tap.acks() {
            events.push((
                a.at,
                format!("{} acks version {}: {:?}", pod.app.id, a.version, a.status),
            ));
        }
    }
    events.sort_by_key(|(t, _)| *t);
    events.into_iter().map(|(t, e)| format!("{} {e}\n", at(t))).collect()
}
