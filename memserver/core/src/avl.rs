//! An AVL map from `u64` keys to small values, its nodes in an [`Arena`]
//! (allocated as it grows, so its size is bounded by memory; a test may
//! give a cap). Each entry carries a `span` and each subtree the
//! largest span in it (Linux's `subtree_max_size` for vmap areas), so the
//! lowest key whose span is at least `n` is found in O(log n). Insert,
//! remove and lookups are O(log n) in the worst case. Running out of
//! capacity or memory is an error, never a panic.

use crate::arena::{Arena, ArenaError};

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node<V> {
    key: u64,
    span: u64,
    max_span: u64,
    height: u8,
    left: u32,
    right: u32,
    val: V,
}

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// The map holds as many entries as its cap allows.
    Full,
    /// No memory for another entry.
    OutOfMemory,
    /// The key is already present.
    Duplicate,
}

/// An entry as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a, V> {
    pub(crate) key: u64,
    pub(crate) span: u64,
    pub(crate) val: &'a V,
}

/// The map.
pub(crate) struct AvlMap<V> {
    nodes: Arena<Node<V>>,
    root: u32,
}

impl<V: Copy> AvlMap<V> {
    /// An empty map bounded by memory alone.
    pub(crate) const fn new() -> Self {
        Self::with_cap(usize::MAX)
    }

    /// An empty map of at most `cap` entries.
    pub(crate) const fn with_cap(cap: usize) -> Self {
        Self { nodes: Arena::new(cap), root: NIL }
    }

    /// Makes room for entries up to `total` in all, so that inserts up to
    /// that many cannot fail for want of memory.
    pub(crate) fn reserve_total(&mut self, total: usize) -> Result<(), InsertError> {
        self.nodes.reserve(total.saturating_sub(self.len())).map_err(|e| match e {
            ArenaError::Full => InsertError::Full,
            ArenaError::OutOfMemory => InsertError::OutOfMemory,
        })
    }

    fn n(&self, t: u32) -> Option<&Node<V>> {
        self.nodes.get(t)
    }

    fn m(&mut self, t: u32) -> Option<&mut Node<V>> {
        self.nodes.get_mut(t)
    }

    fn left(&self, t: u32) -> u32 {
        self.n(t).map_or(NIL, |n| n.left)
    }

    fn right(&self, t: u32) -> u32 {
        self.n(t).map_or(NIL, |n| n.right)
    }

    fn height(&self, t: u32) -> u8 {
        self.n(t).map_or(0, |n| n.height)
    }

    fn max_span(&self, t: u32) -> u64 {
        self.n(t).map_or(0, |n| n.max_span)
    }

    fn set_left(&mut self, t: u32, child: u32) {
        if let Some(n) = self.m(t) {
            n.left = child;
        }
    }

    fn set_right(&mut self, t: u32, child: u32) {
        if let Some(n) = self.m(t) {
            n.right = child;
        }
    }

    fn update(&mut self, t: u32) {
        let (l, r) = (self.left(t), self.right(t));
        let height = 1 + self.height(l).max(self.height(r));
        let children_max = self.max_span(l).max(self.max_span(r));
        if let Some(n) = self.m(t) {
            n.height = height;
            n.max_span = n.span.max(children_max);
        }
    }

    fn rotate_right(&mut self, t: u32) -> u32 {
        let l = self.left(t);
        self.set_left(t, self.right(l));
        self.update(t);
        self.set_right(l, t);
        self.update(l);
        l
    }

    fn rotate_left(&mut self, t: u32) -> u32 {
        let r = self.right(t);
        self.set_right(t, self.left(r));
        self.update(t);
        self.set_left(r, t);
        self.update(r);
        r
    }

    fn rebalance(&mut self, t: u32) -> u32 {
        self.update(t);
        let (l, r) = (self.left(t), self.right(t));
        let (hl, hr) = (self.height(l), self.height(r));
        if hl > hr + 1 {
            if self.height(self.left(l)) < self.height(self.right(l)) {
                let nl = self.rotate_left(l);
                self.set_left(t, nl);
            }
            return self.rotate_right(t);
        }
        if hr > hl + 1 {
            if self.height(self.right(r)) < self.height(self.left(r)) {
                let nr = self.rotate_right(r);
                self.set_right(t, nr);
            }
            return self.rotate_left(t);
        }
        t
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    fn find(&self, key: u64) -> u32 {
        let mut t = self.root;
        while let Some(n) = self.n(t) {
            if key == n.key {
                return t;
            }
            t = if key < n.key { n.left } else { n.right };
        }
        NIL
    }

    /// The entry with `key`.
    pub(crate) fn get(&self, key: u64) -> Option<Entry<'_, V>> {
        self.n(self.find(key)).map(|n| Entry { key: n.key, span: n.span, val: &n.val })
    }

    /// The value with `key`, to change (its key and span stay).
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        let t = self.find(key);
        self.m(t).map(|n| &mut n.val)
    }

    /// Add an entry.
    pub(crate) fn insert(&mut self, key: u64, span: u64, val: V) -> Result<(), InsertError> {
        if self.find(key) != NIL {
            return Err(InsertError::Duplicate);
        }
        let node = Node { key, span, max_span: span, height: 1, left: NIL, right: NIL, val };
        let t = self.nodes.insert(node).map_err(|e| match e {
            ArenaError::Full => InsertError::Full,
            ArenaError::OutOfMemory => InsertError::OutOfMemory,
        })?;
        self.root = self.insert_at(self.root, t, key);
        Ok(())
    }

    fn insert_at(&mut self, t: u32, new: u32, key: u64) -> u32 {
        let Some(node_key) = self.n(t).map(|n| n.key) else { return new };
        if key < node_key {
            let l = self.insert_at(self.left(t), new, key);
            self.set_left(t, l);
        } else {
            let r = self.insert_at(self.right(t), new, key);
            self.set_right(t, r);
        }
        self.rebalance(t)
    }

    /// Remove the entry with `key`, returning its span and value.
    pub(crate) fn remove(&mut self, key: u64) -> Option<(u64, V)> {
        let mut removed = NIL;
        self.root = self.remove_at(self.root, key, &mut removed);
        let node = self.nodes.remove(removed)?;
        Some((node.span, node.val))
    }

    fn remove_at(&mut self, t: u32, key: u64, removed: &mut u32) -> u32 {
        let Some(node_key) = self.n(t).map(|n| n.key) else { return NIL };
        if key < node_key {
            let l = self.remove_at(self.left(t), key, removed);
            self.set_left(t, l);
        } else if key > node_key {
            let r = self.remove_at(self.right(t), key, removed);
            self.set_right(t, r);
        } else {
            *removed = t;
            let (l, r) = (self.left(t), self.right(t));
            if l == NIL {
                return r;
            }
            if r == NIL {
                return l;
            }
            let mut min = NIL;
            let rest = self.remove_min(r, &mut min);
            self.set_left(min, l);
            self.set_right(min, rest);
            return self.rebalance(min);
        }
        self.rebalance(t)
    }

    fn remove_min(&mut self, t: u32, min: &mut u32) -> u32 {
        let l = self.left(t);
        if l == NIL {
            *min = t;
            return self.right(t);
        }
        let nl = self.remove_min(l, min);
        self.set_left(t, nl);
        self.rebalance(t)
    }

    fn entry(&self, t: u32) -> Option<Entry<'_, V>> {
        self.n(t).map(|n| Entry { key: n.key, span: n.span, val: &n.val })
    }

    /// The entry with the largest key `<= key`.
    pub(crate) fn floor(&self, key: u64) -> Option<Entry<'_, V>> {
        let (mut t, mut best) = (self.root, NIL);
        while let Some(n) = self.n(t) {
            if n.key <= key {
                best = t;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        self.entry(best)
    }

    /// The entry with the smallest key `>= key`.
    pub(crate) fn ceil(&self, key: u64) -> Option<Entry<'_, V>> {
        let (mut t, mut best) = (self.root, NIL);
        while let Some(n) = self.n(t) {
            if n.key >= key {
                best = t;
                t = n.left;
            } else {
                t = n.right;
            }
        }
        self.entry(best)
    }

    /// The entry with the lowest key whose span is at least `min_span`.
    pub(crate) fn first_fit(&self, min_span: u64) -> Option<Entry<'_, V>> {
        let mut t = self.root;
        if self.max_span(t) < min_span {
            return None;
        }
        while let Some(n) = self.n(t) {
            if n.left != NIL && self.max_span(n.left) >= min_span {
                t = n.left;
            } else if n.span >= min_span {
                return self.entry(t);
            } else {
                t = n.right;
            }
        }
        None
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Entry<'_, V>> + '_ {
        let mut next = self.ceil(0).map(|e| e.key);
        core::iter::from_fn(move || {
            let e = self.ceil(next?)?;
            next = e.key.checked_add(1);
            Some(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn check_shape<V: Copy>(map: &AvlMap<V>, t: u32, lo: u64, hi: u64) -> (u8, u64) {
        let Some(n) = map.n(t) else { return (0, 0) };
        assert!(n.key >= lo && n.key <= hi, "order");
        let (hl, ml) = check_shape(map, n.left, lo, n.key.saturating_sub(1));
        let (hr, mr) = check_shape(map, n.right, n.key.saturating_add(1), hi);
        assert!(hl.abs_diff(hr) <= 1, "balance");
        assert_eq!(n.height, 1 + hl.max(hr));
        assert_eq!(n.max_span, n.span.max(ml).max(mr));
        (n.height, n.max_span)
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec((0u8..4, 0u64..64, 0u64..100), 1..200)) {
            let mut map: AvlMap<u64> = AvlMap::with_cap(48);
            let mut model = BTreeMap::new();
            for (op, key, span) in ops {
                match op {
                    0 | 1 => {
                        let expect = if model.contains_key(&key) {
                            Err(InsertError::Duplicate)
                        } else if model.len() == 48 {
                            Err(InsertError::Full)
                        } else {
                            model.insert(key, span);
                            Ok(())
                        };
                        prop_assert_eq!(map.insert(key, span, key * 10), expect);
                    }
                    2 => prop_assert_eq!(map.remove(key), model.remove(&key).map(|s| (s, key * 10))),
                    _ => {
                        let fit = model.iter().find(|(_, s)| **s >= span).map(|(k, _)| *k);
                        prop_assert_eq!(map.first_fit(span).map(|e| e.key), fit);
                        let floor = model.range(..=key).next_back().map(|(k, _)| *k);
                        prop_assert_eq!(map.floor(key).map(|e| e.key), floor);
                        let ceil = model.range(key..).next().map(|(k, _)| *k);
                        prop_assert_eq!(map.ceil(key).map(|e| e.key), ceil);
                    }
                }
                check_shape(&map, map.root, 0, u64::MAX);
                prop_assert_eq!(map.len(), model.len());
                let keys: std::vec::Vec<u64> = map.iter().map(|e| e.key).collect();
                prop_assert_eq!(keys, model.keys().copied().collect::<std::vec::Vec<_>>());
            }
        }
    }

    #[test]
    fn values_can_be_changed_in_place() {
        let mut map: AvlMap<u32> = AvlMap::new();
        assert_eq!(map.insert(5, 1, 7), Ok(()));
        if let Some(v) = map.get_mut(5) {
            *v = 8;
        }
        assert_eq!(map.get(5).map(|e| *e.val), Some(8));
        assert!(map.get_mut(6).is_none());
    }
}
