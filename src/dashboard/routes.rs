//! The pages, their live streams and the bundled script and stylesheet.
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use maud::Markup;

use super::caches::Watched;
use super::render::{self, listenerset::SetView, rollout::RolloutView, Frame};
use super::{text, Dashboard, FIRST_LIST};
use crate::actions::revision_log::owned;
use crate::api::listenerset::ListenerSet;
use crate::api::rollout::Rollout;

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// At most one fragment per client this often: a burst of changes (a batch of pods turning
/// Ready) is sent as one.
const THROTTLE: Duration = Duration::from_millis(100);

/// Which page.
#[derive(Clone, Debug)]
pub(crate) enum View {
    List,
    Rollout(String, String),
    Set(String, String),
}

impl View {
    fn kinds(&self) -> &'static [Watched] {
        match self {
            View::List => &[Watched::Rollouts, Watched::ListenerSets],
            View::Rollout(..) => &[Watched::Rollouts, Watched::Revisions, Watched::RolloutEvents],
            View::Set(..) => &[Watched::ListenerSets, Watched::Leases, Watched::ListenerSetEvents],
        }
    }

    fn live_url(&self) -> String {
        match self {
            View::List => "/live/".into(),
            View::Rollout(ns, name) => format!("/live{}", render::rollout_href(ns, name)),
            View::Set(ns, name) => format!("/live{}", render::set_href(ns, name)),
        }
    }

    fn title(&self) -> String {
        match self {
            View::List => "Rollouts and ListenerSets".into(),
            View::Rollout(ns, name) => format!("Rollout {ns}/{name}"),
            View::Set(ns, name) => format!("ListenerSet {ns}/{name}"),
        }
    }

    /// The fragment as the caches hold it now, and whether the object is there.
    pub(crate) fn fragment(&self, d: &Dashboard) -> (Markup, bool) {
        let c = &d.0.caches;
        let states: Vec<_> = c
            .states()
            .into_iter()
            .filter(|(k, _)| self.kinds().contains(k))
            // The ListenerSet page says what it cannot read of the Leases beside their table.
            .filter(|(k, _)| !matches!((self, k), (View::Set(..), Watched::Leases)))
            .collect();
        let problems = render::problems(&states, &c.undecodable());
        let (body, found) = match self {
            View::List => {
                let rollouts = c.rollouts.state();
                let sets = c.sets.state();
                let r: Vec<&Rollout> = rollouts.iter().map(|a| a.as_ref()).collect();
                let s: Vec<&ListenerSet> = sets.iter().map(|a| a.as_ref()).collect();
                (render::list::fragment(&r, &s), true)
            }
            View::Rollout(ns, name) => match c.rollouts.get(&ObjectRef::new(name).within(ns)) {
                Some(r) => {
                    let revisions = c.revisions.state();
                    let events = c.rollout_events.state();
                    let view = RolloutView {
                        rollout: &r,
                        revisions: owned(&r, revisions.iter().map(|a| a.as_ref())),
                        events: about(&events, ns, name, r.uid().as_deref()),
                        read_only: d.0.read_only,
                    };
                    (render::rollout::fragment(&view), true)
                }
                None => (render::missing("Rollout", ns, name, c.synced(Watched::Rollouts)), false),
            },
            View::Set(ns, name) => match c.sets.get(&ObjectRef::new(name).within(ns)) {
                Some(s) => {
                    let leases = c.leases.state();
                    let events = c.set_events.state();
                    let view = SetView {
                        set: &s,
                        leases: leases
                            .iter()
                            .map(|a| a.as_ref())
                            .filter(|l| l.namespace().as_deref() == Some(ns.as_str()))
                            .collect(),
                        leases_error: c.states().get(&Watched::Leases).and_then(|s| s.error.clone()),
                        events: about(&events, ns, name, s.uid().as_deref()),
                    };
                    (render::listenerset::fragment(&view), true)
                }
                None => (
                    render::missing("ListenerSet", ns, name, c.synced(Watched::ListenerSets)),
                    false,
                ),
            },
        };
        (maud::html! { (problems) (body) }, found)
    }

    /// Outside the watched namespace: nothing to show.
    fn out_of_scope(&self, d: &Dashboard) -> bool {
        match (self, &d.0.caches.namespace) {
            (View::Rollout(ns, _) | View::Set(ns, _), Some(watched)) => ns != watched,
            _ => false,
        }
    }
}

/// The Events of `events` about the object `ns/name` (of this uid, when the Event names one).
fn about<'a>(
    events: &'a [std::sync::Arc<k8s_openapi::api::core::v1::Event>],
    ns: &str,
    name: &str,
    uid: Option<&str>,
) -> Vec<&'a k8s_openapi::api::core::v1::Event> {
    events
        .iter()
        .map(|e| e.as_ref())
        .filter(|e| {
            let o = &e.involved_object;
            o.name.as_deref() == Some(name)
                && o.namespace.as_deref().or(e.metadata.namespace.as_deref()) == Some(ns)
                && (o.uid.is_none() || uid.is_none() || o.uid.as_deref() == uid)
        })
        .collect()
}

async fn page(d: Dashboard, view: View) -> Response {
    if view.out_of_scope(&d) {
        let scope = d.0.scope.clone();
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "{} is outside the dashboard's scope ({scope}); run it with -A or -n",
                view.title()
            ),
        );
    }
    d.0.caches.settled(view.kinds(), FIRST_LIST).await;
    let (fragment, found) = view.fragment(&d);
    let frame = Frame {
        title: &view.title(),
        live: &view.live_url(),
        csrf: &d.0.csrf,
        server: &d.0.session.server,
        scope: &d.0.scope,
        read_only: d.0.read_only,
    };
    let code = if found { StatusCode::OK } else { StatusCode::NOT_FOUND };
    (code, Html(render::page(&frame, fragment).into_string())).into_response()
}

/// The live stream of `view`: its fragment now, then again after every change that alters it.
fn live(d: Dashboard, view: View) -> Response {
    if view.out_of_scope(&d) {
        return text(
            StatusCode::NOT_FOUND,
            format!("{} is outside the dashboard's scope", view.title()),
        );
    }
    Sse::new(fragments(d, view))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn fragments(d: Dashboard, view: View) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let rx = d.0.caches.changes();
    futures::stream::unfold((rx, String::new(), true), move |(mut rx, mut last, mut first)| {
        let (d, view) = (d.clone(), view.clone());
        async move {
            if first {
                d.0.caches.settled(view.kinds(), FIRST_LIST).await;
            }
            loop {
                if !first {
                    rx.changed().await.ok()?;
                    tokio::time::sleep(THROTTLE).await;
                    rx.borrow_and_update();
                }
                first = false;
                let html = view.fragment(&d).0.into_string();
                if html != last {
                    let event = SseEvent::default()
                        .event("update")
                        .json_data(&html)
                        .unwrap_or_else(|_| SseEvent::default().comment("unencodable fragment"));
                    last = html;
                    return Some((Ok(event), (rx, last, first)));
                }
            }
        }
    })
}

pub(crate) async fn list_page(State(d): State<Dashboard>) -> Response {
    page(d, View::List).await
}

pub(crate) async fn rollout_page(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    page(d, View::Rollout(ns, name)).await
}

pub(crate) async fn set_page(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    page(d, View::Set(ns, name)).await
}

pub(crate) async fn list_live(State(d): State<Dashboard>) -> Response {
    live(d, View::List)
}

pub(crate) async fn rollout_live(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    live(d, View::Rollout(ns, name))
}

pub(crate) async fn set_live(State(d): State<Dashboard>, Path((ns, name)): Path<(String, String)>) -> Response {
    live(d, View::Set(ns, name))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(crate) async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub(crate) async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

pub(crate) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found".into())
}
