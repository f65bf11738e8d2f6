//! Items by a string key: in key order for walking, hashed for lookups. A pass looks up every
//! listener in a few of these, so a lookup must not cost a string comparison per tree level
//! (listener ids share long prefixes, and a set holds up to 100,000 of them).

use fnv::FnvHashMap;

/// Items by key, the first of each key kept (as `BTreeMap::entry().or_insert` would).
pub(crate) struct Keyed<'a, T> {
    /// In key order.
    order: Vec<(&'a str, &'a T)>,
    index: FnvHashMap<&'a str, &'a T>,
}

impl<'a, T> Keyed<'a, T> {
    /// `items` by `key`; of items with equal keys the first is kept.
    pub(crate) fn of(items: impl Iterator<Item = &'a T>, key: impl Fn(&'a T) -> &'a str) -> Self {
        let mut order: Vec<(&'a str, &'a T)> = items.map(|item| (key(item), item)).collect();
        if !order.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable: of equal keys the first stays first, and `dedup` keeps it.
            order.sort_by(|a, b| a.0.cmp(b.0));
            order.dedup_by(|later, first| later.0 == first.0);
        }
        let mut index = FnvHashMap::with_capacity_and_hasher(order.len(), Default::default());
        index.extend(order.iter().copied());
        Keyed { order, index }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a T> {
        self.index.get(key).copied()
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// `(key, item)` in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, &'a T)> + '_ {
        self.order.iter().copied()
    }

    /// The items in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &'a T> + '_ {
        self.order.iter().map(|(_, item)| *item)
    }
}

#[cfg(test)]
mod tests {
    use super::Keyed;

    #[test]
    fn the_first_of_equal_keys_is_kept_and_walks_are_in_key_order() {
        let items = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)];
        let keyed = Keyed::of(items.iter(), |i| i.0);
        let walked: Vec<(&str, i32)> = keyed.iter().map(|(k, i)| (k, i.1)).collect();
        assert_eq!(walked, vec![("a", 2), ("b", 1), ("c", 4)]);
        assert_eq!(keyed.get("b").map(|i| i.1), Some(1));
        assert!(keyed.contains_key("c") && !keyed.contains_key("d"));
        let sorted = [("a", 1), ("b", 2)];
        let keyed = Keyed::of(sorted.iter(), |i| i.0);
        assert_eq!(keyed.values().map(|i| i.1).collect::<Vec<_>>(), vec![1, 2]);
    }
}
