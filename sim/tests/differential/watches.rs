//! Watches: the event sequence from a resourceVersion (writes made before the watch opens are
//! replayed from the servers' history, so nothing depends on timing), bookmarks, initial events
//! with their end bookmark, selectors, a resourceVersion too old.

use serde_json::{json, Value};

use crate::harness::{Both, Pair, Req, SIDES};
use crate::setup::{watch, without_bookmarks, Watched};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";
const LABELLED: &str = "labelSelector=w%3Dyes";

fn cm(name: &str, v: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"w": "yes"}}, "data": {"v": v}})
}

/// The watch's code and events as one value.
fn watched(w: &Watched, events: Vec<Value>) -> Value {
    json!({"code": w.code, "events": events})
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn watches_from_a_resource_version() {
    // A short history, so that an old resourceVersion is out of it, as on kube-apiserver (whose
    // etcd compacts): a watch from one is refused with 410.
    let config = baton_sim::SimConfig {
        history: 200,
        ..Default::default()
    };
    let p = Pair::start_with("watches_from_a_resource_version", config).await;
    // Only the test's objects (kube-root-ca.crt comes a moment after the namespace on
    // kube-apiserver).
    let start = p.same("list", Req::get(format!("{CMS}?{LABELLED}"))).await;
    for side in SIDES {
        let writes = [
            Req::post(CMS, &cm("a", "1")),
            Req::post(CMS, &cm("b", "1")),
            Req::patch(format!("{CMS}/a"), "merge", &json!({"data": {"v": "2"}})),
            Req::delete(format!("{CMS}/b")),
            Req::post(
                CMS,
                &json!({"metadata": {"name": "c", "labels": {"w": "yes"}}, "data": {"v": "1"}}),
            ),
        ];
        for w in writes {
            let r = p.send(side, w).await;
            assert!(r.code < 300, "{side}: {}", r.body);
        }
    }
    let five = |e: &[Value]| without_bookmarks(e).len() >= 5;
    let mut seen = Vec::new();
    for side in SIDES {
        let rv = start.get(side).str("/metadata/resourceVersion");
        let req = Req::get(format!(
            "{CMS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&{LABELLED}"
        ));
        seen.push(watch(&p, side, req, five).await);
    }
    let (real, sim) = (seen.pop().expect("real"), seen.pop().expect("sim"));
    p.compare_values(
        "watch.from-resource-version",
        Both {
            sim: watched(&sim, without_bookmarks(&sim.events)),
            real: watched(&real, without_bookmarks(&real.events)),
        },
    );
    selected(&p, &start).await;
    initial_events(&p).await;
    too_old(&p).await;
    p.finish().await;
}

/// A watch with a label and a field selector, from the same start.
async fn selected(p: &Pair, start: &Both<crate::harness::Resp>) {
    let mut out = Vec::new();
    for side in SIDES {
        let rv = start.get(side).str("/metadata/resourceVersion");
        let req = Req::get(format!(
            "{CMS}?watch=true&resourceVersion={rv}&labelSelector=w%3Dyes&fieldSelector=metadata.name%3Da"
        ));
        let w = watch(p, side, req, |e| e.len() >= 2).await;
        out.push(watched(&w, w.events.clone()));
    }
    let (real, sim) = (out.pop().expect("real"), out.pop().expect("sim"));
    p.compare_values("watch.selectors", Both { sim, real });
}

/// `sendInitialEvents=true`: the current objects as ADDED, then a bookmark marking their end.
async fn initial_events(p: &Pair) {
    let mut out = Vec::new();
    for side in SIDES {
        let req = Req::get(format!(
            "{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=w%3Dyes"
        ));
        let w = watch(p, side, req, |e| e.iter().any(|e| e["type"] == "BOOKMARK")).await;
        out.push(watched(&w, w.events.clone()));
    }
    let (real, sim) = (out.pop().expect("real"), out.pop().expect("sim"));
    p.compare_values("watch.send-initial-events", Both { sim, real });
    p.same(
        "watch.send-initial-events-without-bookmarks",
        Req::get(format!(
            "{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=2"
        )),
    )
    .await;
    p.same(
        "watch.send-initial-events-exact",
        Req::get(format!(
            "{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true&timeoutSeconds=2"
        )),
    )
    .await;
}

/// A resourceVersion older than the history: the stream opens, then an ERROR event with 410.
async fn too_old(p: &Pair) {
    let mut out = Vec::new();
    for side in SIDES {
        let req = Req::get(format!("{CMS}?watch=true&resourceVersion=1"));
        let w = watch(p, side, req, |e| !e.is_empty()).await;
        out.push(watched(&w, w.events.clone()));
    }
    let (real, sim) = (out.pop().expect("real"), out.pop().expect("sim"));
    p.compare_values("watch.resource-version-too-old", Both { sim, real });
    p.same(
        "watch.timeout",
        Req::get(format!("{CMS}?watch=true&timeoutSeconds=1&labelSelector=w%3Dnever")),
    )
    .await;
    p.same(
        "watch.resource-version-not-a-number",
        Req::get(format!("{CMS}?watch=true&resourceVersion=abc&timeoutSeconds=2")),
    )
    .await;
}
