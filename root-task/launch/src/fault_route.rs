//! Where a program's thread faults go: the capability in the program's
//! fault slot is a copy of one the root task keeps, so the root task can
//! take every copy back (a revoke) before it routes the faults elsewhere,
//! as registering with the memory server and unregistering need.

use crate::allocator::Allocator;
use crate::process::Process;
use sel4_layer::abi::{init_cap, CPtr};
use sel4_layer::{CNode, CapRights};

/// The root task's side of one process's fault endpoint.
pub struct FaultRoute {
    /// The root task's slot of the original capability.
    original: CPtr,
}

impl FaultRoute {
    /// A route for one process, not yet pointing anywhere.
    pub fn new(alloc: &mut Allocator) -> FaultRoute {
        FaultRoute { original: alloc.slot() }
    }

    /// Makes `process`'s fault endpoint `endpoint` with `badge`, with the
    /// rights a fault endpoint needs (Send and Grant, no Receive). The
    /// previous one is revoked first, so no copy of it stays anywhere.
    pub fn route(&self, process: &Process, endpoint: CPtr, badge: u64) {
        let root = CNode::root_task(init_cap::CNODE);
        let (original, rights) = (self.original, CapRights::SEND_GRANT);
        let slot = process.fault_slot;
        root.revoke(original)
            .and_then(|()| root.delete(original))
            .and_then(|()| root.mint(original, root, endpoint, rights, badge))
            .and_then(|()| process.cnode.delete(slot))
            .and_then(|()| process.cnode.copy(slot, root, original, rights))
            .unwrap_or_else(|e| panic!("{}: fault endpoint with badge {badge:#x}: {e:?}", process.name));
    }
}
