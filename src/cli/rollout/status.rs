//! `baton rollout status`: the view of a Rollout, followed until it is Healthy, failed or the
//! timeout. On a terminal the view is redrawn in place (indicatif); elsewhere (CI logs) the
//! first view is printed, then one line per change, then the final view.
use crate::api::ROLLOUT_RESOURCE;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};

use super::view::{render, render_with_pods, summary_line, verdict, Verdict};
use crate::api::rollout::Rollout;
use crate::cli::output::{self, Output};
use crate::cli::{emit, CliError, Session};
use crate::session::exit;

fn code(v: Verdict) -> ExitCode {
    match v {
        Verdict::Healthy => ExitCode::SUCCESS,
        Verdict::Failed => ExitCode::from(exit::FAILED),
        Verdict::InProgress => ExitCode::from(exit::IN_PROGRESS),
    }
}

/// Where the changing view goes.
enum Display {
    /// Redrawn in place.
    Terminal(ProgressBar),
    /// One line per change.
    Log { last: String },
}

impl Display {
    fn new(first: &Rollout, wide: bool) -> Display {
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar.set_message(render(first, Timestamp::now(), wide).trim_end().to_string());
            Display::Terminal(bar)
        } else {
            emit(&render(first, Timestamp::now(), wide));
            Display::Log {
                last: summary_line(first),
            }
        }
    }

    fn show(&mut self, r: &Rollout, wide: bool) {
        match self {
            Display::Terminal(bar) => bar.set_message(render(r, Timestamp::now(), wide).trim_end().to_string()),
            Display::Log { last } => {
                let line = summary_line(r);
                if &line != last {
                    emit(&format!("{line}\n"));
                    *last = line;
                }
            }
        }
    }

    /// Leave the final view on screen (printed once more in a log).
    fn finish(self, r: &Rollout, pods: &[Pod], wide: bool) {
        match self {
            Display::Terminal(bar) => {
                bar.set_message(render_with_pods(r, pods, Timestamp::now(), wide).trim_end().to_string());
                bar.finish();
            }
            Display::Log { .. } => emit(&render_with_pods(r, pods, Timestamp::now(), wide)),
        }
    }

    fn abandon(self) {
        if let Display::Terminal(bar) = self {
            bar.abandon();
        }
    }
}

pub async fn status(
    s: &Session,
    api: &Api<Rollout>,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
    out: Option<Output>,
) -> Result<ExitCode, CliError> {
    let first = api.get(name).await.map_err(|e| s.error(&e))?;
    let wide = out == Some(Output::Wide);
    match out {
        Some(o @ (Output::Json | Output::Yaml)) => {
            emit(&output::document(&output::object(&first)?, o)?);
            return Ok(code(verdict(&first)));
        }
        Some(Output::Name) => {
            emit(&format!("{ROLLOUT_RESOURCE}/{name}\n"));
            return Ok(code(verdict(&first)));
        }
        _ => {}
    }
    let v = verdict(&first);
    if !watch || v != Verdict::InProgress {
        // The pods only add what is stuck: a client not allowed to list them still gets the view.
        let pods = super::tree::live::pods(s, &first).await.unwrap_or_default();
        emit(&render_with_pods(&first, &pods, Timestamp::now(), wide));
        return Ok(code(v));
    }
    let mut display = Display::new(&first, wide);
    let cfg = s.watch_config().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).default_backoff().applied_objects());
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    display.abandon();
                    return Err(CliError::with_code(
                        format!("error: timed out waiting for rollout {name}"),
                        exit::TIMEOUT,
                    ));
                }
            },
            None => stream.next().await,
        };
        match next {
            Some(Ok(r)) => {
                let v = verdict(&r);
                if v != Verdict::InProgress {
                    let pods = super::tree::live::pods(s, &r).await.unwrap_or_default();
                    display.finish(&r, &pods, wide);
                    return Ok(code(v));
                }
                display.show(&r, wide);
            }
            Some(Err(e)) => eprintln!("watch: {e}"),
            None => {
                display.abandon();
                return Err(CliError::with_code("error: watch ended", exit::API));
            }
        }
    }
}
