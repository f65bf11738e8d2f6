//! Read your own writes. The controller's Lease cache is fed by a watch and may not have seen
//! the controller's last write when the next reconcile of the set runs (a status write, a
//! renewal or another Lease of the set triggers one at once). Decided from that older view, a
//! listener the controller has just handed over looks free again: the assignment is made a
//! second time, conditional on the old `resourceVersion`, and fails with 409 — after its
//! fencing token was reserved in the status, so the listener's next tenure skips a token (the
//! handovers of `listener_bench` stepped by 2 to 5, with a conflict per handover).
//!
//! So each successful conditional write is remembered as an expectation (as kube-controller-
//! manager's controllers do): while the cache still shows the object at the `resourceVersion`
//! the write replaced, the decision sees what the write made instead. The expectation ends as
//! soon as the cache shows anything else (the write, or a later change: a renewal, a release, a
//! deletion), so nothing newer than the cache is ever hidden. Creates are not tracked here: a
//! Lease the cache does not show yet is held for its assigned pod by the decision's memory
//! (see [`super::memory`]).

use std::collections::BTreeMap;

/// The controller's writes the cache may not have seen yet, by object name.
#[derive(Clone, Debug)]
pub struct UnseenWrites<T> {
    /// name → (the `resourceVersion` the write replaced, what the write made: `None` = deleted).
    by_name: BTreeMap<String, (String, Option<T>)>,
}

impl<T> Default for UnseenWrites<T> {
    fn default() -> Self {
        UnseenWrites {
            by_name: BTreeMap::new(),
        }
    }
}

impl<T: Clone> UnseenWrites<T> {
    /// A write conditional on `replaced` (the `resourceVersion` it was made from) succeeded and
    /// made `written` (`None`: the object was deleted).
    pub fn wrote(&mut self, name: &str, replaced: &str, written: Option<T>) {
        self.by_name.insert(name.to_string(), (replaced.to_string(), written));
    }

    /// `cached` (every object of the set the cache shows; `key` gives an object's name and
    /// `resourceVersion`) with each object the cache shows at a `resourceVersion` one of our
    /// writes replaced swapped for what that write made; expectations the cache has moved past
    /// are forgotten.
    pub fn overlay(&mut self, cached: Vec<T>, key: impl Fn(&T) -> (&str, &str)) -> Vec<T> {
        if self.by_name.is_empty() {
            return cached;
        }
        let mut out = Vec::with_capacity(cached.len());
        let mut stale = BTreeMap::new();
        for object in cached {
            let (name, rv) = key(&object);
            match self.by_name.remove_entry(name) {
                Some((name, (replaced, written))) if replaced == rv => {
                    out.extend(written.clone());
                    stale.insert(name, (replaced, written));
                }
                // The cache shows something else: our write or a later change.
                _ => out.push(object),
            }
        }
        // An object the cache no longer shows was deleted after our write: forgotten too.
        self.by_name = stale;
        out
    }

    /// The names of the objects written that the cache has not shown yet.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Writes the cache has not shown yet.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether every write has been seen.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(items: &[(&str, &str)]) -> Vec<String> {
        items.iter().map(|(n, rv)| format!("{n}@{rv}")).collect()
    }

    /// `name@version` (and what follows a space).
    fn key<S: AsRef<str>>(object: &S) -> (&str, &str) {
        let object = object.as_ref();
        let (name, rest) = object.split_once('@').unwrap_or((object, ""));
        (name, rest.split(' ').next().unwrap_or_default())
    }

    #[test]
    fn a_cache_behind_our_write_shows_the_write_until_it_catches_up() {
        let mut e = UnseenWrites::default();
        e.wrote("a", "5", Some("a@7 (ours)".to_string()));
        assert_eq!(
            e.overlay(cached(&[("a", "5"), ("b", "6")]), key),
            vec!["a@7 (ours)".to_string(), "b@6".into()]
        );
        assert_eq!(e.len(), 1, "still expected");
        // The cache shows our write: the cache is used, the expectation ends.
        assert_eq!(
            e.overlay(cached(&[("a", "7"), ("b", "6")]), key),
            vec!["a@7".to_string(), "b@6".into()]
        );
        assert!(e.is_empty());
        // Once ended, an older view is not corrected any more (it cannot come back: caches only
        // move forward).
        assert_eq!(e.overlay(cached(&[("a", "5")]), key), vec!["a@5".to_string()]);
    }

    #[test]
    fn a_later_change_by_someone_else_is_never_hidden() {
        let mut e = UnseenWrites::default();
        e.wrote("a", "5", Some("a@7 (ours)".to_string()));
        // The agent renewed after our write (the cache skipped our version).
        assert_eq!(e.overlay(cached(&[("a", "9")]), key), vec!["a@9".to_string()]);
        assert!(e.is_empty());
        // Deleted after our write: the cache shows no object, nothing is brought back.
        e.wrote("b", "3", Some("b@4 (ours)".to_string()));
        assert_eq!(e.overlay(cached(&[]), key), Vec::<String>::new());
        assert!(e.is_empty());
    }

    #[test]
    fn a_delete_hides_the_object_until_the_cache_sees_it_gone() {
        let mut e = UnseenWrites::default();
        e.wrote("a", "5", None);
        assert_eq!(
            e.overlay(cached(&[("a", "5"), ("b", "1")]), key),
            vec!["b@1".to_string()]
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e.overlay(cached(&[("b", "1")]), key), vec!["b@1".to_string()]);
        assert!(e.is_empty());
    }
}
