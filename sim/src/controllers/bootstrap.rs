//! What kube-apiserver creates when it starts (its post-start hooks): the default namespaces,
//! `default/kubernetes`, the control plane's ComponentStatuses and local APIServices, and the
//! default RBAC roles and bindings.
use serde_json::json;

use crate::handlers::{Core, Opts};

/// Create them all, through the API as any client would.
pub fn run(core: &Core) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if let Some(rt) = core.resource("", "namespaces") {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let opts = Opts {
                field_manager: "baton-sim".into(),
                ..Opts::default()
            };
            let _ = core.create(&rt, None, body, &opts);
        }
    }
    default_service(core);
    control_plane_objects(core);
    super::rbac_bootstrap::create(core);
}

/// `default/kubernetes`, the Service every cluster has for its API server.
fn default_service(core: &Core) {
    let Some(rt) = core.resource("", "services") else {
        return;
    };
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}], "sessionAffinity": "None", "type": "ClusterIP"}});
    let _ = core.create(
        &rt,
        Some("default"),
        svc,
        &Opts {
            field_manager: "kube-apiserver".into(),
            ..Opts::default()
        },
    );
}

/// What kube-apiserver serves about the control plane: ComponentStatuses (deprecated but
/// served) and a local APIService per built-in group version.
fn control_plane_objects(core: &Core) {
    let opts = Opts {
        field_manager: "kube-apiserver".into(),
        ..Opts::default()
    };
    if let Some(rt) = core.resource("", "componentstatuses") {
        for name in ["scheduler", "controller-manager", "etcd-0"] {
            let cs = json!({"apiVersion": "v1", "kind": "ComponentStatus", "metadata": {"name": name},
                "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
            let _ = core.create(&rt, None, cs, &opts);
        }
    }
    let Some(rt) = core.resource("apiregistration.k8s.io", "apiservices") else {
        return;
    };
    let gvs: Vec<(String, String)> = {
        let reg = core.registry();
        let mut v: Vec<(String, String)> = reg.all().map(|t| (t.group.clone(), t.version.clone())).collect();
        v.dedup();
        v
    };
    for (group, version) in gvs {
        let svc = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": format!("{version}.{group}"), "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": 1000, "versionPriority": 15},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local", "message": "Local APIServices are always available"}]}});
        let _ = core.create(&rt, None, svc, &opts);
    }
}
