//! Label and field selectors, parsed and matched the way kube-apiserver does
//! (`k8s.io/apimachinery/pkg/labels/selector.go` and `pkg/fields/selector.go`).
//!
//! Error messages mimic the Go implementation, including its quirks (e.g. the
//! `<nil>: Invalid value: ...` prefix produced by a nil `field.Path`).
//!
//! Submodules: `label` and `field` are the two kinds of selector; `requirement` is one term of
//! a label selector, `label_parse` the label selector syntax (building requirements),
//! `label_json` the metav1.LabelSelector object form, and `validation` the label key and value
//! rules.

mod field;
mod label;
mod label_json;
mod label_parse;
mod requirement;
mod validation;

pub use field::{escape_field_value, FieldOp, FieldSelector, FieldTerm};
pub use label::{format_labels, to_selector_string, LabelSelector};
pub use label_json::{format_label_selector_json, from_label_selector_json};
pub use requirement::{Operator, Requirement};
pub use validation::{is_valid_label_key, is_valid_label_value};

#[cfg(test)]
mod tests;
