//! `/openapi/v3`: the index of group-versions and a per-group-version document with the
//! operations `kubectl apply` looks for (a PATCH per kind that takes `fieldValidation`).
use serde_json::{json, Map, Value};

use crate::resources::Registry;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// 64-bit FNV-1a of `s` in upper-case hex: a cheap, stable fingerprint of a document.
fn fnv(s: &str) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(s.as_bytes());
    format!("{:016X}", h.finish())
}

pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = reg.all().map(|t| (t.group.clone(), t.version.clone())).collect();
    gvs.dedup();
    for (g, v) in gvs {
        let p = gv_path(&g, &v);
        // The hash changes whenever the group-version's document does, so kubectl's cache stays right.
        let hash = fnv(&group_version(reg, &p).map(|d| d.to_string()).unwrap_or_default());
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

pub fn group_version(reg: &Registry, gv: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut found = false;
    for t in reg.all() {
        if gv_path(&t.group, &t.version) != gv {
            continue;
        }
        found = true;
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let op = |action: &str| json!({"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": action, "parameters": params, "responses": {"200": {"description": "OK"}}});
        let base = format!("/{gv}");
        let item = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{base}/{}/{{name}}", t.plural)
        };
        paths.insert(
            item,
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
        let coll = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{base}/{}", t.plural)
        };
        paths.insert(coll, json!({"get": op("list"), "post": op("post")}));
        if let Some(schema) = &t.schema {
            let name = format!(
                "{}.{}.{}",
                t.group.split('.').rev().collect::<Vec<_>>().join("."),
                t.version,
                t.kind
            );
            let mut s = schema.clone();
            if let Some(o) = s.as_object_mut() {
                o.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
            }
            schemas.insert(name, s);
        }
    }
    if !found {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_are_fnv1a_64() {
        // The FNV-1a 64 test vectors: kubectl caches documents by this hash.
        assert_eq!(super::fnv(""), "CBF29CE484222325");
        assert_eq!(super::fnv("a"), "AF63DC4C8601EC8C");
        assert_eq!(super::fnv("foobar"), "85944171F73967E8");
    }
}
