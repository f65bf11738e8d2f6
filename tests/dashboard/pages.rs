//! The pages, the assets and the live stream.
use serde_json::json;

use crate::harness::{self, count, pausing};
use crate::support::*;

const NAME: &str = "web";

fn listenerset() -> serde_json::Value {
    json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "ListenerSet",
        "metadata": {"name": "sxt", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": NAME}}, "listeners": [{"id": "a"}, {"id": "b"}]}
    })
}

/// Every page and asset answers 200 with the security headers; the list shows the Rollout and
/// the ListenerSet; the Rollout page has one tile per instance; unknown objects are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_asset() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let sets: kube::Api<baton::api::listenerset::ListenerSet> = kube::Api::namespaced(env.client.clone(), NS);
    let set = serde_json::from_value(listenerset()).expect("a ListenerSet");
    sets.create(&Default::default(), &set)
        .await
        .expect("creating the ListenerSet");
    let d = harness::start(&env.sim, &[]).await;

    let list = d.get("/").await;
    assert_eq!(list.code, 200, "{}", list.text());
    let csp = list.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(list.header("x-frame-options"), Some("DENY"));
    let html = list.text();
    assert!(
        html.contains(r#"data-name="web" data-namespace="default" data-phase="Healthy""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/listenersets/default/sxt">sxt</a>"#),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script: {html}");

    let page = d.get("/rollouts/default/web").await;
    assert_eq!(page.code, 200);
    let html = page.text();
    assert_eq!(count(&html, r#"<li class="tile"#), 3, "{html}");
    assert_eq!(
        count(&html, r#"data-version="v1" data-revision="1" data-ready="true""#),
        3,
        "{html}"
    );
    assert!(html.contains(r#"data-live="/live/rollouts/default/web""#));
    assert!(html.contains(r#"id="revisions""#) && html.contains("Events"), "{html}");

    let set_page = d.get("/listenersets/default/sxt").await;
    assert_eq!(set_page.code, 200);
    assert!(set_page.text().contains(r#"data-listener="a""#), "{}", set_page.text());

    for (path, kind) in [("/static/app.js", "text/javascript"), ("/static/app.css", "text/css")] {
        let r = d.get(path).await;
        assert_eq!(r.code, 200, "{path}");
        assert!(
            r.header("content-type").is_some_and(|c| c.starts_with(kind)),
            "{path}: {:?}",
            r.headers
        );
        assert!(r.header("content-security-policy").is_some());
    }
    assert_eq!(d.get("/healthz").await.code, 200);
    for missing in ["/rollouts/default/nope", "/listenersets/default/nope", "/nope"] {
        assert_eq!(d.get(missing).await.code, 404, "{missing}");
    }
    // -n default: another namespace is out of scope.
    let other = d.get("/rollouts/elsewhere/web").await;
    assert_eq!(other.code, 404);
    assert!(
        other.text().contains("outside the dashboard's scope"),
        "{}",
        other.text()
    );
}

/// The live stream sends the Rollout's fragment at once, then again as the rollout moves: the
/// instance grid turns from v1 to v2 batch by batch without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_follows_a_rollout() {
    let env = Env::start().await;
    let _op = env.start_operator().await;
    env.apply(&pausing(NAME, 3, "v1")).await;
    env.wait_healthy(NAME, "v1", 3).await;
    let d = harness::start(&env.sim, &[]).await;
    let mut live = d.live("/live/rollouts/default/web").await;
    let first = live.next(LONG).await.expect("a first fragment");
    assert_eq!(
        count(&first, r#"data-version="v1" data-revision="1" data-ready="true""#),
        3,
        "{first}"
    );

    env.apply(&pausing(NAME, 3, "v2")).await;
    let paused = live
        .until("batch 1 of v2 paused", |f| {
            f.contains(r#"data-phase="Paused""#)
                && count(f, r#"data-version="v2" data-revision="2" data-ready="true""#) == 1
        })
        .await;
    assert_eq!(count(&paused, r#"data-version="v1" data-revision="1""#), 2, "{paused}");

    let mut list = d.live("/live/").await;
    let row = list.next(LONG).await.expect("the list's first fragment");
    assert!(row.contains(r#"data-phase="Paused""#), "{row}");
    env.merge(
        NAME,
        json!({"metadata": {"annotations": {"baton.dev/promote-full": "now"}}}),
    )
    .await;
    live.until("every instance on v2, Healthy", |f| {
        f.contains(r#"data-phase="Healthy""#)
            && count(f, r#"data-version="v2" data-revision="2" data-ready="true""#) == 3
    })
    .await;
    list.until("the list says Healthy", |f| f.contains(r#"data-phase="Healthy""#))
        .await;
}

/// Whatever the cluster holds is shown as text: a change cause and an Event note full of markup
/// come out escaped, on the page and in the live stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_annotations_and_events_are_escaped() {
    const HOSTILE: &str = r#"<script>alert(1)</script><img src=x onerror="alert(2)">"#;
    const ESCAPED: &str = r#"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;"#;
    let env = Env::start().await;
    let _op = env.start_operator().await;
    let mut m = pausing(NAME, 2, "v1");
    m["metadata"]["annotations"] = json!({"kubernetes.io/change-cause": HOSTILE});
    env.apply(&m).await;
    env.wait_healthy(NAME, "v1", 2).await;
    let k = kubectl::Kubectl::new(&env.sim);
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "hostile", "namespace": NS},
        "involvedObject": {"apiVersion": "baton.dev/v1alpha1", "kind": "Rollout", "name": NAME, "namespace": NS},
        "reason": "Hostile", "message": HOSTILE, "type": "Warning"
    });
    k.ok(&["create", "-f", &k.file("event.json", &event)]).await;
    let d = harness::start(&env.sim, &[]).await;
    let mut live = d.live("/live/rollouts/default/web").await;
    let fragment = live
        .until("the hostile Event", |f| f.contains(r#"data-reason="Hostile""#))
        .await;
    let page = d.get("/rollouts/default/web").await.text();
    for html in [&fragment, &page] {
        assert!(!html.contains("<script>alert") && !html.contains("<img"), "{html}");
        // The change cause (revision history) and the Event's note.
        assert_eq!(count(html, ESCAPED), 2, "{html}");
    }
}
