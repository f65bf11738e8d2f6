//! `spec.selector` against `spec.template.metadata.labels`, as the API server checks it.
//!
//! A Deployment whose selector does not match its template is refused by kube-apiserver's own
//! validation; a Rollout is refused the same way by [`MATCHES_TEMPLATE_RULE`], so that
//! `kubectl apply` (and `--dry-run=server`) says so instead of the Rollout going `Degraded`.
//!
//! The rule walks the selector, never the template's labels (which stay unbounded, as a pod's
//! are): each `matchLabels` entry and `matchExpressions` requirement is one map lookup plus a
//! comparison with a bounded selector string. kube-apiserver prices a loop by the schema's
//! `maxProperties`/`maxItems` and a comparison by the shorter string's `maxLength`, so the
//! selector gets those bounds ([`selector_schema`]); they are those of a label (a key is a
//! 253-character prefix, `/` and a 63-character name; a value is at most 63 characters).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};

/// Most `matchLabels` entries.
pub const MAX_MATCH_LABELS: u32 = 64;
/// Most `matchExpressions` requirements.
pub const MAX_MATCH_EXPRESSIONS: u32 = 32;
/// Most values of one requirement.
pub const MAX_VALUES: u32 = 64;
/// Longest label key: a DNS-subdomain prefix (253), `/`, a name (63).
pub const MAX_KEY_LENGTH: u32 = 317;
/// Longest label value.
pub const MAX_VALUE_LENGTH: u32 = 63;

/// With `spec.template` set, every `matchLabels` entry is among the template's labels and every
/// requirement holds for them (`NotIn` and `DoesNotExist` hold when the key is absent; an
/// unknown operator is left to the controller, which reports the selector as invalid).
pub const MATCHES_TEMPLATE_RULE: &str = concat!(
    "!has(self.template) || (",
    "(!has(self.selector.matchLabels) || self.selector.matchLabels.all(k, ",
    "has(self.template.metadata) && has(self.template.metadata.labels) && ",
    "k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k])) && ",
    "(!has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, ",
    "e.operator == 'In' ? (has(self.template.metadata) && has(self.template.metadata.labels) && ",
    "e.key in self.template.metadata.labels && has(e.values) && self.template.metadata.labels[e.key] in e.values) : ",
    "e.operator == 'NotIn' ? !(has(self.template.metadata) && has(self.template.metadata.labels) && ",
    "e.key in self.template.metadata.labels && has(e.values) && self.template.metadata.labels[e.key] in e.values) : ",
    "e.operator == 'Exists' ? (has(self.template.metadata) && has(self.template.metadata.labels) && ",
    "e.key in self.template.metadata.labels) : ",
    "e.operator != 'DoesNotExist' || !(has(self.template.metadata) && has(self.template.metadata.labels) && ",
    "e.key in self.template.metadata.labels))))"
);
/// What [`MATCHES_TEMPLATE_RULE`] answers (a Deployment's words).
pub const MATCHES_TEMPLATE_MESSAGE: &str = "selector does not match template labels";
/// Where it is reported: the field a Deployment's validation names.
pub const MATCHES_TEMPLATE_FIELD: &str = ".template.metadata.labels";

/// The `LabelSelector` schema with the bounds that keep [`MATCHES_TEMPLATE_RULE`] within
/// kube-apiserver's CEL cost budget.
pub(super) fn selector_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<LabelSelector>();
    if let Some(obj) = schema.as_object_mut() {
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            bound(props.get_mut("matchLabels"), |m| {
                m.insert("maxProperties".into(), json!(MAX_MATCH_LABELS));
                m.insert(
                    "additionalProperties".into(),
                    json!({"type": "string", "maxLength": MAX_VALUE_LENGTH}),
                );
            });
            bound(props.get_mut("matchExpressions"), bound_expressions);
        }
    }
    schema
}

fn bound_expressions(m: &mut serde_json::Map<String, Value>) {
    m.insert("maxItems".into(), json!(MAX_MATCH_EXPRESSIONS));
    let Some(Value::Object(props)) = m.get_mut("items").and_then(|i| i.get_mut("properties")) else {
        return;
    };
    bound(props.get_mut("key"), |k| {
        k.insert("maxLength".into(), json!(MAX_KEY_LENGTH));
    });
    bound(props.get_mut("values"), |v| {
        v.insert("maxItems".into(), json!(MAX_VALUES));
        bound(v.get_mut("items"), |i| {
            i.insert("maxLength".into(), json!(MAX_VALUE_LENGTH));
        });
    });
}

fn bound(node: Option<&mut Value>, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    if let Some(Value::Object(m)) = node {
        f(m);
    }
}
