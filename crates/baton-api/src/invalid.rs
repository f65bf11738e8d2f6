//! One mistake in a spec, as every part of baton reports it: the field's path as kube-apiserver
//! writes it (`spec.strategy.batches[2]`, `spec.listeners[0].configRef.secretKeyRef.name`) and
//! what is wrong with it, with what to do. Validation returns a list of these; the planner's and
//! the ListenerSet controller's `InvalidSpec` condition and Event, `baton rollout lint`, the CLI
//! and the dashboard print them with [`Display`](std::fmt::Display), so the same mistake reads
//! the same way everywhere. [`BadValue`] is a value that does not parse (a count, a percentage,
//! a duration, a check's condition): the reason of such a mistake.
use std::fmt;

/// A field of a spec and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Invalid {
    /// The field, e.g. `spec.pins[1].instances[0]`.
    pub path: String,
    /// What is wrong and what to do, e.g. `is -1; set it to 0 or more`.
    pub reason: String,
    form: Form,
}

/// How the reason follows the path when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Form {
    /// A phrase whose subject is the field: `spec.replicas is -1; …`.
    Phrase,
    /// kube-apiserver's form, after a colon: `spec.strategy.maxSurge: "abc" is …`.
    Colon,
}

impl Invalid {
    /// A reason that reads on from the field: `Invalid::new("spec.replicas", "is -1; …")`
    /// shows as `spec.replicas is -1; …`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            path: path.into(),
            reason: reason.into(),
            form: Form::Phrase,
        }
    }

    /// A reason after a colon, as kube-apiserver writes one: `Invalid::at("spec.x", "bad")`
    /// shows as `spec.x: bad`.
    pub fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            path: path.into(),
            reason: reason.into(),
            form: Form::Colon,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.form {
            Form::Phrase => write!(f, "{} {}", self.path, self.reason),
            Form::Colon => write!(f, "{}: {}", self.path, self.reason),
        }
    }
}

impl std::error::Error for Invalid {}

/// The mistakes, each shown on its own, joined with `sep` (`"; "` in a condition message, a
/// newline in a list).
pub fn join(mistakes: &[Invalid], sep: &str) -> String {
    mistakes.iter().map(Invalid::to_string).collect::<Vec<_>>().join(sep)
}

/// A value that does not read as what its field holds. Shown after the field
/// (`spec.strategy.maxSurge: "x" is neither …`) or the place that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    /// A negative count.
    #[error("{0} is negative")]
    NegativeCount(i32),
    /// A negative duration.
    #[error("{0:?} is negative")]
    NegativeDuration(String),
    /// Neither a count nor a percentage.
    #[error("{0:?} is neither a number nor a percentage like \"50%\"")]
    NotCountOrPercent(String),
    /// A `%` whose number is not one.
    #[error("{0:?} is not a percentage like \"50%\"")]
    NotPercent(String),
    /// More than `100%`.
    #[error("{0:?} is more than 100%")]
    OverHundredPercent(String),
    /// Not a duration in Go's syntax; the parser's words.
    #[error("{0:?} is not a duration like \"30s\" or \"5m\": {1}")]
    NotDuration(String, String),
    /// A check's condition without a comparison (shown after the field, or after `condition`).
    #[error("{0:?} must start with <, <=, >, >=, == or !=")]
    NoComparison(String),
    /// A check's condition that compares with something other than a number.
    #[error("{0:?} must compare with a number (`< 0.05`)")]
    NotANumber(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistake_shows_its_path_then_its_reason() {
        let phrase = Invalid::new("spec.replicas", "is -1; set it to 0 or more");
        assert_eq!(phrase.to_string(), "spec.replicas is -1; set it to 0 or more");
        let colon = Invalid::at("spec.strategy.maxSurge", "\"x\" is not a count");
        assert_eq!(colon.to_string(), "spec.strategy.maxSurge: \"x\" is not a count");
        assert_eq!(colon.path, "spec.strategy.maxSurge");
        assert_eq!(join(&[phrase, colon], "; ").matches("spec.").count(), 2);
    }
}
