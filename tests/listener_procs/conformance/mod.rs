//! One conformance suite for the three listener clients (clients/python, clients/go,
//! clients/typescript): each case runs a client's sample app beside real `baton agent` and
//! `baton controller` processes, with a tap between each app and its sidecar (harness/tap.rs), and
//! ends with the harness's whole-run check (no listener in two apps, exact intervals and samples
//! every 20 ms; tokens only rising) and the contract's rules as the taps show them
//! ([`checks::contract`]). The same case code runs for every client: a test is
//! `conformance::<client>::<case>` (`cargo test --test listener_procs conformance::go::` runs one
//! client's).
//!
//! [`mutants`] breaks one rule in a copy of each client and shows that a case catches it.
//!
//! Cases whose names say `sim_only` run on baton-sim alone (fault injection, or to keep the real
//! control plane's tier short); rollout, drain and SIGTERM run on both.
mod build;
mod checks;
mod handover;
mod mutants;
mod sidecar;
mod stops;

use std::sync::Arc;
use std::time::Duration;

use crate::harness::app::AppConfig;
use crate::harness::{listeners, AgentFlags, AppKind, Cluster, Ns, R};

pub use build::{Build, Knobs, Mutation};

/// Deadline of a wait that only a broken harness or cluster would miss.
pub const LONG: Duration = Duration::from_secs(60);
/// The set every case runs.
pub const SET: &str = "sxt";

/// A client library, by its sample app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Python = 0,
    Go = 1,
    TypeScript = 2,
}

impl Client {
    /// Its directory under clients/.
    pub fn dir(self) -> &'static str {
        match self {
            Client::Python => "python",
            Client::Go => "go",
            Client::TypeScript => "typescript",
        }
    }

    /// A short name for namespaces.
    pub fn short(self) -> &'static str {
        match self {
            Client::Python => "py",
            Client::Go => "go",
            Client::TypeScript => "ts",
        }
    }
}

/// How a run broke down.
#[derive(Debug)]
pub enum Failure {
    /// The run broke a rule: what the harness and the taps show.
    Broken(Vec<String>),
    /// The run could not go on (nothing started, a wait ran out with no rule broken).
    Harness(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Broken(v) => write!(f, "{} violations:\n{}", v.len(), v.join("\n")),
            Failure::Harness(e) => write!(f, "the run could not go on: {e}"),
        }
    }
}

pub type Outcome = Result<(), Failure>;

/// How a case sets up its namespace.
#[derive(Clone, Debug)]
pub struct Setup {
    pub knobs: Knobs,
    pub agent: AgentFlags,
    /// `spec.leaseDurationSeconds`.
    pub lease: i32,
    pub listeners: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            knobs: Knobs {
                stop_seconds: 0.5,
                stop_fails: false,
            },
            agent: AgentFlags::default(),
            lease: 4,
            listeners: 4,
        }
    }
}

/// A namespace running one client's sample app on pods `pa` and `pb` (more as a case adds them),
/// a controller, and set [`SET`] settled on them.
pub struct Trial {
    pub ns: Ns,
    pub client: Client,
    pub app: AppKind,
    pub keys: Vec<String>,
    pub setup: Setup,
}

impl Trial {
    pub async fn start(name: &str, client: Client, build: &Build, setup: Setup) -> Result<Trial, Failure> {
        let ns = Ns::new(Cluster::shared(), name, AppConfig::default(), setup.agent.clone())
            .await
            .map_err(Failure::Harness)?;
        let (spec, keys) = listeners(SET, setup.listeners);
        let t = Trial {
            ns,
            client,
            app: AppKind::Program(build.program(&setup.knobs)),
            keys,
            setup,
        };
        t.step(t.ns.start_controller().await)?;
        for p in ["pa", "pb"] {
            t.step(t.add_pod(p).await)?;
        }
        t.step(t.ns.create_set(SET, spec, t.setup.lease).await)?;
        let n = t.keys.len();
        t.step(
            t.ns.settled(SET, n, "every listener running in the sample apps", LONG)
                .await,
        )?;
        Ok(t)
    }

    /// Create pod `name` and run its sidecar and the client's sample app.
    pub async fn add_pod(&self, name: &str) -> R<()> {
        let uid = self.ns.create_plain_pod(name).await?;
        self.ns.start_procs(name, &uid, Vec::new(), self.app.clone()).await?;
        Ok(())
    }

    /// The pod running the most listeners, and those (`<set>/<id>`).
    pub fn busiest(&self) -> (String, Vec<String>) {
        let on = self.ns.running_on();
        let mut by: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (l, p) in &on {
            by.entry(p.as_str()).or_default().push(l.clone());
        }
        let (pod, keys) = by.into_iter().max_by_key(|(_, ls)| ls.len()).unwrap_or_default();
        (pod.to_string(), keys)
    }

    /// The other pod of `pa` and `pb`.
    pub fn other(pod: &str) -> &'static str {
        if pod == "pa" {
            "pb"
        } else {
            "pa"
        }
    }

    /// Every rule the run broke so far: the harness's checks and the contract's.
    pub fn violations(&self) -> Vec<String> {
        let mut v = self.ns.violations(true);
        v.extend(checks::contract(
            &self.ns,
            Duration::from_secs_f64(self.setup.knobs.stop_seconds),
        ));
        v
    }

    /// A harness step's result: a failure is the rules the run broke, if any, else the
    /// harness's.
    pub fn step<T>(&self, r: R<T>) -> Result<T, Failure> {
        r.map_err(|e| {
            let mut v = self.violations();
            if v.is_empty() {
                Failure::Harness(e)
            } else {
                v.push(format!("(while: {e})"));
                Failure::Broken(v)
            }
        })
    }

    /// `v` (rules a case checked itself) and every rule the run broke.
    pub fn judge(&self, mut v: Vec<String>) -> Outcome {
        v.extend(self.violations());
        if v.is_empty() {
            Ok(())
        } else {
            Err(Failure::Broken(v))
        }
    }

    /// The app of `pod`.
    pub fn app_of(&self, pod: &str) -> Result<Arc<crate::harness::PodProcs>, Failure> {
        self.ns.pod(pod).map_err(Failure::Harness)
    }
}

/// The cases, each run for every client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    Rollout,
    Drain,
    KilledSidecar,
    RestartedSidecar,
    SlowStop,
    PartitionedAgent,
    Sigterm,
    FailingStop,
}

impl Case {
    pub fn short(self) -> &'static str {
        match self {
            Case::Rollout => "roll",
            Case::Drain => "drain",
            Case::KilledSidecar => "kill",
            Case::RestartedSidecar => "restart",
            Case::SlowStop => "slow",
            Case::PartitionedAgent => "part",
            Case::Sigterm => "term",
            Case::FailingStop => "fail",
        }
    }

    fn setup(self) -> Setup {
        match self {
            Case::Rollout | Case::Drain => Setup::default(),
            Case::Sigterm => Setup {
                knobs: Knobs {
                    stop_seconds: 1.0,
                    stop_fails: false,
                },
                ..Setup::default()
            },
            Case::KilledSidecar | Case::RestartedSidecar | Case::PartitionedAgent => Setup {
                knobs: Knobs::default(),
                ..Setup::default()
            },
            Case::SlowStop => stops::slow_setup(),
            Case::FailingStop => Setup {
                knobs: Knobs {
                    stop_seconds: 0.5,
                    stop_fails: true,
                },
                ..Setup::default()
            },
        }
    }

    async fn run(self, t: &Trial) -> Outcome {
        match self {
            Case::Rollout => handover::rollout(t).await,
            Case::Drain => handover::drain(t).await,
            Case::Sigterm => handover::sigterm(t).await,
            Case::KilledSidecar => sidecar::killed(t).await,
            Case::RestartedSidecar => sidecar::restarted(t).await,
            Case::PartitionedAgent => sidecar::partitioned(t).await,
            Case::SlowStop => stops::slow(t).await,
            Case::FailingStop => stops::failing(t).await,
        }
    }
}

/// Run `case` with `build` of `client` in namespace `name`: the trial (None if it did not start)
/// and what the run showed.
pub async fn run_case(case: Case, client: Client, build: &Build, name: &str) -> (Option<Trial>, Outcome) {
    let t = match Trial::start(name, client, build, case.setup()).await {
        Ok(t) => t,
        Err(f) => return (None, Err(f)),
    };
    let outcome = case.run(&t).await;
    (Some(t), outcome)
}

/// The checkout's sample app of `client`, built once per test process.
pub async fn checkout_build(client: Client) -> Arc<Build> {
    let scratch = Cluster::shared().scratch().to_path_buf();
    let built = tokio::task::spawn_blocking(move || Build::checkout(client, &scratch)).await;
    match built {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => panic!("building the {client:?} sample app: {e}"),
        Err(e) => panic!("building the {client:?} sample app: {e}"),
    }
}

/// One test: `case` for `client`, which must pass every check.
async fn conformance(case: Case, client: Client) {
    let build = checkout_build(client).await;
    let name = format!("cf-{}-{}", case.short(), client.short());
    let started = std::time::Instant::now();
    let (t, outcome) = run_case(case, client, &build, &name).await;
    if let Err(f) = outcome {
        let timeline = t.as_ref().map(|t| checks::timeline(&t.ns)).unwrap_or_default();
        panic!("{case:?} with the {client:?} client: {f}\n----- timeline -----\n{timeline}");
    }
    let Some(t) = t else {
        panic!("{case:?} with the {client:?} client: no trial");
    };
    // The handover gaps (one app's stop → the next start of that listener), for the record.
    let mut gaps = t.ns.log.analyse().gaps;
    gaps.sort();
    let at = |q: f64| {
        gaps.get(((gaps.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
    };
    println!(
        "{case:?} with the {client:?} client passed in {:.1?}; {} handovers, gap p50 {:?} max {:?}",
        started.elapsed(),
        gaps.len(),
        at(0.5).unwrap_or_default(),
        at(1.0).unwrap_or_default()
    );
    crate::assert_clean(&t.ns, true);
}

/// `module => client`: every case, and each mutant, as a test of its own in `module`.
macro_rules! suite {
    ($($name:ident => $client:expr,)*) => {$(
        mod $name {
            use super::mutants::mutant;
            use super::{conformance, Case, Client, Mutation};

            const C: Client = $client;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rollout() {
                conformance(Case::Rollout, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn drain() {
                conformance(Case::Drain, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sigterm() {
                conformance(Case::Sigterm, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_killed_sidecar() {
                conformance(Case::KilledSidecar, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_restarted_sidecar() {
                conformance(Case::RestartedSidecar, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_slow_stop() {
                conformance(Case::SlowStop, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_partitioned_agent() {
                conformance(Case::PartitionedAgent, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_failing_stop() {
                conformance(Case::FailingStop, C).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_mutant_acking_before_the_stop_fails_drain() {
                mutant(C, Mutation::AckBeforeStop, Case::Drain).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sim_only_mutant_without_a_valid_until_timer_fails_killed_sidecar() {
                mutant(C, Mutation::NoValidUntilTimer, Case::KilledSidecar).await;
            }
        }
    )*};
}

suite! {
    python => Client::Python,
    go => Client::Go,
    typescript => Client::TypeScript,
}
