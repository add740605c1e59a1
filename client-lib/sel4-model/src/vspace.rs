//! Paging structures and the walks of `arch/x86/64/kernel/vspace.c`
//! (`lookupPDPTSlot`, `lookupPDSlot`, `lookupPTSlot`), which index the
//! PML4 with bits 39..48 of the address and follow entries by physical
//! address; and translation through a VSpace as the MMU does it, for
//! tests.

use crate::cap::{Cap, VmRights};
use crate::hazard::Hazard;
use crate::model::Model;
use crate::object::{Body, FrameSize, ObjectId, ObjectType};
use sel4_layer::Sel4Error;
use std::collections::BTreeMap;
use std::ops::Range;

/// `PPTR_USER_TOP` of the `images` build (SMP: one PML4 slot below the
/// kernel window holds the TLB bitmap): mapping requests must end below it.
pub(crate) const PPTR_USER_TOP: u64 = 0xffff_ff00_0000_0000;
/// The end of the canonical lower half.
pub(crate) const CANONICAL_TOP: u64 = 0x0000_8000_0000_0000;
/// The PML4 slot of the kernel window, present in every PML4.
pub(crate) const KERNEL_PML4_SLOT: u16 = 511;

const PML4_SHIFT: u32 = 39;
const PDPT_SHIFT: u32 = 30;
const PD_SHIFT: u32 = 21;
const PT_SHIFT: u32 = 12;
const ENTRIES: u16 = 512;

/// A present paging-structure entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The next level's table, at this physical address.
    Table(u64),
    /// A frame mapping (a 1 GiB page in a PDPT, 2 MiB in a PD, 4 KiB in a
    /// PT).
    Page { paddr: u64, rights: VmRights },
    /// The kernel window (PML4 slot 511, from `copyGlobalMappings`).
    Kernel,
}

/// What an unmapping expects its entry to point to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// A page of the frame at this physical address.
    Page(u64),
    /// The table at this physical address.
    Table(u64),
}

/// An entry's place: a table and an index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntrySlot {
    pub table: ObjectId,
    pub index: u16,
}

/// The table an entry lives in, by level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Depth {
    /// The PML4 (entries: PDPTs).
    Pml4,
    /// A PDPT (entries: page directories, 1 GiB pages).
    Pdpt,
    /// A page directory (entries: page tables, 2 MiB pages).
    Pd,
    /// A page table (entries: 4 KiB pages).
    Pt,
}

impl FrameSize {
    /// The table a page of this size is an entry of.
    pub(crate) const fn depth(self) -> Depth {
        match self {
            FrameSize::Small => Depth::Pt,
            FrameSize::Large => Depth::Pd,
            FrameSize::Huge => Depth::Pdpt,
        }
    }
}

/// Why a walk found no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// An upper level is not present (a lookup fault).
    Missing,
    /// An upper entry points where no table of its level lives now.
    Stale(u64),
    /// An upper entry is the kernel window's.
    Kernel,
}

impl Body {
    /// A new PML4's entries: the kernel window's (`copyGlobalMappings`).
    pub(crate) fn pml4() -> Body {
        Body::Table(BTreeMap::from([(KERNEL_PML4_SLOT, Entry::Kernel)]))
    }
}

/// A frame mapping as the MMU sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The first virtual address it maps (as the kernel indexes it: bits
    /// 39..48 select the PML4 slot).
    pub vaddr: u64,
    /// The physical address it maps.
    pub paddr: u64,
    /// The page size.
    pub size: FrameSize,
    /// Its rights.
    pub rights: VmRights,
    /// The live frame of that size at that address, if there is one (a
    /// mapping whose frame was deleted maps whatever the memory is now).
    pub frame: Option<ObjectId>,
}

impl Leaf {
    /// Whether user code may write through it.
    pub fn writable(&self) -> bool {
        self.rights == VmRights::ReadWrite
    }
}

/// The entry index of `vaddr` at the level `shift` selects.
fn index(vaddr: u64, shift: u32) -> u16 {
    ((vaddr >> shift) & (ENTRIES as u64 - 1)) as u16
}

impl Model {
    pub(crate) fn entry(&self, slot: EntrySlot) -> Option<Entry> {
        match &self.object(slot.table)?.body {
            Body::Table(entries) => entries.get(&slot.index).copied(),
            _ => None,
        }
    }

    pub(crate) fn set_entry(&mut self, slot: EntrySlot, entry: Option<Entry>) {
        if let Some(Body::Table(entries)) = self.object_mut(slot.table).map(|o| &mut o.body) {
            match entry {
                Some(e) => entries.insert(slot.index, e),
                None => entries.remove(&slot.index),
            };
        }
    }

    /// `clearMemory` of a paging structure: every entry goes.
    pub(crate) fn clear_table(&mut self, table: ObjectId) {
        if let Some(Body::Table(entries)) = self.object_mut(table).map(|o| &mut o.body) {
            entries.clear();
        }
    }

    /// The live table of type `otype` at `paddr`.
    fn table_at(&self, paddr: u64, otype: ObjectType) -> Result<ObjectId, Walk> {
        self.object_at(paddr).filter(|&id| self.object(id).is_some_and(|o| o.otype == otype)).ok_or(Walk::Stale(paddr))
    }

    /// `lookupPML4Slot`.
    pub(crate) fn lookup_pml4_slot(&self, pml4: ObjectId, vaddr: u64) -> EntrySlot {
        EntrySlot { table: pml4, index: index(vaddr, PML4_SHIFT) }
    }

    /// `lookupPDPTSlot`.
    pub(crate) fn lookup_pdpt_slot(&self, pml4: ObjectId, vaddr: u64) -> Result<EntrySlot, Walk> {
        match self.entry(self.lookup_pml4_slot(pml4, vaddr)) {
            Some(Entry::Table(paddr)) => {
                Ok(EntrySlot { table: self.table_at(paddr, ObjectType::Pdpt)?, index: index(vaddr, PDPT_SHIFT) })
            }
            Some(Entry::Kernel) => Err(Walk::Kernel),
            Some(Entry::Page { .. }) | None => Err(Walk::Missing),
        }
    }

    /// `lookupPDSlot`.
    pub(crate) fn lookup_pd_slot(&self, pml4: ObjectId, vaddr: u64) -> Result<EntrySlot, Walk> {
        self.lower_slot(self.lookup_pdpt_slot(pml4, vaddr)?, ObjectType::PageDirectory, vaddr, PD_SHIFT)
    }

    /// `lookupPTSlot`.
    pub(crate) fn lookup_pt_slot(&self, pml4: ObjectId, vaddr: u64) -> Result<EntrySlot, Walk> {
        self.lower_slot(self.lookup_pd_slot(pml4, vaddr)?, ObjectType::PageTable, vaddr, PT_SHIFT)
    }

    /// The slot for `vaddr` in the table of type `otype` that `upper`
    /// points to (a page there is not a table: a lookup fault).
    fn lower_slot(&self, upper: EntrySlot, otype: ObjectType, vaddr: u64, shift: u32) -> Result<EntrySlot, Walk> {
        match self.entry(upper) {
            Some(Entry::Table(paddr)) => {
                Ok(EntrySlot { table: self.table_at(paddr, otype)?, index: index(vaddr, shift) })
            }
            _ => Err(Walk::Missing),
        }
    }

    /// The slot of `vaddr`'s entry in the table of `depth` of the VSpace
    /// `pml4`.
    pub(crate) fn entry_slot(&self, pml4: ObjectId, depth: Depth, vaddr: u64) -> Result<EntrySlot, Walk> {
        match depth {
            Depth::Pml4 => Ok(self.lookup_pml4_slot(pml4, vaddr)),
            Depth::Pdpt => self.lookup_pdpt_slot(pml4, vaddr),
            Depth::Pd => self.lookup_pd_slot(pml4, vaddr),
            Depth::Pt => self.lookup_pt_slot(pml4, vaddr),
        }
    }

    /// The kernel's unmapping of one page or table (`unmapPage`,
    /// `unmapPageTable`, `unmapPageDirectory`, `unmapPDPT`): in the VSpace
    /// the ASID names now, the entry of `depth` for `vaddr` is cleared if
    /// it still points to `expected`; otherwise nothing happens.
    pub(crate) fn unmap_entry(&mut self, asid: u16, depth: Depth, vaddr: u64, expected: Expected) {
        let Some(pml4) = self.vspace_of_asid(asid) else { return };
        let slot = match self.entry_slot(pml4, depth, vaddr) {
            Ok(slot) => slot,
            Err(Walk::Stale(paddr)) => {
                self.hazards.push(Hazard::StaleTable { paddr });
                return;
            }
            Err(Walk::Missing | Walk::Kernel) => return,
        };
        let matches = match (self.entry(slot), expected) {
            (Some(Entry::Page { paddr, .. }), Expected::Page(want))
            | (Some(Entry::Table(paddr)), Expected::Table(want)) => paddr == want,
            _ => false,
        };
        if matches {
            self.set_entry(slot, None);
        }
    }

    /// The error an invocation for `vaddr` returns when its walk fails: a
    /// lookup fault is `FailedLookup`; walking a deleted table, or into the
    /// kernel window's tables, is a hazard.
    pub(crate) fn walk_error(&mut self, walk: Walk, vaddr: u64) -> Sel4Error {
        match walk {
            Walk::Missing => Sel4Error::FailedLookup,
            Walk::Stale(paddr) => self.hazard(Hazard::StaleTable { paddr }),
            Walk::Kernel => self.hazard(Hazard::NonCanonical { vaddr }),
        }
    }

    /// Records an entry installed for an address above the canonical lower
    /// half.
    pub(crate) fn check_canonical(&mut self, vaddr: u64) {
        if vaddr >= CANONICAL_TOP {
            self.hazards.push(Hazard::NonCanonical { vaddr });
        }
    }

    /// `isValidNativeRoot`: a PML4 capability with an ASID.
    pub(crate) fn native_root(cap: Cap) -> Option<(ObjectId, u16)> {
        match cap {
            Cap::Pml4 { object, asid: Some(asid) } => Some((object, asid)),
            _ => None,
        }
    }

    /// The paging structures the MMU walks through for `vaddr` in the
    /// VSpace whose PML4 is `vspace`, from the PML4 down.
    pub fn tables_on_path(&self, vspace: ObjectId, vaddr: u64) -> Vec<ObjectId> {
        let mut path = vec![vspace];
        for depth in [Depth::Pdpt, Depth::Pd, Depth::Pt] {
            match self.entry_slot(vspace, depth, vaddr) {
                Ok(slot) => path.push(slot.table),
                Err(_) => break,
            }
        }
        path
    }

    /// What the MMU finds for `vaddr` in the VSpace whose PML4 is `vspace`.
    pub fn translate(&self, vspace: ObjectId, vaddr: u64) -> Option<Leaf> {
        self.leaves(vspace, vaddr..vaddr.saturating_add(1)).into_iter().next()
    }

    /// Every paging structure below the PML4 of the VSpace `vspace` whose
    /// span overlaps `range`: its first address and type, in address order
    /// (a table before the tables below it).
    pub fn structures(&self, vspace: ObjectId, range: Range<u64>) -> Vec<(u64, ObjectType)> {
        let mut out = Vec::new();
        self.collect_structures(vspace, ObjectType::Pml4, 0, &range, &mut out);
        out
    }

    fn collect_structures(
        &self,
        table: ObjectId,
        otype: ObjectType,
        base: u64,
        range: &Range<u64>,
        out: &mut Vec<(u64, ObjectType)>,
    ) {
        let Some(Body::Table(entries)) = self.object(table).map(|o| &o.body) else { return };
        let (shift, lower) = match otype {
            ObjectType::Pml4 => (PML4_SHIFT, ObjectType::Pdpt),
            ObjectType::Pdpt => (PDPT_SHIFT, ObjectType::PageDirectory),
            ObjectType::PageDirectory => (PD_SHIFT, ObjectType::PageTable),
            _ => return,
        };
        for (&i, &entry) in entries {
            let vaddr = base + ((i as u64) << shift);
            if vaddr >= range.end || vaddr + (1u64 << shift) <= range.start {
                continue;
            }
            if let Entry::Table(paddr) = entry {
                if let Ok(next) = self.table_at(paddr, lower) {
                    out.push((vaddr, lower));
                    self.collect_structures(next, lower, vaddr, range, out);
                }
            }
        }
    }

    /// Every frame mapping of the VSpace `vspace` that overlaps `range`, in
    /// address order.
    pub fn leaves(&self, vspace: ObjectId, range: Range<u64>) -> Vec<Leaf> {
        let mut out = Vec::new();
        self.collect_leaves(vspace, ObjectType::Pml4, 0, &range, &mut out);
        out
    }

    fn collect_leaves(&self, table: ObjectId, otype: ObjectType, base: u64, range: &Range<u64>, out: &mut Vec<Leaf>) {
        let Some(Body::Table(entries)) = self.object(table).map(|o| &o.body) else { return };
        let (shift, lower, page) = match otype {
            ObjectType::Pml4 => (PML4_SHIFT, ObjectType::Pdpt, None),
            ObjectType::Pdpt => (PDPT_SHIFT, ObjectType::PageDirectory, Some(FrameSize::Huge)),
            ObjectType::PageDirectory => (PD_SHIFT, ObjectType::PageTable, Some(FrameSize::Large)),
            _ => (PT_SHIFT, ObjectType::PageTable, Some(FrameSize::Small)),
        };
        for (&i, &entry) in entries {
            let vaddr = base + ((i as u64) << shift);
            if vaddr >= range.end || vaddr + (1u64 << shift) <= range.start {
                continue;
            }
            match (entry, page) {
                (Entry::Table(paddr), _) if otype != ObjectType::PageTable => {
                    if let Ok(next) = self.table_at(paddr, lower) {
                        self.collect_leaves(next, lower, vaddr, range, out);
                    }
                }
                (Entry::Page { paddr, rights }, Some(size)) => {
                    let frame = self
                        .object_at(paddr)
                        .filter(|&id| self.object(id).is_some_and(|o| o.otype == ObjectType::Frame(size)));
                    out.push(Leaf { vaddr, paddr, size, rights, frame });
                }
                _ => {}
            }
        }
    }
}
