//! The seL4 invocations a program makes on memory objects (untyped memory,
//! CNodes, frames, paging structures, ASIDs), as one trait, so the code that
//! makes them can run on the real kernel ([`Syscalls`]) or on a host model
//! of the kernel (the `sel4-model` crate). rust-sel4's `InvocationContext`
//! is the model for this split.
//!
//! Every method is one invocation, with libsel4's argument conventions:
//! a capability argument is a CPtr resolved in the invoker's CSpace with
//! the full word of depth; a CNode-relative operation takes the CNode (its
//! CPtr and the depth to resolve within it, [`CNode`]) and an index. The
//! errors are the kernel's replies.

use super::abi::{CPtr, Word};
use super::error::Sel4Error;
use super::invocation::{AsidControl, AsidPool, CNode, CapRights, Page, PagingLevel, PagingStructure, Slot, Untyped};

/// The memory-object invocations of seL4 5.0.0 (x86-64).
pub trait Kernel {
    /// `seL4_Untyped_Retype`: creates `num_objects` objects of
    /// `object_type` (an [`object_type`](super::abi::object_type) number;
    /// `size_bits` for untyped and CNode objects) from `untyped`, their
    /// capabilities in consecutive empty slots from `dest.offset` of the
    /// CNode `dest` names.
    fn untyped_retype(
        &mut self,
        untyped: CPtr,
        object_type: Word,
        size_bits: Word,
        dest: Slot,
        num_objects: Word,
    ) -> Result<(), Sel4Error>;

    /// `seL4_CNode_Copy`: puts a copy of the capability at `src_index` of
    /// `src`, with `rights` masked in, into the empty slot `dest_index` of
    /// `dest`. The copy is a child of the source in the derivation tree.
    fn cnode_copy(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
    ) -> Result<(), Sel4Error>;

    /// `seL4_CNode_Mint`: like [`Kernel::cnode_copy`], and sets `badge`
    /// (an endpoint's or notification's badge, a CNode's guard data).
    fn cnode_mint(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
        badge: Word,
    ) -> Result<(), Sel4Error>;

    /// `seL4_CNode_Move`: moves the capability at `src_index` of `src` into
    /// the empty slot `dest_index` of `dest`.
    fn cnode_move(&mut self, dest: CNode, dest_index: Word, src: CNode, src_index: Word) -> Result<(), Sel4Error>;

    /// `seL4_CNode_Delete`: empties slot `index` of `node`.
    fn cnode_delete(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error>;

    /// `seL4_CNode_Revoke`: deletes every capability derived from the one
    /// at `index` of `node`.
    fn cnode_revoke(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error>;

    /// `seL4_X86_Page_Map`: maps `frame` at `vaddr` in `vspace` with
    /// `rights` masked in and the VM attributes `attrs`.
    fn page_map(
        &mut self,
        frame: CPtr,
        vspace: CPtr,
        vaddr: Word,
        rights: CapRights,
        attrs: Word,
    ) -> Result<(), Sel4Error>;

    /// `seL4_X86_Page_Remap`: changes the rights and attributes of the
    /// mapping `frame` already has in `vspace`.
    fn page_remap(&mut self, frame: CPtr, vspace: CPtr, rights: CapRights, attrs: Word) -> Result<(), Sel4Error>;

    /// `seL4_X86_Page_Unmap`: removes the mapping made through `frame`.
    fn page_unmap(&mut self, frame: CPtr) -> Result<(), Sel4Error>;

    /// `seL4_X86_Page_GetAddress`: the frame's physical address.
    fn page_get_address(&mut self, frame: CPtr) -> Result<Word, Sel4Error>;

    /// `seL4_X86_PDPT_Map`, `seL4_X86_PageDirectory_Map` or
    /// `seL4_X86_PageTable_Map` (by `level`): installs `structure` in
    /// `vspace` to cover `vaddr`.
    fn paging_structure_map(
        &mut self,
        structure: CPtr,
        level: PagingLevel,
        vspace: CPtr,
        vaddr: Word,
        attrs: Word,
    ) -> Result<(), Sel4Error>;

    /// `seL4_X86_PDPT_Unmap`, `seL4_X86_PageDirectory_Unmap` or
    /// `seL4_X86_PageTable_Unmap` (by `level`).
    fn paging_structure_unmap(&mut self, structure: CPtr, level: PagingLevel) -> Result<(), Sel4Error>;

    /// `seL4_X86_ASIDPool_Assign`: gives the VSpace (PML4) `vspace` an ASID
    /// from `pool`.
    fn asid_pool_assign(&mut self, pool: CPtr, vspace: CPtr) -> Result<(), Sel4Error>;

    /// `seL4_X86_ASIDControl_MakePool`: turns the 4 KiB untyped `untyped`
    /// into a new ASID pool, whose capability goes to slot `index` of
    /// `dest`.
    fn asid_control_make_pool(
        &mut self,
        control: CPtr,
        untyped: CPtr,
        dest: CNode,
        index: Word,
    ) -> Result<(), Sel4Error>;
}

/// The real kernel: each method is the system call of the typed wrapper
/// in [`invocation`](super::invocation).
#[derive(Clone, Copy, Debug, Default)]
pub struct Syscalls;

impl Kernel for Syscalls {
    fn untyped_retype(
        &mut self,
        untyped: CPtr,
        object_type: Word,
        size_bits: Word,
        dest: Slot,
        num_objects: Word,
    ) -> Result<(), Sel4Error> {
        Untyped(untyped).retype(object_type, size_bits, dest, num_objects)
    }

    fn cnode_copy(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
    ) -> Result<(), Sel4Error> {
        dest.copy(dest_index, src, src_index, rights)
    }

    fn cnode_mint(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
        badge: Word,
    ) -> Result<(), Sel4Error> {
        dest.mint(dest_index, src, src_index, rights, badge)
    }

    fn cnode_move(&mut self, dest: CNode, dest_index: Word, src: CNode, src_index: Word) -> Result<(), Sel4Error> {
        dest.move_cap(dest_index, src, src_index)
    }

    fn cnode_delete(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error> {
        node.delete(index)
    }

    fn cnode_revoke(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error> {
        node.revoke(index)
    }

    fn page_map(
        &mut self,
        frame: CPtr,
        vspace: CPtr,
        vaddr: Word,
        rights: CapRights,
        attrs: Word,
    ) -> Result<(), Sel4Error> {
        Page(frame).map_with_attributes(vspace, vaddr, rights, attrs)
    }

    fn page_remap(&mut self, frame: CPtr, vspace: CPtr, rights: CapRights, attrs: Word) -> Result<(), Sel4Error> {
        Page(frame).remap(vspace, rights, attrs)
    }

    fn page_unmap(&mut self, frame: CPtr) -> Result<(), Sel4Error> {
        Page(frame).unmap()
    }

    fn page_get_address(&mut self, frame: CPtr) -> Result<Word, Sel4Error> {
        Page(frame).address()
    }

    fn paging_structure_map(
        &mut self,
        structure: CPtr,
        level: PagingLevel,
        vspace: CPtr,
        vaddr: Word,
        attrs: Word,
    ) -> Result<(), Sel4Error> {
        PagingStructure { cap: structure, level }.map_with_attributes(vspace, vaddr, attrs)
    }

    fn paging_structure_unmap(&mut self, structure: CPtr, level: PagingLevel) -> Result<(), Sel4Error> {
        PagingStructure { cap: structure, level }.unmap()
    }

    fn asid_pool_assign(&mut self, pool: CPtr, vspace: CPtr) -> Result<(), Sel4Error> {
        AsidPool(pool).assign(vspace)
    }

    fn asid_control_make_pool(
        &mut self,
        control: CPtr,
        untyped: CPtr,
        dest: CNode,
        index: Word,
    ) -> Result<(), Sel4Error> {
        AsidControl(control).make_pool(untyped, dest, index)
    }
}
