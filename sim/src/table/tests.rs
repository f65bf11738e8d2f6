//! Unit tests of the parent module.
use super::*;
use jiff::{SignedDuration, Timestamp};

fn now() -> Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

#[test]
fn human_durations() {
    assert_eq!(human_duration(secs(-5)), "<invalid>");
    assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
    assert_eq!(human_duration(secs(-1)), "0s");
    assert_eq!(human_duration(secs(0)), "0s");
    assert_eq!(human_duration(secs(5)), "5s");
    assert_eq!(human_duration(secs(90)), "90s");
    assert_eq!(human_duration(secs(119)), "119s");
    assert_eq!(human_duration(secs(120)), "2m");
    assert_eq!(human_duration(secs(150)), "2m30s");
    assert_eq!(human_duration(secs(599)), "9m59s");
    assert_eq!(human_duration(secs(600)), "10m");
    assert_eq!(human_duration(secs(179 * 60 + 59)), "179m");
    assert_eq!(human_duration(secs(3 * 3600)), "3h");
    assert_eq!(human_duration(secs(3 * 3600 + 25 * 60)), "3h25m");
    assert_eq!(human_duration(secs(8 * 3600)), "8h");
    assert_eq!(human_duration(secs(47 * 3600 + 59 * 60)), "47h");
    assert_eq!(human_duration(secs(48 * 3600)), "2d");
    assert_eq!(human_duration(secs(50 * 3600)), "2d2h");
    assert_eq!(human_duration(secs(8 * 86400)), "8d");
    assert_eq!(human_duration(secs(729 * 86400)), "729d");
    assert_eq!(human_duration(secs(730 * 86400)), "2y");
    assert_eq!(human_duration(secs(740 * 86400)), "2y10d");
    assert_eq!(human_duration(secs(9 * 365 * 86400)), "9y");
    assert_eq!(short_human_duration(secs(90)), "1m");
    assert_eq!(short_human_duration(secs(30 * 3600)), "1d");
}

#[test]
fn crd_columns_and_cells() {
    let cols = crd_columns(&json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "the phase"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "priority": 1},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "Count", "type": "number", "jsonPath": ".spec.replicas"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Obj", "type": "string", "jsonPath": ".spec.obj"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nope"},
        {"name": "Null", "type": "string", "jsonPath": ".spec.nullField"},
        {"name": "BadDate", "type": "date", "jsonPath": ".spec.when"},
        {"name": "WrongType", "type": "integer", "jsonPath": ".status.phase"},
        {"name": "Float", "type": "integer", "jsonPath": ".spec.ratio"},
    ]));
    assert_eq!(cols.len(), 14);
    assert_eq!(cols[0].name, "Name");
    assert_eq!(cols[0].format, "name");
    assert_eq!(cols[0].json_path, None);
    assert_eq!(
        cols[1].description,
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    assert_eq!(cols[2].description, "the phase");
    assert_eq!(cols[3].priority, 1);

    let obj = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "creationTimestamp": "2024-06-01T11:57:30Z"},
        "spec": {"replicas": 3, "ratio": 2.5, "paused": true, "obj": {"a": 1}, "nullField": null, "when": "yesterday"},
        "status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}
    });
    let c = cells("Widget", &cols, &obj, now());
    assert_eq!(
        c,
        vec![
            json!("w1"),
            json!(3),
            json!("Ready"),
            json!("True"),
            json!(2.5),
            json!(3),
            json!(true),
            json!("2m30s"),
            json!("map[a:1]"),
            Value::Null,
            json!("<no value>"),
            json!("<invalid>"),
            Value::Null,
            json!(2),
        ]
    );
}

#[test]
fn crd_default_columns() {
    for pc in [json!(null), json!([])] {
        let cols = crd_columns(&pc);
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].name, "Age");
        assert_eq!(cols[1].type_, "date");
        assert_eq!(cols[1].json_path.as_deref(), Some(".metadata.creationTimestamp"));
    }
    let cols = crd_columns(&json!(null));
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2024-06-01T09:00:00Z"}});
    assert_eq!(cells("Widget", &cols, &obj, now()), vec![json!("x"), json!("3h")]);
    let obj = json!({"metadata": {"name": "x"}});
    assert_eq!(cells("Widget", &cols, &obj, now()), vec![json!("x"), Value::Null]);
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": ""}});
    assert_eq!(
        cells("Widget", &cols, &obj, now()),
        vec![json!("x"), json!("<unknown>")]
    );
}

fn base_pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "creationTimestamp": "2024-06-01T11:59:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": status
    })
}

fn pod_status(p: &Value) -> (String, String, String) {
    let c = cells("Pod", &builtin_columns("Pod"), p, now());
    assert_eq!(c.len(), builtin_columns("Pod").len());
    (
        c[1].as_str().unwrap().to_string(),
        c[2].as_str().unwrap().to_string(),
        c[3].as_str().unwrap().to_string(),
    )
}

#[test]
fn pod_pending_and_creating() {
    let p = base_pod(json!({"phase": "Pending"}));
    assert_eq!(pod_status(&p), ("0/2".into(), "Pending".into(), "0".into()));
    let p = base_pod(json!({"phase": "Pending", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
        {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
    ]}));
    assert_eq!(pod_status(&p).1, "ContainerCreating");
    let p = base_pod(json!({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
    ]}));
    assert_eq!(pod_status(&p).1, "SchedulingGated");
}

#[test]
fn pod_running_and_crashloop() {
    let p = base_pod(json!({"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}
    ]}));
    assert_eq!(pod_status(&p), ("2/2".into(), "Running".into(), "0".into()));
    let c = cells("Pod", &builtin_columns("Pod"), &p, now());
    assert_eq!(c[0], json!("p"));
    assert_eq!(c[4], json!("60s"));
    assert_eq!(c[5], json!("10.0.0.5"));
    assert_eq!(c[6], json!("n1"));
    assert_eq!(c[7], json!("<none>"));
    assert_eq!(c[8], json!("<none>"));

    let p = base_pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 4,
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-06-01T11:59:30Z"}},
         "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        {"name": "b", "ready": true, "restartCount": 1, "state": {"running": {}}}
    ]}));
    assert_eq!(
        pod_status(&p),
        ("1/2".into(), "CrashLoopBackOff".into(), "5 (30s ago)".into())
    );
}

#[test]
fn pod_completed_failed_terminating() {
    let p = base_pod(json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    ]}));
    assert_eq!(pod_status(&p).1, "Completed");
    let rows = [(cells("Pod", &builtin_columns("Pod"), &p, now()), &p)];
    let t = table(&builtin_columns("Pod"), &rows, "5", None, "");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], json!("Succeeded"));

    // Completed but one container still running → Running/NotReady.
    let p = base_pod(
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "b", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]}),
    );
    assert_eq!(pod_status(&p).1, "NotReady");

    let p = base_pod(json!({"phase": "Failed", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137}}},
        {"name": "b", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2, "signal": 9}}}
    ]}));
    // Containers are walked in reverse, so the first container's reason wins.
    assert_eq!(pod_status(&p).1, "ExitCode:137");

    let mut p = base_pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}
    ]}));
    p["metadata"]["deletionTimestamp"] = json!("2024-06-01T12:00:00Z");
    assert_eq!(pod_status(&p).1, "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(pod_status(&p).1, "Unknown");
    let mut p = base_pod(json!({"phase": "Succeeded"}));
    p["metadata"]["deletionTimestamp"] = json!("2024-06-01T12:00:00Z");
    assert_eq!(pod_status(&p).1, "Succeeded");
    let p = base_pod(json!({"phase": "Failed", "reason": "Evicted"}));
    assert_eq!(pod_status(&p).1, "Evicted");
}

#[test]
fn pod_init_containers() {
    let mut p = base_pod(json!({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "ready": false, "restartCount": 0, "state": {"running": {}}}
    ]}));
    p["spec"]["initContainers"] = json!([{"name": "i1"}, {"name": "i2"}]);
    assert_eq!(pod_status(&p).1, "Init:1/2");

    p["status"]["initContainerStatuses"][1]["state"] = json!({"waiting": {"reason": "ImagePullBackOff"}});
    assert_eq!(pod_status(&p).1, "Init:ImagePullBackOff");

    p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 3}});
    assert_eq!(pod_status(&p).1, "Init:ExitCode:3");

    p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 3, "reason": "Error"}});
    assert_eq!(pod_status(&p).1, "Init:Error");

    // Sidecar (restartable init container) counts toward total and readiness.
    let mut p = base_pod(
        json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [
            {"name": "side", "ready": true, "started": true, "restartCount": 2, "state": {"running": {}}}
        ],
        "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "b", "ready": true, "restartCount": 1, "state": {"running": {}}}
        ]}),
    );
    p["spec"]["initContainers"] = json!([{"name": "side", "restartPolicy": "Always"}]);
    assert_eq!(pod_status(&p), ("3/3".into(), "Running".into(), "3".into()));
}

#[test]
fn pod_wide_fields() {
    let mut p = base_pod(
        json!({"phase": "Running", "podIPs": [{"ip": "10.1.1.1"}, {"ip": "fd00::1"}],
            "nominatedNodeName": "n2",
            "conditions": [{"type": "example.com/gate", "status": "True"}]}),
    );
    p["spec"]["readinessGates"] = json!([{"conditionType": "example.com/gate"}, {"conditionType": "other"}]);
    let c = cells("Pod", &builtin_columns("Pod"), &p, now());
    assert_eq!(c[5], json!("10.1.1.1"));
    assert_eq!(c[7], json!("n2"));
    assert_eq!(c[8], json!("1/2"));
}

#[test]
fn builtin_kinds() {
    let n = now();
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T12:00:00Z"}, "status": {"phase": "Active"}});
    assert_eq!(
        cells("Namespace", &builtin_columns("Namespace"), &ns, n),
        vec![json!("default"), json!("Active"), json!("31d")]
    );
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
    assert_eq!(
        cells("ConfigMap", &builtin_columns("ConfigMap"), &cm, n),
        vec![json!("c"), json!(3), json!("<unknown>")]
    );
    let sec = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "eA=="}});
    assert_eq!(
        cells("Secret", &builtin_columns("Secret"), &sec, n),
        vec![json!("s"), json!("Opaque"), json!(1), json!("<unknown>")]
    );
    let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}});
    assert_eq!(
        cells("Lease", &builtin_columns("Lease"), &lease, n),
        vec![json!("l"), json!("me"), json!("<unknown>")]
    );
    let sa = json!({"metadata": {"name": "default"}});
    assert_eq!(
        cells("ServiceAccount", &builtin_columns("ServiceAccount"), &sa, n)[1],
        json!(0)
    );
    let cr = json!({"metadata": {"name": "web-7d4", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}
        ]}, "revision": 2});
    assert_eq!(
        cells("ControllerRevision", &builtin_columns("ControllerRevision"), &cr, n),
        vec![
            json!("web-7d4"),
            json!("statefulset.apps/web"),
            json!(2),
            json!("<unknown>")
        ]
    );
    let crd = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-06-01T11:00:00Z"}});
    let cols = builtin_columns("CustomResourceDefinition");
    assert_eq!(cols[1].name, "Created At");
    assert_eq!(cols[1].type_, "date");
    assert_eq!(
        cells("CustomResourceDefinition", &cols, &crd, n),
        vec![json!("widgets.example.com"), json!("2024-06-01T11:00:00Z")]
    );
    assert_eq!(
        cells("Whatever", &builtin_columns("Whatever"), &json!({}), n),
        vec![json!(""), json!("0001-01-01T00:00:00Z")]
    );
    for k in [
        "Pod",
        "Namespace",
        "Lease",
        "Event",
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceAccount",
        "ControllerRevision",
        "Node",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "Job",
        "Foo",
    ] {
        // Column and cell counts always agree, even for an empty object.
        assert_eq!(
            cells(k, &builtin_columns(k), &json!({}), n).len(),
            builtin_columns(k).len(),
            "{k}"
        );
        assert_eq!(
            cells(k, &builtin_columns(k), &json!(null), n).len(),
            builtin_columns(k).len()
        );
        assert_eq!(has_builtin_printer(k), k != "Foo");
    }
}

#[test]
fn service_node_deployment_event() {
    let n = now();
    let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"}}});
    assert_eq!(
        cells("Service", &builtin_columns("Service"), &svc, n),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("<unknown>"),
            json!("app=web")
        ]
    );
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1"},
            "status": {"loadBalancer": {}}});
    let c = cells("Service", &builtin_columns("Service"), &lb, n);
    assert_eq!(c[2], json!("10.0.0.1"));
    assert_eq!(c[3], json!("<pending>"));
    assert_eq!(c[4], json!("<none>"));
    assert_eq!(c[6], json!("<none>"));

    let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.30.0"},
                "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}});
    assert_eq!(
        cells("Node", &builtin_columns("Node"), &node, n),
        vec![
            json!("n1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("<unknown>"),
            json!("v1.30.0"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );

    let dep = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "envoy"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        cells("Deployment", &builtin_columns("Deployment"), &dep, n),
        vec![
            json!("d"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("<unknown>"),
            json!("a,b"),
            json!("nginx,envoy"),
            json!("app=web")
        ]
    );

    let ev = json!({"metadata": {"name": "p.17a"}, "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
            "source": {"component": "kubelet", "host": "n1"}, "message": " Back-off restarting ",
            "firstTimestamp": "2024-06-01T11:00:00Z", "lastTimestamp": "2024-06-01T11:59:00Z", "count": 7});
    assert_eq!(
        cells("Event", &builtin_columns("Event"), &ev, n),
        vec![
            json!("60s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/p"),
            json!("spec.containers{a}"),
            json!("kubelet, n1"),
            json!("Back-off restarting"),
            json!("60m"),
            json!(7),
            json!("p.17a")
        ]
    );
    let ev2 = json!({"metadata": {"name": "e"}, "eventTime": "2024-06-01T11:59:50.000000Z",
            "reportingComponent": "ctrl", "involvedObject": {"kind": "Node"}});
    let c = cells("Event", &builtin_columns("Event"), &ev2, n);
    assert_eq!(c[0], json!("10s"));
    assert_eq!(c[3], json!("node"));
    assert_eq!(c[5], json!("ctrl"));
    assert_eq!(c[8], json!(1));
}

#[test]
fn table_shape() {
    let cols = builtin_columns("ConfigMap");
    let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "7"}, "data": {}});
    let rows = [(cells("ConfigMap", &cols, &obj, now()), &obj)];
    let t = table(&cols, &rows, "42", Some("tok"), "Metadata");
    assert_eq!(t["kind"], json!("Table"));
    assert_eq!(t["apiVersion"], json!("meta.k8s.io/v1"));
    assert_eq!(t["metadata"], json!({"resourceVersion": "42", "continue": "tok"}));
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name",
                   "description": NAME_DESCRIPTION, "priority": 0})
    );
    assert_eq!(t["rows"][0]["cells"], json!(["c", 0, "<unknown>"]));
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": {"name": "c", "namespace": "ns", "resourceVersion": "7"}})
    );
    assert!(t["rows"][0].get("conditions").is_none());

    let t = table(&cols, &rows, "", None, "None");
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(t["rows"][0]["object"], Value::Null);
    assert!(t["rows"][0].as_object().unwrap().contains_key("object"));

    let t = table(&cols, &rows, "1", Some(""), "Object");
    assert_eq!(t["rows"][0]["object"], obj);
    assert_eq!(t["metadata"], json!({"resourceVersion": "1"}));

    let t = table(&cols, &[], "1", None, "");
    assert_eq!(t["rows"], json!([]));
    assert!(valid_include_object("Metadata"));
    assert!(!valid_include_object("metadata"));
}

#[test]
fn job_status_completions_and_duration() {
    let n = now();
    let at = |secs: i64| (n - jiff::SignedDuration::from_secs(secs)).to_string();
    let running = json!({"metadata": {"name": "migrate"},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                "template": {"spec": {"containers": [{"name": "m", "image": "migrate:v2"}]}}},
            "status": {"startTime": at(150), "active": 1}});
    assert_eq!(
        cells("Job", &builtin_columns("Job"), &running, n),
        vec![
            json!("migrate"),
            json!("Running"),
            json!("0/1"),
            json!("2m30s"),
            json!("<unknown>"),
            json!("m"),
            json!("migrate:v2"),
            json!("batch.kubernetes.io/controller-uid=u1")
        ]
    );
    let done = json!({"metadata": {"name": "j"}, "spec": {"completions": 3},
            "status": {"startTime": at(100), "completionTime": at(40), "succeeded": 3,
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
    let c = cells("Job", &builtin_columns("Job"), &done, n);
    assert_eq!(
        (&c[1], &c[2], &c[3]),
        (&json!("Complete"), &json!("3/3"), &json!("60s"))
    );
    let failed = json!({"metadata": {"name": "j", "deletionTimestamp": at(1)}, "spec": {"parallelism": 2},
            "status": {"conditions": [{"type": "Complete", "status": "False"}, {"type": "Failed", "status": "True"}]}});
    let c = cells("Job", &builtin_columns("Job"), &failed, n);
    assert_eq!(
        (&c[1], &c[2], &c[3]),
        (&json!("Failed"), &json!("0/1 of 2"), &json!(""))
    );
    let deleting = json!({"metadata": {"name": "j", "deletionTimestamp": at(1)},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
    assert_eq!(
        cells("Job", &builtin_columns("Job"), &deleting, n)[1],
        json!("Terminating")
    );
}
