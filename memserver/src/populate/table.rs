//! The canonical kernel-region table: a real 4-level structure (fixed pools
//! of 512-entry nodes and of leaf records) recording, for every mapped page,
//! its frame, size, rights, how the frame is held, and the set of registered
//! spaces it is installed in; for every structure, its handle in each space.
//!
//! Reading (translate, iteration) is public. Every mutator is `pub(super)`:
//! only the populate path, which owns the one instance, can change it.
//! Guarantees: no node other than the root is ever empty (removal prunes), a
//! failed insert changes nothing, and no operation panics.

use heapless::Vec;

use crate::backend::Rights;
use crate::error::{Error, Limit};
use crate::ids::SpaceId;
use crate::layout::{Level, LevelMask, PageSize, RegionAddr, ENTRIES};
use crate::limits::{MAX_LEAVES, MAX_SPACES, MAX_TABLES};
use crate::pool::IdPool;

/// Index of a node in the pool; the root is node 0.
pub(super) type NodeId = u16;
/// Index of a leaf record in the pool.
pub(super) type LeafId = u16;

const ROOT: NodeId = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Empty,
    Table(NodeId),
    Leaf(LeafId),
}

/// How the canonical table holds a leaf's frame, which decides how the frame
/// is released when the leaf goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Allocated by the server for this leaf: revoked and freed with it.
    Owned,
    /// Another leaf's owned frame mapped again (vmemmap shared tail): only
    /// this mapping's copies are removed.
    Alias,
    /// Supplied by a client (vmap): only this mapping's copies are removed.
    Borrowed,
}

/// A mapped page of the canonical table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf<F> {
    /// First address of the page (aligned to its size).
    pub addr: RegionAddr,
    /// The frame mapped there.
    pub frame: F,
    /// The page size.
    pub size: PageSize,
    /// The rights of the mapping.
    pub rights: Rights,
    /// How the frame is held.
    pub kind: FrameKind,
    mapped: u32,
}

impl<F> Leaf<F> {
    /// A leaf installed in no space yet.
    pub(super) fn new(addr: RegionAddr, frame: F, size: PageSize, rights: Rights, kind: FrameKind) -> Self {
        Self { addr, frame, size, rights, kind, mapped: 0 }
    }

    /// Whether this leaf is installed in `space`.
    pub fn is_mapped_in(&self, space: SpaceId) -> bool {
        self.mapped & space.bit() != 0
    }

    /// The set of spaces (as a bit mask of space indices) it is installed in.
    pub fn mapped_mask(&self) -> u32 {
        self.mapped
    }

    pub(super) fn set_mapped(&mut self, space: SpaceId, on: bool) {
        if on {
            self.mapped |= space.bit();
        } else {
            self.mapped &= !space.bit();
        }
    }
}

#[derive(Clone, Copy)]
struct Node<S> {
    level: Level,
    base: u64,
    used: u16,
    entries: [Entry; ENTRIES],
    replicas: [Option<S>; MAX_SPACES],
}

impl<S: Copy> Node<S> {
    const fn new(level: Level, base: u64) -> Self {
        Self { level, base, used: 0, entries: [Entry::Empty; ENTRIES], replicas: [None; MAX_SPACES] }
    }
}

/// A structure (other than the root) of the canonical table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Structure<S> {
    /// Its level.
    pub level: Level,
    /// First address it covers.
    pub base: u64,
    /// Its handle in each space it is installed in, by space index.
    pub replicas: [Option<S>; MAX_SPACES],
}

/// Structures a leaf removal left empty and pruned, deepest first.
pub(super) type Pruned<S> = Vec<Structure<S>, 3>;

/// The canonical table.
pub struct Table<F, S> {
    nodes: [Option<Node<S>>; MAX_TABLES],
    leaves: [Option<Leaf<F>>; MAX_LEAVES],
    node_ids: IdPool<MAX_TABLES>,
    leaf_ids: IdPool<MAX_LEAVES>,
}

impl<F: Copy, S: Copy> Table<F, S> {
    /// An empty table: only the root.
    #[allow(clippy::indexing_slicing, reason = "ROOT is a constant index below MAX_TABLES")]
    pub(super) const fn new() -> Self {
        let mut nodes = [None; MAX_TABLES];
        nodes[ROOT as usize] = Some(Node::new(Level::Pml4, 0));
        Self { nodes, leaves: [None; MAX_LEAVES], node_ids: IdPool::new(ROOT + 1), leaf_ids: IdPool::new(0) }
    }

    fn node(&self, id: NodeId) -> Option<&Node<S>> {
        self.nodes.get(id as usize).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut Node<S>> {
        self.nodes.get_mut(id as usize).and_then(Option::as_mut)
    }

    fn entry(&self, id: NodeId, slot: usize) -> Entry {
        self.node(id).and_then(|n| n.entries.get(slot).copied()).unwrap_or(Entry::Empty)
    }

    fn set_entry(&mut self, id: NodeId, slot: usize, new: Entry) {
        if let Some(node) = self.node_mut(id) {
            if let Some(e) = node.entries.get_mut(slot) {
                match (*e == Entry::Empty, new == Entry::Empty) {
                    (true, false) => node.used += 1,
                    (false, true) => node.used -= 1,
                    _ => {}
                }
                *e = new;
            }
        }
    }

    /// The leaf record with pool index `id`, if in use.
    pub(super) fn leaf_by_id(&self, id: LeafId) -> Option<&Leaf<F>> {
        self.leaves.get(id as usize).and_then(Option::as_ref)
    }

    pub(super) fn leaf_by_id_mut(&mut self, id: LeafId) -> Option<&mut Leaf<F>> {
        self.leaves.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Pool indices of leaves, for scans that mutate as they go.
    pub(super) fn leaf_ids() -> impl Iterator<Item = LeafId> {
        0..MAX_LEAVES as LeafId
    }

    /// Pool indices of non-root nodes.
    pub(super) fn node_ids() -> impl Iterator<Item = NodeId> {
        1..MAX_TABLES as NodeId
    }

    /// The structure with pool index `id`, if in use and not the root.
    pub(super) fn structure_by_id(&self, id: NodeId) -> Option<Structure<S>> {
        if id == ROOT {
            return None;
        }
        self.node(id).map(|n| Structure { level: n.level, base: n.base, replicas: n.replicas })
    }

    pub(super) fn set_replica(&mut self, id: NodeId, space: SpaceId, handle: Option<S>) {
        if let Some(r) = self.node_mut(id).and_then(|n| n.replicas.get_mut(space.index())) {
            *r = handle;
        }
    }

    /// The leaf mapping `addr`, whatever its size.
    pub fn translate(&self, addr: RegionAddr) -> Option<&Leaf<F>> {
        self.find_leaf(addr).and_then(|id| self.leaf_by_id(id))
    }

    pub(super) fn translate_mut(&mut self, addr: RegionAddr) -> Option<&mut Leaf<F>> {
        self.find_leaf(addr).and_then(|id| self.leaf_by_id_mut(id))
    }

    fn find_leaf(&self, addr: RegionAddr) -> Option<LeafId> {
        let raw = addr.get();
        let mut id = ROOT;
        let mut level = Level::Pml4;
        loop {
            match self.entry(id, level.index(raw)) {
                Entry::Empty => return None,
                Entry::Leaf(leaf) => return Some(leaf),
                Entry::Table(next) => {
                    id = next;
                    level = level.below()?;
                }
            }
        }
    }

    /// Whether anything is mapped in the `size`-aligned page containing `addr`.
    pub fn occupied(&self, addr: RegionAddr, size: PageSize) -> bool {
        let raw = addr.get();
        let target = size.leaf_level();
        let mut id = ROOT;
        let mut level = Level::Pml4;
        loop {
            match self.entry(id, level.index(raw)) {
                Entry::Empty => return false,
                Entry::Leaf(_) => return true,
                Entry::Table(_) if level == target => return true,
                Entry::Table(next) => match level.below() {
                    Some(below) => {
                        id = next;
                        level = below;
                    }
                    None => return true,
                },
            }
        }
    }

    /// Nodes below the root on the way to the leaf at `addr`, top down.
    pub(super) fn path(&self, addr: RegionAddr) -> Vec<NodeId, 3> {
        let raw = addr.get();
        let mut out = Vec::new();
        let mut id = ROOT;
        let mut level = Level::Pml4;
        while let Entry::Table(next) = self.entry(id, level.index(raw)) {
            if out.push(next).is_err() {
                break;
            }
            id = next;
            match level.below() {
                Some(below) => level = below,
                None => break,
            }
        }
        out
    }

    /// Insert `leaf`, creating the structures on its way. Reports which
    /// levels were created. On error nothing has changed.
    pub(super) fn insert(&mut self, leaf: Leaf<F>) -> Result<LevelMask, Error> {
        let raw = leaf.addr.get();
        let target = leaf.size.leaf_level();
        if !raw.is_multiple_of(leaf.size.bytes()) {
            return Err(Error::InvalidArgument);
        }
        // Check first, so that a failure leaves the table untouched.
        let mut id = ROOT;
        let mut level = Level::Pml4;
        let mut missing = 0;
        while level != target {
            match self.entry(id, level.index(raw)) {
                Entry::Empty => {
                    missing = level as usize - target as usize;
                    break;
                }
                Entry::Leaf(_) => return Err(Error::Overlap),
                Entry::Table(next) => {
                    id = next;
                    level = level.below().ok_or(Error::InvalidArgument)?;
                }
            }
        }
        if missing == 0 && self.entry(id, target.index(raw)) != Entry::Empty {
            return Err(Error::Overlap);
        }
        if self.node_ids.available() < missing {
            return Err(Error::LimitReached(Limit::Tables));
        }
        let leaf_id = self.leaf_ids.alloc().ok_or(Error::LimitReached(Limit::Leaves))?;
        // Build: every pop below is covered by the check above.
        let mut created = LevelMask::EMPTY;
        while level != target {
            let below = level.below().ok_or(Error::InvalidArgument)?;
            let slot = level.index(raw);
            let next = match self.entry(id, slot) {
                Entry::Table(next) => next,
                _ => {
                    let new = self.node_ids.alloc().ok_or(Error::LimitReached(Limit::Tables))?;
                    let base = raw & !(below.span() - 1);
                    if let Some(n) = self.nodes.get_mut(new as usize) {
                        *n = Some(Node::new(below, base));
                    }
                    self.set_entry(id, slot, Entry::Table(new));
                    created = created.with(below);
                    new
                }
            };
            id = next;
            level = below;
        }
        if let Some(l) = self.leaves.get_mut(leaf_id as usize) {
            *l = Some(leaf);
        }
        self.set_entry(id, target.index(raw), Entry::Leaf(leaf_id));
        Ok(created)
    }

    /// Remove the leaf that starts at `addr`, pruning structures it leaves
    /// empty. `None` if no leaf starts there.
    pub(super) fn remove(&mut self, addr: RegionAddr) -> Option<Pruned<S>> {
        let raw = addr.get();
        let mut path: Vec<(NodeId, usize), 4> = Vec::new();
        let mut id = ROOT;
        let mut level = Level::Pml4;
        let leaf_id = loop {
            let slot = level.index(raw);
            path.push((id, slot)).ok()?;
            match self.entry(id, slot) {
                Entry::Empty => return None,
                Entry::Leaf(leaf) => break leaf,
                Entry::Table(next) => {
                    id = next;
                    level = level.below()?;
                }
            }
        };
        self.leaf_by_id(leaf_id).filter(|l| l.addr == addr)?;
        let (last, slot) = path.pop()?;
        self.set_entry(last, slot, Entry::Empty);
        if let Some(l) = self.leaves.get_mut(leaf_id as usize) {
            *l = None;
        }
        self.leaf_ids.release(leaf_id);
        let mut pruned = Vec::new();
        let mut child = last;
        while let Some((parent, slot)) = path.pop() {
            if child == ROOT || self.node(child).is_none_or(|n| n.used > 0) {
                break;
            }
            if let Some(node) = self.nodes.get_mut(child as usize).and_then(Option::take) {
                let _ = pruned.push(Structure { level: node.level, base: node.base, replicas: node.replicas });
                self.node_ids.release(child);
            }
            self.set_entry(parent, slot, Entry::Empty);
            child = parent;
        }
        Some(pruned)
    }

    /// Leaves in address order.
    pub fn leaves(&self) -> Leaves<'_, F, S> {
        let mut stack = Vec::new();
        if let Some(root) = self.node(ROOT) {
            let _ = stack.push(Cursor { entries: &root.entries, slot: 0, remaining: root.used });
        }
        Leaves { table: self, stack }
    }

    /// Structures other than the root, in pool order.
    pub fn structures(&self) -> impl Iterator<Item = Structure<S>> + '_ {
        Self::node_ids().filter_map(|id| self.structure_by_id(id))
    }

    /// Number of mapped pages.
    pub fn leaf_count(&self) -> usize {
        MAX_LEAVES - self.leaf_ids.available()
    }

    /// Number of structures other than the root.
    pub fn structure_count(&self) -> usize {
        MAX_TABLES - 1 - self.node_ids.available()
    }
}

/// Iterator over the leaves of a [`Table`] in address order.
pub struct Leaves<'a, F, S> {
    table: &'a Table<F, S>,
    stack: Vec<Cursor<'a>, 4>,
}

/// Position in one node: the entries not yet visited, and how many of them
/// are in use (so the scan stops after the last one).
struct Cursor<'a> {
    entries: &'a [Entry; ENTRIES],
    slot: usize,
    remaining: u16,
}

impl<'a, F: Copy, S: Copy> Iterator for Leaves<'a, F, S> {
    type Item = &'a Leaf<F>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let top = self.stack.last_mut()?;
            let rest = top.entries.get(top.slot..).unwrap_or(&[]);
            let found = rest.iter().position(|e| *e != Entry::Empty).filter(|_| top.remaining > 0);
            let Some(offset) = found else {
                self.stack.pop();
                continue;
            };
            top.slot += offset + 1;
            top.remaining -= 1;
            match rest.get(offset) {
                Some(Entry::Leaf(leaf)) => return self.table.leaf_by_id(*leaf),
                Some(Entry::Table(next)) => {
                    if let Some(node) = self.table.node(*next) {
                        let _ = self.stack.push(Cursor { entries: &node.entries, slot: 0, remaining: node.used });
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Area, LARGE_PAGE_SIZE, PAGE_SIZE, TOP_ENTRY_SPAN};

    type T = Table<u32, u32>;

    fn addr(offset: u64) -> RegionAddr {
        RegionAddr::new(Area::Vmemmap.start() + offset).expect("in vmemmap")
    }

    fn leaf(offset: u64, size: PageSize, frame: u32) -> Leaf<u32> {
        Leaf::new(addr(offset), frame, size, Rights::ReadWrite, FrameKind::Owned)
    }

    #[test]
    fn insert_creates_each_missing_level_once_and_translates() {
        let mut t = Box::new(T::new());
        let all = LevelMask::EMPTY.with(Level::Pdpt).with(Level::Pd).with(Level::Pt);
        assert_eq!(t.insert(leaf(0, PageSize::Small, 1)), Ok(all));
        assert_eq!(t.insert(leaf(PAGE_SIZE, PageSize::Small, 2)), Ok(LevelMask::EMPTY));
        assert_eq!(t.insert(leaf(LARGE_PAGE_SIZE, PageSize::Large, 3)), Ok(LevelMask::EMPTY));
        assert_eq!(t.structure_count(), 3);
        assert_eq!(t.translate(addr(PAGE_SIZE + 5)).map(|l| l.frame), Some(2));
        assert_eq!(t.translate(addr(LARGE_PAGE_SIZE + 12345)).map(|l| l.frame), Some(3));
        assert!(t.translate(addr(2 * PAGE_SIZE)).is_none());
        assert!(t.occupied(addr(100 * PAGE_SIZE), PageSize::Large));
        assert!(!t.occupied(addr(2 * LARGE_PAGE_SIZE), PageSize::Large));
        let frames: std::vec::Vec<u32> = t.leaves().map(|l| l.frame).collect();
        assert_eq!(frames, [1, 2, 3]);
    }

    #[test]
    fn conflicting_inserts_change_nothing() {
        let mut t = Box::new(T::new());
        assert!(t.insert(leaf(0, PageSize::Small, 1)).is_ok());
        assert_eq!(t.insert(leaf(0, PageSize::Small, 9)), Err(Error::Overlap));
        assert_eq!(t.insert(leaf(0, PageSize::Large, 9)), Err(Error::Overlap));
        assert_eq!(t.insert(leaf(PAGE_SIZE / 2, PageSize::Small, 9)), Err(Error::InvalidArgument));
        assert!(t.insert(leaf(LARGE_PAGE_SIZE, PageSize::Large, 2)).is_ok());
        assert_eq!(t.insert(leaf(LARGE_PAGE_SIZE + PAGE_SIZE, PageSize::Small, 9)), Err(Error::Overlap));
        assert_eq!((t.leaf_count(), t.structure_count()), (2, 3));
    }

    #[test]
    fn remove_prunes_empty_structures_deepest_first() {
        let mut t = Box::new(T::new());
        assert!(t.insert(leaf(0, PageSize::Small, 1)).is_ok());
        assert!(t.insert(leaf(TOP_ENTRY_SPAN, PageSize::Small, 2)).is_ok());
        assert_eq!(t.structure_count(), 6);
        assert!(t.remove(addr(PAGE_SIZE)).is_none(), "nothing starts there");
        let pruned = t.remove(addr(0)).expect("mapped");
        let levels: std::vec::Vec<Level> = pruned.iter().map(|s| s.level).collect();
        assert_eq!(levels, [Level::Pt, Level::Pd, Level::Pdpt]);
        assert_eq!((t.leaf_count(), t.structure_count()), (1, 3));
        assert!(t.remove(addr(TOP_ENTRY_SPAN)).is_some());
        assert_eq!((t.leaf_count(), t.structure_count()), (0, 0));
    }

    #[test]
    fn pools_report_limits_without_change() {
        let mut t = Box::new(T::new());
        let mut mapped = 0;
        let err = loop {
            // One page per 1 GiB: a new PD and PT each time.
            match t.insert(leaf(mapped * Level::Pd.span(), PageSize::Small, 0)) {
                Ok(_) => mapped += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::LimitReached(Limit::Tables));
        assert_eq!(t.leaf_count() as u64, mapped);
    }
}
