//! The listener log: every start/stop of every pod's application on one monotonic clock, and
//! what is read from it (running listeners, duplicates).
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    /// The application stopped it and acknowledged (release requested, shutdown, renew failed, lost).
    Stopped(String),
    /// The process was killed (crash, grace-0 delete): no release.
    Killed,
}

#[derive(Debug, Clone)]
pub(crate) struct Interval {
    pub(crate) listener: String,
    pub(crate) pod: String,
    pub(crate) token: i32,
    pub(crate) start: Instant,
    pub(crate) end: Option<(Instant, End)>,
}

#[derive(Default)]
pub(crate) struct Log {
    pub(crate) intervals: Mutex<Vec<Interval>>,
}

impl Log {
    pub(crate) fn start(&self, pod: &str, listener: &str, token: i32) {
        self.intervals.lock().unwrap().push(Interval {
            listener: listener.into(),
            pod: pod.into(),
            token,
            start: Instant::now(),
            end: None,
        });
    }

    pub(crate) fn stop(&self, pod: &str, listener: &str, how: End) {
        let now = Instant::now();
        let mut g = self.intervals.lock().unwrap();
        for i in g
            .iter_mut()
            .filter(|i| i.pod == pod && i.listener == listener && i.end.is_none())
        {
            i.end = Some((now, how.clone()));
        }
    }

    pub(crate) fn kill(&self, pod: &str) {
        let now = Instant::now();
        let mut g = self.intervals.lock().unwrap();
        for i in g.iter_mut().filter(|i| i.pod == pod && i.end.is_none()) {
            i.end = Some((now, End::Killed));
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<Interval> {
        self.intervals.lock().unwrap().clone()
    }

    /// listener → pods currently running it.
    pub(crate) fn running(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in self.intervals.lock().unwrap().iter().filter(|i| i.end.is_none()) {
            m.entry(i.listener.clone()).or_default().push(i.pod.clone());
        }
        m
    }

    /// (overlapping interval pairs of one listener, listeners whose fencing token went backwards).
    pub(crate) fn duplicates(&self) -> (usize, usize) {
        let mut by: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        for i in self.snapshot() {
            by.entry(i.listener.clone()).or_default().push(i);
        }
        let (mut overlaps, mut token_regressions) = (0, 0);
        for (listener, mut is) in by {
            is.sort_by_key(|i| i.start);
            for w in is.windows(2) {
                let ok = matches!(&w[0].end, Some((end, _)) if *end <= w[1].start);
                if !ok {
                    overlaps += 1;
                    eprintln!("OVERLAP {listener}: {:?} and {:?}", w[0], w[1]);
                }
                if w[1].pod != w[0].pod && w[1].token <= w[0].token {
                    token_regressions += 1;
                    eprintln!("FENCING {listener}: token {} then {}", w[0].token, w[1].token);
                }
            }
        }
        (overlaps, token_regressions)
    }
}

/// Records the moment a pod's process future is dropped (aborted: kill -9 or grace 0).
pub(crate) struct KillGuard {
    pub(crate) log: Arc<Log>,
    pub(crate) pod: String,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        self.log.kill(&self.pod);
    }
}
