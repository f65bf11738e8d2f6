//! What a request asks to do, worked out from its method, path and query the way
//! kube-apiserver's `RequestInfoFactory` does (k8s.io/apiserver/pkg/endpoints/request): a
//! resource request (verb, API group and version, resource, subresource, namespace, name) or a
//! non-resource request (path and the lower-cased HTTP method). This is what RBAC authorizes,
//! before the path is routed or the resource is known to exist.

use std::collections::HashMap;

/// The attributes of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub resource_request: bool,
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection` for
    /// resources; the lower-cased HTTP method for non-resource paths.
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// Namespace subresources: `/api/v1/namespaces/{name}/status` is the namespace itself.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl RequestInfo {
    /// The attributes of `method path?query` (`query` already decoded).
    pub fn new(method: &str, path: &str, query: &HashMap<String, String>) -> RequestInfo {
        let mut info = RequestInfo {
            resource_request: false,
            path: path.to_string(),
            verb: method.to_ascii_lowercase(),
            ..RequestInfo::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return info;
        }
        let mut rest = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return info;
            }
            info.api_group = rest[0].to_string();
            rest = &rest[1..];
        }
        info.resource_request = true;
        info.api_version = rest[0].to_string();
        rest = &rest[1..];
        // /apis/g/v/watch/... (deprecated) names the verb in the path.
        if rest.first() == Some(&"watch") && rest.len() >= 2 {
            info.verb = "watch".into();
            rest = &rest[1..];
        } else {
            info.verb = match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .into();
        }
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        if let Some(r) = rest.first() {
            info.resource = r.to_string();
        }
        if let Some(n) = rest.get(1) {
            info.name = n.to_string();
        }
        if let Some(s) = rest.get(2) {
            info.subresource = s.to_string();
        }
        if info.name.is_empty() && info.verb == "get" {
            let watch = query
                .get("watch")
                .is_some_and(|w| !matches!(w.to_ascii_lowercase().as_str(), "false" | "0"));
            info.verb = if watch { "watch" } else { "list" }.into();
            // A list or watch of one object by field selector is authorized as that object.
            if let Some(name) = query.get("fieldSelector").and_then(|s| exact_name(s)) {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        info
    }

    /// `pods`, `pods/status`: the resource as RBAC rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or `metadata.name==x` among
/// its terms), when it is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        if k.trim() != "metadata.name" || k.ends_with('!') {
            return None;
        }
        let v = v.trim();
        (!v.is_empty() && v != "." && v != ".." && !v.contains('/') && !v.contains('%')).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str, q: &[(&str, &str)]) -> RequestInfo {
        let q = q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RequestInfo::new(method, path, &q)
    }

    #[test]
    fn resource_requests() {
        let i = info("GET", "/api/v1/namespaces/default/pods", &[]);
        assert!(i.resource_request);
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str(), i.namespace.as_str()),
            ("list", "pods", "default")
        );
        let i = info("GET", "/api/v1/namespaces/default/pods", &[("watch", "true")]);
        assert_eq!(i.verb, "watch");
        let i = info("PUT", "/apis/baton.dev/v1alpha1/namespaces/a/rollouts/web/status", &[]);
        assert_eq!(
            (
                i.verb.as_str(),
                i.api_group.as_str(),
                i.combined_resource().as_str(),
                i.name.as_str()
            ),
            ("update", "baton.dev", "rollouts/status", "web")
        );
        let i = info("DELETE", "/apis/coordination.k8s.io/v1/namespaces/a/leases", &[]);
        assert_eq!(i.verb, "deletecollection");
        let i = info("POST", "/api/v1/namespaces/a/serviceaccounts/sa/token", &[]);
        assert_eq!(
            (i.verb.as_str(), i.combined_resource().as_str()),
            ("create", "serviceaccounts/token")
        );
    }

    #[test]
    fn namespaces_are_their_own_namespace() {
        let i = info("GET", "/api/v1/namespaces/team", &[]);
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.namespace.as_str()),
            ("namespaces", "team", "team")
        );
        let i = info("PUT", "/api/v1/namespaces/team/finalize", &[]);
        assert_eq!(
            (i.combined_resource().as_str(), i.namespace.as_str()),
            ("namespaces/finalize", "team")
        );
        let i = info("GET", "/api/v1/namespaces", &[]);
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn field_selector_names_the_object() {
        let i = info(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/s/leases",
            &[("watch", "1"), ("fieldSelector", "metadata.name=baton-controller")],
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "baton-controller"));
        let i = info("GET", "/api/v1/pods", &[("fieldSelector", "metadata.name!=x")]);
        assert_eq!(i.name, "");
    }

    #[test]
    fn non_resource_requests() {
        for p in [
            "/version",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/openapi/v3",
        ] {
            let i = info("GET", p, &[]);
            assert!(!i.resource_request, "{p}");
            assert_eq!(i.verb, "get");
        }
        assert_eq!(info("POST", "/baton-sim/attach", &[]).verb, "post");
    }
}
