//! The server's CNode: free slots handed out and taken back in O(1), and
//! runs of never-used consecutive slots for batched retypes.

use memserver_protocol::bootstrap::SERVER_CNODE_BITS;
use sel4_layer::abi::CPtr;
use sel4_layer::CNode;

/// Slots in the server's CNode.
const SLOTS: usize = 1 << SERVER_CNODE_BITS;

/// The server's own CNode, addressed through its slot `server_slot::CNODE`.
pub fn own_cnode() -> CNode {
    CNode { cap: memserver_protocol::bootstrap::server_slot::CNODE, depth: SERVER_CNODE_BITS as u8 }
}

/// Free slots: those never used (from `next` on) and those given back.
#[derive(Default)]
pub struct Slots {
    next: u32,
    given_back: heapless::Vec<u32, SLOTS>,
}

impl Slots {
    /// No free slots yet; see [`Slots::start_at`].
    pub const fn new() -> Slots {
        Slots { next: SLOTS as u32, given_back: heapless::Vec::new() }
    }

    /// Makes `first..SLOTS` free.
    pub fn start_at(&mut self, first: CPtr) {
        self.next = first.min(SLOTS as u64) as u32;
    }

    /// A free slot, or `None` when the CNode is full.
    pub fn take(&mut self) -> Option<CPtr> {
        self.given_back.pop().map(CPtr::from).or_else(|| self.take_run(1))
    }

    /// The first of `n` consecutive never-used slots, or `None`.
    pub fn take_run(&mut self, n: u64) -> Option<CPtr> {
        let first = self.next as u64;
        (first + n <= SLOTS as u64).then(|| {
            self.next += n as u32;
            first
        })
    }

    /// Returns an emptied slot.
    pub fn give_back(&mut self, slot: CPtr) {
        // A slot given back was taken, so there is room.
        let _ = self.given_back.push(slot as u32);
    }

    /// Free slots left.
    pub fn available(&self) -> usize {
        self.given_back.len() + (SLOTS - self.next as usize)
    }
}
