//! Frame contents, as far as tests need them: whether a frame holds data a
//! thread wrote, or only zeroes (Untyped Retype clears the memory it makes
//! objects of). Threads store through their VSpace as the MMU translates
//! it: a test acting as a client program writes ([`Model::write`]), the
//! memory server zeroes a recycled frame through its own mapping
//! ([`Model::zero_own`]). A store through no writable mapping is the
//! thread's VM fault: for the running program, a [`Hazard::VmFault`].

use crate::hazard::Hazard;
use crate::model::Model;
use crate::object::{ObjectId, TCB_VTABLE};

impl Model {
    /// A store of a thread whose VSpace is `vspace` (a PML4) at `vaddr`:
    /// the frame written, or `None` if no writable mapping is there (the
    /// thread takes a VM fault).
    pub fn write(&mut self, vspace: ObjectId, vaddr: u64) -> Option<ObjectId> {
        let frame = self.translate(vspace, vaddr).filter(|leaf| leaf.writable())?.frame?;
        self.written.insert(frame);
        Some(frame)
    }

    /// Whether `frame` holds data a thread wrote since it was made or last
    /// zeroed whole.
    pub fn holds_data(&self, frame: ObjectId) -> bool {
        self.written.contains(&frame)
    }

    /// The running thread sets the `bytes` bytes from `vaddr` on to zero:
    /// each page must be mapped writable in its VSpace; the frames the
    /// range covers whole hold zeroes afterwards. At the first page that
    /// is not mapped writable the thread faults: a hazard, `false`, and the
    /// rest is not written.
    pub fn zero_own(&mut self, vaddr: u64, bytes: u64) -> bool {
        let end = vaddr.saturating_add(bytes);
        let mut at = vaddr;
        while at < end {
            let leaf = self.own_vspace().and_then(|pml4| self.translate(pml4, at)).filter(|leaf| leaf.writable());
            let Some(leaf) = leaf else {
                self.hazards.push(Hazard::VmFault { vaddr: at });
                return false;
            };
            let leaf_end = leaf.vaddr + leaf.size.bytes();
            if let Some(frame) = leaf.frame.filter(|_| leaf.vaddr >= vaddr && leaf_end <= end) {
                self.written.remove(&frame);
            }
            at = leaf_end;
        }
        true
    }

    /// The VSpace (PML4) of the running thread.
    fn own_vspace(&self) -> Option<ObjectId> {
        let slot = self.thread_slot(TCB_VTABLE)?;
        Model::native_root(self.cap(slot)).map(|(pml4, _)| pml4)
    }
}
