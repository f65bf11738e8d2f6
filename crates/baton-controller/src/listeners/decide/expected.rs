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
//! deletion), so nothing newer than the cache is ever hidden.
//!
//! A create is remembered too: until the cache shows an object of that name, the decision sees
//! the one created. Else a pass between the create and the watch's event sees the listener
//! without a Lease, places it again (the create is refused, AlreadyExists) and places the other
//! free listeners around a pod it did not pick: in a scale-in on kube-apiserver, whose last
//! listeners get new Leases after the garbage collector deleted theirs, the pods ended two apart.
//! A create the cache never shows (deleted before the watch caught up) is forgotten after
//! [`CREATE_KEPT`].

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// How long a create the cache does not show is seen in its place at most.
pub const CREATE_KEPT: Duration = Duration::from_secs(10);

/// The controller's writes the cache may not have seen yet, by object name.
#[derive(Clone, Debug)]
pub struct UnseenWrites<T> {
    /// name → (the `resourceVersion` the write replaced, what the write made: `None` = deleted).
    by_name: BTreeMap<String, (String, Option<T>)>,
    /// name → (what a create made, when).
    created: BTreeMap<String, (T, Instant)>,
}

impl<T> Default for UnseenWrites<T> {
    fn default() -> Self {
        UnseenWrites {
            by_name: BTreeMap::new(),
            created: BTreeMap::new(),
        }
    }
}

impl<T: Clone> UnseenWrites<T> {
    /// A write conditional on `replaced` (the `resourceVersion` it was made from) succeeded and
    /// made `written` (`None`: the object was deleted).
    pub fn wrote(&mut self, name: &str, replaced: &str, written: Option<T>) {
        // A write on a create the cache may not show yet: that create now made what it wrote.
        match (self.created.get_mut(name), &written) {
            (Some(create), Some(w)) => create.0 = w.clone(),
            (Some(_), None) => {
                self.created.remove(name);
            }
            (None, _) => {}
        }
        self.by_name.insert(name.to_string(), (replaced.to_string(), written));
    }

    /// A create of `name` succeeded at `at` and made `written`.
    pub fn created(&mut self, name: &str, written: T, at: Instant) {
        self.by_name.remove(name);
        self.created.insert(name.to_string(), (written, at));
    }

    /// `cached` (every object of the set the cache shows; `key` gives an object's name and
    /// `resourceVersion`) with each object the cache shows at a `resourceVersion` one of our
    /// writes replaced swapped for what that write made; expectations the cache has moved past
    /// are forgotten. Each create the cache does not show yet (made less than [`CREATE_KEPT`]
    /// before `now`) is added in name order (`cached` comes in name order).
    pub fn overlay(&mut self, cached: Vec<T>, key: impl Fn(&T) -> (&str, &str), now: Instant) -> Vec<T> {
        if self.by_name.is_empty() && self.created.is_empty() {
            return cached;
        }
        let mut out = Vec::with_capacity(cached.len());
        let mut stale = BTreeMap::new();
        for object in cached {
            let (name, rv) = key(&object);
            if !self.created.is_empty() {
                self.created.remove(name);
            }
            match self.by_name.remove_entry(name) {
                Some((name, (replaced, written))) if replaced == rv => {
                    out.extend(written.clone());
                    stale.insert(name, (replaced, written));
                }
                // The cache shows something else: our write or a later change.
                _ => out.push(object),
            }
        }
        self.created
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < CREATE_KEPT);
        // An object the cache no longer shows was deleted after our write: forgotten too, but
        // for a write on a create the cache has not shown yet.
        let unseen = std::mem::take(&mut self.by_name);
        stale.extend(unseen.into_iter().filter(|(name, _)| self.created.contains_key(name)));
        self.by_name = stale;
        if !self.created.is_empty() {
            out.extend(self.created.values().map(|(object, _)| object.clone()));
            out.sort_by(|a, b| key(a).0.cmp(key(b).0));
        }
        out
    }

    /// The names of the objects written that the cache has not shown yet.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().chain(self.created.keys()).map(String::as_str)
    }

    /// Writes the cache has not shown yet.
    pub fn len(&self) -> usize {
        self.by_name.len() + self.created.len()
    }

    /// Whether every write has been seen.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty() && self.created.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Instant {
        Instant::now()
    }

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
            e.overlay(cached(&[("a", "5"), ("b", "6")]), key, now()),
            vec!["a@7 (ours)".to_string(), "b@6".into()]
        );
        assert_eq!(e.len(), 1, "still expected");
        // The cache shows our write: the cache is used, the expectation ends.
        assert_eq!(
            e.overlay(cached(&[("a", "7"), ("b", "6")]), key, now()),
            vec!["a@7".to_string(), "b@6".into()]
        );
        assert!(e.is_empty());
        // Once ended, an older view is not corrected any more (it cannot come back: caches only
        // move forward).
        assert_eq!(e.overlay(cached(&[("a", "5")]), key, now()), vec!["a@5".to_string()]);
    }

    #[test]
    fn a_later_change_by_someone_else_is_never_hidden() {
        let mut e = UnseenWrites::default();
        e.wrote("a", "5", Some("a@7 (ours)".to_string()));
        // The agent renewed after our write (the cache skipped our version).
        assert_eq!(e.overlay(cached(&[("a", "9")]), key, now()), vec!["a@9".to_string()]);
        assert!(e.is_empty());
        // Deleted after our write: the cache shows no object, nothing is brought back.
        e.wrote("b", "3", Some("b@4 (ours)".to_string()));
        assert_eq!(e.overlay(cached(&[]), key, now()), Vec::<String>::new());
        assert!(e.is_empty());
    }

    #[test]
    fn a_delete_hides_the_object_until_the_cache_sees_it_gone() {
        let mut e = UnseenWrites::default();
        e.wrote("a", "5", None);
        assert_eq!(
            e.overlay(cached(&[("a", "5"), ("b", "1")]), key, now()),
            vec!["b@1".to_string()]
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e.overlay(cached(&[("b", "1")]), key, now()), vec!["b@1".to_string()]);
        assert!(e.is_empty());
    }

    #[test]
    fn a_create_is_seen_until_the_cache_shows_it_or_for_a_while() {
        let mut e = UnseenWrites::default();
        let t = Instant::now();
        e.created("b", "b@1 (ours)".to_string(), t);
        // Not in the cache yet: seen in its place, in name order.
        assert_eq!(
            e.overlay(cached(&[("a", "5"), ("c", "6")]), key, t),
            vec!["a@5".to_string(), "b@1 (ours)".into(), "c@6".into()]
        );
        assert_eq!(e.names().collect::<Vec<_>>(), ["b"]);
        // The cache shows it (or a later change): the cache is used, the expectation ends.
        assert_eq!(e.overlay(cached(&[("b", "2")]), key, t), vec!["b@2".to_string()]);
        assert!(e.is_empty());
        // Written again before the cache showed it: the later write is seen.
        e.created("c", "c@1 (ours)".to_string(), t);
        e.wrote("c", "1", Some("c@2 (ours)".to_string()));
        assert_eq!(e.overlay(Vec::new(), key, t), vec!["c@2 (ours)".to_string()]);
        assert_eq!(e.overlay(cached(&[("c", "1")]), key, t), vec!["c@2 (ours)".to_string()]);
        assert_eq!(e.overlay(cached(&[("c", "2")]), key, t), vec!["c@2".to_string()]);
        assert!(e.is_empty());
        // Never shown (deleted before the watch caught up): forgotten after a while.
        e.created("d", "d@1 (ours)".to_string(), t);
        assert_eq!(e.overlay(Vec::new(), key, t + CREATE_KEPT / 2).len(), 1);
        assert_eq!(e.overlay(Vec::new(), key, t + CREATE_KEPT), Vec::<String>::new());
        assert!(e.is_empty());
    }
}
