//! One mistake in a spec, as every part of baton reports it: the field's path as kube-apiserver
//! writes it (`spec.strategy.batches[2]`, `spec.listeners[0].configRef.secretKeyRef.name`) and
//! what is wrong with it, with what to do. Validation returns a list of these; the planner's and
//! the ListenerSet controller's `InvalidSpec` condition and Event, `baton rollout lint`, the CLI
//! and the dashboard print them with [`Display`](std::fmt::Display), so the same mistake reads
//! the same way everywhere.
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
