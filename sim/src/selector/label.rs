//! Label selectors (`k8s.io/apimachinery/pkg/labels/selector.go`): requirements, matching and
//! the canonical string form.

use std::collections::BTreeMap;
use std::fmt;

use super::label_parse::parse_requirements;
use super::validation::{aggregate, go_quote, invalid_list, label_value_errors, validate_label_key};

/// A label selector operator (`k8s.io/apimachinery/pkg/selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `in (a,b)`
    In,
    /// `notin (a,b)`
    NotIn,
    /// `a=b`
    Equals,
    /// `a==b`
    DoubleEquals,
    /// `a!=b`
    NotEquals,
    /// `a>1`
    GreaterThan,
    /// `a<1`
    LessThan,
    /// `a`
    Exists,
    /// `!a`
    DoesNotExist,
}

/// One requirement of a label selector (`key op values`).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Operator,
    /// Values in the order given (sorted and de-duplicated when parsed from a string).
    pub values: Vec<String>,
}

impl Requirement {
    /// Validating constructor, mirroring `labels.NewRequirement` (with a nil field path).
    pub fn new(key: &str, op: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errs: Vec<String> = Vec::new();
        if let Err(e) = validate_label_key(key, "key") {
            errs.push(e);
        }
        match op {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(invalid_list(
                        "values",
                        &values,
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(invalid_list(
                        "values",
                        &values,
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(invalid_list(
                        "values",
                        &values,
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid_list(
                        "values",
                        &values,
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            go_quote(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = label_value_errors(v);
            if !msgs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    go_quote(v),
                    msgs.join("; ")
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            })
        } else {
            Err(aggregate(errs))
        }
    }

    /// `Requirement.Matches`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                labels.get(&self.key).is_some_and(|v| has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => match labels.get(&self.key) {
                None => true,
                Some(v) => !has_value(v),
            },
            Operator::Exists => labels.contains_key(&self.key),
            Operator::DoesNotExist => !labels.contains_key(&self.key),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(lv) = labels.get(&self.key) else {
                    return false;
                };
                let Ok(lv) = lv.parse::<i64>() else {
                    return false;
                };
                if self.values.len() != 1 {
                    return false;
                }
                let Ok(rv) = self.values[0].parse::<i64>() else {
                    return false;
                };
                (self.op == Operator::GreaterThan && lv > rv) || (self.op == Operator::LessThan && lv < rv)
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// `Requirement.String()`: values of set-based requirements are rendered sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let sep = match self.op {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(sep)?;
        let set = matches!(self.op, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut vals: Vec<&str> = self.values.iter().map(String::as_str).collect();
        if vals.len() > 1 {
            vals.sort_unstable();
        }
        f.write_str(&vals.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

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
