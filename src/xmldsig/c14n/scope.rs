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

/// Up to this many live entries, look-ups scan rather than hash, and no hash index is kept: a
/// DUIS request binds three or four namespaces, so the index is never built for one.
const LINEAR_SCAN: usize = 8;

pub(crate) struct ScopedMap<'a, V> {
    /// Every live entry, with the entry it shadows for the same key.
    entries: Vec<Entry<'a, V>>,
    /// The newest entry for each key while there are more than [`LINEAR_SCAN`] entries; empty
    /// (and unallocated until first needed) otherwise.
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
    /// Allocates nothing until the first scope is entered.
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            newest: HashMap::default(),
            scopes: Vec::new(),
        }
    }

    pub(crate) fn enter(&mut self) {
        if self.scopes.capacity() == 0 {
            // One allocation for a typical document's depth rather than several doublings.
            self.scopes.reserve(16);
        }
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
            if self.entries.len() >= LINEAR_SCAN {
                // The index was kept before this pop; keep it right for what remains.
                match entry.shadows {
                    Some(older) => self.newest.insert(entry.key, older),
                    None => self.newest.remove(entry.key),
                };
            }
        }
        if self.entries.len() <= LINEAR_SCAN && !self.newest.is_empty() {
            self.newest.clear();
        }
    }

    /// Binds `key` in the innermost scope; returns the entry's index (stable while in scope).
    pub(crate) fn insert(&mut self, key: &'a str, value: V) -> usize {
        let index = self.entries.len();
        let shadows = self.index_of(key);
        self.entries.push(Entry {
            key,
            value,
            shadows,
        });
        if self.entries.len() == LINEAR_SCAN + 1 {
            // Past the scan's reach: index every live entry, later ones winning.
            for (i, e) in self.entries.iter().enumerate() {
                self.newest.insert(e.key, i);
            }
        } else if self.entries.len() > LINEAR_SCAN {
            self.newest.insert(key, index);
        }
        index
    }

    pub(crate) fn index_of(&self, key: &str) -> Option<usize> {
        // Every entry is live and a key's newest entry is its last, so with a few entries a
        // backward scan finds it without hashing.
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
        let small = self.entries.len() <= LINEAR_SCAN;
        let scanned = self
            .entries
            .iter()
            .enumerate()
            .filter(move |&(i, e)| small && !self.entries[i + 1..].iter().any(|l| l.key == e.key))
            .map(|(i, e)| (e.key, i));
        let indexed = self
            .newest
            .iter()
            .filter(move |_| !small)
            .map(|(&key, &index)| (key, index));
        scanned.chain(indexed)
    }

    /// The value of a live entry; `None` for an index that has gone out of scope.
    pub(crate) fn value(&self, index: usize) -> Option<&V> {
        self.entries.get(index).map(|e| &e.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the switch to the hash index and back: every look-up as a plain model gives.
    #[test]
    fn look_ups_match_a_model_across_the_scan_limit() {
        let keys = ["", "a", "b", "c", "ds", "sr", "x", "y", "z", "w"];
        let mut map = ScopedMap::new();
        // The model: one (key, value) list per scope.
        let mut model: Vec<Vec<(&str, usize)>> = Vec::new();
        let mut n = 0;
        // How often the map went over the scan limit or back under it.
        let (mut switches, mut was_big) = (0, false);
        let mut note = |len: usize| {
            let big = len > LINEAR_SCAN;
            switches += usize::from(big != was_big);
            was_big = big;
        };
        for round in 0..6 {
            if round % 2 == 0 {
                // Back to nothing every other round.
                while !model.is_empty() {
                    map.leave();
                    model.pop();
                }
            }
            for depth in 0..5 {
                map.enter();
                model.push(Vec::new());
                for k in keys
                    .iter()
                    .copied()
                    .skip((round + depth) % 3 * 2)
                    .step_by(2 + depth % 2)
                {
                    if !map.bound_in_innermost(k) {
                        assert_eq!(map.insert(k, n), model.iter().map(Vec::len).sum::<usize>());
                        model.last_mut().unwrap().push((k, n));
                        n += 1;
                    }
                }
                note(map.entries.len());
                for k in keys {
                    let want = model.iter().flatten().rev().find(|(key, _)| *key == k);
                    assert_eq!(map.get(k), want.map(|(_, v)| v), "{k}");
                }
                let mut live: Vec<_> = map
                    .live()
                    .map(|(k, i)| (k, *map.value(i).unwrap()))
                    .collect();
                live.sort_unstable();
                let mut want: Vec<_> = keys
                    .iter()
                    .filter_map(|k| {
                        model
                            .iter()
                            .flatten()
                            .rev()
                            .find(|(key, _)| key == k)
                            .copied()
                    })
                    .collect();
                want.sort_unstable();
                assert_eq!(live, want);
            }
            // Out of all but the first of this round's scopes, so that the next round starts
            // small again.
            for _ in 0..4 {
                map.leave();
                model.pop();
            }
            note(map.entries.len());
        }
        for _ in 0..model.len() {
            map.leave();
        }
        assert_eq!(map.live().count(), 0);
        assert_eq!(map.get("a"), None);
        assert!(switches >= 4, "crossed the scan limit {switches} times");
    }
}
