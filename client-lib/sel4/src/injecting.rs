//! Failure injection around any [`Kernel`]: [`Injecting`] counts the calls
//! of each kind and makes the n-th call of an armed kind (or of any kind of
//! an armed set) fail, before it reaches the kernel, with an error seL4
//! itself gives for that invocation ([`Call::injected_error`]). Tests use
//! it to exercise the rollback of every path that can meet a kernel error;
//! the memory server arms it on its administrator's request.

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

impl Call {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// One armed failure: the kinds it counts (a bit per [`Call`]) and the
/// calls of them left until it (0: free).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Countdown {
    kinds: u16,
    left: u32,
}

const _: () = assert!(KINDS <= u16::BITS as usize, "a countdown's kinds fit its mask");

/// A [`Kernel`] whose calls are counted and can be made to fail.
#[derive(Clone, Debug)]
pub struct Injecting<K> {
    inner: K,
    /// Calls made so far, per kind (failed ones included).
    calls: [u64; KINDS],
    /// The armed failures: each kind is in at most one, so there are at
    /// most as many as kinds.
    armed: [Countdown; KINDS],
    /// Calls failed so far.
    failures: u64,
}

impl<K: Kernel> Injecting<K> {
    /// Wraps `inner`, with nothing armed.
    pub const fn new(inner: K) -> Injecting<K> {
        Injecting { inner, calls: [0; KINDS], armed: [Countdown { kinds: 0, left: 0 }; KINDS], failures: 0 }
    }

    /// Makes the `nth` call of `kind` from now fail (1: the next one; 0
    /// disarms). Each kind armed alone has its own countdown.
    pub fn arm(&mut self, kind: Call, nth: u32) {
        self.arm_any(&[kind], nth);
    }

    /// Makes the `nth` call from now of any of `kinds` fail, once: they
    /// share one countdown (0 disarms them). A kind armed before leaves
    /// its old countdown.
    pub fn arm_any(&mut self, kinds: &[Call], nth: u32) {
        let mask = kinds.iter().fold(0, |mask, kind| mask | kind.bit());
        for countdown in &mut self.armed {
            countdown.kinds &= !mask;
            if countdown.kinds == 0 {
                *countdown = Countdown::default();
            }
        }
        if nth == 0 || mask == 0 {
            return;
        }
        // Each kind is in at most one countdown and the kinds of `mask`
        // are in none now, so one is free.
        if let Some(free) = self.armed.iter_mut().find(|c| c.left == 0) {
            *free = Countdown { kinds: mask, left: nth };
        }
    }

    /// Whether a failure is armed and has not happened yet.
    pub fn armed(&self) -> bool {
        self.armed.iter().any(|c| c.left > 0)
    }

    /// Calls failed so far (armed ones that happened).
    pub fn failures(&self) -> u64 {
        self.failures
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
        if let Some(calls) = self.calls.get_mut(kind as usize) {
            *calls += 1;
        }
        let Some(countdown) = self.armed.iter_mut().find(|c| c.left > 0 && c.kinds & kind.bit() != 0) else {
            return Ok(());
        };
        countdown.left -= 1;
        if countdown.left > 0 {
            return Ok(());
        }
        *countdown = Countdown::default();
        self.failures += 1;
        Err(kind.injected_error())
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
