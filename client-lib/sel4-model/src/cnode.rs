//! CNode invocations (`decodeCNodeInvocation`): Copy, Mint and Move into
//! an empty slot, Delete and Revoke; and `deriveCap`, which decides what a
//! copy may be.

use crate::cap::Cap;
use crate::hazard::Hazard;
use crate::model::{Model, SlotId};
use sel4_layer::abi::Word;
use sel4_layer::{CapRights, Sel4Error};

/// What a CNode Copy, Mint or Move makes of the source capability.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Transfer {
    /// A copy with `rights` masked in.
    Copy(CapRights),
    /// A copy with `rights` masked in and the badge or guard data set.
    Mint(CapRights, Word),
    /// The capability itself.
    Move,
}

/// Where a CNode operation's slot is: the CNode capability's slot, and
/// the index and depth to resolve from it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub root: SlotId,
    pub index: Word,
    pub depth: Word,
}

impl Model {
    /// The slot a CNode operation names (`lookupTargetSlot`): the invoked
    /// capability must be a CNode (any other type refuses the label).
    fn cnode_target(&self, target: Target) -> Result<SlotId, Sel4Error> {
        match self.cap(target.root) {
            root @ Cap::CNode { .. } => self.lookup_target_slot(root, target.index, target.depth),
            _ => Err(Sel4Error::IllegalOperation),
        }
    }

    /// CNode Copy, Mint or Move from `src` (its root being a capability
    /// argument, so any type) into `dest`.
    pub(crate) fn cnode_transfer(&mut self, dest: Target, src: Target, how: Transfer) -> Result<(), Sel4Error> {
        let dest_slot = self.cnode_target(dest)?;
        self.ensure_empty_slot(dest_slot)?;
        let src_slot = self.lookup_target_slot(self.cap(src.root), src.index, src.depth)?;
        let src_cap = self.cap(src_slot);
        if src_cap == Cap::Null {
            return Err(Sel4Error::FailedLookup);
        }
        let new_cap = match how {
            Transfer::Copy(rights) => self.derive_cap(src_slot, src_cap.mask_rights(rights))?,
            Transfer::Mint(rights, data) => self.derive_cap(src_slot, src_cap.mask_rights(rights).with_data(data))?,
            Transfer::Move => src_cap,
        };
        if new_cap == Cap::Null {
            return Err(Sel4Error::IllegalOperation);
        }
        match how {
            Transfer::Move => self.cte_move(src_slot, dest_slot),
            Transfer::Copy(_) | Transfer::Mint(..) => self.cte_insert(new_cap, src_slot, dest_slot),
        }
        Ok(())
    }

    /// CNode Delete.
    pub(crate) fn cnode_delete_at(&mut self, target: Target) -> Result<(), Sel4Error> {
        let slot = self.cnode_target(target)?;
        self.cte_delete(slot, true);
        Ok(())
    }

    /// CNode Revoke.
    pub(crate) fn cnode_revoke_at(&mut self, target: Target) -> Result<(), Sel4Error> {
        let slot = self.cnode_target(target)?;
        self.cte_revoke(slot);
        Ok(())
    }

    /// `deriveCap`: what a copy of `cap` (from `slot`) may be. An untyped
    /// with children cannot be copied; unmapped page tables and page
    /// directories and PML4s without an ASID cannot; a frame copy starts
    /// unmapped. A PDPT capability halts 5.0.0 (no case for it).
    pub(crate) fn derive_cap(&mut self, slot: SlotId, cap: Cap) -> Result<Cap, Sel4Error> {
        match cap {
            Cap::Zombie { .. } => Ok(Cap::Null),
            Cap::Untyped { .. } => self.ensure_no_children(slot).map(|()| cap),
            Cap::PageTable { mapping: None, .. }
            | Cap::PageDirectory { mapping: None, .. }
            | Cap::Pml4 { asid: None, .. } => Err(Sel4Error::IllegalOperation),
            Cap::Pdpt { .. } => Err(self.hazard(Hazard::DerivePdpt)),
            Cap::Frame { object, size, rights, .. } => Ok(Cap::Frame { object, size, rights, mapping: None }),
            other => Ok(other),
        }
    }
}
