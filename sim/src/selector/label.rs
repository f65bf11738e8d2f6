//! Label selectors (`k8s.io/apimachinery/pkg/labels/selector.go`): the AND of requirements,
//! matching and the canonical string form.

use std::collections::BTreeMap;
use std::fmt;

use super::label_parse::parse_requirements;
use super::requirement::{Operator, Requirement};

/// A parsed label selector: the AND of its requirements, sorted by key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// `labels.Nothing()`: matches no object (a null metav1.LabelSelector).
    nothing: bool,
}

impl LabelSelector {
    /// Parse `labelSelector` query syntax exactly as `labels.Parse` does.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = parse_requirements(s)?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements: reqs,
            nothing: false,
        })
    }

    /// A selector that matches everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// A selector that matches nothing (`labels.Nothing()`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Build from already-validated requirements (sorted by key like `Selector.Add`).
    pub fn from_requirements(mut reqs: Vec<Requirement>) -> Self {
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements: reqs,
            nothing: false,
        }
    }

    /// Selector matching exactly the given labels (`labels.SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for `labels.Nothing()`.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// `Selector.Empty()`: true when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// `Selector.RequiresExactMatch`.
    pub fn requires_exact_match(&self, label: &str) -> Option<String> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match r.op {
            Operator::Equals | Operator::DoubleEquals | Operator::In if r.values.len() == 1 => {
                Some(r.values[0].clone())
            }
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

/// Render a selector to its canonical string form (`Selector.String()`), e.g.
/// `a=b,c in (x,y)`. An empty (or nothing) selector renders as `""`.
pub fn to_selector_string(sel: &LabelSelector) -> String {
    sel.to_string()
}

/// `labels.FormatLabels`: `k=v,k2=v2` (sorted by key) or `<none>`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
