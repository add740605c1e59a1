//! Frame rules: a frame capability maps once; a copy maps separately;
//! Page Unmap removes that capability's mapping only; deleting or
//! revoking a mapped capability unmaps it only when it is the frame's last.

mod common;

use common::*;
use sel4_layer::abi::{init_cap, object_type};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CapRights, PagingLevel, Sel4Error, Slot};
use sel4_model::{Cap, FrameSize, Hazard, Mapping, VmRights};

const A: u64 = 0x10_0000_0000;
const B: u64 = 0x10_0020_0000;

/// Two VSpaces with page tables at `A` and `B`, and a frame.
fn two_spaces() -> (Sys, u64, u64, u64) {
    let mut s = Sys::new();
    let (v1, v2) = (s.vspace(), s.vspace());
    for v in [v1, v2] {
        s.tables_for(v, A, FrameSize::Small);
        s.structure(v, PagingLevel::PageTable, B);
    }
    let frame = s.frame(FrameSize::Small);
    (s, v1, v2, frame)
}

#[test]
fn a_frame_capability_maps_once() {
    let (mut s, v1, v2, frame) = two_spaces();
    s.map(frame, v1, A).unwrap();
    let before = s.m.clone();
    for (v, addr) in [(v1, B), (v2, A), (v1, A)] {
        assert_eq!(s.map(frame, v, addr), Err(Sel4Error::InvalidCapability), "{v} {addr:#x}");
    }
    assert_eq!(s.m, before);
    assert_eq!(s.translate(v1, A).and_then(|l| l.frame), Some(s.object(frame)));
    s.assert_sound();
}

#[test]
fn a_copy_starts_unmapped_and_maps_on_its_own() {
    let (mut s, v1, v2, frame) = two_spaces();
    s.map(frame, v1, A).unwrap();
    let copy = s.copy(frame);
    assert!(matches!(s.cap(copy), Cap::Frame { mapping: None, .. }));
    s.map(copy, v2, B).unwrap();
    let second = s.copy(frame);
    s.map(second, v1, B).unwrap();
    let id = s.object(frame);
    for (v, addr) in [(v1, A), (v2, B), (v1, B)] {
        let leaf = s.translate(v, addr).unwrap();
        assert_eq!((leaf.frame, leaf.paddr), (Some(id), s.m.page_get_address(copy).unwrap()));
    }
    s.assert_sound();
}

#[test]
fn page_unmap_removes_only_its_own_capabilitys_mapping() {
    let (mut s, v1, v2, frame) = two_spaces();
    s.map(frame, v1, A).unwrap();
    let copy = s.copy(frame);
    s.map(copy, v2, A).unwrap();
    s.m.page_unmap(copy).unwrap();
    assert_eq!(s.translate(v2, A), None);
    assert!(s.translate(v1, A).is_some());
    assert!(matches!(s.cap(copy), Cap::Frame { mapping: None, .. }));
    // Unmapping an unmapped capability does nothing, successfully.
    s.m.page_unmap(copy).unwrap();
    assert!(s.translate(v1, A).is_some());
    s.map(copy, v2, B).unwrap();
    s.assert_sound();
}

/// What the stress scenario found: seL4 5.0.0 unmaps a frame on Delete
/// or Revoke only through its last capability (`Mode_finaliseCap` checks
/// `final`), so a deleted copy's mapping stays, with no capability left
/// to remove it.
#[test]
fn deleting_or_revoking_a_mapped_copy_that_is_not_the_last_leaves_its_mapping() {
    let (mut s, v1, v2, frame) = two_spaces();
    let copy = s.copy(frame);
    s.map(copy, v1, A).unwrap();
    s.delete(copy);
    let leaf = s.translate(v1, A).expect("the deleted copy's mapping stays");
    assert_eq!(leaf.frame, Some(s.object(frame)));
    let revoked = s.copy(frame);
    s.map(revoked, v2, A).unwrap();
    s.revoke(frame);
    assert_eq!(s.cap(revoked), Cap::Null);
    assert!(s.translate(v2, A).is_some(), "revoke deletes copies without unmapping them");
    let asids: Vec<_> = s.m.unowned_leaves().iter().map(|(asid, leaf)| (*asid, leaf.vaddr)).collect();
    let asid = |v| match s.cap(v) {
        Cap::Pml4 { asid: Some(a), .. } => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(asids, vec![(asid(v1), A), (asid(v2), A)]);
    s.assert_sound();
}

/// A VSpace whose page table at `A` held a mapping of frame `old`, was
/// unmapped (emptied) and mapped again, and now maps frame `new` there;
/// `old`'s capability still records `A`.
fn emptied_under_a_mapping() -> (Sys, u64, u64, u64) {
    let mut s = Sys::new();
    let v = s.vspace();
    s.structure(v, PagingLevel::Pdpt, A);
    s.structure(v, PagingLevel::PageDirectory, A);
    let pt = s.structure(v, PagingLevel::PageTable, A);
    let (old, new) = (s.frame(FrameSize::Small), s.frame(FrameSize::Small));
    s.map(old, v, A).unwrap();
    s.m.paging_structure_unmap(pt, PagingLevel::PageTable).unwrap();
    s.m.paging_structure_map(pt, PagingLevel::PageTable, v, A, ATTRS).unwrap();
    s.map(new, v, A).unwrap();
    (s, v, old, new)
}

/// Page Unmap clears the entry its capability recorded only if the entry
/// still maps that frame (`unmapPage` compares the address): a capability
/// whose page table was emptied under it cannot unmap the frame mapped
/// there since.
#[test]
fn page_unmap_leaves_an_entry_that_maps_another_frame_now() {
    let (mut s, v, old, new) = emptied_under_a_mapping();
    assert!(matches!(s.cap(old), Cap::Frame { mapping: Some(Mapping { vaddr: A, .. }), .. }));
    s.m.page_unmap(old).unwrap();
    assert_eq!(s.translate(v, A).and_then(|l| l.frame), Some(s.object(new)));
    s.assert_sound();
}

/// Page Remap writes the entry its capability recorded without looking at
/// what the entry holds: after the page table was emptied and mapped
/// again and another frame mapped there, a Remap through the old
/// capability puts its frame back over the other's mapping.
#[test]
fn remap_writes_its_entry_whatever_the_entry_holds() {
    let (mut s, v, old, new) = emptied_under_a_mapping();
    assert_eq!(s.translate(v, A).and_then(|l| l.frame), Some(s.object(new)));
    s.m.page_remap(old, v, CapRights::READ, ATTRS).unwrap();
    assert_eq!(s.translate(v, A).and_then(|l| l.frame), Some(s.object(old)));
    assert_eq!(s.m.unowned_leaves(), vec![], "the old capability records the address");
    s.assert_sound();
}

#[test]
fn deleting_the_last_capability_unmaps_its_own_mapping() {
    let (mut s, v1, _, frame) = two_spaces();
    s.map(frame, v1, A).unwrap();
    let id = s.object(frame);
    s.delete(frame);
    assert_eq!(s.translate(v1, A), None);
    assert!(!s.m.is_alive(id));
    s.assert_sound();
}

/// The final capability unmaps only what it mapped itself: a mapping a
/// deleted copy left stays after the frame is gone, and maps whatever
/// the memory becomes next.
#[test]
fn a_mapping_left_by_a_copy_outlives_the_frame_and_maps_the_next_object_there() {
    let mut s = Sys::with(&sel4_model::BootConfig { root_cnode_bits: 12, untyped_bits: vec![12, 16] });
    let v1 = s.vspace();
    s.tables_for(v1, A, FrameSize::Small);
    s.structure(v1, PagingLevel::PageTable, B);
    let small = s.info.untypeds[0].cptr;
    let frame = s.rt.slot().unwrap();
    s.m.untyped_retype(small, object_type::X86_4K, 0, Slot::in_root(init_cap::CNODE, frame), 1).unwrap();
    let paddr = s.m.page_get_address(frame).unwrap();
    s.map(frame, v1, A).unwrap();
    let copy = s.copy(frame);
    s.map(copy, v1, B).unwrap();
    s.delete(copy);
    s.delete(frame);
    assert_eq!(s.translate(v1, A), None, "the last capability's own mapping went");
    let stale = s.translate(v1, B).expect("the copy's mapping stays");
    assert_eq!((stale.paddr, stale.frame), (paddr, None));
    // The untyped has no children: the next object reuses the memory.
    let next = s.rt.slot().unwrap();
    s.m.untyped_retype(small, object_type::X86_4K, 0, Slot::in_root(init_cap::CNODE, next), 1).unwrap();
    assert_eq!(s.m.page_get_address(next), Ok(paddr));
    assert_eq!(s.translate(v1, B).and_then(|l| l.frame), Some(s.object(next)));
    s.assert_sound();
}

/// Page Map refuses a mapped capability whatever the address; new rights
/// for the same mapping are Page Remap's.
#[test]
fn remap_changes_the_rights_of_the_existing_mapping() {
    let (mut s, v1, v2, frame) = two_spaces();
    s.map(frame, v1, A).unwrap();
    assert_eq!(s.m.page_map(frame, v1, A, CapRights::READ, ATTRS), Err(Sel4Error::InvalidCapability));
    s.m.page_remap(frame, v1, CapRights::READ, ATTRS).unwrap();
    assert_eq!(s.translate(v1, A).map(|l| l.rights), Some(VmRights::ReadOnly));
    s.m.page_remap(frame, v1, CapRights::READ_WRITE, ATTRS).unwrap();
    assert!(s.translate(v1, A).unwrap().writable());
    assert_eq!(s.m.page_remap(frame, v2, CapRights::READ, ATTRS), Err(Sel4Error::InvalidCapability));
    let unmapped = s.copy(frame);
    assert_eq!(s.m.page_remap(unmapped, v1, CapRights::READ, ATTRS), Err(Sel4Error::IllegalOperation));
    s.assert_sound();
}

#[test]
fn a_mapping_has_the_capabilitys_rights_masked_by_the_requested_ones() {
    let (mut s, v1, _, frame) = two_spaces();
    let read_only = s.rt.slot().unwrap();
    s.m.cnode_copy(ROOT, read_only, ROOT, frame, CapRights::READ).unwrap();
    assert!(matches!(s.cap(read_only), Cap::Frame { rights: VmRights::ReadOnly, .. }));
    s.m.page_map(read_only, v1, A, CapRights::READ_WRITE, ATTRS).unwrap();
    assert_eq!(s.translate(v1, A).map(|l| l.rights), Some(VmRights::ReadOnly));
    let write_only = CapRights { grant: false, read: false, write: true };
    s.m.page_map(frame, v1, B, write_only, ATTRS).unwrap();
    assert_eq!(s.translate(v1, B).map(|l| l.rights), Some(VmRights::KernelOnly));
    s.assert_sound();
}

#[test]
fn a_page_needs_its_table_level_present() {
    let mut s = Sys::with(&sel4_model::BootConfig { root_cnode_bits: 12, untyped_bits: vec![30, 24] });
    let huge = s.frame(FrameSize::Huge);
    let (small, large) = (s.frame(FrameSize::Small), s.frame(FrameSize::Large));
    let v = s.vspace();
    assert_eq!(s.map(small, v, A), Err(Sel4Error::FailedLookup));
    assert_eq!(s.map(huge, v, A), Err(Sel4Error::FailedLookup));
    s.structure(v, PagingLevel::Pdpt, A);
    assert_eq!(s.map(small, v, A), Err(Sel4Error::FailedLookup));
    assert_eq!(s.map(large, v, A), Err(Sel4Error::FailedLookup));
    s.map(huge, v, 0x10_4000_0000).unwrap();
    s.structure(v, PagingLevel::PageDirectory, A);
    assert_eq!(s.map(small, v, A), Err(Sel4Error::FailedLookup));
    s.map(large, v, A + 0x20_0000).unwrap();
    s.structure(v, PagingLevel::PageTable, A);
    s.map(small, v, A).unwrap();
    for (addr, size) in
        [(A + 0x123, FrameSize::Small), (A + 0x20_1234, FrameSize::Large), (0x10_4123_4567, FrameSize::Huge)]
    {
        assert_eq!(s.translate(v, addr).map(|l| l.size), Some(size), "{addr:#x}");
    }
    s.assert_sound();
}

#[test]
fn an_occupied_entry_is_delete_first() {
    let (mut s, v1, _, frame) = two_spaces();
    let other = s.frame(FrameSize::Small);
    s.map(frame, v1, A).unwrap();
    assert_eq!(s.map(other, v1, A), Err(Sel4Error::DeleteFirst));
    // A large page where a page table is, and a page table where a large
    // page is.
    let large = s.frame(FrameSize::Large);
    assert_eq!(s.map(large, v1, A), Err(Sel4Error::DeleteFirst));
    assert_eq!(s.map(large, v1, B), Err(Sel4Error::DeleteFirst));
    s.map(large, v1, A + 0x40_0000).unwrap();
    let table = s.retype(object_type::X86_PAGE_TABLE, 0);
    let at_large = s.m.paging_structure_map(table, PagingLevel::PageTable, v1, A + 0x40_0000, ATTRS);
    assert_eq!(at_large, Err(Sel4Error::DeleteFirst));
    s.assert_sound();
}

#[test]
fn addresses_must_be_aligned_and_below_the_user_top() {
    let (mut s, v1, _, frame) = two_spaces();
    assert_eq!(s.map(frame, v1, A + 0x800), Err(Sel4Error::AlignmentError));
    let large = s.frame(FrameSize::Large);
    assert_eq!(s.map(large, v1, A + 0x1000), Err(Sel4Error::AlignmentError));
    assert_eq!(s.map(frame, v1, 0xffff_ff00_0000_0000), Err(Sel4Error::InvalidArgument));
    // Below PPTR_USER_TOP, in PML4 slot 509, where nothing is: a lookup
    // fault like any other.
    assert_eq!(s.map(frame, v1, 0xffff_feff_ffff_f000), Err(Sel4Error::FailedLookup));
    s.assert_sound();
}

/// 5.0.0 checks mapping addresses against `PPTR_USER_TOP`, not the end of
/// the canonical lower half, and indexes the PML4 with bits 39..48: a
/// structure mapped at 0x8000_0000_0000 lands in PML4 slot 256, which the
/// MMU uses for the kernel half's first 512 GiB.
#[test]
fn a_non_canonical_address_is_accepted_as_5_0_0_does_and_recorded() {
    let mut s = Sys::new();
    let v = s.vspace();
    let pdpt = s.structure(v, PagingLevel::Pdpt, 0x8000_0000_0000);
    assert!(matches!(s.cap(pdpt), Cap::Pdpt { mapping: Some(Mapping { vaddr: 0x8000_0000_0000, .. }), .. }));
    assert_eq!(s.m.take_hazards(), vec![Hazard::NonCanonical { vaddr: 0x8000_0000_0000 }]);
    // The kernel window's own slot (511) is present already.
    let other = s.retype(object_type::X86_PDPT, 0);
    assert_eq!(
        s.m.paging_structure_map(other, PagingLevel::Pdpt, v, 0xff80_0000_0000, ATTRS),
        Err(Sel4Error::DeleteFirst)
    );
    // Mapping below it would walk the kernel's tables.
    let frame = s.frame(FrameSize::Small);
    assert_eq!(s.map(frame, v, 0xff80_0000_0000), Err(Sel4Error::Unknown));
    assert_eq!(s.m.take_hazards(), vec![Hazard::NonCanonical { vaddr: 0xff80_0000_0000 }]);
    assert_eq!(s.m.check(), Vec::<String>::new());
}

#[test]
fn get_address_is_the_frames_and_stable() {
    let mut s = Sys::new();
    let a = s.frame(FrameSize::Small);
    let b = s.frame(FrameSize::Small);
    let copy = s.copy(a);
    let (pa, pb) = (s.m.page_get_address(a).unwrap(), s.m.page_get_address(b).unwrap());
    assert_ne!(pa, pb);
    assert_eq!(s.m.page_get_address(copy), Ok(pa));
    assert_eq!(s.m.physical_address(s.object(a)), Some(pa));
    s.delete(a);
    assert_eq!(s.m.page_get_address(copy), Ok(pa));
    s.assert_sound();
}
