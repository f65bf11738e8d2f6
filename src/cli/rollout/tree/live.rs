//! What `baton rollout get NAME [--watch]` reads: the Rollout, one list of its
//! ControllerRevisions and one of its pods (by the Rollout label); with `--watch`, watches of
//! the Rollout and its pods, the tree drawn again on each change.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;

use super::render;
use crate::actions::revision_log;
use crate::api::rollout::{labels, Rollout};
use crate::cli::{emit, CliError, Session};
use crate::session::exit;

/// The Rollout's pods (its instances' and its Jobs'), by the Rollout label.
pub async fn pods(s: &Session, r: &Rollout) -> Result<Vec<Pod>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(s.client.clone(), &s.namespace);
    Ok(api.list(&ListParams::default().labels(&selector(r))).await?.items)
}

fn selector(r: &Rollout) -> String {
    format!("{}={}", labels::ROLLOUT, r.name_any())
}

/// Everything the tree of one Rollout is drawn from.
struct Parts {
    rollout: Rollout,
    revisions: Vec<ControllerRevision>,
    pods: Vec<Pod>,
}

impl Parts {
    async fn read(s: &Session, api: &Api<Rollout>, name: &str) -> Result<Parts, CliError> {
        let rollout = api.get(name).await.map_err(|e| s.error(&e))?;
        let revisions = revision_log::revisions(&s.client, &s.namespace, &rollout)
            .await
            .map_err(|e| s.error(&e))?;
        let pods = pods(s, &rollout).await.map_err(|e| s.error(&e))?;
        Ok(Parts {
            rollout,
            revisions,
            pods,
        })
    }

    fn render(&self, now: Timestamp) -> String {
        render(&self.rollout, &self.revisions, &self.pods, now)
    }
}

/// `get NAME…`: each Rollout's tree, or with `watch` the one Rollout's tree followed until
/// interrupted.
pub async fn get(s: &Session, api: &Api<Rollout>, names: &[String], watch: bool) -> Result<ExitCode, CliError> {
    if watch {
        let [name] = names else {
            return Err(CliError::usage("--watch follows one Rollout: give one name"));
        };
        return follow(s, api, name).await;
    }
    let mut failed = None;
    for (k, name) in names.iter().enumerate() {
        match Parts::read(s, api, name).await {
            Ok(parts) => {
                let sep = if k > 0 { "\n" } else { "" };
                emit(&format!("{sep}{}", parts.render(Timestamp::now())));
            }
            // As kubectl: say what is missing, show the rest, exit non-zero.
            Err(e) => {
                eprintln!("{e}");
                failed = Some(e.code);
            }
        }
    }
    Ok(failed.map_or(ExitCode::SUCCESS, ExitCode::from))
}

/// Where the changing tree goes.
enum Display {
    /// Redrawn in place, ages refreshed every second.
    Terminal(ProgressBar),
    /// A CI log: the whole tree again each time something in it changes (not one line per
    /// change: a reader scrolling a log wants each state readable on its own, and a tree's
    /// change is often several rows at once, a pod replaced under another revision), never for
    /// ages alone, so an idle watch adds nothing to the log.
    Log { last: String },
}

/// The tree with the clock left out: what a log compares to know whether anything changed.
fn without_clock(parts: &Parts) -> String {
    parts.render(Timestamp::UNIX_EPOCH)
}

impl Display {
    fn new(first: &Parts) -> Display {
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            let d = Display::Terminal(bar);
            d.draw(first);
            d
        } else {
            emit(&first.render(Timestamp::now()));
            Display::Log {
                last: without_clock(first),
            }
        }
    }

    fn draw(&self, parts: &Parts) {
        if let Display::Terminal(bar) = self {
            bar.set_message(parts.render(Timestamp::now()).trim_end().to_string());
        }
    }

    fn show(&mut self, parts: &Parts) {
        match self {
            Display::Terminal(_) => self.draw(parts),
            Display::Log { last } => {
                let key = without_clock(parts);
                if &key != last {
                    emit(&format!("\n{}", parts.render(Timestamp::now())));
                    *last = key;
                }
            }
        }
    }

    fn finish(self) {
        if let Display::Terminal(bar) = self {
            bar.finish();
        }
    }
}

/// Pods as a watch reports them: a restarted watch's objects replace the old set only once
/// listed in full, so a tree is never drawn from half a list.
#[derive(Default)]
struct PodSet {
    live: BTreeMap<String, Pod>,
    listing: Option<BTreeMap<String, Pod>>,
    listed: bool,
}

impl PodSet {
    /// Apply an event; true when the set changed.
    fn apply(&mut self, e: watcher::Event<Pod>) -> bool {
        match e {
            watcher::Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(p) => {
                self.listing.get_or_insert_with(BTreeMap::new).insert(p.name_any(), p);
                false
            }
            watcher::Event::InitDone => {
                self.live = self.listing.take().unwrap_or_default();
                self.listed = true;
                true
            }
            watcher::Event::Apply(p) => {
                self.live.insert(p.name_any(), p);
                self.listed
            }
            watcher::Event::Delete(p) => {
                self.live.remove(&p.name_any());
                self.listed
            }
        }
    }
}

/// Does a pod run a revision not among `revisions` (made after they were listed)?
fn unknown_revision(pods: &[Pod], revisions: &[ControllerRevision]) -> bool {
    pods.iter().any(|p| {
        let hash = p.labels().get(labels::REVISION_HASH);
        hash.is_some() && !revisions.iter().any(|r| r.labels().get(labels::REVISION_HASH) == hash)
    })
}

/// Follow the Rollout and its pods until interrupted (or the Rollout is deleted).
async fn follow(s: &Session, api: &Api<Rollout>, name: &str) -> Result<ExitCode, CliError> {
    let mut parts = Parts::read(s, api, name).await?;
    let mut display = Display::new(&parts);
    let rollouts = watcher(api.clone(), s.watch_config().fields(&format!("metadata.name={name}")));
    let mut rollouts = std::pin::pin!(rollouts.default_backoff());
    let pod_api: Api<Pod> = Api::namespaced(s.client.clone(), &s.namespace);
    let pod_watch = watcher(pod_api, s.watch_config().labels(&selector(&parts.rollout)));
    let mut pod_events = std::pin::pin!(pod_watch.default_backoff());
    let mut pods = PodSet::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let interrupted = tokio::signal::ctrl_c();
    let mut interrupted = std::pin::pin!(interrupted);
    loop {
        let mut rollout_changed = false;
        tokio::select! {
            _ = &mut interrupted => {
                display.finish();
                return Ok(ExitCode::SUCCESS);
            }
            _ = tick.tick() => {
                display.draw(&parts);
                continue;
            }
            e = rollouts.next() => match e {
                Some(Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r))) => {
                    parts.rollout = r;
                    rollout_changed = true;
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    display.finish();
                    return Err(CliError::msg(format!("rollout {name} was deleted")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    eprintln!("watch: {e}");
                    continue;
                }
                None => return Err(CliError::with_code("error: watch ended", exit::API)),
            },
            e = pod_events.next() => match e {
                Some(Ok(e)) => {
                    if !pods.apply(e) {
                        continue;
                    }
                    parts.pods = pods.live.values().cloned().collect();
                }
                Some(Err(e)) => {
                    eprintln!("watch: {e}");
                    continue;
                }
                None => return Err(CliError::with_code("error: watch ended", exit::API)),
            },
        }
        if rollout_changed || unknown_revision(&parts.pods, &parts.revisions) {
            match revision_log::revisions(&s.client, &s.namespace, &parts.rollout).await {
                Ok(revs) => parts.revisions = revs,
                Err(e) => eprintln!("{}", s.error(&e)),
            }
        }
        display.show(&parts);
    }
}
