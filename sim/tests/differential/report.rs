//! What each test compared and found, and the suite's totals: every test prints its line; the
//! last of the suite's tests to finish prints the suite's (the request kinds compared and the
//! differences left, the figures docs/simulator.md records).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{LazyLock, Mutex};

use crate::diff::Difference;
use crate::known;

/// One test's findings.
pub struct TestReport {
    test: &'static str,
    kinds: BTreeSet<String>,
    documented: BTreeMap<&'static str, usize>,
    unexplained: Vec<Difference>,
}

#[derive(Default)]
struct Suite {
    done: BTreeSet<&'static str>,
    kinds: BTreeSet<String>,
    documented: BTreeSet<&'static str>,
    unexplained: usize,
}

static SUITE: LazyLock<Mutex<Suite>> = LazyLock::new(Mutex::default);

/// Print past the test harness's capture (its capture takes `print!`, not writes to stdout),
/// so the figures show in every run.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl TestReport {
    pub fn new(test: &'static str) -> TestReport {
        assert!(
            crate::TESTS.contains(&test),
            "test {test} is not listed in TESTS (main.rs): the suite's summary counts on it"
        );
        TestReport {
            test,
            kinds: BTreeSet::new(),
            documented: BTreeMap::new(),
            unexplained: Vec::new(),
        }
    }

    /// Kind `kind` was compared and these differences found.
    pub fn compared(&mut self, kind: &str, differences: Vec<Difference>) {
        self.kinds.insert(kind.to_string());
        for d in differences {
            match known::explain(&d) {
                Some(id) => *self.documented.entry(id).or_insert(0) += 1,
                None => self.unexplained.push(d),
            }
        }
    }

    /// Print the test's line (and the suite's, when this was its last test); fail on every
    /// difference not documented.
    pub fn finish(self) {
        let documented: Vec<String> = self.documented.iter().map(|(id, n)| format!("{id} ×{n}")).collect();
        say(&format!(
            "differential {}: {} request kinds compared, {} documented differences seen{}{}",
            self.test,
            self.kinds.len(),
            self.documented.len(),
            if documented.is_empty() {
                String::new()
            } else {
                format!(" ({})", documented.join(", "))
            },
            if self.unexplained.is_empty() {
                String::new()
            } else {
                format!(", {} differences not documented", self.unexplained.len())
            },
        ));
        {
            let mut suite = SUITE.lock().unwrap_or_else(|p| p.into_inner());
            suite.done.insert(self.test);
            suite.kinds.extend(self.kinds.iter().cloned());
            suite.documented.extend(self.documented.keys().copied());
            suite.unexplained += self.unexplained.len();
            if crate::TESTS.iter().all(|t| suite.done.contains(t)) {
                say(&format!(
                    "differential suite: {} tests, {} request kinds compared, {} differences left ({} documented in docs/simulator.md: {}; {} not documented)",
                    suite.done.len(),
                    suite.kinds.len(),
                    suite.documented.len() + suite.unexplained,
                    suite.documented.len(),
                    suite.documented.iter().copied().collect::<Vec<_>>().join(", "),
                    suite.unexplained,
                ));
                let unseen: Vec<&str> = known::KNOWN
                    .iter()
                    .map(|k| k.id)
                    .filter(|id| !suite.documented.contains(id))
                    .collect();
                if !unseen.is_empty() {
                    say(&format!(
                        "differential suite: documented differences no longer seen (fixed? remove them from known.rs and docs/simulator.md): {}",
                        unseen.join(", ")
                    ));
                }
            }
        }
        if !self.unexplained.is_empty() {
            let list: Vec<String> = self.unexplained.iter().map(|d| d.to_string()).collect();
            panic!(
                "{}: {} differences between baton-sim and kube-apiserver, neither fixed nor documented (sim/tests/differential/known.rs, docs/simulator.md):\n{}",
                self.test,
                self.unexplained.len(),
                list.join("\n")
            );
        }
    }
}
