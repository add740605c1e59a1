//! Address spaces built by the root task: a PML4 with an ASID, and the
//! paging structures created on demand when a frame is mapped.

use crate::allocator::Allocator;
use sel4_layer::abi::{init_cap, CPtr, ObjectType};
use sel4_layer::{CapRights, Page, PagingLevel, PagingStructure};

/// Most paging structures one VSpace built here may need.
const MAX_STRUCTURES: usize = 64;

/// Paging levels below the PML4, outermost first, with the address bits
/// one structure of that level covers.
const LEVELS: [(PagingLevel, u32); 3] =
    [(PagingLevel::Pdpt, 39), (PagingLevel::PageDirectory, 30), (PagingLevel::PageTable, 21)];

/// A VSpace and the paging structures this task created in it.
pub struct VSpace {
    /// The PML4 capability.
    pub pml4: CPtr,
    /// (level, covered address >> level shift) of each created structure.
    created: heapless::Vec<(PagingLevel, u64), MAX_STRUCTURES>,
}

impl VSpace {
    /// A new, empty VSpace with an ASID.
    pub fn new(alloc: &mut Allocator) -> VSpace {
        let pml4 = alloc.retype(ObjectType::Pml4, 0);
        alloc.assign_asid(pml4);
        VSpace { pml4, created: heapless::Vec::new() }
    }

    /// The root task's own VSpace; only areas it never used may be mapped.
    pub fn root_task() -> VSpace {
        VSpace { pml4: init_cap::VSPACE, created: heapless::Vec::new() }
    }

    /// Maps the 4 KiB frame `frame` at `vaddr` with `rights`, creating the
    /// paging structures that address needs first.
    pub fn map(&mut self, alloc: &mut Allocator, frame: CPtr, vaddr: u64, rights: CapRights) {
        for (level, shift) in LEVELS {
            let key = (level, vaddr >> shift);
            if self.created.contains(&key) {
                continue;
            }
            let cap = alloc.retype(level.object_type(), 0);
            PagingStructure { cap, level }
                .map(self.pml4, vaddr)
                .unwrap_or_else(|e| panic!("mapping a {level:?} at {vaddr:#x} failed: {e:?}"));
            self.created.push(key).unwrap_or_else(|_| panic!("more than {MAX_STRUCTURES} paging structures"));
        }
        Page(frame)
            .map(self.pml4, vaddr, rights)
            .unwrap_or_else(|e| panic!("mapping a frame at {vaddr:#x} failed: {e:?}"));
    }
}
