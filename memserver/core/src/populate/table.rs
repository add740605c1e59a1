//! The canonical kernel-region table: a real 4-level structure (arenas of
//! 512-entry nodes and of leaf records, growing as it fills) recording, for every mapped page,
//! its frame, size, rights, how the frame is held, and the set of registered
//! spaces it is installed in; for every structure, its handle in each space.
//!
//! Reading (translate, iteration) is public. Every mutator is `pub(super)`:
//! only the populate path, which owns the one instance, can change it.
//! It grows as it fills, with fallible allocation: its capacity is the
//! memory left, and an insert that finds none is refused.
//! Guarantees: a node other than the root is empty only if the removal that
//! emptied it was told to keep it (see [`Prune`]), a failed insert
//! (capacity or memory) changes nothing, and no operation panics. Each node carries the serial number of its creation,
//! so a removal can take out exactly the nodes created after a [`Mark`].

use alloc::vec::Vec as Growable;
use heapless::Vec;

use crate::arena::{push_reserved, Arena, ArenaError};

use crate::backend::Rights;
use crate::error::Error;
use crate::ids::SpaceId;
use crate::layout::{Level, LevelMask, PageSize, RegionAddr, ENTRIES};

/// Index of a node in its arena; the root is node 0 (made by the first
/// insert).
pub(super) type NodeId = u32;
/// Index of a leaf record in its arena.
pub(super) type LeafId = u32;

const ROOT: NodeId = 0;

/// The levels of a walk, from the root down. Walks loop over this constant,
/// which the compiler unrolls into fixed shifts, like a hardware walker.
const WALK: [Level; 4] = [Level::Pml4, Level::Pdpt, Level::Pd, Level::Pt];

/// An entry of a node, packed in 32 bits like a hardware entry: 0 is empty,
/// [`Entry::TABLE`] plus a node id is a structure, anything else a leaf id
/// plus one.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry(u32);

/// What an [`Entry`] refers to.
enum Target {
    Empty,
    Table(NodeId),
    Leaf(LeafId),
}

impl Entry {
    const EMPTY: Entry = Entry(0);
    const TABLE: u32 = 1 << 31;

    const fn table(id: NodeId) -> Self {
        Self(Self::TABLE | id)
    }

    const fn leaf(id: LeafId) -> Self {
        Self(id + 1)
    }

    const fn target(self) -> Target {
        match self.0 {
            0 => Target::Empty,
            e if e & Self::TABLE != 0 => Target::Table(e & !Self::TABLE),
            e => Target::Leaf(e - 1),
        }
    }
}

/// How the canonical table holds a leaf's frame, which decides how the frame
/// is released when the leaf goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Allocated by the server for this leaf: unmapped everywhere and freed
    /// with it.
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
}

impl<F> Leaf<F> {
    /// A leaf of the canonical table. Where it is installed is not
    /// recorded per leaf: between requests every leaf is installed in every
    /// registered space (the populate path's guarantee, which the invariant
    /// checks against each space's MMU), and within one the populate path
    /// knows how far it got.
    pub(super) fn new(addr: RegionAddr, frame: F, size: PageSize, rights: Rights, kind: FrameKind) -> Self {
        Self { addr, frame, size, rights, kind }
    }
}

/// A point in the table's history: every node created after it has a
/// serial number at least this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(u64);

/// Which structures a leaf removal takes out once it leaves them empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prune {
    /// Every one.
    All,
    /// None: every structure stays for the next mapping in its range, as
    /// Linux keeps vmalloc's page tables. A larger leaf takes the place of
    /// an empty one ([`Table::remove_empty`]), and memory running out
    /// reclaims them all.
    Keep,
    /// Those created after the mark, and no other: undoing a request takes
    /// out what it created and leaves what was there before it.
    CreatedSince(Mark),
}

/// What the table knows of a node besides its entries.
struct Node<S> {
    level: Level,
    base: u64,
    /// Entries in use.
    used: u16,
    /// Leaves under it, at any depth: none in a structure a removal kept,
    /// even one that holds the kept structures below it.
    leaves: u32,
    /// When it was created (see [`Mark`]).
    serial: u64,
    /// Its handle in each space, by space index, as far as the highest
    /// index it was installed in.
    replicas: Growable<Option<S>>,
}

impl<S: Copy> Node<S> {
    const fn new(level: Level, base: u64, serial: u64) -> Self {
        Self { level, base, used: 0, leaves: 0, serial, replicas: Growable::new() }
    }

    /// Whether a removal with `prune` takes this node out once it is empty.
    fn pruned_by(&self, prune: Prune) -> bool {
        match prune {
            Prune::All => true,
            Prune::Keep => false,
            Prune::CreatedSince(mark) => self.serial >= mark.0,
        }
    }
}

/// A structure (other than the root) of the canonical table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Structure<'a, S> {
    /// Its level.
    pub level: Level,
    /// First address it covers.
    pub base: u64,
    replicas: &'a [Option<S>],
}

impl<S: Copy> Structure<'_, S> {
    /// Its handle in space `space`, if installed there.
    pub fn replica(&self, space: SpaceId) -> Option<S> {
        self.replicas.get(space.index()).copied().flatten()
    }

    /// Its handles, with the index of the space each is installed in.
    pub fn replicas(&self) -> impl Iterator<Item = (usize, S)> + '_ {
        self.replicas.iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r)))
    }
}

/// A structure a leaf removal left empty and took out of the table, with
/// the handles it had in the spaces.
pub(super) struct Removed<S> {
    pub(super) replicas: Growable<Option<S>>,
}

/// Structures a leaf removal left empty and pruned, deepest first.
pub(super) type Pruned<S> = Vec<Removed<S>, 3>;

/// The canonical table, as large as memory allows: at most `tables`
/// structures (the root included) and `leaves` mapped pages when a test
/// gives caps.
///
/// The entries of node `i` are `entries[i]`, apart from the rest of the node
/// and 2 KiB apart, so a walk reads nothing but entries and finds each next
/// node by a shift, as a hardware walker does. `entries` has a row for
/// every node id ever handed out; a node not in use has only empty entries
/// (a node is freed only once empty).
pub struct Table<F, S> {
    entries: alloc::vec::Vec<[Entry; ENTRIES]>,
    nodes: Arena<Node<S>>,
    leaves: Arena<Leaf<F>>,
    /// The serial number of the next node created.
    next_serial: u64,
}

impl<F: Copy, S: Copy> Table<F, S> {
    /// An empty table bounded by memory alone; nothing is allocated yet.
    pub(super) const fn new() -> Self {
        Self::with_capacity(usize::MAX, usize::MAX)
    }

    /// An empty table of at most `tables` structures (the root included,
    /// at most 2^31) and `leaves` pages (below 2^31): an entry packs either
    /// id in 31 bits.
    pub(super) const fn with_capacity(tables: usize, leaves: usize) -> Self {
        let limit = Entry::TABLE as usize - 1;
        let (tables, leaves) =
            (if tables < limit { tables } else { limit }, if leaves < limit { leaves } else { limit });
        Self { entries: alloc::vec::Vec::new(), nodes: Arena::new(tables), leaves: Arena::new(leaves), next_serial: 1 }
    }

    /// Makes room for `n` new nodes (entries included), or says why not.
    fn reserve_nodes(&mut self, n: usize) -> Result<(), Error> {
        self.nodes.reserve(n).map_err(arena_error)?;
        let fresh = (self.nodes.ids().len() + n).saturating_sub(self.entries.len());
        self.entries.try_reserve(fresh).map_err(|_| Error::OutOfMemory)
    }

    /// A new node, with room reserved by [`Table::reserve_nodes`].
    fn add_node(&mut self, node: Node<S>) -> Result<NodeId, Error> {
        let id = self.nodes.insert(node).map_err(arena_error)?;
        // A reused id keeps its row, empty since the node emptied.
        if id as usize == self.entries.len() && push_reserved(&mut self.entries, [Entry::EMPTY; ENTRIES]).is_err() {
            self.nodes.remove(id);
            return Err(Error::OutOfMemory);
        }
        Ok(id)
    }

    fn node(&self, id: NodeId) -> Option<&Node<S>> {
        self.nodes.get(id)
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut Node<S>> {
        self.nodes.get_mut(id)
    }

    fn entry(&self, id: NodeId, slot: usize) -> Target {
        self.entries.get(id as usize).and_then(|n| n.get(slot)).map_or(Target::Empty, |e| e.target())
    }

    fn set_entry(&mut self, id: NodeId, slot: usize, new: Entry) {
        let e = self.entries.get_mut(id as usize).and_then(|n| n.get_mut(slot));
        if let (Some(e), Some(node)) = (e, self.nodes.get_mut(id)) {
            match (*e == Entry::EMPTY, new == Entry::EMPTY) {
                (true, false) => node.used += 1,
                (false, true) => node.used -= 1,
                _ => {}
            }
            *e = new;
        }
    }

    /// A scan of the entries of node `id` from the first.
    fn cursor(&self, id: NodeId) -> Option<Cursor<'_>> {
        let entries = self.entries.get(id as usize)?;
        Some(Cursor { entries, slot: 0, remaining: self.node(id)?.used })
    }

    /// The leaf record with arena index `id`, if in use.
    pub(super) fn leaf_by_id(&self, id: LeafId) -> Option<&Leaf<F>> {
        self.leaves.get(id)
    }

    /// Arena indices of leaves, for scans that mutate as they go.
    pub(super) fn leaf_ids(&self) -> impl Iterator<Item = LeafId> {
        self.leaves.ids()
    }

    /// Arena indices of non-root nodes.
    pub(super) fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        self.nodes.ids().skip(1)
    }

    /// The structure with pool index `id`, if in use and not the root.
    pub(super) fn structure_by_id(&self, id: NodeId) -> Option<Structure<'_, S>> {
        if id == ROOT {
            return None;
        }
        self.node(id).map(|n| Structure { level: n.level, base: n.base, replicas: &n.replicas })
    }

    /// Makes room in node `id` for a handle in space `space`, so that
    /// [`Table::set_replica`] records it, or says there is no memory.
    pub(super) fn reserve_replica(&mut self, id: NodeId, space: SpaceId) -> Result<(), Error> {
        let Some(node) = self.node_mut(id) else { return Ok(()) };
        let len = space.index() + 1;
        if node.replicas.len() < len {
            node.replicas.try_reserve(len - node.replicas.len()).map_err(|_| Error::OutOfMemory)?;
            node.replicas.resize(len, None);
        }
        Ok(())
    }

    /// Records (or with `None` forgets) node `id`'s handle in `space`; a
    /// handle needs the room [`Table::reserve_replica`] made.
    pub(super) fn set_replica(&mut self, id: NodeId, space: SpaceId, handle: Option<S>) {
        let Some(node) = self.node_mut(id) else { return };
        if let Some(r) = node.replicas.get_mut(space.index()) {
            *r = handle;
        }
        while node.replicas.last().is_some_and(Option::is_none) {
            node.replicas.pop();
        }
    }

    /// The leaf mapping `addr`, whatever its size.
    pub fn translate(&self, addr: RegionAddr) -> Option<&Leaf<F>> {
        self.find_leaf(addr).and_then(|id| self.leaf_by_id(id))
    }

    fn find_leaf(&self, addr: RegionAddr) -> Option<LeafId> {
        let raw = addr.get();
        let mut id = ROOT;
        for level in WALK {
            match self.entry(id, level.index(raw)) {
                Target::Empty => return None,
                Target::Leaf(leaf) => return Some(leaf),
                Target::Table(next) => id = next,
            }
        }
        None
    }

    /// The leaf that starts at `addr` (not one that only covers it).
    pub fn leaf_at(&self, addr: RegionAddr) -> Option<&Leaf<F>> {
        self.translate(addr).filter(|leaf| leaf.addr == addr)
    }

    /// The leaf that starts at `addr`, to change how its frame is held (a
    /// frame moving to another leaf) or its rights (a protect).
    pub(super) fn leaf_at_mut(&mut self, addr: RegionAddr) -> Option<&mut Leaf<F>> {
        let leaf = self.find_leaf(addr).and_then(|id| self.leaves.get_mut(id));
        leaf.filter(|leaf| leaf.addr == addr)
    }

    /// Whether anything is mapped in the `size`-aligned page containing `addr`.
    pub fn occupied(&self, addr: RegionAddr, size: PageSize) -> bool {
        let raw = addr.get();
        let target = size.leaf_level();
        let mut id = ROOT;
        for level in WALK {
            match self.entry(id, level.index(raw)) {
                Target::Empty => return false,
                Target::Leaf(_) => return true,
                Target::Table(_) if level == target => return true,
                Target::Table(next) => id = next,
            }
        }
        true
    }

    /// Nodes below the root on the way to the leaf at `addr`, top down.
    pub(super) fn path(&self, addr: RegionAddr) -> Vec<NodeId, 3> {
        let raw = addr.get();
        let mut out = Vec::new();
        let mut id = ROOT;
        for level in WALK {
            let Target::Table(next) = self.entry(id, level.index(raw)) else { break };
            if out.push(next).is_err() {
                break;
            }
            id = next;
        }
        out
    }

    /// Insert `leaf`, creating the structures on its way. Reports which
    /// levels were created. On error nothing has changed: every check comes
    /// before the first change.
    pub(super) fn insert(&mut self, leaf: Leaf<F>) -> Result<LevelMask, Error> {
        let raw = leaf.addr.get();
        let target = leaf.size.leaf_level();
        if !raw.is_multiple_of(leaf.size.bytes()) {
            return Err(Error::InvalidArgument);
        }
        self.leaves.reserve(1).map_err(arena_error)?;
        if self.nodes.is_empty() {
            self.reserve_nodes(1)?;
            self.add_node(Node::new(Level::Pml4, 0, 0))?;
        }
        let mut id = ROOT;
        let mut created = LevelMask::EMPTY;
        let mut path: Vec<NodeId, 4> = Vec::new();
        for level in WALK {
            let slot = level.index(raw);
            // One node a level: the walk ends at the fourth.
            let _ = path.push(id);
            if level == target {
                // Empty when this walk created the node.
                if !matches!(self.entry(id, slot), Target::Empty) {
                    return Err(Error::Overlap);
                }
                let leaf_id = self.leaves.insert(leaf).map_err(arena_error)?;
                self.set_entry(id, slot, Entry::leaf(leaf_id));
                self.count_leaf(path.iter().copied(), true);
                return Ok(created);
            }
            id = match self.entry(id, slot) {
                Target::Table(next) => next,
                Target::Leaf(_) => return Err(Error::Overlap),
                Target::Empty => {
                    // The first missing level: all of them must fit. Below
                    // it every entry is in a node this walk created.
                    if created.is_empty() {
                        self.reserve_nodes(level as usize - target as usize)?;
                    }
                    let below = level.below().ok_or(Error::InvalidArgument)?;
                    let base = raw & !(below.span() - 1);
                    let node = Node::new(below, base, self.next_serial);
                    let new = self.add_node(node)?;
                    self.next_serial += 1;
                    self.set_entry(id, slot, Entry::table(new));
                    created = created.with(below);
                    new
                }
            };
        }
        Err(Error::InvalidArgument)
    }

    /// Counts a leaf in (`added`) or out of every node of `path`, the
    /// nodes above it.
    fn count_leaf(&mut self, path: impl Iterator<Item = NodeId>, added: bool) {
        for id in path {
            if let Some(node) = self.node_mut(id) {
                node.leaves = if added { node.leaves + 1 } else { node.leaves - 1 };
            }
        }
    }

    /// This point in the table's history.
    pub(super) fn mark(&self) -> Mark {
        Mark(self.next_serial)
    }

    /// Remove the leaf that starts at `addr`, pruning the structures it
    /// leaves empty that `prune` names. `None` if no leaf starts there.
    pub(super) fn remove(&mut self, addr: RegionAddr, prune: Prune) -> Option<Pruned<S>> {
        let raw = addr.get();
        let mut path: Vec<(NodeId, usize), 4> = Vec::new();
        let mut id = ROOT;
        let mut level = Level::Pml4;
        let leaf_id = loop {
            let slot = level.index(raw);
            path.push((id, slot)).ok()?;
            match self.entry(id, slot) {
                Target::Empty => return None,
                Target::Leaf(leaf) => break leaf,
                Target::Table(next) => {
                    id = next;
                    level = level.below()?;
                }
            }
        };
        self.leaf_by_id(leaf_id).filter(|l| l.addr == addr)?;
        self.count_leaf(path.iter().map(|&(id, _)| id), false);
        let (last, slot) = path.pop()?;
        self.set_entry(last, slot, Entry::EMPTY);
        self.leaves.remove(leaf_id);
        let mut pruned = Vec::new();
        let mut child = last;
        while let Some((parent, slot)) = path.pop() {
            if child == ROOT || self.node(child).is_none_or(|n| n.used > 0 || !n.pruned_by(prune)) {
                break;
            }
            if let Some(node) = self.nodes.remove(child) {
                let _ = pruned.push(Removed { replicas: node.replicas });
            }
            self.set_entry(parent, slot, Entry::EMPTY);
            child = parent;
        }
        Some(pruned)
    }

    /// Removes the structure of `level` that covers `addr` if it has no
    /// entries (one a purge kept), so that a leaf of the level above can
    /// take its place (or memory is reclaimed); what it removed, if
    /// anything.
    pub(super) fn remove_empty(&mut self, addr: RegionAddr, level: Level) -> Option<Removed<S>> {
        self.remove_empty_at(addr.get(), level)
    }

    /// Removes the first structure of `level` from node id `from` on that
    /// holds no entry: its id and what it removed, or `None` if there is
    /// none.
    pub(super) fn take_empty(&mut self, level: Level, from: NodeId) -> Option<(NodeId, Removed<S>)> {
        let ids = from.max(ROOT + 1)..NodeId::try_from(self.entries.len()).unwrap_or(NodeId::MAX);
        ids.filter_map(|id| {
            let node = self.node(id).filter(|n| n.level == level && n.used == 0)?;
            let base = node.base;
            self.remove_empty_at(base, level).map(|removed| (id, removed))
        })
        .next()
    }

    fn remove_empty_at(&mut self, raw: u64, level: Level) -> Option<Removed<S>> {
        let (mut parent, mut at) = (ROOT, Level::Pml4);
        loop {
            let slot = at.index(raw);
            let Target::Table(next) = self.entry(parent, slot) else { return None };
            let below = at.below()?;
            if below == level {
                if self.node(next)?.used > 0 {
                    return None;
                }
                let node = self.nodes.remove(next)?;
                self.set_entry(parent, slot, Entry::EMPTY);
                return Some(Removed { replicas: node.replicas });
            }
            (parent, at) = (next, below);
        }
    }

    /// Number of structures (other than the root) with no leaf under
    /// them: those a removal kept.
    pub fn kept_structure_count(&self) -> usize {
        self.kept().count()
    }

    /// Handles, summed over the spaces, of the structures with no leaf
    /// under them.
    pub fn kept_replicas(&self) -> usize {
        self.kept().map(|n| n.replicas.iter().flatten().count()).sum()
    }

    fn kept(&self) -> impl Iterator<Item = &Node<S>> {
        self.node_ids().filter_map(|id| self.node(id)).filter(|n| n.leaves == 0)
    }

    /// Leaves in address order.
    pub fn leaves(&self) -> Leaves<'_, F, S> {
        let mut stack = Vec::new();
        if let Some(root) = self.cursor(ROOT) {
            let _ = stack.push(root);
        }
        Leaves { table: self, stack }
    }

    /// Structures other than the root, in pool order.
    pub fn structures(&self) -> impl Iterator<Item = Structure<'_, S>> + '_ {
        self.node_ids().filter_map(|id| self.structure_by_id(id))
    }

    /// Number of mapped pages.
    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    /// Number of structures other than the root.
    pub fn structure_count(&self) -> usize {
        self.nodes.len().saturating_sub(1)
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
            let found = rest.iter().position(|e| *e != Entry::EMPTY).filter(|_| top.remaining > 0);
            let Some(offset) = found else {
                self.stack.pop();
                continue;
            };
            top.slot += offset + 1;
            top.remaining -= 1;
            match rest.get(offset).map(|e| e.target()) {
                Some(Target::Leaf(leaf)) => return self.table.leaf_by_id(leaf),
                Some(Target::Table(next)) => {
                    if let Some(below) = self.table.cursor(next) {
                        let _ = self.stack.push(below);
                    }
                }
                _ => {}
            }
        }
    }
}

/// What an arena's refusal means for the table: no memory (a test's cap
/// stands for the memory it gives; without one, ids run out only past
/// 2^31 nodes or leaves, which no memory holds).
fn arena_error(_: ArenaError) -> Error {
    Error::OutOfMemory
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
        let mut t = T::new();
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
        let mut t = T::new();
        assert!(t.insert(leaf(0, PageSize::Small, 1)).is_ok());
        assert_eq!(t.insert(leaf(0, PageSize::Small, 9)), Err(Error::Overlap));
        assert_eq!(t.insert(leaf(0, PageSize::Large, 9)), Err(Error::Overlap));
        assert_eq!(t.insert(leaf(PAGE_SIZE / 2, PageSize::Small, 9)), Err(Error::InvalidArgument));
        assert!(t.insert(leaf(LARGE_PAGE_SIZE, PageSize::Large, 2)).is_ok());
        assert_eq!(t.insert(leaf(LARGE_PAGE_SIZE + PAGE_SIZE, PageSize::Small, 9)), Err(Error::Overlap));
        assert_eq!((t.leaf_count(), t.structure_count()), (2, 3));
    }

    #[test]
    fn remove_prunes_the_structures_it_empties() {
        let mut t = T::new();
        assert!(t.insert(leaf(0, PageSize::Small, 1)).is_ok());
        assert!(t.insert(leaf(TOP_ENTRY_SPAN, PageSize::Small, 2)).is_ok());
        assert_eq!(t.structure_count(), 6);
        assert!(t.remove(addr(PAGE_SIZE), Prune::All).is_none(), "nothing starts there");
        let pruned = t.remove(addr(0), Prune::All).expect("mapped");
        assert_eq!(pruned.len(), 3, "its page table, page directory and PDPT");
        assert_eq!((t.leaf_count(), t.structure_count()), (1, 3));
        assert!(t.structures().all(|s| s.base >= Area::Vmemmap.start() + TOP_ENTRY_SPAN), "the other page's stay");
        assert!(t.remove(addr(TOP_ENTRY_SPAN), Prune::All).is_some());
        assert_eq!((t.leaf_count(), t.structure_count()), (0, 0));
        // Freed nodes come back empty.
        assert!(t.insert(leaf(LARGE_PAGE_SIZE, PageSize::Small, 3)).is_ok());
        assert!(t.translate(addr(0)).is_none() && t.translate(addr(TOP_ENTRY_SPAN)).is_none());
        let frames: std::vec::Vec<u32> = t.leaves().map(|l| l.frame).collect();
        assert_eq!((frames.as_slice(), t.structure_count()), ([3].as_slice(), 3));
    }

    #[test]
    fn a_removal_prunes_only_what_it_is_told_to() {
        let mut t = T::new();
        assert!(t.insert(leaf(0, PageSize::Small, 1)).is_ok());
        assert!(t.remove(addr(0), Prune::Keep).is_some());
        assert_eq!(t.structure_count(), 3, "the page table, page directory and PDPT stay");
        assert!(t.take_empty(Level::Pd, 0).is_none(), "the kept page table is its entry");
        let (_, removed) = t.take_empty(Level::Pt, 0).expect("the kept page table");
        assert!(removed.replicas.is_empty() && t.take_empty(Level::Pt, 0).is_none());
        assert_eq!(t.structure_count(), 2);
        let mark = t.mark();
        assert_eq!(t.insert(leaf(PAGE_SIZE, PageSize::Small, 2)), Ok(LevelMask::EMPTY.with(Level::Pt)));
        assert!(t.insert(leaf(TOP_ENTRY_SPAN, PageSize::Small, 3)).is_ok());
        assert_eq!(t.structure_count(), 6);
        assert!(t.insert(leaf(2 * PAGE_SIZE, PageSize::Small, 4)).is_ok());
        let pruned = t.remove(addr(2 * PAGE_SIZE), Prune::CreatedSince(mark)).expect("mapped");
        assert!(pruned.is_empty(), "the page table still holds a page");
        let pruned = t.remove(addr(PAGE_SIZE), Prune::CreatedSince(mark)).expect("mapped");
        assert_eq!(pruned.len(), 1, "only the page table was made since the mark");
        let pruned = t.remove(addr(TOP_ENTRY_SPAN), Prune::CreatedSince(mark)).expect("mapped");
        assert_eq!(pruned.len(), 3, "all three were created after the mark");
        assert_eq!(t.structure_count(), 2, "what was there before the mark stays");
    }

    #[test]
    fn pools_report_limits_without_change() {
        let mut t = T::with_capacity(128, 1 << 16);
        let mut mapped = 0;
        let err = loop {
            // One page per 1 GiB: a new PD and PT each time.
            match t.insert(leaf(mapped * Level::Pd.span(), PageSize::Small, 0)) {
                Ok(_) => mapped += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::OutOfMemory);
        assert_eq!(t.leaf_count() as u64, mapped);
    }
}
