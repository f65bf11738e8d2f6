//! Server-side Tables (built-in columns, a CRD's printer columns), metadata-only answers, and
//! real kubectl's own requests: get (table and JSON), apply (client- and server-side), delete.

use serde_json::{json, Value};

use crate::harness::{Both, Pair, Req, SIDES};
use crate::kubectl::Kubectl;
use crate::setup::{install_baton_crds, kubectls};
use crate::subresources::{rollout, ROLLOUTS};

const CMS: &str = "/api/v1/namespaces/{ns}/configmaps";
const PODS: &str = "/api/v1/namespaces/{ns}/pods";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

#[tokio::test]
#[ignore = "needs the real control plane: make test-real runs it"]
async fn tables_and_kubectl() {
    let p = Pair::start("tables_and_kubectl").await;
    install_baton_crds(&p).await;
    p.await_default_service_account().await;
    let cm = json!({"metadata": {"name": "a", "labels": {"t": "x"}}, "data": {"one": "1", "two": "2"}});
    // A pod no scheduler takes: it stays Pending, the same on both.
    let pod = json!({"metadata": {"name": "waiting", "labels": {"t": "x"}}, "spec": {"schedulerName": "differential-none",
        "containers": [{"name": "c", "image": "registry.example/app:1"}]}});
    for (path, body) in [(CMS, &cm), (PODS, &pod), (ROLLOUTS, &rollout("web", 2))] {
        for side in SIDES {
            let r = p.send(side, Req::post(path, body)).await;
            assert_eq!(r.code, 201, "{side}: POST {path}: {}", r.body);
        }
    }
    let sel = "labelSelector=t%3Dx";
    let table = |path: String| Req::get(path).header("Accept", TABLE);
    p.same("table.list", table(format!("{CMS}?{sel}"))).await;
    p.same("table.get", table(format!("{CMS}/a"))).await;
    p.same(
        "table.include-object",
        table(format!("{CMS}?{sel}&includeObject=Object")),
    )
    .await;
    p.same("table.include-none", table(format!("{CMS}?{sel}&includeObject=None")))
        .await;
    p.same("table.pods", table(format!("{PODS}?{sel}"))).await;
    p.same("table.crd-printer-columns", table(ROLLOUTS.to_string())).await;
    p.same("table.crd-get", table(format!("{ROLLOUTS}/web"))).await;
    p.same(
        "table.or-json",
        Req::get(format!("{CMS}/a")).header("Accept", &format!("{TABLE}, application/json")),
    )
    .await;
    p.same(
        "metadata.list",
        Req::get(format!("{CMS}?{sel}")).header(
            "Accept",
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        ),
    )
    .await;
    p.same(
        "metadata.get",
        Req::get(format!("{CMS}/a")).header("Accept", "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"),
    )
    .await;
    p.same(
        "accept.not-acceptable",
        Req::get(format!("{CMS}/a")).header("Accept", "text/html"),
    )
    .await;
    p.same("get.pod", Req::get(format!("{PODS}/waiting"))).await;
    kubectl(&p).await;
    p.finish().await;
}

/// kubectl's output as one value: exit code, stdout (a table as rows of cells, JSON parsed),
/// stderr.
fn output(run: &crate::kubectl::Run, json_out: bool) -> Value {
    let stdout = if json_out {
        serde_json::from_str(&run.stdout).unwrap_or_else(|_| json!(run.stdout))
    } else {
        let rows: Vec<Vec<String>> = crate::kubectl::table(&run.stdout);
        json!({"cells": rows})
    };
    json!({"code": run.code, "stdout": stdout, "stderr": run.stderr.lines().collect::<Vec<_>>()})
}

async fn run(p: &Pair, k: &Both<Kubectl>, kind: &str, args: &[&str], json_out: bool) {
    let mut all = vec!["-n", p.ns.as_str()];
    all.extend_from_slice(args);
    let sim = k.sim.run(&all).await;
    let real = k.real.run(&all).await;
    p.compare_values(
        kind,
        Both {
            sim: output(&sim, json_out),
            real: output(&real, json_out),
        },
    );
}

async fn kubectl(p: &Pair) {
    let k = kubectls(p);
    run(p, &k, "kubectl.get-table", &["get", "configmaps", "-l", "t=x"], false).await;
    run(p, &k, "kubectl.get-wide", &["get", "pods", "-o", "wide"], false).await;
    run(
        p,
        &k,
        "kubectl.get-json",
        &["get", "configmap", "a", "-o", "json"],
        true,
    )
    .await;
    run(p, &k, "kubectl.get-crd", &["get", "rollouts"], false).await;
    run(p, &k, "kubectl.get-crd-wide", &["get", "rol", "-o", "wide"], false).await;
    run(p, &k, "kubectl.get-not-found", &["get", "configmap", "absent"], false).await;
    run(p, &k, "kubectl.get-unknown-kind", &["get", "widgetz"], false).await;
    let manifest =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}});
    let files = k.map(|_, kc| kc.file("applied.json", &manifest));
    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "w"}});
    let changed_files = k.map(|_, kc| kc.file("changed.json", &changed));
    for (kind, f, extra) in [
        ("kubectl.apply-create", &files, None),
        ("kubectl.apply-unchanged", &files, None),
        ("kubectl.apply-configured", &changed_files, None),
        ("kubectl.apply-server-side", &files, Some("--server-side")),
    ] {
        let mut out = Vec::new();
        for (side, kc) in [
            (crate::harness::Side::Sim, &k.sim),
            (crate::harness::Side::Real, &k.real),
        ] {
            let mut args = vec!["-n", p.ns.as_str(), "apply", "-f", f.get(side).as_str()];
            args.extend(extra);
            out.push(output(&kc.run(&args).await, false));
        }
        let (real, sim) = (out.pop().expect("real"), out.pop().expect("sim"));
        p.compare_values(kind, Both { sim, real });
    }
    run(
        p,
        &k,
        "kubectl.get-applied-json",
        &["get", "configmap", "applied", "-o", "json"],
        true,
    )
    .await;
    run(p, &k, "kubectl.delete", &["delete", "configmap", "applied"], false).await;
    run(
        p,
        &k,
        "kubectl.auth-can-i",
        &["auth", "can-i", "create", "rollouts.baton.dev"],
        false,
    )
    .await;
}
