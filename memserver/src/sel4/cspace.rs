//! The server's CNode: free slots handed out and taken back in O(1).

use client_lib::bootstrap::SERVER_CNODE_BITS;
use client_lib::sel4::abi::CPtr;
use client_lib::sel4::CNode;

/// Slots in the server's CNode.
const SLOTS: usize = 1 << SERVER_CNODE_BITS;

/// The server's own CNode, addressed through its slot `server_slot::CNODE`.
pub fn own_cnode() -> CNode {
    CNode { cap: client_lib::bootstrap::server_slot::CNODE, depth: SERVER_CNODE_BITS as u8 }
}

/// A stack of free slots.
#[derive(Default)]
pub struct Slots {
    free: heapless::Vec<u32, SLOTS>,
}

impl Slots {
    /// No free slots yet; see [`Slots::add_range`].
    pub const fn new() -> Slots {
        Slots { free: heapless::Vec::new() }
    }

    /// Makes `first..SLOTS` free (lowest handed out first).
    pub fn add_range(&mut self, first: CPtr) {
        for slot in (first as usize..SLOTS).rev() {
            // Cannot overflow: at most SLOTS slots exist.
            let _ = self.free.push(slot as u32);
        }
    }

    /// A free slot, or `None` when the CNode is full.
    pub fn take(&mut self) -> Option<CPtr> {
        self.free.pop().map(CPtr::from)
    }

    /// Returns an emptied slot.
    pub fn give_back(&mut self, slot: CPtr) {
        // A slot given back was taken, so there is room.
        let _ = self.free.push(slot as u32);
    }

    /// Free slots left.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}
