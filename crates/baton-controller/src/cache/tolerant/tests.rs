use futures::StreamExt;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::json;

use super::*;
use crate::api::rollout::Rollout;

fn rollout(name: &str, replicas: Value) -> Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "resourceVersion": "7", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "a"}},
            "version": "v1",
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
        "status": {"phase": "Healthy"},
    })
}

fn decode(v: Value) -> Tolerant<Rollout> {
    serde_json::from_value(v).expect("a Tolerant never fails on a JSON object")
}

#[test]
fn an_object_that_fits_decodes() {
    let t = decode(rollout("good", json!(3)));
    assert_eq!(t.object.as_ref().map(|r| r.spec.replicas).ok(), Some(3));
    assert_eq!(t.meta().name.as_deref(), Some("good"));
}

#[test]
fn an_integer_beyond_i32_keeps_the_metadata_the_error_and_the_status() {
    for bad in [
        json!(2_147_483_648_i64),
        json!(9_223_372_036_854_775_808_u64),
        json!(-2_147_483_649_i64),
    ] {
        let t = decode(rollout("big", bad.clone()));
        let why = t.object.expect_err("does not fit i32");
        assert!(why.error.contains("i32"), "{bad}: {}", why.error);
        assert_eq!(why.status, Some(json!({"phase": "Healthy"})));
        assert_eq!(t.metadata.uid.as_deref(), Some("uid-big"));
        assert_eq!(t.metadata.generation, Some(2));
    }
}

#[test]
fn lists_and_watch_events_of_tolerant_objects_decode_whole() {
    let list: kube::core::ObjectList<Tolerant<Rollout>> = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "9"},
        "items": [rollout("a", json!(1)), rollout("b", json!(4_294_967_296_i64))],
    }))
    .expect("the list decodes");
    assert!(list.items[0].object.is_ok() && list.items[1].object.is_err());
    let ev: kube::core::WatchEvent<Tolerant<Rollout>> =
        serde_json::from_value(json!({"type": "MODIFIED", "object": rollout("b", json!(1e300))})).expect("decodes");
    assert!(matches!(ev, kube::core::WatchEvent::Modified(t) if t.object.is_err()));
}

fn bad_set() -> Undecodables {
    Undecodables::new("Rollout", Gauge::default())
}

/// A good object, then the same object turned undecodable, then fixed: the cache holds it,
/// drops it, holds it again; the set of bad objects follows.
#[tokio::test]
async fn the_cache_skips_what_does_not_decode_and_keeps_the_rest() {
    use watcher::Event::*;
    let (store, writer) = reflector::store::<Rollout>();
    let bad = bad_set();
    let events = vec![
        Init,
        InitApply(decode(rollout("a", json!(1)))),
        InitApply(decode(rollout("b", json!(2_147_483_648_i64)))),
        InitApply(decode(rollout("c", json!(2)))),
        InitDone,
        Apply(decode(rollout("a", json!(-2_147_483_649_i64)))),
        Apply(decode(rollout("b", json!(5)))),
    ];
    let stream = futures::stream::iter(events.into_iter().map(Ok));
    let mut out = std::pin::pin!(decode_events(stream, store.clone(), bad.clone()).reflect(writer));
    let names = |s: &Store<Rollout>| {
        let mut n: Vec<String> = s
            .state()
            .iter()
            .map(|r| r.metadata.name.clone().unwrap_or_default())
            .collect();
        n.sort();
        n
    };
    // Through InitDone.
    for _ in 0..4 {
        out.next().await.expect("event").expect("ok");
    }
    assert_eq!(names(&store), ["a", "c"]);
    assert_eq!(bad.snapshot().iter().map(Bad::key).collect::<Vec<_>>(), ["ns/b"]);
    assert_eq!(bad.gauge.get(), 1);
    // `a` turns bad: deleted from the cache.
    assert!(matches!(out.next().await, Some(Ok(watcher::Event::Delete(_)))));
    assert_eq!(names(&store), ["c"]);
    // `b` is fixed: in the cache, no longer reported.
    assert!(matches!(out.next().await, Some(Ok(watcher::Event::Apply(_)))));
    assert_eq!(names(&store), ["b", "c"]);
    assert_eq!(bad.snapshot().iter().map(Bad::key).collect::<Vec<_>>(), ["ns/a"]);
    assert!(out.next().await.is_none());
}

#[tokio::test]
async fn a_relist_forgets_bad_objects_that_are_gone() {
    use watcher::Event::*;
    let (store, _writer) = reflector::store::<Rollout>();
    let bad = bad_set();
    let events = vec![
        Init,
        InitApply(decode(rollout("b", json!(2_147_483_648_i64)))),
        InitDone,
        Init,
        InitDone,
    ];
    let out: Vec<_> = decode_events(futures::stream::iter(events.into_iter().map(Ok)), store, bad.clone())
        .collect()
        .await;
    assert_eq!(out.len(), 4, "the bad object is not passed on");
    assert!(bad.snapshot().is_empty());
    assert_eq!(bad.gauge.get(), 0);
}

#[tokio::test]
async fn each_bad_object_is_reported_once_per_resource_version() {
    let bad = bad_set();
    let reported = Arc::new(Mutex::new(Vec::new()));
    let r = reported.clone();
    let task = tokio::spawn(report_each(bad.clone(), move |b: Bad| {
        let r = r.clone();
        async move { r.lock().unwrap().push((b.key(), b.resource_version)) }
    }));
    let meta = |rv: &str| ObjectMeta {
        name: Some("x".into()),
        namespace: Some("ns".into()),
        resource_version: Some(rv.into()),
        ..ObjectMeta::default()
    };
    let why = || Undecodable {
        error: "e".into(),
        spec: None,
        status: None,
    };
    bad.record(Bad::new(&meta("1"), why()));
    bad.record(Bad::new(&meta("1"), why()));
    bad.record(Bad::new(&meta("2"), why()));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while reported.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    task.abort();
    let got = reported.lock().unwrap().clone();
    assert_eq!(
        got.last(),
        Some(&("ns/x".to_string(), Some("2".to_string()))),
        "{got:?}"
    );
    assert!(got.len() <= 2, "{got:?}");
}
