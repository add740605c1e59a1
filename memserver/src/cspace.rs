//! The server's CSpace (`memserver_protocol::bootstrap::cspace`): CNode 0,
//! which the starter gives and whose slots a CPtr names in one level, and
//! the CNodes the server makes from its own untyped memory as it needs
//! slots (one 2 MiB granule each), held in the last slots of CNode 0, set
//! aside for them at start (one a granule), so its slots are bounded by its
//! memory. Free slots are handed out and taken back in O(1): each CNode
//! keeps a bitmap of its freed slots (8 KiB, and a bit a word of it), the
//! lowest taken first, and hands out its never-used ones in order; runs of
//! never-used consecutive slots (within one CNode) serve batched retypes.

use alloc::vec::Vec;
use memserver_protocol::bootstrap::{cspace, SERVER_CNODE_BITS};
use sel4_layer::abi::{CPtr, Word};
use sel4_layer::{CNode, Slot};

/// Slots in each CNode.
const SLOTS: u32 = 1 << SERVER_CNODE_BITS;

/// How a CNode operation names the server's slot `slot`: from CNode 0,
/// at the depth that slot needs, and its index.
pub fn own(slot: CPtr) -> (CNode, Word) {
    let (index, depth) = cspace::address(slot);
    (CNode { cap: cspace::ROOT, depth: depth as u8 }, index)
}

/// How a CNode operation names slot `index` (resolved with `depth` bits,
/// as a client says) of the CNode whose capability is in the server's slot
/// `holder`: through CNode 0, the holder's index and then `index` (a CPtr
/// of `holder` itself would go on into that CNode, so it cannot be invoked
/// as a source). `None` for no depth, or one the prefix leaves no room for.
pub fn through(holder: CPtr, index: Word, depth: u8) -> Option<(CNode, Word)> {
    let (k, prefix) = cspace::address(holder);
    let depth = Word::from(depth);
    let total = prefix + depth;
    if depth == 0 || total > Word::from(Word::BITS) {
        return None;
    }
    let index = index & (Word::MAX >> (Word::from(Word::BITS) - depth));
    Some((CNode { cap: cspace::ROOT, depth: total as u8 }, k << depth | index))
}

/// Where a Retype puts objects from slot `first` on: the CNode that holds
/// `first`, at its index there (the objects stay in that CNode).
pub fn retype_target(first: CPtr) -> Slot {
    match cspace::split(first) {
        (None, k) => Slot::in_root(cspace::ROOT, k),
        (Some(holder), i) => Slot { root: cspace::ROOT, node_index: holder, node_depth: SERVER_CNODE_BITS, offset: i },
    }
}

/// Why no CNode could be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoNode {
    /// CNode 0 has no slot left for one.
    RootFull,
    /// No memory for the record of its slots.
    OutOfMemory,
}

/// Words of a bitmap of one bit a slot.
const WORDS: usize = (SLOTS / 64) as usize;

/// One CNode's slots.
struct Node {
    /// The slot of CNode 0 that holds it (0 for CNode 0 itself).
    holder: u32,
    /// Slots below this one are not the server's to hand out (CNode 0:
    /// the bootstrap contract's; another: slot 0, whose CPtr names the
    /// slot of CNode 0 that holds it).
    first: u32,
    /// Slots from this one on are not handed out (CNode 0: those set aside
    /// for the CNodes).
    end: u32,
    /// The first slot never handed out: those below it and from `first`
    /// are taken but the freed ones.
    fresh: u32,
    /// One bit a slot: handed out and given back since (taken first, the
    /// lowest first).
    freed: Vec<u64>,
    /// One bit a word of `freed`: whether it has a bit set.
    summary: [u64; WORDS / 64],
    /// Bits set in `freed`.
    freed_count: u32,
    /// The granule whose memory the CNode is (none for CNode 0).
    granule: Option<usize>,
}

impl Node {
    fn new(holder: u32, first: u32, end: u32) -> Result<Node, NoNode> {
        let mut freed = Vec::new();
        freed.try_reserve_exact(WORDS).map_err(|_| NoNode::OutOfMemory)?;
        freed.resize(WORDS, 0);
        Ok(Node { holder, first, end, fresh: first, freed, summary: [0; WORDS / 64], freed_count: 0, granule: None })
    }

    /// Slots never handed out.
    fn never_used(&self) -> u32 {
        self.end.saturating_sub(self.fresh)
    }

    fn free(&self) -> u32 {
        self.never_used() + self.freed_count
    }

    /// The CPtr of its slot `i`.
    fn cptr(&self, i: u32) -> CPtr {
        match self.holder {
            0 => cspace::cptr(i.into()),
            holder => cspace::in_cnode(holder.into(), i.into()),
        }
    }

    /// Marks slot `i` freed (`true`) or taken again, in `freed` and its
    /// summary.
    fn mark(&mut self, i: u32, freed: bool) {
        let (w, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        let Some(word) = self.freed.get_mut(w) else { return };
        if freed {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        let empty = *word == 0;
        if let Some(summary) = self.summary.get_mut(w / 64) {
            let bit = 1u64 << (w % 64);
            if empty {
                *summary &= !bit;
            } else {
                *summary |= bit;
            }
        }
    }

    /// The lowest freed slot: two bit scans.
    fn lowest_freed(&self) -> Option<u32> {
        let (s, summary) = self.summary.iter().enumerate().find(|(_, w)| **w != 0)?;
        let w = s * 64 + summary.trailing_zeros() as usize;
        let word = self.freed.get(w)?;
        Some((w * 64) as u32 + word.trailing_zeros())
    }

    fn take(&mut self) -> Option<u32> {
        if let Some(i) = self.lowest_freed() {
            self.mark(i, false);
            self.freed_count -= 1;
            return Some(i);
        }
        self.take_run(1)
    }

    fn take_run(&mut self, n: u32) -> Option<u32> {
        let first = self.fresh;
        if self.never_used() < n {
            return None;
        }
        self.fresh += n;
        Some(first)
    }

    /// Takes back slot `i`; whether it was handed out (and not freed).
    fn give_back(&mut self, i: u32) -> bool {
        let freed = self.freed.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0);
        if i < self.first || i >= self.fresh || freed {
            return false;
        }
        self.mark(i, true);
        self.freed_count += 1;
        true
    }
}

/// The free slots of the server's CNodes.
pub struct Slots {
    /// CNode 0, then the one in CNode 0's last slot, the one in the slot
    /// before it, and so on.
    nodes: Vec<Node>,
    /// The CNodes CNode 0 has slots set aside for.
    max_nodes: usize,
    /// The CNode `take` looks in first: the last one that had a free slot.
    current: usize,
    /// Free slots in all CNodes.
    available: u64,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::new()
    }
}

impl Slots {
    /// No free slots yet; see [`Slots::start`].
    pub const fn new() -> Slots {
        Slots { nodes: Vec::new(), max_nodes: 0, current: 0, available: 0 }
    }

    /// CNode 0's slots from `first` are free, but the last `cnodes`, set
    /// aside for the CNodes the server makes (fewer if they would leave
    /// CNode 0 less than `keep` free slots). `OutOfMemory` without the
    /// memory for the records.
    pub fn start(&mut self, first: CPtr, cnodes: u64, keep: u64) -> Result<(), NoNode> {
        let first = first.min(Word::from(SLOTS)) as u32;
        let cnodes = cnodes.min(u64::from(SLOTS - first).saturating_sub(keep)) as u32;
        let mut nodes = Vec::new();
        nodes.try_reserve_exact(1).map_err(|_| NoNode::OutOfMemory)?;
        nodes.push(Node::new(0, first, SLOTS - cnodes)?);
        let available = u64::from(SLOTS - cnodes - first);
        *self = Slots { nodes, max_nodes: cnodes as usize, current: 0, available };
        Ok(())
    }

    /// Whether a slot set aside for a CNode is left.
    pub fn can_add_node(&self) -> bool {
        self.nodes.len() <= self.max_nodes
    }

    /// The record of one more CNode, ready for [`Slots::add_node`], and
    /// the slot of CNode 0 to retype it into; `RootFull` when every slot
    /// set aside holds one.
    pub fn reserve_node(&mut self) -> Result<(NodeRecord, CPtr), NoNode> {
        let n = self.nodes.len();
        if !self.can_add_node() {
            return Err(NoNode::RootFull);
        }
        let holder = SLOTS - n as u32;
        self.nodes.try_reserve(1).map_err(|_| NoNode::OutOfMemory)?;
        Ok((NodeRecord(Node::new(holder, 1, SLOTS)?), cspace::cptr(holder.into())))
    }

    /// Records the CNode made from `granule` in the slot
    /// [`Slots::reserve_node`] gave with `record`: its slots are free.
    pub fn add_node(&mut self, NodeRecord(mut node): NodeRecord, granule: usize) {
        if self.nodes.len() < self.nodes.capacity() {
            node.granule = Some(granule);
            self.available += u64::from(node.free());
            self.nodes.push(node);
        }
    }

    /// The granules of the CNodes the server made.
    pub fn node_granules(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes.iter().filter_map(|n| n.granule)
    }

    /// A free slot, or `None` when every CNode is full.
    pub fn take(&mut self) -> Option<CPtr> {
        let node = match self.nodes.get(self.current) {
            Some(n) if n.free() > 0 => self.current,
            _ => self.nodes.iter().position(|n| n.free() > 0)?,
        };
        self.current = node;
        let n = self.nodes.get_mut(node)?;
        let i = n.take()?;
        self.available -= 1;
        Some(n.cptr(i))
    }

    /// The first of `n` consecutive never-used slots of one CNode (the
    /// others follow it, as `cspace::nth` counts), or `None`.
    pub fn take_run(&mut self, n: u64) -> Option<CPtr> {
        let n = u32::try_from(n).ok()?;
        let fits = |node: &Node| node.never_used() >= n;
        let node = match self.nodes.get(self.current) {
            Some(node) if fits(node) => self.current,
            _ => self.nodes.iter().position(fits)?,
        };
        let node = self.nodes.get_mut(node)?;
        let first = node.take_run(n)?;
        self.available -= u64::from(n);
        Some(node.cptr(first))
    }

    /// Whether a run of `n` never-used slots is left.
    pub fn has_run(&self, n: u64) -> bool {
        self.nodes.iter().any(|node| u64::from(node.never_used()) >= n)
    }

    /// Returns an emptied slot (one not handed out is ignored).
    pub fn give_back(&mut self, slot: CPtr) {
        let (node, i) = match cspace::split(slot) {
            (None, k) => (0, k),
            (Some(holder), i) => (SLOTS as usize - holder as usize, i),
        };
        if self.nodes.get_mut(node).is_some_and(|n| n.give_back(i as u32)) {
            self.available += 1;
        }
    }

    /// Slots of CNode 0 set aside for CNodes the server has not made.
    pub fn set_aside(&self) -> u64 {
        (self.max_nodes + 1).saturating_sub(self.nodes.len()) as u64
    }

    /// Free slots left in the CNodes made so far.
    pub fn available(&self) -> u64 {
        self.available
    }

    /// Slots of the CNodes made so far that are the server's to hand out.
    pub fn total(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.end - n.first)).sum()
    }
}

/// The record of a CNode about to be made ([`Slots::reserve_node`]).
pub struct NodeRecord(Node);

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: CPtr = SLOTS as u64 - 8;

    #[test]
    fn slots_come_from_cnode_0_then_from_each_cnode_made_freed_ones_first() {
        let mut slots = Slots::new();
        slots.start(FIRST, 4, 0).unwrap();
        let first: Vec<_> = (0..4).map(|_| slots.take().unwrap()).collect();
        assert_eq!(first, (FIRST..FIRST + 4).map(cspace::cptr).collect::<Vec<_>>(), "CNode 0's, in order");
        assert_eq!(slots.take(), None, "CNode 0's last 4 slots are set aside for CNodes");
        let (record, holder) = slots.reserve_node().unwrap();
        assert_eq!(holder, cspace::cptr(SLOTS as u64 - 1), "the first CNode goes in CNode 0's last slot");
        slots.add_node(record, 7);
        let node_slot = |i: u64| cspace::in_cnode(SLOTS as u64 - 1, i);
        assert_eq!(slots.take(), Some(node_slot(1)), "its slot 0 is never handed out");
        assert_eq!(slots.take_run(512), Some(node_slot(2)));
        slots.give_back(first[1]);
        slots.give_back(first[1]);
        assert_eq!(slots.available(), u64::from(SLOTS) - 1 - 513 + 1, "a slot given back twice counts once");
        assert_eq!(slots.take(), Some(node_slot(514)), "the current CNode first");
        slots.give_back(node_slot(7));
        assert_eq!(slots.take(), Some(node_slot(7)), "its freed slots before its never-used ones");
        slots.give_back(cspace::in_cnode(SLOTS as u64 - 2, 5));
        assert_eq!(slots.available(), u64::from(SLOTS) - 1 - 514 + 1, "a slot of no CNode made is ignored");
        assert_eq!(slots.node_granules().collect::<Vec<_>>(), [7]);
        assert_eq!(slots.total(), 4 + u64::from(SLOTS) - 1);
    }

    #[test]
    fn a_run_stays_within_one_cnode_and_the_slots_set_aside_bound_the_cnodes() {
        let mut slots = Slots::new();
        slots.start(FIRST, 1, 0).unwrap();
        assert!(slots.can_add_node());
        assert!(!slots.has_run(512));
        assert_eq!(slots.take_run(512), None, "7 slots left in CNode 0");
        let (record, _) = slots.reserve_node().unwrap();
        slots.add_node(record, 0);
        assert_eq!(slots.take_run(512), Some(cspace::in_cnode(SLOTS as u64 - 1, 1)));
        assert!(!slots.can_add_node());
        assert_eq!(slots.reserve_node().err(), Some(NoNode::RootFull), "one slot was set aside");
        let mut squeezed = Slots::new();
        squeezed.start(FIRST, 8, 6).unwrap();
        assert_eq!(squeezed.available(), 6, "2 set aside, so that 6 stay for the start");
        slots.give_back(cspace::cptr(5));
        assert_eq!(slots.available(), 7 + u64::from(SLOTS) - 1 - 512, "a contract slot is not the server's");
    }
}
