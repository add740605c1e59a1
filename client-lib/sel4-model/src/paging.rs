//! PDPT, PageDirectory and PageTable Map and Unmap
//! (`decodeX86PageTableInvocation`, `decodeX64PageDirectoryInvocation`,
//! `decodeX64PDPTInvocation`): a structure maps once, into one VSpace, in
//! a free slot of its parent level (which must be there); Unmap needs the
//! structure's only capability and empties the structure.

use crate::cap::{mask, Cap, Mapping};
use crate::model::{Model, SlotId};
use crate::object::ObjectId;
use crate::vspace::{Depth, Entry, Expected, PPTR_USER_TOP};
use sel4_layer::abi::Word;
use sel4_layer::{PagingLevel, Sel4Error};

/// A paging-structure capability, taken apart.
struct Structure {
    object: ObjectId,
    mapping: Option<Mapping>,
    /// The table its entry lives in.
    parent: Depth,
    /// log2 of the address range it covers.
    span_bits: u32,
}

impl Model {
    /// The structure in `slot`, if it is of `level` (a capability of
    /// another type, or the label of another level, is an illegal
    /// operation for its decoder).
    fn structure(&self, slot: SlotId, level: PagingLevel) -> Result<Structure, Sel4Error> {
        let (object, mapping, parent, span_bits) = match (level, self.cap(slot)) {
            (PagingLevel::PageTable, Cap::PageTable { object, mapping }) => (object, mapping, Depth::Pd, 21),
            (PagingLevel::PageDirectory, Cap::PageDirectory { object, mapping }) => (object, mapping, Depth::Pdpt, 30),
            (PagingLevel::Pdpt, Cap::Pdpt { object, mapping }) => (object, mapping, Depth::Pml4, 39),
            _ => return Err(Sel4Error::IllegalOperation),
        };
        Ok(Structure { object, mapping, parent, span_bits })
    }

    /// The capability of `level` for `object` with `mapping`.
    fn structure_cap(level: PagingLevel, object: ObjectId, mapping: Option<Mapping>) -> Cap {
        match level {
            PagingLevel::PageTable => Cap::PageTable { object, mapping },
            PagingLevel::PageDirectory => Cap::PageDirectory { object, mapping },
            PagingLevel::Pdpt => Cap::Pdpt { object, mapping },
        }
    }

    /// X86PageTableMap, X86PageDirectoryMap, X86PDPTMap.
    pub(crate) fn structure_map_at(
        &mut self,
        slot: SlotId,
        level: PagingLevel,
        vspace: SlotId,
        vaddr: Word,
    ) -> Result<(), Sel4Error> {
        let s = self.structure(slot, level)?;
        if s.mapping.is_some() {
            return Err(Sel4Error::InvalidCapability);
        }
        let vaddr = vaddr & !mask(s.span_bits);
        let (pml4, asid) = Self::native_root(self.cap(vspace)).ok_or(Sel4Error::InvalidCapability)?;
        if vaddr >= PPTR_USER_TOP {
            return Err(Sel4Error::InvalidArgument);
        }
        // Only PageTable Map checks that the ASID still names this VSpace.
        if level == PagingLevel::PageTable {
            self.checked_root(vspace)?;
        }
        let entry = self.entry_slot(pml4, s.parent, vaddr).map_err(|w| self.walk_error(w, vaddr))?;
        if self.entry(entry).is_some() {
            return Err(Sel4Error::DeleteFirst);
        }
        self.check_canonical(vaddr);
        self.set_entry(entry, Some(Entry::Table(self.paddr(s.object))));
        self.set_cap(slot, Self::structure_cap(level, s.object, Some(Mapping { asid, vaddr })));
        Ok(())
    }

    /// X86PageTableUnmap, X86PageDirectoryUnmap, X86PDPTUnmap.
    pub(crate) fn structure_unmap_at(&mut self, slot: SlotId, level: PagingLevel) -> Result<(), Sel4Error> {
        let s = self.structure(slot, level)?;
        if !self.is_final(slot) {
            return Err(Sel4Error::RevokeFirst);
        }
        if let Some(mapping) = s.mapping {
            self.unmap_structure(s.parent, mapping, s.object);
            self.clear_table(s.object);
        }
        self.set_cap(slot, Self::structure_cap(level, s.object, None));
        Ok(())
    }

    /// `unmapPageTable`, `unmapPageDirectory`, `unmapPDPT`.
    pub(crate) fn unmap_structure(&mut self, parent: Depth, mapping: Mapping, object: ObjectId) {
        self.unmap_entry(mapping.asid, parent, mapping.vaddr, Expected::Table(self.paddr(object)));
    }
}
