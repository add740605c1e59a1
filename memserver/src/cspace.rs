//! The server's CSpace (`memserver_protocol::bootstrap::cspace`): CNode 0,
//! which the starter gives, and the CNodes the server makes from its own
//! untyped memory as it needs slots (one 2 MiB granule each, in the next
//! slot of the root), so its slots are bounded by its memory. Free slots
//! are handed out and taken back in O(1): each CNode keeps a stack of its
//! freed slots, taken first, and hands out its never-used ones in order;
//! runs of never-used consecutive slots (within one CNode) serve batched
//! retypes.

use alloc::vec::Vec;
use memserver_protocol::bootstrap::{cspace, server_slot, SERVER_CNODE_BITS};
use sel4_layer::abi::{CPtr, Word};
use sel4_layer::{CNode, Slot};

/// Slots in each CNode.
const SLOTS: u32 = 1 << SERVER_CNODE_BITS;

/// The server's CSpace, addressed through its root in `server_slot::CNODE`:
/// every slot by its CPtr, at the full depth.
pub fn own_cnode() -> CNode {
    CNode { cap: server_slot::CNODE, depth: Word::BITS as u8 }
}

/// Where a Retype puts objects from slot `first` on: the CNode that holds
/// `first`, at its index there (the objects stay in that CNode).
pub fn retype_target(first: CPtr) -> Slot {
    Slot {
        root: server_slot::CNODE,
        node_index: first >> SERVER_CNODE_BITS,
        node_depth: cspace::NODE_DEPTH,
        offset: first & Word::from(SLOTS - 1),
    }
}

/// Where a Retype puts the server's CNode number `node`: that slot of the
/// root itself.
pub fn node_target(node: usize) -> Slot {
    Slot::in_root(server_slot::CNODE, node as Word)
}

/// Why no CNode could be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoNode {
    /// The root has no slot left.
    RootFull,
    /// No memory for the record of its slots.
    OutOfMemory,
}

/// One CNode's slots.
struct Node {
    /// Slots below this one are not the server's to hand out (CNode 0:
    /// the bootstrap contract's).
    first: u32,
    /// The first slot never handed out.
    fresh: u32,
    /// Slots handed out and given back, taken first (room for all of them
    /// is reserved when the CNode is added, so giving one back never
    /// allocates).
    freed: Vec<u16>,
    /// One bit a slot: handed out and not given back.
    taken: Vec<u64>,
    /// The granule whose memory the CNode is (none for CNode 0).
    granule: Option<usize>,
}

impl Node {
    fn new(first: u32, granule: Option<usize>) -> Result<Node, NoNode> {
        let mut freed = Vec::new();
        freed.try_reserve_exact((SLOTS - first) as usize).map_err(|_| NoNode::OutOfMemory)?;
        let mut taken = Vec::new();
        taken.try_reserve_exact((SLOTS / 64) as usize).map_err(|_| NoNode::OutOfMemory)?;
        taken.resize((SLOTS / 64) as usize, 0);
        Ok(Node { first, fresh: first, freed, taken, granule })
    }

    fn free(&self) -> u32 {
        SLOTS - self.fresh + self.freed.len() as u32
    }

    /// Marks slot `i` taken (`true`) or given back; whether it was the
    /// other.
    fn set(&mut self, i: u32, taken: bool) -> bool {
        let Some(word) = self.taken.get_mut((i / 64) as usize) else { return false };
        let bit = 1 << (i % 64);
        let was = *word & bit != 0;
        if taken {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        was != taken
    }

    fn take(&mut self) -> Option<u32> {
        let i = match self.freed.pop() {
            Some(i) => u32::from(i),
            None if self.fresh < SLOTS => {
                self.fresh += 1;
                self.fresh - 1
            }
            None => return None,
        };
        self.set(i, true);
        Some(i)
    }

    fn take_run(&mut self, n: u32) -> Option<u32> {
        let first = self.fresh;
        if SLOTS - first < n {
            return None;
        }
        self.fresh += n;
        (first..first + n).for_each(|i| _ = self.set(i, true));
        Some(first)
    }

    fn give_back(&mut self, i: u32) -> bool {
        if i < self.first || !self.set(i, false) {
            return false;
        }
        if self.freed.len() < self.freed.capacity() {
            self.freed.push(i as u16);
        }
        true
    }
}

/// The free slots of the server's CNodes.
pub struct Slots {
    nodes: Vec<Node>,
    /// CNodes the root has slots for.
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

    /// CNode 0's slots from `first` are free, and the root (2^`root_bits`
    /// slots) has room for CNodes up to its size. `OutOfMemory` without the
    /// memory for the record of CNode 0.
    pub fn start(&mut self, first: CPtr, root_bits: u32) -> Result<(), NoNode> {
        let first = first.min(Word::from(SLOTS)) as u32;
        let mut nodes = Vec::new();
        nodes.try_reserve_exact(1).map_err(|_| NoNode::OutOfMemory)?;
        nodes.push(Node::new(first, None)?);
        let max_nodes = 1usize.checked_shl(root_bits.min(cspace::MAX_ROOT_BITS)).unwrap_or(1);
        *self = Slots { nodes, max_nodes, current: 0, available: u64::from(SLOTS - first) };
        Ok(())
    }

    /// The number the next CNode gets: the root's slot for it.
    pub fn next_node(&self) -> Result<usize, NoNode> {
        match self.nodes.len() {
            n if n < self.max_nodes => Ok(n),
            _ => Err(NoNode::RootFull),
        }
    }

    /// Makes room for the record of one more CNode (before it is made, so
    /// that [`Slots::add_node`] cannot fail).
    pub fn reserve_node(&mut self) -> Result<NodeRecord, NoNode> {
        self.next_node()?;
        self.nodes.try_reserve(1).map_err(|_| NoNode::OutOfMemory)?;
        Node::new(0, None).map(NodeRecord)
    }

    /// Records the CNode made in the root's slot [`Slots::next_node`] from
    /// `granule`, with the record `reserved`: its slots are free.
    pub fn add_node(&mut self, NodeRecord(mut node): NodeRecord, granule: usize) {
        if self.nodes.len() < self.nodes.capacity() {
            node.granule = Some(granule);
            self.nodes.push(node);
            self.available += u64::from(SLOTS);
        }
    }

    /// The CNodes made from granules, by granule.
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
        let i = self.nodes.get_mut(node)?.take()?;
        self.available -= 1;
        Some(slot(node, i))
    }

    /// The first of `n` consecutive never-used slots of one CNode, or
    /// `None`.
    pub fn take_run(&mut self, n: u64) -> Option<CPtr> {
        let n = u32::try_from(n).ok()?;
        let fits = |node: &Node| SLOTS - node.fresh >= n;
        let node = match self.nodes.get(self.current) {
            Some(node) if fits(node) => self.current,
            _ => self.nodes.iter().position(fits)?,
        };
        let first = self.nodes.get_mut(node)?.take_run(n)?;
        self.available -= u64::from(n);
        Some(slot(node, first))
    }

    /// Whether a run of `n` never-used slots is left.
    pub fn has_run(&self, n: u64) -> bool {
        self.nodes.iter().any(|node| u64::from(SLOTS - node.fresh) >= n)
    }

    /// Returns an emptied slot (one not handed out is ignored).
    pub fn give_back(&mut self, slot: CPtr) {
        let node = (slot >> SERVER_CNODE_BITS) as usize;
        let i = (slot & Word::from(SLOTS - 1)) as u32;
        if self.nodes.get_mut(node).is_some_and(|n| n.give_back(i)) {
            self.available += 1;
        }
    }

    /// Free slots left in the CNodes made so far.
    pub fn available(&self) -> u64 {
        self.available
    }

    /// Slots of the CNodes made so far (CNode 0's from the first free one).
    pub fn total(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(SLOTS - n.first)).sum()
    }
}

/// The record of a CNode about to be made ([`Slots::reserve_node`]).
pub struct NodeRecord(Node);

/// The CPtr of slot `i` of CNode `node`.
fn slot(node: usize, i: u32) -> CPtr {
    (node as Word) << SERVER_CNODE_BITS | Word::from(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_from_cnode_0_then_from_each_cnode_added_freed_ones_first() {
        let mut slots = Slots::new();
        slots.start(SLOTS as u64 - 3, 2).unwrap();
        let first: Vec<_> = (0..3).map(|_| slots.take().unwrap()).collect();
        assert_eq!(first, [SLOTS as u64 - 3, SLOTS as u64 - 2, SLOTS as u64 - 1]);
        assert_eq!(slots.take(), None, "CNode 0 is full");
        assert_eq!(slots.next_node(), Ok(1));
        let node = slots.reserve_node().unwrap();
        slots.add_node(node, 7);
        assert_eq!(slots.take(), Some(1 << SERVER_CNODE_BITS), "slot 0 of CNode 1");
        assert_eq!(slots.take_run(512), Some((1 << SERVER_CNODE_BITS) + 1));
        slots.give_back(first[1]);
        slots.give_back(first[1]);
        assert_eq!(slots.available(), u64::from(SLOTS) - 513 + 1, "a slot given back twice counts once");
        assert_eq!(slots.take(), Some((1 << SERVER_CNODE_BITS) + 513), "the current CNode first");
        slots.give_back((1 << SERVER_CNODE_BITS) + 7);
        assert_eq!(slots.take(), Some((1 << SERVER_CNODE_BITS) + 7), "its freed slots before its never-used ones");
        assert_eq!(slots.node_granules().collect::<Vec<_>>(), [7]);
        assert_eq!(slots.total(), 3 + u64::from(SLOTS));
    }

    #[test]
    fn a_run_stays_within_one_cnode_and_the_root_bounds_the_cnodes() {
        let mut slots = Slots::new();
        slots.start(SLOTS as u64 - 100, 1).unwrap();
        assert!(!slots.has_run(512));
        assert_eq!(slots.take_run(512), None, "100 slots left in CNode 0");
        let node = slots.reserve_node().unwrap();
        slots.add_node(node, 0);
        assert_eq!(slots.take_run(512), Some(1 << SERVER_CNODE_BITS));
        assert_eq!(slots.next_node(), Err(NoNode::RootFull), "a root of 2 slots holds CNodes 0 and 1");
        assert!(slots.reserve_node().is_err());
        slots.give_back(5);
        assert_eq!(slots.available(), 100 + u64::from(SLOTS) - 512, "a contract slot is not the server's");
    }
}
