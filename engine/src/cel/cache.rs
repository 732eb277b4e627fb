//! The caches of compiled CEL programs and regexes, bounded by an estimate of the bytes they hold
//! rather than by a count: a few huge expressions or patterns cannot hold more memory than many
//! small ones. When an insert would pass the bound, the cache is emptied and refilled, which only
//! costs compiling again.

use std::collections::HashMap;
use std::sync::Mutex;

/// A map from source text to what was compiled from it, holding at most `limit` estimated bytes.
pub struct Bounded<V> {
    inner: Mutex<Inner<V>>,
    limit: usize,
    /// The bytes one entry is charged, from its source text.
    weigh: fn(&str) -> usize,
}

struct Inner<V> {
    entries: HashMap<String, V>,
    bytes: usize,
}

impl<V: Clone> Bounded<V> {
    pub fn new(limit: usize, weigh: fn(&str) -> usize) -> Bounded<V> {
        Bounded {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                bytes: 0,
            }),
            limit,
            weigh,
        }
    }

    pub fn get(&self, source: &str) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.entries.get(source).cloned()
    }

    /// Keep `value` for `source`, unless it alone is over the bound.
    pub fn insert(&self, source: &str, value: V) {
        let weight = (self.weigh)(source);
        if weight > self.limit {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.entries.contains_key(source) {
            return;
        }
        if inner.bytes + weight > self.limit {
            inner.entries.clear();
            inner.bytes = 0;
        }
        inner.entries.insert(source.to_owned(), value);
        inner.bytes += weight;
    }

    /// The estimated bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_in_bytes() {
        let cache = Bounded::new(1_000, |source| source.len() * 10);
        cache.insert("a", 1);
        cache.insert("bb", 2);
        assert_eq!(
            (cache.get("a"), cache.get("bb"), cache.bytes()),
            (Some(1), Some(2), 30)
        );
        // Something big empties the cache rather than growing past the bound.
        cache.insert(&"c".repeat(100), 3);
        assert_eq!((cache.get("a"), cache.bytes()), (None, 1_000));
        // Something over the bound on its own is not kept at all.
        cache.insert(&"d".repeat(101), 4);
        assert_eq!((cache.get(&"d".repeat(101)), cache.bytes()), (None, 1_000));
    }
}
