use super::*;

#[test]
fn valid_until_is_utc_with_milliseconds_truncated() {
    let t: jiff::Timestamp = "2025-01-10T10:00:12.345999Z".parse().unwrap();
    assert_eq!(rfc3339_millis(t), "2025-01-10T10:00:12.345Z");
    let t: jiff::Timestamp = "2025-01-10T10:00:12Z".parse().unwrap();
    assert_eq!(rfc3339_millis(t), "2025-01-10T10:00:12.000Z");
}

/// A stop of an app that acknowledges is held past the ack timeout, until the ack timeout
/// after its last `validUntil` — or until its ack, whichever comes first.
#[tokio::test]
async fn an_app_that_acknowledges_is_waited_for_past_the_ack_timeout() {
    let (acked_tx, acked) = watch::channel(0u64);
    let (_written_tx, written) = watch::channel(7u64);
    let start = Instant::now();
    let stopped_by = start + Duration::from_millis(400);
    let held = tokio::spawn(applied(acked, written, 7, Duration::from_millis(50), Some(stopped_by)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !held.is_finished(),
        "released at the ack timeout, before validUntil + ack timeout"
    );
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .unwrap()
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(400));

    let (acked_tx2, acked) = watch::channel(0u64);
    let (_written_tx, written) = watch::channel(7u64);
    let far = Instant::now() + Duration::from_secs(3600);
    let held = tokio::spawn(applied(acked, written, 7, Duration::from_millis(50), Some(far)));
    acked_tx2.send_replace(7);
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .unwrap()
        .unwrap();
    drop(acked_tx);
}

/// Listeners with one deadline get one text for it; another deadline gets its own, later
/// by as much; the deadlines are kept in `told`.
#[test]
fn each_listener_is_published_with_its_own_deadline() {
    let shared = Shared {
        doc: watch::channel(Arc::new(Published {
            version: 0,
            bytes: Bytes::new(),
        }))
        .0,
        pod: "p".into(),
        namespace: "ns".into(),
        acked: watch::channel(0).0,
        written: watch::channel(0).0,
    };
    let key = |l: &str| ("s".to_string(), l.to_string());
    let entry = |l: &str| ListenerEntry {
        listener_set: "s".into(),
        id: l.into(),
        config: None,
        fencing_token: 1,
        valid_until: None,
    };
    let running: BTreeMap<_, _> = ["a", "b", "c", "d"].map(|l| (key(l), Held::new(&entry(l)))).into();
    let soon = Instant::now() + Duration::from_secs(10);
    let later = soon + Duration::from_secs(5);
    let valid: ValidUntil = [(key("a"), soon), (key("b"), soon), (key("c"), later), (key("d"), soon)].into();
    let mut told = ValidUntil::new();
    let version = publish(&shared, &running, &valid, &mut told);
    let bytes = shared.doc.borrow().bytes.clone();
    // The document's earliest deadline is `validUntil`, as docs/listeners.md has it.
    let raw: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(raw.get("validUntil").is_some_and(|v| v.is_string()), "{raw}");
    let doc: Document = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc.version, version);
    assert_eq!((doc.pod.as_str(), doc.namespace.as_str()), ("p", "ns"));
    let at = |i: usize| -> jiff::Timestamp { doc.listeners[i].valid_until.as_deref().unwrap().parse().unwrap() };
    let ids: Vec<&str> = doc.listeners.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert_eq!(at(0), at(1));
    assert_eq!(at(0), at(3));
    assert_eq!(at(2).duration_since(at(0)), jiff::SignedDuration::from_secs(5));
    assert_eq!(doc.valid_until, doc.listeners[0].valid_until);
    assert_eq!(told, valid);
}

/// What the sidecar renders from each listener's rendering kept since its start is byte for byte
/// what [`Document`] renders: the document has one format, with or without the optional fields,
/// whatever the strings hold.
#[test]
fn the_kept_rendering_is_the_documents() {
    let entries = [
        ListenerEntry {
            listener_set: "s".into(),
            id: "a\"b".into(),
            config: Some("{\"k\": 1,\n \"\u{7}\": \"é\"}".into()),
            fencing_token: 3,
            valid_until: Some("2025-01-10T10:00:12.345Z".into()),
        },
        ListenerEntry {
            listener_set: "t".into(),
            id: "c".into(),
            config: None,
            fencing_token: -1,
            valid_until: None,
        },
    ];
    for (listeners, valid_until) in [(&entries[..], Some("2025-01-10T10:00:12.345Z")), (&[][..], None)] {
        let doc = Document {
            version: 9,
            pod: "p".into(),
            namespace: "ns".into(),
            listeners: listeners.to_vec(),
            valid_until: valid_until.map(str::to_string),
        };
        assert_same_rendering(&doc);
    }
}

fn assert_same_rendering(doc: &Document) {
    let mut expected = serde_json::to_vec_pretty(doc).unwrap();
    expected.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&render::of(doc)),
        String::from_utf8_lossy(&expected)
    );
}

proptest::proptest! {
    #[test]
    fn any_document_renders_as_serde_renders_it(
        entries in proptest::collection::vec(
            (".{0,6}", ".{0,6}", proptest::option::of(".{0,12}"), proptest::num::i32::ANY, proptest::option::of(".{0,4}")),
            0..4,
        ),
        pod in ".{0,5}",
        valid_until in proptest::option::of(".{0,4}"),
        version in proptest::num::u64::ANY,
    ) {
        let doc = Document {
            version,
            pod,
            namespace: "ns\t".into(),
            listeners: entries
                .into_iter()
                .map(|(listener_set, id, config, fencing_token, valid_until)| ListenerEntry {
                    listener_set,
                    id,
                    config,
                    fencing_token,
                    valid_until,
                })
                .collect(),
            valid_until,
        };
        assert_same_rendering(&doc);
    }
}

/// A document of an older sidecar, with its earliest deadline as `valid_until`, still reads.
#[test]
fn an_older_sidecars_document_reads() {
    let old = r#"{"version": 1, "pod": "p", "namespace": "ns", "listeners": [],
                  "valid_until": "2025-01-10T10:00:12.345Z"}"#;
    let doc: Document = serde_json::from_str(old).unwrap();
    assert_eq!(doc.valid_until.as_deref(), Some("2025-01-10T10:00:12.345Z"));
}

#[test]
fn atomic_write_replaces_the_file() {
    let dir = std::env::temp_dir().join(format!("baton-sidecar-{}", std::process::id()));
    let path = dir.join("listeners.json");
    write_atomically(&path, b"one").unwrap();
    write_atomically(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_join_finds_each_keys_value_in_one_walk() {
    let keys = ["a", "c", "d", "f"];
    let pairs: BTreeMap<&str, u32> = [("b", 2), ("c", 3), ("f", 6), ("g", 7)].into();
    assert_eq!(
        merge_join(keys.iter(), pairs.iter()),
        vec![None, Some(3), None, Some(6)]
    );
    assert_eq!(
        merge_join(keys.iter(), BTreeMap::<&str, u32>::new().iter()),
        vec![None; 4]
    );
}
