//! CPtr resolution (`kernel/cspace.c`): `resolveAddressBits` through
//! guarded CNodes, the lookups of CNode operations (`lookupSlotForCNodeOp`)
//! and of the invoked capability and capability arguments (`lookupSlot`,
//! which a failure turns into a capability fault).

use crate::cap::{mask, Cap};
use crate::hazard::Hazard;
use crate::model::{Model, SlotId};
use crate::object::TCB_CTABLE;
use sel4_layer::abi::{CPtr, Word, WORD_BITS};
use sel4_layer::Sel4Error;

/// A lookup that failed (the kernel's lookup fault; its kind only goes to
/// fault handlers, which the model does not run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LookupFault;

impl Model {
    /// `resolveAddressBits`: the slot `cptr`'s top `n_bits` bits name from
    /// the CNode `node`, and the bits left unresolved when the walk met a
    /// slot that is not a CNode.
    pub(crate) fn resolve_address_bits(
        &self,
        node: Cap,
        cptr: CPtr,
        n_bits: u64,
    ) -> Result<(SlotId, u64), LookupFault> {
        let mut node = node;
        let mut n_bits = n_bits;
        loop {
            let Cap::CNode { object, radix, guard, guard_size } = node else { return Err(LookupFault) };
            let (radix, guard_size) = (radix as u64, guard_size as u64);
            let level = radix + guard_size;
            if guard_size > n_bits || (cptr >> ((n_bits - guard_size) & 63)) & mask(guard_size as u32) != guard {
                return Err(LookupFault);
            }
            if level > n_bits {
                return Err(LookupFault);
            }
            let offset = (cptr >> (n_bits - level)) & mask(radix as u32);
            let slot = SlotId { object, index: offset };
            if n_bits <= level {
                return Ok((slot, 0));
            }
            n_bits -= level;
            node = self.cap(slot);
            if !matches!(node, Cap::CNode { .. }) {
                return Ok((slot, n_bits));
            }
        }
    }

    /// `lookupSlotForCNodeOp`: the slot `index` names at exactly `depth`
    /// bits from the CNode capability `root`.
    pub(crate) fn lookup_target_slot(&self, root: Cap, index: Word, depth: Word) -> Result<SlotId, Sel4Error> {
        if !matches!(root, Cap::CNode { .. }) {
            return Err(Sel4Error::FailedLookup);
        }
        if !(1..=WORD_BITS).contains(&depth) {
            return Err(Sel4Error::RangeError);
        }
        match self.resolve_address_bits(root, index, depth) {
            Ok((slot, 0)) => Ok(slot),
            Ok(_) | Err(LookupFault) => Err(Sel4Error::FailedLookup),
        }
    }

    /// `lookupSlot` in the running thread's CSpace (the invoked capability
    /// and each capability argument): a failure is a capability fault.
    pub(crate) fn lookup_slot(&mut self, cptr: CPtr) -> Result<SlotId, Sel4Error> {
        let Some(root) = self.thread_slot(TCB_CTABLE).map(|s| self.cap(s)) else {
            return Err(self.hazard(Hazard::NoThread));
        };
        match self.resolve_address_bits(root, cptr, WORD_BITS) {
            Ok((slot, _)) => Ok(slot),
            Err(LookupFault) => Err(self.hazard(Hazard::CapFault { cptr })),
        }
    }

    /// Slot `index` of the running thread's TCB, if it is alive.
    pub(crate) fn thread_slot(&self, index: u64) -> Option<SlotId> {
        self.object(self.current).map(|_| SlotId { object: self.current, index })
    }
}
