//! The app's reading of a document and the log's samples.
use super::*;

fn entry(id: &str, token: i32, valid_until: Option<&str>) -> Entry {
    Entry {
        listener_set: "s".into(),
        id: id.into(),
        fencing_token: token,
        valid_until: valid_until.map(str::to_string),
    }
}

#[test]
fn a_document_is_wanted_by_its_valid_until_and_says_when_that_changes() {
    let doc = Doc {
        version: 3,
        listeners: vec![
            entry("old", 1, None),
            entry("bad", 1, Some("not a time")),
            entry("past", 2, Some("2026-01-01T00:00:00.000Z")),
            entry("soon", 3, Some("2026-01-01T00:00:10.000Z")),
            entry("later", 4, Some("2026-01-01T00:00:20.000Z")),
        ],
    };
    let listed = Listed::of(&doc);
    let now: jiff::Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
    let (wanted, next) = listed.wanted(true, now);
    let ids: Vec<(&str, i32)> = wanted.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    assert_eq!(ids, vec![("s/later", 4), ("s/old", 1), ("s/soon", 3)]);
    assert_eq!(next, Some("2026-01-01T00:00:10Z".parse().unwrap()));
    let (all, next) = listed.wanted(false, now);
    assert_eq!((all.len(), next), (5, None));
    let (at_ten, _) = listed.wanted(true, "2026-01-01T00:00:10Z".parse().unwrap());
    assert!(!at_ten.contains_key(&"s/soon".to_string()), "valid until, not through");
}

#[tokio::test]
async fn an_app_acknowledges_the_newest_version_whose_dropped_listeners_have_stopped() {
    let cfg = AppConfig {
        stop_delay: Duration::from_secs(3600),
        ..Default::default()
    };
    let (log, mut app) = (Arc::new(AppLog::default()), Running::default());
    let doc = |version, ids: &[&str]| {
        Listed::of(&Doc {
            version,
            listeners: ids.iter().map(|id| entry(id, 1, None)).collect(),
        })
    };
    let apply = |app: &mut Running, listed: &Listed| {
        app.apply(&cfg, &log, "a", listed);
        app.applied(listed)
    };
    assert_eq!(apply(&mut app, &doc(2, &["x", "y", "z"])), 2, "nothing stopping");
    assert_eq!(
        apply(&mut app, &doc(4, &["y", "z"])),
        2,
        "x stops: the version before it"
    );
    assert_eq!(
        apply(&mut app, &doc(7, &["z"])),
        2,
        "the oldest stop still under way decides"
    );
    app.stopping.remove("s/x");
    assert_eq!(app.applied(&doc(7, &["z"])), 4, "x stopped, y still stopping");
    app.stopping.remove("s/y");
    assert_eq!(app.applied(&doc(7, &["z"])), 7);
    app.running.insert("s/w".into(), 1);
    assert_eq!(
        app.applied(&doc(7, &["z"])),
        0,
        "a listener the version does not list runs"
    );
    app.stops.abort_all();
}

#[test]
fn a_sample_counts_a_listener_in_two_apps_until_one_stops() {
    let log = AppLog::default();
    log.start("a", "s/l1", 1);
    log.start("a", "s/l2", 1);
    log.sample();
    log.start("b", "s/l1", 2);
    assert!(log.any_doubled());
    log.sample();
    log.stop("a", "s/l1");
    assert!(!log.any_doubled());
    log.sample();
    let a = log.analyse();
    assert_eq!((a.samples, a.duplicate_samples), (3, 1));
    assert_eq!(a.duplicate_notes, vec![r#"s/l1 in ["a", "b"]"#.to_string()]);
    assert!(log.each_runs_once(&["s/l1".into(), "s/l2".into()], |_| true));
    assert!(!log.each_runs_once(&["s/l1".into()], |app| app == "a"));
}
