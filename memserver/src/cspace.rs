//! The server's CNode: free slots handed out and taken back in O(1) by the
//! core's index allocator, and runs of never-used consecutive slots for
//! batched retypes.

use memserver_core::{Arena, ArenaError};
use memserver_protocol::bootstrap::SERVER_CNODE_BITS;
use sel4_layer::abi::CPtr;
use sel4_layer::CNode;

/// Slots in the server's CNode.
const SLOTS: usize = 1 << SERVER_CNODE_BITS;

/// The server's own CNode, addressed through its slot `server_slot::CNODE`.
pub fn own_cnode() -> CNode {
    CNode { cap: memserver_protocol::bootstrap::server_slot::CNODE, depth: SERVER_CNODE_BITS as u8 }
}

/// Free slots from the first one the bootstrap contract leaves free:
/// slot `first + id` for every id the arena hands out (freed ones first,
/// never-used ones in order, runs of never-used ones for batched retypes).
pub struct Slots {
    first: u32,
    ids: Arena<()>,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::new()
    }
}

impl Slots {
    /// No free slots yet; see [`Slots::start_at`].
    pub const fn new() -> Slots {
        Slots { first: SLOTS as u32, ids: Arena::new(0) }
    }

    /// Makes `first..SLOTS` free.
    pub fn start_at(&mut self, first: CPtr) {
        let first = first.min(SLOTS as u64) as u32;
        *self = Slots { first, ids: Arena::new(SLOTS - first as usize) };
    }

    /// Makes room in the record for `n` more slots taken; `Err` without
    /// the memory (or the slots) for them.
    pub fn reserve(&mut self, n: usize) -> Result<(), ArenaError> {
        self.ids.reserve(n)
    }

    /// A free slot, or `None` when the CNode is full (or the server's
    /// memory for the record of one more is).
    pub fn take(&mut self) -> Option<CPtr> {
        self.ids.insert(()).ok().map(|id| CPtr::from(self.first + id))
    }

    /// The first of `n` consecutive never-used slots, or `None`.
    pub fn take_run(&mut self, n: u64) -> Option<CPtr> {
        let n = u32::try_from(n).ok()?;
        self.ids.insert_run(n, || ()).ok().map(|id| CPtr::from(self.first + id))
    }

    /// Returns an emptied slot.
    pub fn give_back(&mut self, slot: CPtr) {
        if let Some(id) = slot.checked_sub(u64::from(self.first)).and_then(|id| u32::try_from(id).ok()) {
            self.ids.remove(id);
        }
    }

    /// Free slots left.
    pub fn available(&self) -> usize {
        self.ids.available()
    }
}
