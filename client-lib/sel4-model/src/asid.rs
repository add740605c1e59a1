//! ASIDs (`arch/x86/kernel/vspace.c`): the ASID table of 8 pools, each
//! pool of 512 VSpaces; ASIDPool Assign gives a PML4 capability the first
//! free ASID of its pool (never ASID 0); ASIDControl MakePool turns a
//! 4 KiB untyped with no children into the first missing pool.

use crate::cap::Cap;
use crate::model::{Model, SlotId, ASID_LOW_BITS};
use crate::object::{Body, ObjectId, ObjectType, TABLE_BITS};
use sel4_layer::abi::Word;
use sel4_layer::Sel4Error;
use std::collections::BTreeMap;

/// ASIDs in a pool.
const POOL_SIZE: u16 = 1 << ASID_LOW_BITS;

impl Model {
    /// The entries of the ASID pool at `paddr`.
    fn pool_entries(&self, paddr: u64) -> Option<&BTreeMap<u16, u64>> {
        match &self.object(self.object_at(paddr)?)?.body {
            Body::AsidPool(entries) => Some(entries),
            _ => None,
        }
    }

    /// `findVSpaceForASID`: the PML4 that `asid` names now.
    pub(crate) fn vspace_of_asid(&self, asid: u16) -> Option<ObjectId> {
        let pool = (*self.asid_table.get((asid >> ASID_LOW_BITS) as usize)?)?;
        let pml4 = *self.pool_entries(pool)?.get(&(asid & (POOL_SIZE - 1)))?;
        self.object_at(pml4)
    }

    /// X86ASIDPoolAssign: `pool` is the invoked slot, `vspace` the PML4's.
    pub(crate) fn asid_assign_at(&mut self, pool: SlotId, vspace: SlotId) -> Result<(), Sel4Error> {
        let Cap::AsidPool { object, base } = self.cap(pool) else { return Err(Sel4Error::IllegalOperation) };
        let Cap::Pml4 { object: pml4, asid: None } = self.cap(vspace) else {
            return Err(Sel4Error::InvalidCapability);
        };
        let Some(&Some(table_pool)) = self.asid_table.get((base >> ASID_LOW_BITS) as usize) else {
            return Err(Sel4Error::FailedLookup);
        };
        if table_pool != self.paddr(object) {
            return Err(Sel4Error::InvalidCapability);
        }
        let used = self.pool_entries(table_pool).cloned().unwrap_or_default();
        let Some(low) = (0..POOL_SIZE).find(|&i| base + i != 0 && !used.contains_key(&i)) else {
            return Err(Sel4Error::DeleteFirst);
        };
        let pml4_paddr = self.paddr(pml4);
        if let Some(Body::AsidPool(entries)) = self.object_mut(object).map(|o| &mut o.body) {
            entries.insert(low, pml4_paddr);
        }
        self.set_cap(vspace, Cap::Pml4 { object: pml4, asid: Some(base + low) });
        Ok(())
    }

    /// X86ASIDControlMakePool: `untyped` and `root` are the argument slots.
    pub(crate) fn make_pool_at(
        &mut self,
        control: SlotId,
        untyped: SlotId,
        root: SlotId,
        index: Word,
        depth: Word,
    ) -> Result<(), Sel4Error> {
        if self.cap(control) != Cap::AsidControl {
            return Err(Sel4Error::IllegalOperation);
        }
        let Some(free) = self.asid_table.iter().position(Option::is_none) else {
            return Err(Sel4Error::DeleteFirst);
        };
        let Cap::Untyped { paddr, size_bits: TABLE_BITS, .. } = self.cap(untyped) else {
            return Err(Sel4Error::InvalidCapability);
        };
        self.ensure_no_children(untyped)?;
        let dest = self.lookup_target_slot(self.cap(root), index, depth)?;
        self.ensure_empty_slot(dest)?;
        self.set_cap(untyped, Cap::Untyped { paddr, size_bits: TABLE_BITS, free_offset: 1 << TABLE_BITS });
        let object = self.new_object(ObjectType::AsidPool, paddr, TABLE_BITS, Body::AsidPool(BTreeMap::new()));
        self.cte_insert(Cap::AsidPool { object, base: (free as u16) << ASID_LOW_BITS }, untyped, dest);
        self.asid_table[free] = Some(paddr);
        Ok(())
    }

    /// `deleteASID`: the pool entry of `asid` goes if it names `pml4`.
    pub(crate) fn delete_asid(&mut self, asid: u16, pml4: u64) {
        let Some(Some(pool)) = self.asid_table.get((asid >> ASID_LOW_BITS) as usize).copied() else { return };
        let Some(id) = self.object_at(pool) else { return };
        if let Some(Body::AsidPool(entries)) = self.object_mut(id).map(|o| &mut o.body) {
            let low = asid & (POOL_SIZE - 1);
            if entries.get(&low) == Some(&pml4) {
                entries.remove(&low);
            }
        }
    }

    /// `deleteASIDPool`: the table forgets the pool if it is this one.
    pub(crate) fn delete_asid_pool(&mut self, base: u16, pool: u64) {
        if let Some(slot) = self.asid_table.get_mut((base >> ASID_LOW_BITS) as usize) {
            if *slot == Some(pool) {
                *slot = None;
            }
        }
    }
}
