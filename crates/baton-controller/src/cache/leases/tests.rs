use super::*;

fn lease(ns: &str, name: &str, rv: &str) -> CachedLease {
    let mut l = CachedLease::default();
    l.metadata.namespace = Some(ns.to_string());
    l.metadata.name = Some(name.to_string());
    l.metadata.resource_version = Some(rv.to_string());
    l
}

fn version(store: &LeaseStore, ns: &str, name: &str) -> Option<String> {
    store.get(ns, name).and_then(|l| l.metadata.resource_version.clone())
}

#[test]
fn applies_and_deletes_by_namespace_and_name() {
    let (store, mut writer) = store();
    writer.apply(&Event::Apply(Arc::new(lease("a", "x", "1"))));
    writer.apply(&Event::Apply(Arc::new(lease("b", "x", "2"))));
    writer.apply(&Event::Apply(Arc::new(lease("a", "x", "3"))));
    assert_eq!(version(&store, "a", "x").as_deref(), Some("3"));
    assert_eq!(version(&store, "b", "x").as_deref(), Some("2"));
    assert_eq!(store.len(), 2);
    writer.apply(&Event::Delete(Arc::new(lease("a", "x", "4"))));
    assert_eq!(version(&store, "a", "x"), None);
    assert_eq!(store.len(), 1);
    // A Lease without a name or namespace is not kept (the API server sends none such).
    writer.apply(&Event::Apply(Arc::new(CachedLease::default())));
    assert_eq!(store.len(), 1);
}

#[test]
fn a_relist_replaces_the_store_whole_once_complete() {
    let (store, mut writer) = store();
    writer.apply(&Event::Apply(Arc::new(lease("a", "gone", "1"))));
    writer.apply(&Event::Apply(Arc::new(lease("a", "kept", "1"))));
    writer.apply(&Event::Init);
    writer.apply(&Event::InitApply(Arc::new(lease("a", "kept", "5"))));
    writer.apply(&Event::InitApply(Arc::new(lease("a", "new", "6"))));
    // Until the list is complete, readers see the store as it was.
    assert_eq!(version(&store, "a", "gone").as_deref(), Some("1"));
    assert_eq!(version(&store, "a", "kept").as_deref(), Some("1"));
    assert_eq!(version(&store, "a", "new"), None);
    writer.apply(&Event::InitDone);
    assert_eq!(version(&store, "a", "gone"), None);
    assert_eq!(version(&store, "a", "kept").as_deref(), Some("5"));
    assert_eq!(version(&store, "a", "new").as_deref(), Some("6"));
    assert_eq!(store.len(), 2);
}

#[test]
fn the_watch_keeps_the_cached_lease_alone() {
    let json = r#"{"metadata":{"name":"s-l1","namespace":"a","resourceVersion":"7","uid":"u",
        "labels":{"baton.dev/listenerset":"s","other":"x"}},"spec":{"holderIdentity":"p"}}"#;
    let watched: WatchedLease = serde_json::from_str(json).unwrap();
    // What kube's watcher reads.
    assert_eq!(watched.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(watched.metadata.name.as_deref(), Some("s-l1"));
    let Event::Apply(kept) = taken_in(Event::Apply(watched)) else {
        panic!("not an Apply")
    };
    assert_eq!(kept.metadata.uid.as_deref(), Some("u"));
    assert_eq!(kept.labels.get("baton.dev/listenerset"), Some("s"));
    assert_eq!(kept.labels.get("other"), None);
    assert_eq!(kept.spec.holder_identity.as_deref(), Some("p"));
}
