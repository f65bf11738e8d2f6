//! The applications beside the `baton agent` sidecars, and the log of what they ran.
//!
//! Each pod's app is a task of the test process that follows its sidecar the way a real app does:
//! *HTTP* apps long-poll `GET /listeners?wait=<version>` and `POST /ack?version=<version>` for
//! the newest version whose dropped listeners have all stopped (while later stops still run, the
//! last version seen before them: each stop's release waits for its own, not for the others);
//! *file* apps read `listeners.json` every poll interval and never acknowledge. Both start a
//! listed listener at once and take `stop_delay` to stop one (a start of a listener still stopping
//! waits for that stop), and, when `honour_valid_until` is set, stop a listener whose `validUntil`
//! has passed (the contract for a sidecar that is gone). Every start and stop is logged on one monotonic clock, and a
//! sampler looks at every app's running listeners every [`SAMPLE`].
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::process::http;

/// How often the sampler looks at every app (the bar: ≤ 20 ms).
pub const SAMPLE: Duration = Duration::from_millis(20);

/// How an app learns its listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Long poll + acknowledgements on the sidecar's localhost endpoint.
    Http,
    /// Reads `listeners.json` every `poll`; never acknowledges.
    File,
}

#[derive(Clone, Debug)]
pub struct AppConfig {
    pub mode: Mode,
    /// How long stopping one listener takes.
    pub stop_delay: Duration,
    /// File apps read the file this often; every app checks `validUntil` this often.
    pub poll: Duration,
    /// Stop a listener once its `validUntil` has passed.
    pub honour_valid_until: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            mode: Mode::Http,
            stop_delay: Duration::ZERO,
            poll: Duration::from_millis(20),
            honour_valid_until: true,
        }
    }
}

/// One listener entry of the sidecar's document (only what an app reads).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub listener_set: String,
    pub id: String,
    pub fencing_token: i32,
    #[serde(default)]
    pub valid_until: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Doc {
    pub version: u64,
    pub listeners: Vec<Entry>,
}

/// One tenure of a listener in one app.
#[derive(Debug, Clone)]
pub struct Interval {
    /// `<set>/<id>`.
    pub listener: String,
    /// The app (`<pod>#<uid prefix>`): two incarnations of one pod name are two apps.
    pub app: String,
    pub token: i32,
    pub start: Instant,
    pub end: Option<Instant>,
}

/// Every start and stop of every app, and the sampler's findings.
#[derive(Default)]
pub struct AppLog {
    inner: Mutex<LogInner>,
}

#[derive(Default)]
struct LogInner {
    intervals: Vec<Interval>,
    /// `<set>/<id>` → the intervals (indexes into `intervals`) still open, in start order: what
    /// runs now, without walking the whole history (a set of 10,000 listeners is sampled every
    /// 20 ms).
    open: HashMap<String, Vec<usize>>,
    /// The listeners of `open` with more than one open interval: what a sample reports, kept as
    /// starts and stops come so a sample costs what runs twice, not what runs.
    doubled: BTreeSet<String>,
    /// Apps whose containers were killed: they log nothing any more.
    dead: BTreeSet<String>,
    /// (app, listener) of every tenure ended by the app's death, not by a stop it logged.
    unstopped: Vec<(String, String)>,
    samples: u64,
    duplicate_samples: u64,
    duplicate_notes: Vec<String>,
}

impl LogInner {
    /// End the open intervals of `listener` in apps `app` passes, at `now`.
    fn end(&mut self, listener: &str, now: Instant, app: impl Fn(&str) -> bool) {
        let Some(open) = self.open.get_mut(listener) else {
            return;
        };
        let intervals = &mut self.intervals;
        open.retain(|&i| {
            let done = app(&intervals[i].app);
            if done {
                intervals[i].end = Some(now);
            }
            !done
        });
        if open.len() < 2 {
            self.doubled.remove(listener);
        }
        if open.is_empty() {
            self.open.remove(listener);
        }
    }

    /// The open intervals, by listener.
    fn running(&self) -> impl Iterator<Item = (&String, impl Iterator<Item = &Interval>)> {
        self.open
            .iter()
            .map(|(l, is)| (l, is.iter().map(|&i| &self.intervals[i])))
    }
}

/// What the log shows.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Two apps running one listener at once.
    pub overlaps: Vec<String>,
    /// A listener started with a lower token than before, or the same token in another app.
    pub token_regressions: Vec<String>,
    /// Samples taken, and how many saw a listener in two apps.
    pub samples: u64,
    pub duplicate_samples: u64,
    pub duplicate_notes: Vec<String>,
    /// Stop → next start of a listener in another app.
    pub gaps: Vec<Duration>,
}

impl Analysis {
    /// Nothing ran twice and no token went back.
    pub fn clean(&self) -> bool {
        self.overlaps.is_empty() && self.token_regressions.is_empty() && self.duplicate_samples == 0
    }
}

impl AppLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn start(&self, app: &str, listener: &str, token: i32) {
        let mut g = self.lock();
        if g.dead.contains(app) {
            return;
        }
        let at = g.intervals.len();
        g.intervals.push(Interval {
            listener: listener.into(),
            app: app.into(),
            token,
            start: Instant::now(),
            end: None,
        });
        let open = g.open.entry(listener.to_string()).or_default();
        open.push(at);
        if open.len() > 1 {
            g.doubled.insert(listener.to_string());
        }
    }

    pub(super) fn stop(&self, app: &str, listener: &str) {
        let now = Instant::now();
        self.lock().end(listener, now, |a| a == app);
    }

    /// The app's containers died: everything it ran stops now, and it logs nothing more.
    pub fn kill(&self, app: &str) {
        let now = Instant::now();
        let mut g = self.lock();
        g.dead.insert(app.to_string());
        let listeners: Vec<String> = g
            .running()
            .filter_map(|(l, mut is)| is.any(|i| i.app == app).then(|| l.clone()))
            .collect();
        for l in listeners {
            g.end(&l, now, |a| a == app);
            g.unstopped.push((app.to_string(), l));
        }
    }

    /// The listeners `app` ran when it died (its process exited, or its containers were
    /// killed): it never logged their stop.
    pub fn unstopped(&self, app: &str) -> Vec<String> {
        let g = self.lock();
        g.unstopped
            .iter()
            .filter(|(a, _)| a == app)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn snapshot(&self) -> Vec<Interval> {
        self.lock().intervals.clone()
    }

    /// `<set>/<id>` → the apps running it now.
    pub fn running(&self) -> BTreeMap<String, Vec<String>> {
        let g = self.lock();
        g.running()
            .map(|(l, is)| (l.clone(), is.map(|i| i.app.clone()).collect()))
            .collect()
    }

    /// Whether each listener of `ids` runs in exactly one app now, one that `ok` accepts (read
    /// under one lock, without copying what runs).
    pub fn each_runs_once(&self, ids: &[String], ok: impl Fn(&str) -> bool) -> bool {
        let g = self.lock();
        ids.iter().all(|id| match g.open.get(id).map(Vec::as_slice) {
            Some([i]) => ok(&g.intervals[*i].app),
            _ => false,
        })
    }

    /// Whether some listener runs in two apps now.
    pub fn any_doubled(&self) -> bool {
        !self.lock().doubled.is_empty()
    }

    /// How many listeners run in at least one app now.
    pub fn running_count(&self) -> usize {
        self.lock().open.len()
    }

    /// `<set>/<id>` → (app, token) of every open tenure.
    pub fn running_tokens(&self) -> BTreeMap<String, Vec<(String, i32)>> {
        let g = self.lock();
        g.running()
            .map(|(l, is)| (l.clone(), is.map(|i| (i.app.clone(), i.token)).collect()))
            .collect()
    }

    /// How many starts were logged.
    pub fn starts(&self) -> usize {
        self.lock().intervals.len()
    }

    /// The highest token each listener was started with.
    pub fn tokens(&self) -> BTreeMap<String, i32> {
        let mut m: BTreeMap<String, i32> = BTreeMap::new();
        for i in self.lock().intervals.iter() {
            let t = m.entry(i.listener.clone()).or_insert(i.token);
            *t = (*t).max(i.token);
        }
        m
    }

    /// One sample: every listener running in two apps is a duplicate moment.
    fn sample(&self) {
        let mut g = self.lock();
        g.samples += 1;
        if g.doubled.is_empty() {
            return;
        }
        let dups: Vec<String> = g
            .doubled
            .iter()
            .filter_map(|l| {
                let apps: Vec<&str> = g.open.get(l)?.iter().map(|&i| g.intervals[i].app.as_str()).collect();
                (apps.len() > 1).then(|| format!("{l} in {apps:?}"))
            })
            .collect();
        if !dups.is_empty() {
            g.duplicate_samples += 1;
            if g.duplicate_notes.len() < 20 {
                g.duplicate_notes.push(dups.join(", "));
            }
        }
    }

    /// Overlaps, token order and gaps, from the exact intervals.
    pub fn analyse(&self) -> Analysis {
        let g = self.lock();
        let mut out = Analysis {
            samples: g.samples,
            duplicate_samples: g.duplicate_samples,
            duplicate_notes: g.duplicate_notes.clone(),
            ..Default::default()
        };
        let mut by: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
        for i in &g.intervals {
            by.entry(i.listener.as_str()).or_default().push(i);
        }
        for (listener, mut is) in by {
            is.sort_by_key(|i| i.start);
            for (n, a) in is.iter().enumerate() {
                for b in &is[n + 1..] {
                    let ends_before = a.end.is_some_and(|e| e <= b.start);
                    if a.app != b.app && !ends_before {
                        out.overlaps.push(format!(
                            "{listener}: {} (token {}) and {} (token {}) overlap by {:?}",
                            a.app,
                            a.token,
                            b.app,
                            b.token,
                            a.end.unwrap_or_else(Instant::now).saturating_duration_since(b.start)
                        ));
                    }
                }
            }
            for w in is.windows(2) {
                let (a, b) = (w[0], w[1]);
                let regressed = if a.app == b.app {
                    b.token < a.token
                } else {
                    b.token <= a.token
                };
                if regressed {
                    out.token_regressions.push(format!(
                        "{listener}: token {} in {} after token {} in {}",
                        b.token, b.app, a.token, a.app
                    ));
                }
                if a.app != b.app {
                    if let Some(end) = a.end.filter(|e| *e <= b.start) {
                        out.gaps.push(b.start - end);
                    }
                }
            }
        }
        out
    }
}

/// Samples `log` every [`SAMPLE`] until aborted.
pub fn sampler(log: Arc<AppLog>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            log.sample();
        }
    })
}

/// A running app.
pub struct App {
    pub id: String,
    log: Arc<AppLog>,
    task: JoinHandle<()>,
    /// An app that is an OS process (the sample app): its pid.
    pub pid: Option<u32>,
    /// An app that is an OS process: what else it printed, and its exit.
    pub record: Option<Arc<super::program::ProcessRecord>>,
    /// What went between the app and its sidecar, when a tap is between them.
    pub tap: Option<Arc<super::tap::TapLog>>,
    pub(super) tap_proxy: Option<super::tap::Tap>,
    /// An app that is an OS process: wakes its reader, which SIGKILLs it and reads on to its end.
    pub(super) killer: Option<Arc<tokio::sync::Notify>>,
}

impl App {
    /// Start the app `id` on `file` / the sidecar at `addr` (None while it is down).
    pub fn spawn(
        cfg: AppConfig,
        log: Arc<AppLog>,
        id: String,
        file: PathBuf,
        addr: watch::Receiver<Option<SocketAddr>>,
    ) -> App {
        let task = tokio::spawn(run(cfg, log.clone(), id.clone(), file, addr));
        App::with_task(id, log, task, None)
    }

    /// An app whose starts and stops `task` logs.
    pub(super) fn with_task(id: String, log: Arc<AppLog>, task: JoinHandle<()>, pid: Option<u32>) -> App {
        App {
            id,
            log,
            task,
            pid,
            record: None,
            tap: None,
            tap_proxy: None,
            killer: None,
        }
    }

    /// The app's containers die (kill -9, node gone): its listeners stop now. An OS process is
    /// SIGKILLed (unless it has exited already) and its reader goes on to the end of what it
    /// printed and records its exit, which aborting the reader would lose.
    pub fn kill(&self) {
        match &self.killer {
            Some(killer) => killer.notify_one(),
            None => {
                self.log.kill(&self.id);
                self.task.abort();
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The newest document of an HTTP app: long-polls the sidecar, whichever address it has now.
fn poller(addr: watch::Receiver<Option<SocketAddr>>, docs: watch::Sender<Option<Doc>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut addr = addr;
        loop {
            let Some(at) = *addr.borrow_and_update() else {
                if addr.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let seen = docs.borrow().as_ref().map_or(0, |d| d.version);
            let path = format!("/listeners?wait={seen}");
            let got = http(at, "GET", &path, Duration::from_secs(40)).await;
            match got.and_then(|(code, body)| (code == 200).then_some(body)) {
                Some(body) => {
                    if let Ok(doc) = serde_json::from_str::<Doc>(&body) {
                        if doc.version != seen {
                            docs.send_replace(Some(doc));
                        }
                    }
                }
                // Down or restarting: try again shortly (at the new address, if any).
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
}

/// Until when a listed entry may run under the `validUntil` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    /// No `validUntil` (an older sidecar): valid while listed.
    Listed,
    /// A `validUntil` that does not parse: never valid.
    Never,
    At(jiff::Timestamp),
}

impl Until {
    /// `e`'s; `last` is the text parsed last and what it gave (the entries of one liveness Lease
    /// share their deadline: each text is parsed once, not once per entry).
    fn of<'a>(e: &'a Entry, last: &mut Option<(&'a str, Until)>) -> Until {
        let Some(text) = e.valid_until.as_deref() else {
            return Until::Listed;
        };
        match last {
            Some((t, until)) if *t == text => *until,
            _ => {
                let until = text.parse::<jiff::Timestamp>().map_or(Until::Never, Until::At);
                *last = Some((text, until));
                until
            }
        }
    }
}

/// One document as the app reads it, parsed once: `<set>/<id>` → (token, until when it is valid).
struct Listed {
    version: u64,
    entries: BTreeMap<String, (i32, Until)>,
}

impl Listed {
    fn of(doc: &Doc) -> Listed {
        let mut last = None;
        let entries = doc
            .listeners
            .iter()
            .map(|e| {
                (
                    format!("{}/{}", e.listener_set, e.id),
                    (e.fencing_token, Until::of(e, &mut last)),
                )
            })
            .collect();
        Listed {
            version: doc.version,
            entries,
        }
    }

    /// What may run at `now`, and the next moment that changes by time alone.
    fn wanted(&self, honour: bool, now: jiff::Timestamp) -> (BTreeMap<&String, i32>, Option<jiff::Timestamp>) {
        let mut next: Option<jiff::Timestamp> = None;
        let wanted = self
            .entries
            .iter()
            .filter(|(_, (_, until))| match (honour, until) {
                (false, _) | (true, Until::Listed) => true,
                (true, Until::Never) => false,
                (true, Until::At(at)) => {
                    let valid = now < *at;
                    if valid {
                        next = Some(next.map_or(*at, |n| n.min(*at)));
                    }
                    valid
                }
            })
            .map(|(k, (token, _))| (k, *token))
            .collect();
        (wanted, next)
    }
}

/// What one app runs, and what it acknowledged.
#[derive(Default)]
struct Running {
    /// key → token of the running tenure.
    running: BTreeMap<String, i32>,
    /// key → the version applied before the one that stopped it (a version that still listed it).
    stopping: BTreeMap<String, u64>,
    stops: JoinSet<String>,
    acked: u64,
    /// The version applied last.
    seen: u64,
}

impl Running {
    /// Stop what `listed` no longer wants at `now` (or wants with another token), start what it
    /// wants and is not running (once a stop of it has finished), and note `listed` as the version
    /// applied last; the next moment this changes by time alone.
    fn apply(&mut self, cfg: &AppConfig, log: &Arc<AppLog>, id: &str, listed: &Listed) -> Option<jiff::Timestamp> {
        let (wanted, next) = listed.wanted(cfg.honour_valid_until, jiff::Timestamp::now());
        // Both are in key order: one walk through the two, not a lookup per running listener.
        let mut leaving: Vec<String> = Vec::new();
        let mut want = wanted.iter().peekable();
        for (k, t) in &self.running {
            while want.next_if(|(w, _)| w.as_str() < k.as_str()).is_some() {}
            if want.peek().is_none_or(|(w, wt)| w.as_str() != k.as_str() || *wt != t) {
                leaving.push(k.clone());
            }
        }
        for k in leaving {
            self.running.remove(&k);
            self.stopping.insert(k.clone(), self.seen);
            let (log, id, delay) = (log.clone(), id.to_string(), cfg.stop_delay);
            self.stops.spawn(async move {
                tokio::time::sleep(delay).await;
                log.stop(&id, &k);
                k
            });
        }
        for (k, t) in &wanted {
            if !self.running.contains_key(*k) && !self.stopping.contains_key(*k) {
                self.running.insert((*k).clone(), *t);
                log.start(id, k, *t);
            }
        }
        self.seen = listed.version;
        next
    }

    /// The newest version this app may acknowledge: `listed`'s if nothing runs that it does not
    /// list and nothing is stopping, else the oldest version applied before a stop still under
    /// way (a stop `validUntil` made, not a version, counts from the version it came under).
    fn applied(&self, listed: &Listed) -> u64 {
        if !self.running.keys().all(|k| listed.entries.contains_key(k)) {
            return 0;
        }
        self.stopping.values().copied().min().unwrap_or(listed.version)
    }
}

/// The app's loop. It looks again at what it runs when the document changes, a stop finishes, a
/// `validUntil` passes or an acknowledgement is still to make, not at every poll: a pod of 500
/// listeners polled every 20 ms would cost the test process more than what it tests.
async fn run(cfg: AppConfig, log: Arc<AppLog>, id: String, file: PathBuf, addr: watch::Receiver<Option<SocketAddr>>) {
    let (doc_tx, mut docs) = watch::channel::<Option<Doc>>(None);
    let _poller = match cfg.mode {
        Mode::Http => Some(AbortOnDrop(poller(addr.clone(), doc_tx))),
        Mode::File => None,
    };
    let mut listed: Option<Listed> = None;
    let mut read: Vec<u8> = Vec::new();
    let mut app = Running::default();
    let (mut dirty, mut expires) = (true, None::<jiff::Timestamp>);
    loop {
        if cfg.mode == Mode::File {
            if let Some(bytes) = std::fs::read(&file).ok().filter(|b| *b != read) {
                if let Ok(d) = serde_json::from_slice::<Doc>(&bytes) {
                    (listed, dirty) = (Some(Listed::of(&d)), true);
                }
                read = bytes;
            }
        } else {
            // The poller sends only a version it did not have: another version is another doc.
            let doc = docs.borrow_and_update();
            if let Some(d) = doc
                .as_ref()
                .filter(|d| listed.as_ref().is_none_or(|l| l.version != d.version))
            {
                (listed, dirty) = (Some(Listed::of(d)), true);
            }
        }
        dirty |= expires.is_some_and(|at| jiff::Timestamp::now() >= at);
        if let (true, Some(l)) = (dirty, listed.as_ref()) {
            expires = app.apply(&cfg, &log, &id, l);
            dirty = !acknowledge(&cfg, &addr, &mut app, l).await;
        }
        tokio::select! {
            Some(Ok(k)) = app.stops.join_next(), if !app.stops.is_empty() => {
                app.stopping.remove(&k);
                dirty = true;
            }
            r = docs.changed(), if cfg.mode == Mode::Http => {
                if r.is_err() {
                    tokio::time::sleep(cfg.poll).await;
                }
            }
            _ = tokio::time::sleep(cfg.poll) => {}
        }
    }
}

/// An HTTP app acknowledges the newest version it has applied ([`Running::applied`]); true when
/// nothing is left to acknowledge until a stop ends or another version comes.
async fn acknowledge(
    cfg: &AppConfig,
    addr: &watch::Receiver<Option<SocketAddr>>,
    app: &mut Running,
    listed: &Listed,
) -> bool {
    let version = app.applied(listed);
    if cfg.mode != Mode::Http || version <= app.acked {
        return true;
    }
    let at = *addr.borrow();
    let Some(at) = at else { return false };
    let path = format!("/ack?version={version}");
    if matches!(http(at, "POST", &path, Duration::from_secs(5)).await, Some((204, _))) {
        app.acked = version;
        return true;
    }
    false
}

/// Aborts its task when dropped.
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
