//! A booted model with the root task's allocator, and the few steps the
//! rule tests repeat (all through the `Kernel` methods).
#![allow(dead_code, reason = "each test file uses its own part")]

use sel4_layer::abi::{init_cap, object_type, CPtr, Word, X86_DEFAULT_VM_ATTRIBUTES};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, PagingLevel, Sel4Error, Slot};
use sel4_model::{BootConfig, BootInfo, Cap, FrameSize, Leaf, Model, ObjectId, RootTask};

/// The root task's own CNode, addressed with full-word CPtrs.
pub const ROOT: CNode = CNode::root_task(init_cap::CNODE);
/// No VM attributes (write-back).
pub const ATTRS: Word = X86_DEFAULT_VM_ATTRIBUTES;

/// A booted system, run by its root task.
pub struct Sys {
    pub m: Model,
    pub rt: RootTask,
    pub info: BootInfo,
}

impl Sys {
    /// Booted with the default configuration (2^16 root slots, 4 untypeds
    /// of 16 MiB).
    pub fn new() -> Sys {
        Sys::with(&BootConfig::default())
    }

    pub fn with(config: &BootConfig) -> Sys {
        let (m, info) = Model::boot(config);
        let rt = RootTask::new(&info);
        Sys { m, rt, info }
    }

    /// One object of `object_type` in a new root slot.
    pub fn retype(&mut self, object_type: Word, size_bits: Word) -> CPtr {
        self.rt.retype(&mut self.m, object_type, size_bits).expect("retype")
    }

    /// `count` objects from `untyped` in one Retype, into new consecutive
    /// root slots.
    pub fn retype_n(
        &mut self,
        untyped: CPtr,
        object_type: Word,
        size_bits: Word,
        count: u64,
    ) -> Result<Vec<CPtr>, Sel4Error> {
        let first = self.rt.slot().expect("slot");
        for _ in 1..count {
            self.rt.slot().expect("slot");
        }
        self.m.untyped_retype(untyped, object_type, size_bits, Slot::in_root(init_cap::CNODE, first), count)?;
        Ok((first..first + count).collect())
    }

    pub fn frame(&mut self, size: FrameSize) -> CPtr {
        let t = match size {
            FrameSize::Small => object_type::X86_4K,
            FrameSize::Large => object_type::X86_LARGE_PAGE,
            FrameSize::Huge => object_type::X64_HUGE_PAGE,
        };
        self.retype(t, 0)
    }

    /// A new VSpace with an ASID.
    pub fn vspace(&mut self) -> CPtr {
        self.rt.vspace(&mut self.m).expect("vspace")
    }

    /// A PML4's object.
    pub fn object(&self, cptr: CPtr) -> ObjectId {
        self.m.object_of(cptr).expect("a capability to an object")
    }

    /// A paging structure of `level`, mapped in `vspace` at `vaddr`.
    pub fn structure(&mut self, vspace: CPtr, level: PagingLevel, vaddr: u64) -> CPtr {
        let t = match level {
            PagingLevel::Pdpt => object_type::X86_PDPT,
            PagingLevel::PageDirectory => object_type::X86_PAGE_DIRECTORY,
            PagingLevel::PageTable => object_type::X86_PAGE_TABLE,
        };
        let cap = self.retype(t, 0);
        self.m.paging_structure_map(cap, level, vspace, vaddr, ATTRS).expect("structure map");
        cap
    }

    /// The structures a frame of `size` at `vaddr` needs.
    pub fn tables_for(&mut self, vspace: CPtr, vaddr: u64, size: FrameSize) {
        self.structure(vspace, PagingLevel::Pdpt, vaddr);
        if size != FrameSize::Huge {
            self.structure(vspace, PagingLevel::PageDirectory, vaddr);
        }
        if size == FrameSize::Small {
            self.structure(vspace, PagingLevel::PageTable, vaddr);
        }
    }

    /// Page Map with all rights asked.
    pub fn map(&mut self, frame: CPtr, vspace: CPtr, vaddr: u64) -> Result<(), Sel4Error> {
        self.m.page_map(frame, vspace, vaddr, CapRights::READ_WRITE, ATTRS)
    }

    /// A copy of `src` (all rights) in a new root slot.
    pub fn copy(&mut self, src: CPtr) -> CPtr {
        let dest = self.rt.slot().expect("slot");
        self.m.cnode_copy(ROOT, dest, ROOT, src, CapRights::ALL).expect("copy");
        dest
    }

    pub fn delete(&mut self, cptr: CPtr) {
        self.m.cnode_delete(ROOT, cptr).expect("delete");
    }

    pub fn revoke(&mut self, cptr: CPtr) {
        self.m.cnode_revoke(ROOT, cptr).expect("revoke");
    }

    /// What `vspace` maps at `vaddr`.
    pub fn translate(&self, vspace: CPtr, vaddr: u64) -> Option<Leaf> {
        self.m.translate(self.object(vspace), vaddr)
    }

    /// The capability in a root slot.
    pub fn cap(&self, cptr: CPtr) -> Cap {
        self.m.cap_at(cptr).expect("resolves")
    }

    /// The model is consistent and no hazard happened.
    pub fn assert_sound(&self) {
        assert_eq!(self.m.check(), Vec::<String>::new());
        assert_eq!(self.m.hazards(), &[]);
    }
}
