//! A map from prefix to value with nested scopes, for namespace bindings and for the
//! declarations already rendered. Lookups and inserts are O(1); leaving a scope undoes exactly
//! what it inserted, so the whole walk stays linear in the document.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: keys are namespace prefixes, a few bytes each. A peer could choose colliding
/// prefixes, but the live entries are bounded by depth × attributes per element
/// ([`C14nLimits`](super::C14nLimits)), so a collision chain is bounded too.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Up to this many live entries, look-ups scan rather than hash.
const LINEAR_SCAN: usize = 8;

pub(crate) struct ScopedMap<'a, V> {
    /// Every live entry, with the entry it shadows for the same key.
    entries: Vec<Entry<'a, V>>,
    /// The newest entry for each key.
    newest: HashMap<&'a str, usize, BuildHasherDefault<Fnv>>,
    /// `entries.len()` when each open scope began.
    scopes: Vec<usize>,
}

struct Entry<'a, V> {
    key: &'a str,
    value: V,
    shadows: Option<usize>,
}

impl<'a, V> ScopedMap<'a, V> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::with_capacity(8),
            newest: HashMap::with_capacity_and_hasher(8, BuildHasherDefault::default()),
            scopes: Vec::with_capacity(16),
        }
    }

    pub(crate) fn enter(&mut self) {
        self.scopes.push(self.entries.len());
    }

    /// Leaves the innermost scope (a no-op when none is open).
    pub(crate) fn leave(&mut self) {
        let Some(mark) = self.scopes.pop() else {
            return;
        };
        while self.entries.len() > mark {
            let Some(entry) = self.entries.pop() else {
                break;
            };
            match entry.shadows {
                Some(older) => self.newest.insert(entry.key, older),
                None => self.newest.remove(entry.key),
            };
        }
    }

    /// Binds `key` in the innermost scope; returns the entry's index (stable while in scope).
    pub(crate) fn insert(&mut self, key: &'a str, value: V) -> usize {
        let index = self.entries.len();
        let shadows = self.newest.insert(key, index);
        self.entries.push(Entry {
            key,
            value,
            shadows,
        });
        index
    }

    pub(crate) fn index_of(&self, key: &str) -> Option<usize> {
        // Every entry is live and a key's newest entry is its last, so with a few entries (a
        // request declares three or four namespaces) a backward scan finds it without hashing.
        if self.entries.len() <= LINEAR_SCAN {
            return self.entries.iter().rposition(|e| e.key == key);
        }
        self.newest.get(key).copied()
    }

    /// Whether `key` was bound in the innermost scope (a second declaration in one tag).
    pub(crate) fn bound_in_innermost(&self, key: &str) -> bool {
        let mark = self.scopes.last().copied().unwrap_or(0);
        self.index_of(key).is_some_and(|i| i >= mark)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.index_of(key).and_then(|i| self.value(i))
    }

    /// The newest entry of every key, in no particular order.
    pub(crate) fn live(&self) -> impl Iterator<Item = (&'a str, usize)> + '_ {
        self.newest.iter().map(|(&key, &index)| (key, index))
    }

    /// The value of a live entry; `None` for an index that has gone out of scope.
    pub(crate) fn value(&self, index: usize) -> Option<&V> {
        self.entries.get(index).map(|e| &e.value)
    }
}
