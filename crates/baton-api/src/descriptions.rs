//! Field descriptions as `kubectl explain` shows them.
//!
//! The descriptions come from the Rust doc comments, wrapped at the source's line width;
//! `kubectl explain` wraps text itself and keeps every newline, so a wrapped comment would break
//! mid-sentence there. Here single newlines become spaces (paragraph breaks stay).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The CRD with every description unwrapped (see the module docs).
pub fn unwrap(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    super::edit_schemas(crd, walk)
}

fn walk(node: &mut Value) {
    match node {
        Value::Object(m) => {
            if let Some(Value::String(d)) = m.get_mut("description") {
                *d = unwrap_text(d);
            }
            m.values_mut().for_each(walk);
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

/// `text` with single newlines turned into spaces; blank-line paragraph breaks are kept.
fn unwrap_text(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_breaks_go_paragraphs_stay() {
        assert_eq!(
            unwrap_text("a count (or a percentage, rounded\ndown)."),
            "a count (or a percentage, rounded down)."
        );
        assert_eq!(unwrap_text("one.\n\ntwo\nlines."), "one.\n\ntwo lines.");
        assert_eq!(unwrap_text("plain"), "plain");
    }

    #[test]
    fn no_baton_description_breaks_mid_sentence() {
        for crd in [crate::rollout::crd(), crate::listenerset::crd()] {
            let json = serde_json::to_string(&crd).unwrap();
            let value: Value = serde_json::from_str(&json).unwrap();
            let mut found = Vec::new();
            collect(&value, &mut found);
            for d in found {
                assert!(!d.replace("\n\n", "").contains('\n'), "{d:?}");
                assert!(!d.contains("[`"), "a Rust doc link in {d:?}");
            }
        }
    }

    fn collect(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(m) => {
                if let Some(Value::String(d)) = m.get("description") {
                    out.push(d.clone());
                }
                m.values().for_each(|v| collect(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
}
