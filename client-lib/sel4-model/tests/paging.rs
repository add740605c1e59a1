//! Paging-structure rules: a structure maps once, into one VSpace, below
//! a present parent level, into a free slot; Unmap needs its only
//! capability and empties it.

mod common;

use common::*;
use sel4_layer::abi::object_type;
use sel4_layer::kernel::Kernel;
use sel4_layer::{CapRights, PagingLevel, Sel4Error};
use sel4_model::{Cap, FrameSize, Hazard, Mapping};

const A: u64 = 0x20_0000_0000;
const LEVELS: [(PagingLevel, u64); 3] = [
    (PagingLevel::Pdpt, object_type::X86_PDPT),
    (PagingLevel::PageDirectory, object_type::X86_PAGE_DIRECTORY),
    (PagingLevel::PageTable, object_type::X86_PAGE_TABLE),
];

#[test]
fn a_structure_maps_into_one_vspace_once() {
    let mut s = Sys::new();
    let (v1, v2) = (s.vspace(), s.vspace());
    for v in [v1, v2] {
        s.structure(v, PagingLevel::Pdpt, A);
        s.structure(v, PagingLevel::PageDirectory, A);
    }
    for (level, t) in LEVELS {
        let cap = s.retype(t, 0);
        // Map it where its level is free in v1 (a new 512 GiB, 1 GiB or
        // 2 MiB range), then try again, there and in v2.
        let at = match level {
            PagingLevel::Pdpt => A + (1 << 39),
            PagingLevel::PageDirectory => A + (1 << 30),
            PagingLevel::PageTable => A,
        };
        s.m.paging_structure_map(cap, level, v1, at, ATTRS).unwrap();
        let before = s.m.clone();
        for v in [v1, v2] {
            assert_eq!(
                s.m.paging_structure_map(cap, level, v, at, ATTRS),
                Err(Sel4Error::InvalidCapability),
                "{level:?}"
            );
        }
        assert_eq!(s.m, before);
    }
    s.assert_sound();
}

#[test]
fn a_structure_needs_its_parent_level() {
    let mut s = Sys::new();
    let v = s.vspace();
    let pd = s.retype(object_type::X86_PAGE_DIRECTORY, 0);
    let pt = s.retype(object_type::X86_PAGE_TABLE, 0);
    assert_eq!(s.m.paging_structure_map(pd, PagingLevel::PageDirectory, v, A, ATTRS), Err(Sel4Error::FailedLookup));
    assert_eq!(s.m.paging_structure_map(pt, PagingLevel::PageTable, v, A, ATTRS), Err(Sel4Error::FailedLookup));
    s.structure(v, PagingLevel::Pdpt, A);
    assert_eq!(s.m.paging_structure_map(pt, PagingLevel::PageTable, v, A, ATTRS), Err(Sel4Error::FailedLookup));
    s.m.paging_structure_map(pd, PagingLevel::PageDirectory, v, A, ATTRS).unwrap();
    s.m.paging_structure_map(pt, PagingLevel::PageTable, v, A, ATTRS).unwrap();
    s.assert_sound();
}

#[test]
fn a_taken_slot_of_the_parent_is_delete_first() {
    let mut s = Sys::with(&sel4_model::BootConfig { root_cnode_bits: 12, untyped_bits: vec![30, 24] });
    let huge = s.frame(FrameSize::Huge);
    let v = s.vspace();
    s.tables_for(v, A, FrameSize::Small);
    for (level, t) in LEVELS {
        let cap = s.retype(t, 0);
        assert_eq!(s.m.paging_structure_map(cap, level, v, A, ATTRS), Err(Sel4Error::DeleteFirst), "{level:?}");
    }
    // A page directory where a 1 GiB page is, a page table where a 2 MiB
    // page is.
    s.map(huge, v, A + (1 << 30)).unwrap();
    let pd = s.retype(object_type::X86_PAGE_DIRECTORY, 0);
    assert_eq!(
        s.m.paging_structure_map(pd, PagingLevel::PageDirectory, v, A + (1 << 30), ATTRS),
        Err(Sel4Error::DeleteFirst)
    );
    let large = s.frame(FrameSize::Large);
    s.map(large, v, A + (1 << 21)).unwrap();
    let pt = s.retype(object_type::X86_PAGE_TABLE, 0);
    assert_eq!(
        s.m.paging_structure_map(pt, PagingLevel::PageTable, v, A + (1 << 21), ATTRS),
        Err(Sel4Error::DeleteFirst)
    );
    s.assert_sound();
}

#[test]
fn a_structure_maps_at_the_start_of_the_range_it_covers() {
    let mut s = Sys::new();
    let v = s.vspace();
    let pdpt = s.structure(v, PagingLevel::Pdpt, A + 0x1234_5678);
    let pd = s.structure(v, PagingLevel::PageDirectory, A + 0x1234_5678);
    let pt = s.structure(v, PagingLevel::PageTable, A + 0x1234_5678);
    let vaddr = |s: &Sys, c| match s.cap(c) {
        Cap::Pdpt { mapping: Some(Mapping { vaddr, .. }), .. }
        | Cap::PageDirectory { mapping: Some(Mapping { vaddr, .. }), .. }
        | Cap::PageTable { mapping: Some(Mapping { vaddr, .. }), .. } => vaddr,
        other => panic!("{other:?}"),
    };
    // 512 GiB, 1 GiB and 2 MiB aligned.
    assert_eq!([vaddr(&s, pdpt), vaddr(&s, pd), vaddr(&s, pt)], [0, A, A + 0x1220_0000]);
    s.assert_sound();
}

#[test]
fn the_label_must_fit_the_capability() {
    let mut s = Sys::new();
    let v = s.vspace();
    let pt = s.retype(object_type::X86_PAGE_TABLE, 0);
    let frame = s.frame(FrameSize::Small);
    assert_eq!(s.m.paging_structure_map(pt, PagingLevel::PageDirectory, v, A, ATTRS), Err(Sel4Error::IllegalOperation));
    assert_eq!(s.m.paging_structure_map(frame, PagingLevel::PageTable, v, A, ATTRS), Err(Sel4Error::IllegalOperation));
    assert_eq!(s.m.paging_structure_unmap(pt, PagingLevel::Pdpt), Err(Sel4Error::IllegalOperation));
    assert_eq!(s.m.paging_structure_map(v, PagingLevel::Pdpt, v, A, ATTRS), Err(Sel4Error::IllegalOperation));
    s.assert_sound();
}

#[test]
fn unmap_needs_the_structures_only_capability_and_empties_it() {
    let mut s = Sys::new();
    let v = s.vspace();
    s.tables_for(v, A, FrameSize::Large);
    let pt = s.structure(v, PagingLevel::PageTable, A);
    let frame = s.frame(FrameSize::Small);
    s.map(frame, v, A).unwrap();
    let copy = s.copy(pt);
    assert_eq!(s.m.paging_structure_unmap(pt, PagingLevel::PageTable), Err(Sel4Error::RevokeFirst));
    s.delete(copy);
    s.m.paging_structure_unmap(pt, PagingLevel::PageTable).unwrap();
    assert_eq!(s.translate(v, A), None);
    // The frame's capability still records its mapping: it maps again
    // only after its own Unmap (which finds nothing to clear).
    s.m.paging_structure_map(pt, PagingLevel::PageTable, v, A, ATTRS).unwrap();
    assert_eq!(s.translate(v, A), None, "the table came back empty");
    assert_eq!(s.map(frame, v, A), Err(Sel4Error::InvalidCapability));
    s.m.page_unmap(frame).unwrap();
    s.map(frame, v, A).unwrap();
    s.assert_sound();
}

#[test]
fn only_mapped_page_tables_and_directories_can_be_copied_and_a_pdpt_never() {
    let mut s = Sys::new();
    let v = s.vspace();
    for (level, t) in LEVELS {
        let cap = s.retype(t, 0);
        let dest = s.rt.slot().unwrap();
        let copied = s.m.cnode_copy(ROOT, dest, ROOT, cap, CapRights::ALL);
        match level {
            PagingLevel::Pdpt => {
                assert_eq!(copied, Err(Sel4Error::Unknown));
                assert_eq!(s.m.take_hazards(), vec![Hazard::DerivePdpt]);
            }
            _ => assert_eq!(copied, Err(Sel4Error::IllegalOperation), "{level:?}"),
        }
        s.m.paging_structure_map(cap, level, v, A, ATTRS).unwrap();
        if level != PagingLevel::Pdpt {
            s.m.cnode_copy(ROOT, dest, ROOT, cap, CapRights::ALL).unwrap();
            assert_eq!(s.cap(dest), s.cap(cap), "a copy of a mapped structure says mapped too");
        }
    }
    let unassigned = s.retype(object_type::X64_PML4, 0);
    let dest = s.rt.slot().unwrap();
    assert_eq!(s.m.cnode_copy(ROOT, dest, ROOT, unassigned, CapRights::ALL), Err(Sel4Error::IllegalOperation));
    s.assert_sound();
}

#[test]
fn deleting_a_mapped_structures_last_capability_unmaps_it() {
    let mut s = Sys::new();
    let v = s.vspace();
    s.tables_for(v, A, FrameSize::Small);
    let frame = s.frame(FrameSize::Small);
    s.map(frame, v, A).unwrap();
    let pd = s.structure(v, PagingLevel::PageDirectory, A + (1 << 30));
    let pt = s.structure(v, PagingLevel::PageTable, A + (1 << 30));
    let second = s.frame(FrameSize::Small);
    s.map(second, v, A + (1 << 30)).unwrap();
    let copy = s.copy(pt);
    s.delete(pt);
    assert!(s.translate(v, A + (1 << 30)).is_some(), "a copy of the table keeps it in place");
    s.delete(copy);
    assert_eq!(s.translate(v, A + (1 << 30)), None);
    s.assert_sound();
    // Its slot in the page directory is free again.
    s.structure(v, PagingLevel::PageTable, A + (1 << 30));
    s.delete(pd);
    assert!(s.translate(v, A).is_some());
    s.assert_sound();
}

#[test]
fn a_vspace_needs_an_asid_before_anything_maps() {
    let mut s = Sys::new();
    let pml4 = s.retype(object_type::X64_PML4, 0);
    let pdpt = s.retype(object_type::X86_PDPT, 0);
    let frame = s.frame(FrameSize::Small);
    assert_eq!(s.m.paging_structure_map(pdpt, PagingLevel::Pdpt, pml4, A, ATTRS), Err(Sel4Error::InvalidCapability));
    assert_eq!(s.map(frame, pml4, A), Err(Sel4Error::InvalidCapability));
    s.m.asid_pool_assign(sel4_layer::abi::init_cap::ASID_POOL, pml4).unwrap();
    s.m.paging_structure_map(pdpt, PagingLevel::Pdpt, pml4, A, ATTRS).unwrap();
    s.assert_sound();
}

#[test]
fn structures_lists_the_tables_over_a_range_and_follows_unmaps() {
    let mut s = Sys::new();
    let vspace = s.vspace();
    let at = 0x7000_0000_0000;
    s.tables_for(vspace, at, FrameSize::Small);
    let pt = s.structure(vspace, PagingLevel::PageTable, at + (1 << 21));
    let pml4 = s.object(vspace);
    let all = s.m.structures(pml4, at..at + (1 << 30));
    let types: Vec<_> = all.iter().map(|&(vaddr, t)| (vaddr - at, t)).collect();
    use sel4_model::ObjectType::{PageDirectory, PageTable, Pdpt};
    assert_eq!(types, [(0, Pdpt), (0, PageDirectory), (0, PageTable), (1 << 21, PageTable)]);
    assert_eq!(s.m.structures(pml4, at + (1 << 21)..at + (1 << 22)).len(), 3, "the PDPT, PD and second PT");
    assert_eq!(s.m.structures(pml4, 0..at), []);
    s.m.paging_structure_unmap(pt, PagingLevel::PageTable).unwrap();
    assert_eq!(s.m.structures(pml4, at..at + (1 << 30)).len(), 3);
    s.assert_sound();
}
