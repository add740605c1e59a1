//! Frame invocations (`decodeX86FrameInvocation`, `unmapPage`): a frame
//! capability records one mapping, so it maps once; a copy (made
//! unmapped by `deriveCap`) maps separately; Page Unmap removes only the
//! mapping its capability made, and only if the entry still maps that
//! frame.

use crate::cap::{mask, Cap, Mapping};
use crate::model::{Model, SlotId};
use crate::object::{FrameSize, ObjectId};
use crate::vspace::{Entry, Expected, PPTR_USER_TOP};
use sel4_layer::abi::Word;
use sel4_layer::{CapRights, Sel4Error};

impl Model {
    /// X86PageMap: `frame` is the invoked slot, `vspace` the VSpace
    /// argument's slot.
    pub(crate) fn page_map_at(
        &mut self,
        frame: SlotId,
        vspace: SlotId,
        vaddr: Word,
        rights: CapRights,
    ) -> Result<(), Sel4Error> {
        let Cap::Frame { object, size, rights: cap_rights, mapping } = self.cap(frame) else {
            return Err(Sel4Error::IllegalOperation);
        };
        if mapping.is_some() {
            return Err(Sel4Error::InvalidCapability);
        }
        let (pml4, asid) = self.checked_root(vspace)?;
        if vaddr.wrapping_add(size.bytes()) > PPTR_USER_TOP {
            return Err(Sel4Error::InvalidArgument);
        }
        let rights = cap_rights.mask(rights);
        if vaddr & mask(size.bits()) != 0 {
            return Err(Sel4Error::AlignmentError);
        }
        let slot = self.entry_slot(pml4, size.depth(), vaddr).map_err(|w| self.walk_error(w, vaddr))?;
        // A present entry at this level (a table or a page) is in the way.
        if self.entry(slot).is_some() {
            return Err(Sel4Error::DeleteFirst);
        }
        self.check_canonical(vaddr);
        self.set_entry(slot, Some(Entry::Page { paddr: self.paddr(object), rights }));
        self.set_cap(frame, Cap::Frame { object, size, rights: cap_rights, mapping: Some(Mapping { asid, vaddr }) });
        Ok(())
    }

    /// X86PageRemap: new rights for the mapping the capability made. As in
    /// 5.0.0, the entry is written without checking what it holds now.
    pub(crate) fn page_remap_at(&mut self, frame: SlotId, vspace: SlotId, rights: CapRights) -> Result<(), Sel4Error> {
        let Cap::Frame { object, size, rights: cap_rights, mapping } = self.cap(frame) else {
            return Err(Sel4Error::IllegalOperation);
        };
        let Some(Mapping { asid: mapped_asid, vaddr }) = mapping else { return Err(Sel4Error::IllegalOperation) };
        let Some((_, asid)) = Self::native_root(self.cap(vspace)) else { return Err(Sel4Error::InvalidCapability) };
        if mapped_asid != asid {
            return Err(Sel4Error::InvalidCapability);
        }
        let (pml4, _) = self.checked_root(vspace)?;
        let rights = cap_rights.mask(rights);
        let slot = self.entry_slot(pml4, size.depth(), vaddr).map_err(|w| self.walk_error(w, vaddr))?;
        if size != FrameSize::Small && matches!(self.entry(slot), Some(Entry::Table(_))) {
            return Err(Sel4Error::DeleteFirst);
        }
        self.set_entry(slot, Some(Entry::Page { paddr: self.paddr(object), rights }));
        Ok(())
    }

    /// X86PageUnmap: nothing to do for an unmapped capability.
    pub(crate) fn page_unmap_at(&mut self, frame: SlotId) -> Result<(), Sel4Error> {
        let Cap::Frame { object, size, rights, mapping } = self.cap(frame) else {
            return Err(Sel4Error::IllegalOperation);
        };
        if let Some(mapping) = mapping {
            self.unmap_page(size, mapping, object);
            self.set_cap(frame, Cap::Frame { object, size, rights, mapping: None });
        }
        Ok(())
    }

    /// X86PageGetAddress.
    pub(crate) fn page_address_at(&self, frame: SlotId) -> Result<Word, Sel4Error> {
        match self.cap(frame) {
            Cap::Frame { object, .. } => Ok(self.paddr(object)),
            _ => Err(Sel4Error::IllegalOperation),
        }
    }

    /// `unmapPage`: clears the entry at the mapping's place if it still
    /// maps `frame` there, in the VSpace the ASID names now.
    pub(crate) fn unmap_page(&mut self, size: FrameSize, mapping: Mapping, frame: ObjectId) {
        self.unmap_entry(mapping.asid, size.depth(), mapping.vaddr, Expected::Page(self.paddr(frame)));
    }

    /// The checks Page Map and PageTable Map make of their VSpace argument:
    /// a PML4 with an ASID (`InvalidCapability`), and that ASID still
    /// naming this PML4 (`FailedLookup` if it names none).
    pub(crate) fn checked_root(&self, vspace: SlotId) -> Result<(ObjectId, u16), Sel4Error> {
        let (pml4, asid) = Self::native_root(self.cap(vspace)).ok_or(Sel4Error::InvalidCapability)?;
        match self.vspace_of_asid(asid) {
            None => Err(Sel4Error::FailedLookup),
            Some(found) if found != pml4 => Err(Sel4Error::InvalidCapability),
            Some(_) => Ok((pml4, asid)),
        }
    }
}
