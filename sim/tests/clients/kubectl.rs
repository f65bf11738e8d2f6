//! Real kubectl against the simulator: each test asserts what kubectl prints.
use crate::common;

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::kubectl::{Kubectl, Run};
use common::{crd, sim, wait_for, widget_crd};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

fn widget(name: &str, color: &str) -> serde_json::Value {
    json!({"apiVersion": "test.baton.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"color": color, "replicas": 2}})
}

async fn with_crd(k: &Kubectl) {
    let f = k.file("crd.json", &widget_crd());
    let out = k.ok(&["apply", "-f", &f]).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.test.baton.dev created"),
        "{out}"
    );
}

/// `kubectl patch widget <name> --subresource status --type merge -p <patch>`.
async fn patch_status(k: &Kubectl, name: &str, patch: &str) -> String {
    k.ok(&[
        "patch",
        "widget",
        name,
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        patch,
    ])
    .await
}

/// kubectl against `sim`, after it served the Widget CRD and applied widget `w1` (red).
async fn with_red_w1(sim: &baton_sim::Sim) -> Kubectl {
    let k = Kubectl::new(sim);
    with_crd(&k).await;
    let f = k.file("w.json", &widget("w1", "red"));
    k.ok(&["apply", "-f", &f]).await;
    k
}

/// The next line a child wrote (30 s at the most; "" at its end).
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>, what: &str) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what}"))
        .expect("read")
        .unwrap_or_default()
}

#[tokio::test]
async fn apply_client_side_and_server_side_then_get_shows_printer_columns() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    with_crd(&k).await;
    let f = k.file("w.json", &widget("w1", "red"));
    assert!(k
        .ok(&["apply", "-f", &f])
        .await
        .contains("widget.test.baton.dev/w1 created"));
    assert!(k
        .ok(&["apply", "-f", &f])
        .await
        .contains("widget.test.baton.dev/w1 unchanged"));
    let f2 = k.file("w2.json", &widget("w1", "blue"));
    assert!(k
        .ok(&["apply", "-f", &f2])
        .await
        .contains("widget.test.baton.dev/w1 configured"));
    let f3 = k.file("w3.json", &widget("w2", "green"));
    assert!(k
        .ok(&["apply", "--server-side", "-f", &f3])
        .await
        .contains("widget.test.baton.dev/w2 serverside-applied"));

    let table = k.ok(&["get", "widgets"]).await;
    let header = table.lines().next().unwrap_or("");
    for col in ["NAME", "SIZE", "COLOR", "PHASE", "AGE"] {
        assert!(header.contains(col), "missing column {col}: {table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("w1") && l.contains("blue") && l.contains('2')),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("w2") && l.contains("green")),
        "{table}"
    );
    // Short name and category from the CRD.
    assert!(k.ok(&["get", "wdg", "w1", "-o", "jsonpath={.spec.color}"]).await == "blue");
}

#[tokio::test]
async fn get_watch_streams_changes() {
    let sim = sim().await;
    let k = with_red_w1(&sim).await;
    let mut child = k
        .cmd(&["get", "widgets", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = next_line(&mut lines, "header in time").await;
    assert!(first.contains("NAME") && first.contains("COLOR"), "{first}");
    let row = next_line(&mut lines, "row in time").await;
    assert!(row.contains("w1") && row.contains("red"), "{row}");
    k.merge_patch("widget", "w1", r#"{"spec":{"color":"green"}}"#).await;
    let changed = next_line(&mut lines, "change streamed in time").await;
    assert!(changed.contains("w1") && changed.contains("green"), "{changed}");
    let _ = child.kill().await;
}

#[tokio::test]
async fn wait_for_condition_returns_when_set_and_times_out_otherwise() {
    let sim = sim().await;
    let k = with_red_w1(&sim).await;
    let idle = sim.core.open_watches.load(Ordering::SeqCst);

    let Run { code, stderr: err, .. } = k
        .run(&["wait", "--for=condition=Ready", "widget/w1", "--timeout=2s"])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("timed out"), "{err}");

    // The timed-out kubectl has exited, but the server may not have seen its watch close yet:
    // counting from then, its close and the next kubectl's open could cancel out.
    wait_for(
        "the timed-out kubectl's watch to close",
        Duration::from_secs(30),
        || {
            let n = sim.core.open_watches.load(Ordering::SeqCst);
            async move { (n <= idle).then_some(()) }
        },
    )
    .await;
    let before = sim.core.open_watches.load(Ordering::SeqCst);
    let waiter = k
        .cmd(&["wait", "--for=condition=Ready", "widget/w1", "--timeout=30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wait");
    // Set the condition once kubectl is watching, so the watch path is what delivers it.
    wait_for("kubectl wait to open its watch", Duration::from_secs(30), || {
        let n = sim.core.open_watches.load(Ordering::SeqCst);
        async move { (n > before).then_some(()) }
    })
    .await;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Test", "message": "set by test", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}).to_string();
    patch_status(&k, "w1", &status).await;
    let out = tokio::time::timeout(Duration::from_secs(40), waiter.wait_with_output())
        .await
        .expect("wait returned")
        .expect("wait output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("widget.test.baton.dev/w1 condition met"));
}

#[tokio::test]
async fn patch_merge_json_status_and_scale() {
    let sim = sim().await;
    let k = with_red_w1(&sim).await;
    assert!(k
        .merge_patch("widget", "w1", r#"{"spec":{"color":"blue"}}"#)
        .await
        .contains("patched"));
    assert!(k
        .ok(&[
            "patch",
            "widget",
            "w1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/spec/note","value":"hi"}]"#
        ])
        .await
        .contains("patched"));
    patch_status(&k, "w1", r#"{"status":{"phase":"Shiny","replicas":2}}"#).await;
    let got = k
        .ok(&[
            "get",
            "widget",
            "w1",
            "-o",
            "jsonpath={.spec.color}/{.spec.note}/{.status.phase}",
        ])
        .await;
    assert_eq!(got, "blue/hi/Shiny");
    // Strategic merge (no --type) is refused for custom resources, as by kube-apiserver.
    let Run { code, stderr: err, .. } = k
        .run(&["patch", "widget", "w1", "-p", r#"{"spec":{"color":"red"}}"#])
        .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("application/strategic-merge-patch+json is not supported"),
        "{err}"
    );

    assert!(k
        .ok(&["scale", "widget", "w1", "--replicas=5"])
        .await
        .contains("scaled"));
    assert_eq!(
        k.ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.replicas}"]).await,
        "5"
    );
    // A bad value is refused with the server's message.
    let Run { code, stderr: err, .. } = k
        .run(&[
            "patch",
            "widget",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"color":"purple"}}"#,
        ])
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("Unsupported value: \"purple\""), "{err}");
}

#[tokio::test]
async fn delete_blocks_while_a_finalizer_is_present() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    with_crd(&k).await;
    let mut w = widget("held", "red");
    w["metadata"]["finalizers"] = json!(["test.baton.dev/hold"]);
    let f = k.file("w.json", &w);
    k.ok(&["apply", "-f", &f]).await;
    let mut deleter = k
        .cmd(&["delete", "widget", "held", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn delete");
    let ts = wait_for("deletionTimestamp to be set", Duration::from_secs(30), || {
        let k = &k;
        async move {
            let Run { stdout: out, .. } = k
                .run(&["get", "widget", "held", "-o", "jsonpath={.metadata.deletionTimestamp}"])
                .await;
            (!out.is_empty()).then_some(out)
        }
    })
    .await;
    assert!(!ts.is_empty());
    assert!(
        deleter.try_wait().expect("poll").is_none(),
        "kubectl delete must still be waiting while the finalizer holds the object"
    );
    k.merge_patch("widget", "held", r#"{"metadata":{"finalizers":null}}"#)
        .await;
    let out = tokio::time::timeout(Duration::from_secs(40), deleter.wait_with_output())
        .await
        .expect("delete returned")
        .expect("output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("widget.test.baton.dev \"held\" deleted"));
    let Run { code, stderr: err, .. } = k.run(&["get", "widget", "held"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("NotFound") && err.contains("\"held\" not found"), "{err}");
}

#[tokio::test]
async fn get_pods_shows_kubelet_progress() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:v1"}]}});
    let f = k.file("pod.json", &pod);
    assert!(k.ok(&["apply", "-f", &f]).await.contains("pod/web created"));
    let line = wait_for(
        "kubectl to show the pod Running and ready",
        Duration::from_secs(30),
        || {
            let k = &k;
            async move {
                let out = k.ok(&["get", "pods"]).await;
                out.lines()
                    .find(|l| l.starts_with("web") && l.contains("1/1") && l.contains("Running"))
                    .map(str::to_string)
            }
        },
    )
    .await;
    let out = k.ok(&["get", "pods"]).await;
    let header = out.lines().next().unwrap_or("");
    for col in ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(line.contains(" 0 "), "restarts column: {line}");
    let crash = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {"containers": [{"name": "app", "image": "web:crash"}]}});
    let f = k.file("crash.json", &crash);
    k.ok(&["apply", "-f", &f]).await;
    wait_for(
        "the crash-looping pod to show CrashLoopBackOff",
        Duration::from_secs(30),
        || {
            let k = &k;
            async move {
                k.ok(&["get", "pod", "bad"])
                    .await
                    .contains("CrashLoopBackOff")
                    .then_some(())
            }
        },
    )
    .await;
    // Label selectors pass through.
    let sel = k.ok(&["get", "pods", "-l", "app=web", "-o", "name"]).await;
    assert_eq!(sel.trim(), "pod/web");
}

/// A `string` printer column renders a float the way client-go's JSONPath prints it (Go's
/// `fmt.Fprint`, exponent form from 1e6): the column kube-apiserver computes equals what the
/// real kubectl's own JSONPath printer shows for the same field.
#[tokio::test]
async fn a_string_column_prints_a_float_as_kubectl_jsonpath_does() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let crd = crd(
        "test.baton.dev",
        "Gauge",
        json!({
            "additionalPrinterColumns": [{"name": "Reading", "type": "string", "jsonPath": ".spec.reading"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"reading": {"type": "number"}}}
            }}}
        }),
    );
    k.ok(&["apply", "-f", &k.file("crd.json", &crd)]).await;
    for (name, reading) in [("big", 1500000.5), ("small", 999999.5), ("tiny", 0.00001)] {
        let gauge = json!({"apiVersion": "test.baton.dev/v1", "kind": "Gauge",
            "metadata": {"name": name}, "spec": {"reading": reading}});
        k.ok(&["apply", "-f", &k.file(&format!("{name}.json"), &gauge)]).await;
    }
    let table = k.ok(&["get", "gauges"]).await;
    for (name, expected) in [("big", "1.5000005e+06"), ("small", "999999.5"), ("tiny", "1e-05")] {
        let client_side = k.ok(&["get", "gauge", name, "-o", "jsonpath={.spec.reading}"]).await;
        assert_eq!(client_side, expected, "kubectl's JSONPath for {name}");
        assert_eq!(
            common::kubectl::cell(&table, name, "READING").as_deref(),
            Some(expected),
            "column of {name}: {table}"
        );
    }
}

/// `kubectl get jobs` shows the Job printer's columns (NAME, STATUS, COMPLETIONS, DURATION, AGE;
/// CONTAINERS, IMAGES, SELECTOR with `-o wide`), as kube-apiserver serves them: a Job that
/// completes reads `Complete 2/2`, one whose pod fails past its backoff limit `Failed 0/1`.
#[tokio::test]
async fn get_jobs_shows_status_completions_and_duration() {
    let sim = sim().await;
    let k = Kubectl::new(&sim);
    let job = |name: &str, image: &str, completions: i64| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": completions, "backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}}})
    };
    let f = k.file("ok.json", &job("migrate", "migrate:v2", 2));
    assert!(k.ok(&["apply", "-f", &f]).await.contains("job.batch/migrate created"));
    let f = k.file("bad.json", &job("broken", "tool-fail:1", 1));
    k.ok(&["apply", "-f", &f]).await;
    let row = |out: &str, name: &str| out.lines().find(|l| l.starts_with(name)).map(str::to_string);
    let out = wait_for("kubectl to show both Jobs finished", Duration::from_secs(60), || {
        let k = &k;
        async move {
            let out = k.ok(&["get", "jobs"]).await;
            let done = row(&out, "migrate").is_some_and(|l| l.contains("Complete"))
                && row(&out, "broken").is_some_and(|l| l.contains("Failed"));
            done.then_some(out)
        }
    })
    .await;
    let words = |l: Option<String>| {
        l.unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let header = words(out.lines().next().map(str::to_string));
    assert_eq!(header, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], "{out}");
    let migrate = words(row(&out, "migrate"));
    assert_eq!(&migrate[..3], ["migrate", "Complete", "2/2"], "{out}");
    assert!(
        migrate[3].ends_with('s') || migrate[3].ends_with('m'),
        "a duration: {out}"
    );
    assert_eq!(&words(row(&out, "broken"))[..3], ["broken", "Failed", "0/1"], "{out}");
    let wide = k.ok(&["get", "job", "migrate", "-o", "wide"]).await;
    let header = words(wide.lines().next().map(str::to_string));
    assert_eq!(&header[5..], ["CONTAINERS", "IMAGES", "SELECTOR"], "{wide}");
    let line = words(row(&wide, "migrate"));
    assert_eq!(&line[5..7], ["m", "migrate:v2"], "{wide}");
    assert!(line[7].starts_with("batch.kubernetes.io/controller-uid="), "{wide}");
}
