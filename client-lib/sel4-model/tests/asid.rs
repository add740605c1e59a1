//! ASID rules: pools of 512, 8 pools, a PML4 gets one ASID, deleting it
//! frees the ASID; and what 5.0.0 does when a pool is deleted and its
//! ASIDs come back.

mod common;

use common::*;
use sel4_layer::abi::{init_cap, object_type};
use sel4_layer::kernel::Kernel;
use sel4_layer::{PagingLevel, Sel4Error};
use sel4_model::{BootConfig, Cap, Hazard};

fn asid(s: &Sys, vspace: u64) -> Option<u16> {
    match s.cap(vspace) {
        Cap::Pml4 { asid, .. } => asid,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pml4_gets_one_asid_and_the_first_free_one() {
    let mut s = Sys::new();
    let v1 = s.vspace();
    let v2 = s.vspace();
    assert_eq!((asid(&s, v1), asid(&s, v2)), (Some(2), Some(3)), "ASID 0 is never used, 1 is the root task's");
    assert_eq!(s.m.asid_pool_assign(init_cap::ASID_POOL, v1), Err(Sel4Error::InvalidCapability));
    let frame = s.frame(sel4_model::FrameSize::Small);
    assert_eq!(s.m.asid_pool_assign(init_cap::ASID_POOL, frame), Err(Sel4Error::InvalidCapability));
    s.delete(v1);
    let v3 = s.vspace();
    assert_eq!(asid(&s, v3), Some(2), "deleting the PML4 freed its ASID");
    s.assert_sound();
}

#[test]
fn a_pool_holds_512_asids() {
    let mut s = Sys::new();
    for _ in 0..510 {
        s.vspace();
    }
    let pml4 = s.retype(object_type::X64_PML4, 0);
    assert_eq!(s.m.asid_pool_assign(init_cap::ASID_POOL, pml4), Err(Sel4Error::DeleteFirst));
    // A new pool from a 4 KiB untyped with no children.
    let big = s.retype(object_type::UNTYPED, 13);
    let pool = s.rt.slot().unwrap();
    assert_eq!(s.m.asid_control_make_pool(init_cap::ASID_CONTROL, big, ROOT, pool), Err(Sel4Error::InvalidCapability));
    let small = s.retype(object_type::UNTYPED, 12);
    s.m.asid_control_make_pool(init_cap::ASID_CONTROL, small, ROOT, pool).unwrap();
    assert!(matches!(s.cap(pool), Cap::AsidPool { base: 512, .. }));
    s.m.asid_pool_assign(pool, pml4).unwrap();
    assert_eq!(asid(&s, pml4), Some(512));
    // The untyped is full while the pool exists.
    let dest = s.rt.slot().unwrap();
    let into = sel4_layer::Slot::in_root(init_cap::CNODE, dest);
    assert_eq!(s.m.untyped_retype(small, object_type::ENDPOINT, 0, into, 1), Err(Sel4Error::NotEnoughMemory));
    s.assert_sound();
}

#[test]
fn there_are_8_pools() {
    let mut s = Sys::new();
    for i in 1..8 {
        let untyped = s.retype(object_type::UNTYPED, 12);
        let pool = s.rt.slot().unwrap();
        s.m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, ROOT, pool).unwrap();
        assert!(matches!(s.cap(pool), Cap::AsidPool { base, .. } if base == i << 9));
    }
    let untyped = s.retype(object_type::UNTYPED, 12);
    let pool = s.rt.slot().unwrap();
    assert_eq!(s.m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, ROOT, pool), Err(Sel4Error::DeleteFirst));
    s.assert_sound();
}

#[test]
fn make_pool_needs_an_untyped_without_children() {
    let mut s = Sys::new();
    let untyped = s.retype(object_type::UNTYPED, 12);
    let dest = s.rt.slot().unwrap();
    s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, sel4_layer::Slot::in_root(init_cap::CNODE, dest), 1).unwrap();
    let pool = s.rt.slot().unwrap();
    assert_eq!(s.m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, ROOT, pool), Err(Sel4Error::RevokeFirst));
    s.delete(dest);
    s.m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, ROOT, pool).unwrap();
    s.assert_sound();
}

/// Deleting a pool forgets its ASIDs, not its PML4s' capabilities: a PML4
/// keeps its ASID, and a new pool hands that ASID to another PML4. Page
/// and PageTable Map into the old PML4 are refused (its ASID names the new
/// one), but PDPT and PageDirectory Map check only that the capability
/// has an ASID: into the old PML4 they walk whatever its entries point to,
/// here a PDPT deleted meanwhile.
#[test]
fn a_reused_asid_lets_directory_map_walk_a_deleted_table() {
    let mut s = Sys::with(&BootConfig { root_cnode_bits: 12, untyped_bits: vec![20] });
    let untyped = s.retype(object_type::UNTYPED, 12);
    let pool = s.rt.slot().unwrap();
    s.m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, ROOT, pool).unwrap();
    let old = s.retype(object_type::X64_PML4, 0);
    s.m.asid_pool_assign(pool, old).unwrap();
    let pdpt = s.structure(old, PagingLevel::Pdpt, 0);
    s.delete(pool);
    let frame = s.frame(sel4_model::FrameSize::Small);
    let pt = s.retype(object_type::X86_PAGE_TABLE, 0);
    let map_pt = |s: &mut Sys| s.m.paging_structure_map(pt, PagingLevel::PageTable, old, 0, ATTRS);
    assert_eq!(s.map(frame, old, 0), Err(Sel4Error::FailedLookup), "its ASID names no VSpace");
    assert_eq!(map_pt(&mut s), Err(Sel4Error::FailedLookup));
    let untyped = s.retype(object_type::UNTYPED, 12);
    s.m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, ROOT, pool).unwrap();
    let new = s.retype(object_type::X64_PML4, 0);
    s.m.asid_pool_assign(pool, new).unwrap();
    assert_eq!(asid(&s, old), asid(&s, new));
    assert_eq!(s.map(frame, old, 0), Err(Sel4Error::InvalidCapability), "its ASID names the new VSpace");
    assert_eq!(map_pt(&mut s), Err(Sel4Error::InvalidCapability));
    // The PDPT's unmapping looks in the new VSpace and finds nothing: the
    // old PML4 keeps its entry.
    let pdpt_at = s.m.physical_address(s.object(pdpt)).unwrap();
    s.delete(pdpt);
    s.assert_sound();
    let pd = s.retype(object_type::X86_PAGE_DIRECTORY, 0);
    assert_eq!(s.m.paging_structure_map(pd, PagingLevel::PageDirectory, old, 0, ATTRS), Err(Sel4Error::Unknown));
    assert_eq!(s.m.hazards(), &[Hazard::StaleTable { paddr: pdpt_at }]);
}
