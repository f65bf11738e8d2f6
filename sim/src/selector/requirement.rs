//! Label selector requirements (`k8s.io/apimachinery/pkg/labels/selector.go`'s
//! `Requirement` and `selection.Operator`): validation, matching and the string form. The
//! selector syntax parser and the selector itself both build on these.

use std::collections::BTreeMap;
use std::fmt;

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
