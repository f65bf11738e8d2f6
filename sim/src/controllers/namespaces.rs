//! What a cluster's control plane does for namespaces: every namespace gets a `default`
//! ServiceAccount (serviceaccounts-controller) and the `kube-root-ca.crt` ConfigMap
//! (root-ca-cert-publisher); a deleted namespace is `Terminating` while the namespace
//! controller deletes its contents, and goes once nothing is left in it.
use serde_json::json;

use crate::handlers::{AfterWrite, Core, DeleteOpts, Opts};
use crate::resources::{ResKey, ResourceType};
use crate::store::{Event, EventKind, Write, Written};

/// The CA bundle published in every namespace. The simulator serves plain HTTP; this is a
/// well-formed self-signed certificate so that clients that parse the bundle can.
pub const ROOT_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBgDCCASegAwIBAgIUMGRIZNM3KBa/tntHAnKJKKJWZhgwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3ViZXJuZXRlczAgFw0yNjExMjIxMTE1MDZaGA8yMTI2MTAy
OTExMTUwNlowFTETMBEGA1UEAwwKa3ViZXJuZXRlczBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABAEvmhvRzMUOnnX7CSy3/TfGrR8mu3SDsGxTb1tkgOoKjf2Pa9SS
j6IUrjopvrznyp1HF6oBzzVvHzJlUOonl1ajUzBRMB0GA1UdDgQWBBTzGv2WVvXP
x0rougLRunnEhIwfpjAfBgNVHSMEGDAWgBTzGv2WVvXPx0rougLRunnEhIwfpjAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIEAZCN8SZFyAko0p+UsZ
S8ZfZcCwmn1GvJm9ukr5fzcQAiAmfl8igCs6TEOhFg7fw9hZjYw8yyyiykUbOl3O
x87spw==
-----END CERTIFICATE-----
";

/// The description kube-controller-manager puts on `kube-root-ca.crt`.
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn namespaces_key() -> ResKey {
    ResKey {
        group: String::new(),
        plural: "namespaces".into(),
    }
}

fn controller_opts(manager: &str) -> Opts {
    Opts {
        field_manager: manager.into(),
        ..Opts::default()
    }
}

/// The controllers that fill a namespace as soon as it is created.
pub struct Populate;

impl AfterWrite for Populate {
    fn after_write(&self, core: &Core, rt: &ResourceType, w: &Written) {
        if rt.group.is_empty() && rt.plural == "namespaces" && w.kind == Some(EventKind::Added) {
            populate(core, &w.obj.name);
        }
    }
}

/// A namespace was created: what the controllers add to it.
pub fn populate(core: &Core, ns: &str) {
    if let Some(rt) = core.resource("", "serviceaccounts") {
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
        let _ = core.create(&rt, Some(ns), sa, &controller_opts("kube-controller-manager"));
    }
    if let Some(rt) = core.resource("", "configmaps") {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": ns, "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
            "data": {"ca.crt": ROOT_CA_PEM}});
        let _ = core.create(&rt, Some(ns), cm, &controller_opts("kube-controller-manager"));
    }
}

/// The namespace controller's part of the event stream (driven by the garbage collector's loop).
pub fn on_event(core: &Core, ev: &Event) {
    if ev.key == namespaces_key() {
        if ev.kind != EventKind::Deleted && ev.obj.deleting {
            sweep(core, &ev.obj.name);
        }
        return;
    }
    if ev.kind == EventKind::Deleted && !ev.obj.namespace.is_empty() {
        let terminating = core
            .store
            .get(&namespaces_key(), "", &ev.obj.namespace)
            .is_some_and(|n| n.deleting);
        if terminating {
            finish_if_empty(core, &ev.obj.namespace);
        }
    }
}

/// Delete everything in a terminating namespace (pods get their grace period, objects with
/// finalizers wait for them), then finish if nothing is left.
fn sweep(core: &Core, ns: &str) {
    for (key, name) in core.store.all_in_namespace(ns) {
        let Some(rt) = core.resource(&key.group, &key.plural) else {
            continue;
        };
        let pending = core.store.get(&key, ns, &name).is_some_and(|o| o.deleting);
        if !pending {
            let _ = core.delete(
                &rt,
                ns,
                &name,
                &DeleteOpts {
                    propagation: Some("Background".into()),
                    ..DeleteOpts::default()
                },
            );
        }
    }
    finish_if_empty(core, ns);
}

fn finish_if_empty(core: &Core, ns: &str) {
    if !core.store.all_in_namespace(ns).is_empty() {
        return;
    }
    let _ = core.store.write(&namespaces_key(), "", ns, false, |cur| match cur {
        Some(c) if c.deleting => {
            let mut v = c.value();
            if let Some(spec) = v.get_mut("spec").and_then(serde_json::Value::as_object_mut) {
                spec.remove("finalizers");
            }
            Ok(Write::Delete(v))
        }
        _ => Ok(Write::Keep),
    });
}
