//! Failure injection around any [`Kernel`]: [`Injecting`] counts the calls
//! of each kind and makes the n-th call of an armed kind fail, before it
//! reaches the kernel, with an error seL4 itself gives for that invocation
//! ([`Call::injected_error`]). Tests use it to exercise the rollback of
//! every path that can meet a kernel error.

use super::abi::{CPtr, Word};
use super::error::Sel4Error;
use super::invocation::{CNode, CapRights, PagingLevel, Slot};
use super::kernel::Kernel;

/// The kinds of [`Kernel`] call, one per method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Untyped Retype.
    Retype,
    /// CNode Copy.
    Copy,
    /// CNode Mint.
    Mint,
    /// CNode Move.
    Move,
    /// CNode Delete.
    Delete,
    /// CNode Revoke.
    Revoke,
    /// Page Map.
    PageMap,
    /// Page Remap.
    PageRemap,
    /// Page Unmap.
    PageUnmap,
    /// Page GetAddress.
    PageGetAddress,
    /// PDPT, PageDirectory or PageTable Map.
    StructureMap,
    /// PDPT, PageDirectory or PageTable Unmap.
    StructureUnmap,
    /// ASIDPool Assign.
    AsidPoolAssign,
    /// ASIDControl MakePool.
    AsidControlMakePool,
}

impl Call {
    /// Every kind, in counter order.
    pub const ALL: [Call; 14] = [
        Call::Retype,
        Call::Copy,
        Call::Mint,
        Call::Move,
        Call::Delete,
        Call::Revoke,
        Call::PageMap,
        Call::PageRemap,
        Call::PageUnmap,
        Call::PageGetAddress,
        Call::StructureMap,
        Call::StructureUnmap,
        Call::AsidPoolAssign,
        Call::AsidControlMakePool,
    ];

    /// The error an injected failure of this kind returns: one seL4 5.0.0
    /// really gives for the invocation (Retype without memory; a CNode
    /// operation whose slot lookup fails; a Map whose upper paging level
    /// is missing; an Unmap of a structure with copies; a full ASID pool
    /// or ASID table; a capability that is not a frame).
    pub const fn injected_error(self) -> Sel4Error {
        match self {
            Call::Retype => Sel4Error::NotEnoughMemory,
            Call::Copy
            | Call::Mint
            | Call::Move
            | Call::Delete
            | Call::Revoke
            | Call::PageMap
            | Call::PageRemap
            | Call::StructureMap => Sel4Error::FailedLookup,
            Call::StructureUnmap => Sel4Error::RevokeFirst,
            Call::AsidPoolAssign | Call::AsidControlMakePool => Sel4Error::DeleteFirst,
            Call::PageUnmap | Call::PageGetAddress => Sel4Error::InvalidCapability,
        }
    }
}

const KINDS: usize = Call::ALL.len();

/// A [`Kernel`] whose calls are counted and can be made to fail.
#[derive(Clone, Debug)]
pub struct Injecting<K> {
    inner: K,
    /// Calls made so far, per kind (failed ones included).
    calls: [u64; KINDS],
    /// Calls left until the armed failure, per kind (0: disarmed).
    armed: [u32; KINDS],
}

impl<K: Kernel> Injecting<K> {
    /// Wraps `inner`, with nothing armed.
    pub const fn new(inner: K) -> Injecting<K> {
        Injecting { inner, calls: [0; KINDS], armed: [0; KINDS] }
    }

    /// Makes the `nth` call of `kind` from now fail (1: the next one; 0
    /// disarms). Each kind has its own countdown.
    pub fn arm(&mut self, kind: Call, nth: u32) {
        if let Some(left) = self.armed.get_mut(kind as usize) {
            *left = nth;
        }
    }

    /// Calls of `kind` made so far, including failed ones.
    pub fn calls(&self, kind: Call) -> u64 {
        self.calls.get(kind as usize).copied().unwrap_or(0)
    }

    /// The wrapped kernel.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    /// The wrapped kernel, to change it directly (uncounted).
    pub fn inner_mut(&mut self) -> &mut K {
        &mut self.inner
    }

    /// Counts a call of `kind`; `Err` if it is the armed one.
    fn pass(&mut self, kind: Call) -> Result<(), Sel4Error> {
        let i = kind as usize;
        if let Some(calls) = self.calls.get_mut(i) {
            *calls += 1;
        }
        let Some(left) = self.armed.get_mut(i) else { return Ok(()) };
        match *left {
            0 => Ok(()),
            1 => {
                *left = 0;
                Err(kind.injected_error())
            }
            n => {
                *left = n - 1;
                Ok(())
            }
        }
    }
}

impl<K: Kernel> Kernel for Injecting<K> {
    fn untyped_retype(
        &mut self,
        untyped: CPtr,
        object_type: Word,
        size_bits: Word,
        dest: Slot,
        num_objects: Word,
    ) -> Result<(), Sel4Error> {
        self.pass(Call::Retype)?;
        self.inner.untyped_retype(untyped, object_type, size_bits, dest, num_objects)
    }

    fn cnode_copy(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
    ) -> Result<(), Sel4Error> {
        self.pass(Call::Copy)?;
        self.inner.cnode_copy(dest, dest_index, src, src_index, rights)
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
        self.pass(Call::Mint)?;
        self.inner.cnode_mint(dest, dest_index, src, src_index, rights, badge)
    }

    fn cnode_move(&mut self, dest: CNode, dest_index: Word, src: CNode, src_index: Word) -> Result<(), Sel4Error> {
        self.pass(Call::Move)?;
        self.inner.cnode_move(dest, dest_index, src, src_index)
    }

    fn cnode_delete(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error> {
        self.pass(Call::Delete)?;
        self.inner.cnode_delete(node, index)
    }

    fn cnode_revoke(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error> {
        self.pass(Call::Revoke)?;
        self.inner.cnode_revoke(node, index)
    }

    fn page_map(
        &mut self,
        frame: CPtr,
        vspace: CPtr,
        vaddr: Word,
        rights: CapRights,
        attrs: Word,
    ) -> Result<(), Sel4Error> {
        self.pass(Call::PageMap)?;
        self.inner.page_map(frame, vspace, vaddr, rights, attrs)
    }

    fn page_remap(&mut self, frame: CPtr, vspace: CPtr, rights: CapRights, attrs: Word) -> Result<(), Sel4Error> {
        self.pass(Call::PageRemap)?;
        self.inner.page_remap(frame, vspace, rights, attrs)
    }

    fn page_unmap(&mut self, frame: CPtr) -> Result<(), Sel4Error> {
        self.pass(Call::PageUnmap)?;
        self.inner.page_unmap(frame)
    }

    fn page_get_address(&mut self, frame: CPtr) -> Result<Word, Sel4Error> {
        self.pass(Call::PageGetAddress)?;
        self.inner.page_get_address(frame)
    }

    fn paging_structure_map(
        &mut self,
        structure: CPtr,
        level: PagingLevel,
        vspace: CPtr,
        vaddr: Word,
        attrs: Word,
    ) -> Result<(), Sel4Error> {
        self.pass(Call::StructureMap)?;
        self.inner.paging_structure_map(structure, level, vspace, vaddr, attrs)
    }

    fn paging_structure_unmap(&mut self, structure: CPtr, level: PagingLevel) -> Result<(), Sel4Error> {
        self.pass(Call::StructureUnmap)?;
        self.inner.paging_structure_unmap(structure, level)
    }

    fn asid_pool_assign(&mut self, pool: CPtr, vspace: CPtr) -> Result<(), Sel4Error> {
        self.pass(Call::AsidPoolAssign)?;
        self.inner.asid_pool_assign(pool, vspace)
    }

    fn asid_control_make_pool(
        &mut self,
        control: CPtr,
        untyped: CPtr,
        dest: CNode,
        index: Word,
    ) -> Result<(), Sel4Error> {
        self.pass(Call::AsidControlMakePool)?;
        self.inner.asid_control_make_pool(control, untyped, dest, index)
    }
}
