//! Lists: pagination with `limit`/`continue`, `resourceVersion` with `resourceVersionMatch`,
//! label and field selectors (valid and not).

use serde_json::{json, Value};

use crate::harness::{Pair, Req, Resp, SIDES};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";

fn cm(name: &str, tier: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"tier": tier, "set": "diff"}}, "data": {"n": name}})
}

/// The names of a list's items.
fn names(r: &Resp) -> Value {
    json!(r.body["items"]
        .as_array()
        .map(|a| a.iter().map(|i| i["metadata"]["name"].clone()).collect::<Vec<_>>())
        .unwrap_or_default())
}

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn lists_pages_and_selectors() {
    let p = Pair::start("lists_pages_and_selectors").await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db"), ("d", "cache"), ("e", "db")] {
        for side in SIDES {
            let r = p.send(side, Req::post(CMS, &cm(name, tier))).await;
            assert_eq!(r.code, 201, "{side}: {}", r.body);
        }
    }
    // Only the test's objects: the namespace also holds kube-root-ca.crt.
    let sel = "labelSelector=set%3Ddiff";
    p.same("list", Req::get(format!("{CMS}?{sel}"))).await;
    pages(&p, sel).await;
    versions(&p, sel).await;
    selectors(&p).await;
    p.finish().await;
}

async fn pages(p: &Pair, sel: &str) {
    let first = p.same("list.limit", Req::get(format!("{CMS}?{sel}&limit=2"))).await;
    let second = p
        .compare("list.continue", |side| {
            let token = first.get(side).str("/metadata/continue");
            Req::get(format!("{CMS}?{sel}&limit=2&continue={token}"))
        })
        .await;
    p.compare("list.continue-last-page", |side| {
        let token = second.get(side).str("/metadata/continue");
        Req::get(format!("{CMS}?{sel}&limit=2&continue={token}"))
    })
    .await;
    p.same(
        "list.continue-malformed",
        Req::get(format!("{CMS}?{sel}&limit=2&continue=not-a-token")),
    )
    .await;
    p.same("list.limit-zero", Req::get(format!("{CMS}?{sel}&limit=0")))
        .await;
    p.same("list.limit-negative", Req::get(format!("{CMS}?{sel}&limit=-1")))
        .await;
    p.same("list.limit-not-a-number", Req::get(format!("{CMS}?{sel}&limit=two")))
        .await;
    p.compare_values(
        "list.pages-cover-all",
        first.map(|side, f| json!([names(f), names(second.get(side))])),
    );
}

async fn versions(p: &Pair, sel: &str) {
    let before = p.same("list", Req::get(format!("{CMS}?{sel}"))).await;
    for side in SIDES {
        let r = p.send(side, Req::post(CMS, &cm("f", "web"))).await;
        assert_eq!(r.code, 201, "{side}: {}", r.body);
    }
    p.compare("list.resource-version-not-older-than", |side| {
        let rv = before.get(side).str("/metadata/resourceVersion");
        Req::get(format!(
            "{CMS}?{sel}&resourceVersion={rv}&resourceVersionMatch=NotOlderThan"
        ))
    })
    .await;
    let exact = p
        .compare("list.resource-version-exact", |side| {
            let rv = before.get(side).str("/metadata/resourceVersion");
            Req::get(format!("{CMS}?{sel}&resourceVersion={rv}&resourceVersionMatch=Exact"))
        })
        .await;
    p.compare_values("list.resource-version-exact-items", exact.map(|_, r| names(r)));
    p.same(
        "list.resource-version-zero",
        Req::get(format!("{CMS}?{sel}&resourceVersion=0")),
    )
    .await;
    p.same(
        "list.resource-version-match-without-version",
        Req::get(format!("{CMS}?{sel}&resourceVersionMatch=NotOlderThan")),
    )
    .await;
    p.same(
        "list.resource-version-match-unknown",
        Req::get(format!("{CMS}?{sel}&resourceVersion=1&resourceVersionMatch=Sometime")),
    )
    .await;
    p.same(
        "list.resource-version-not-a-number",
        Req::get(format!("{CMS}?{sel}&resourceVersion=abc")),
    )
    .await;
    p.same(
        "list.resource-version-too-large",
        Req::get(format!(
            "{CMS}?{sel}&resourceVersion=999999999999&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
        )),
    )
    .await;
}

async fn selectors(p: &Pair) {
    let cases = [
        ("list.label-selector.equals", "labelSelector=tier%3Dweb"),
        ("list.label-selector.in", "labelSelector=tier%20in%20(db,cache)"),
        (
            "list.label-selector.notin",
            "labelSelector=set%3Ddiff,tier%20notin%20(db)",
        ),
        ("list.label-selector.exists", "labelSelector=tier"),
        ("list.label-selector.not-exists", "labelSelector=!tier"),
        ("list.label-selector.not-equals", "labelSelector=set%3Ddiff,tier!%3Dweb"),
        ("list.label-selector.invalid", "labelSelector=tier%20%3D%3D%3D%20x"),
        ("list.label-selector.invalid-value", "labelSelector=tier%3D-bad-"),
        ("list.label-selector.bad-operator", "labelSelector=tier%20near%20(x)"),
        ("list.field-selector.name", "fieldSelector=metadata.name%3Dc"),
        (
            "list.field-selector.not-name",
            "fieldSelector=metadata.name!%3Dc&labelSelector=set%3Ddiff",
        ),
        (
            "list.field-selector.namespace",
            "fieldSelector=metadata.namespace%3D{ns}&labelSelector=set%3Ddiff",
        ),
        ("list.field-selector.unsupported-field", "fieldSelector=data.n%3Dc"),
        ("list.field-selector.invalid", "fieldSelector=metadata.name"),
        (
            "list.field-selector.double-equals",
            "fieldSelector=metadata.name%3D%3Dc",
        ),
        (
            "list.selectors-combined",
            "labelSelector=tier%3Ddb&fieldSelector=metadata.name%3De",
        ),
    ];
    for (kind, query) in cases {
        p.same(kind, Req::get(format!("{CMS}?{query}"))).await;
    }
    let pods = "/api/v1/namespaces/{ns}/pods";
    p.same(
        "list.field-selector.pod-phase",
        Req::get(format!("{pods}?fieldSelector=status.phase%3DRunning")),
    )
    .await;
    p.same(
        "list.field-selector.pod-node",
        Req::get(format!("{pods}?fieldSelector=spec.nodeName%3Dnowhere")),
    )
    .await;
    p.same(
        "list.field-selector.pod-unsupported",
        Req::get(format!("{pods}?fieldSelector=spec.hostname%3Dx")),
    )
    .await;
}
