//! Fixed-size in-memory keys for event and response ids, and the bounded "recently seen" map
//! built on them.
//!
//! The dedup window and the feedback join index hundreds of thousands of recent ids per
//! partition, and every event passes through both. Keeping the id strings would cost an
//! allocation per id and per eviction; a 128-bit XXH3 of the id is a plain `u128` instead. The
//! seed is drawn per process, so an attacker who controls ids cannot aim for collisions, and 128
//! bits make accidental ones negligible (about 1e-29 for a million ids). These keys never leave
//! the process, so the seed changing between runs costs nothing.
//!
//! [`RecentMap`] replaces an LRU: an LRU's linked list costs several cache misses and a node
//! per entry on every insert, while two plain hash maps used as generations cost one probe.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// A map hasher for keys that are already uniform hashes: mixing them again with SipHash buys
/// nothing.
pub type IdKeyHasher = rustc_hash::FxBuildHasher;

/// The process's id key of `id`.
pub fn id_key(id: &str) -> u128 {
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x6472_6966_7477_6174_u64));
    twox_hash::XxHash3_128::oneshot_with_seed(seed, id.as_bytes())
}

/// The process's key of `id` within `scope` (an event id within its app): the same id in two
/// scopes gives two keys. One half is rotated so that the pair is ordered, not a set.
pub fn scoped_id_key(scope: &str, id: &str) -> u128 {
    id_key(id) ^ id_key(scope).rotate_left(64)
}

/// The most recently inserted keys and their values, bounded: always at least the last
/// `capacity` insertions (fewer only if keys repeat), never more than `2 x capacity` entries.
///
/// Two generations: inserts go to `current`; when it holds `capacity` keys it becomes
/// `previous` and the old `previous` is dropped whole. Lookups check both.
#[derive(Debug)]
pub struct RecentMap<V> {
    current: HashMap<u128, V, IdKeyHasher>,
    previous: HashMap<u128, V, IdKeyHasher>,
    capacity: usize,
}

impl<V> RecentMap<V> {
    /// An empty map remembering at least the last `capacity` keys (0 is treated as 1).
    pub fn new(capacity: usize) -> Self {
        Self { current: HashMap::default(), previous: HashMap::default(), capacity: capacity.max(1) }
    }

    /// Insert or replace; returns whether the key was already present (in either generation).
    pub fn insert(&mut self, key: u128, value: V) -> bool {
        if self.current.len() >= self.capacity && !self.current.contains_key(&key) {
            // The retiring generation's table becomes the new current one, emptied but keeping
            // its allocation: dropping it and reserving afresh returned megabytes to the
            // allocator and page-faulted them back in at every rotation.
            std::mem::swap(&mut self.previous, &mut self.current);
            self.current.clear();
            self.current.reserve(self.capacity);
        }
        let in_previous = self.previous.remove(&key).is_some();
        self.current.insert(key, value).is_some() || in_previous
    }

    /// The value of a remembered key.
    pub fn get(&self, key: &u128) -> Option<&V> {
        self.current.get(key).or_else(|| self.previous.get(key))
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_within_the_process_and_distinct() {
        assert_eq!(id_key("ev-1"), id_key("ev-1"));
        let keys: std::collections::HashSet<u128> = (0..10_000).map(|i| id_key(&format!("ev-{i}"))).collect();
        assert_eq!(keys.len(), 10_000);
        assert_ne!(id_key(""), id_key(" "));
    }

    #[test]
    fn recent_map_remembers_at_least_capacity_and_at_most_twice() {
        let mut recent = RecentMap::new(100);
        for i in 0..1_000u128 {
            assert!(!recent.insert(i, i * 2), "{i} is new");
            // The last 100 insertions are always remembered, with their values.
            let oldest_kept = i.saturating_sub(99);
            assert_eq!(recent.get(&oldest_kept), Some(&(oldest_kept * 2)), "{oldest_kept} after {i}");
            assert!(recent.len() <= 200);
        }
        assert_eq!(recent.get(&0), None, "old keys are forgotten");
        // A repeated key is reported and moves to the newest generation.
        assert!(recent.insert(950, 0));
        assert_eq!(recent.get(&950), Some(&0));
        let mut empty: RecentMap<()> = RecentMap::new(0);
        assert!(empty.is_empty());
        assert!(!empty.insert(1, ()));
        assert!(empty.insert(1, ()));
    }
}
