//! [`Labels`]: a pod's labels as the watch caches hold them. A `BTreeMap<String, String>`
//! allocates a whole B-tree node (≈ 540 bytes) for even one label, plus two `String`s per
//! label; a cache of tens of thousands of pods held mostly that. Here every key and value sits
//! in one string, found through one array of offsets: two allocations per pod.
use std::collections::BTreeMap;
use std::fmt;

/// Label keys and values, sorted by key (see the module).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Every key and value, back to back, in key order.
    text: Box<str>,
    /// Where each key, then its value, ends in `text`.
    ends: Box<[u32]>,
}

impl Labels {
    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every (key, value), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let at = |i: usize| -> usize {
            if i == 0 {
                0
            } else {
                self.ends[i - 1] as usize
            }
        };
        (0..self.ends.len() / 2).map(move |p| {
            let (k0, k1, v1) = (at(2 * p), self.ends[2 * p] as usize, self.ends[2 * p + 1] as usize);
            (&self.text[k0..k1], &self.text[k1..v1])
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// As the map the API types use.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        pairs.dedup_by(|a, b| a.0.as_ref() == b.0.as_ref());
        let mut text = String::with_capacity(pairs.iter().map(|(k, v)| k.as_ref().len() + v.as_ref().len()).sum());
        let mut ends = Vec::with_capacity(pairs.len() * 2);
        for (k, v) in &pairs {
            // Labels are at most 63 + 253 bytes each and annotations 256 KiB in all: a u32 holds
            // any offset the API server lets through; saturate rather than wrap if not.
            text.push_str(k.as_ref());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            text.push_str(v.as_ref());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        if u32::try_from(text.len()).is_err() {
            return Labels::default();
        }
        Labels {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(map: &BTreeMap<String, String>) -> Self {
        map.iter().collect()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_the_map_it_came_from() {
        let map: BTreeMap<String, String> = [("b", "2"), ("a", ""), ("baton.dev/slot", "17")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let labels = Labels::from(&map);
        assert_eq!(labels.to_map(), map);
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.get("a"), Some(""));
        assert_eq!(labels.get("baton.dev/slot"), Some("17"));
        assert_eq!(labels.get("c"), None);
        assert_eq!(
            labels.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a", "b", "baton.dev/slot"]
        );
        assert!(Labels::default().is_empty() && Labels::default().get("a").is_none());
        // A key and value that run together in the text stay apart.
        let l: Labels = [("ab", "c"), ("a", "bc")].into_iter().collect();
        assert_eq!((l.get("a"), l.get("ab")), (Some("bc"), Some("c")));
        assert_eq!(format!("{l:?}"), r#"{"a": "bc", "ab": "c"}"#);
    }
}
