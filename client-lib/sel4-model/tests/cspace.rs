//! CSpace rules: guarded CNodes resolved as `resolveAddressBits` does,
//! two-level CSpaces, finite slots, and the errors of slot lookups.

mod common;

use common::*;
use sel4_layer::abi::{init_cap, object_type, WORD_BITS};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, Sel4Error, Slot};
use sel4_model::{Cap, FrameSize, Hazard};

#[test]
fn a_cptr_that_misses_the_root_guard_is_a_cap_fault_not_an_error_reply() {
    let mut s = Sys::new();
    let frame = s.frame(FrameSize::Small);
    // The root CNode resolves 16 bits under a 48-bit guard of 0.
    let outside = frame | 1 << 40;
    assert_eq!(s.m.page_get_address(outside), Err(Sel4Error::Unknown));
    assert_eq!(s.m.hazards(), &[Hazard::CapFault { cptr: outside }]);
    assert!(s.m.page_get_address(frame).is_ok());
    // A capability argument that misses is a fault too.
    let vspace = s.vspace();
    s.tables_for(vspace, 0x1000_0000, FrameSize::Small);
    s.m.take_hazards();
    assert_eq!(s.m.page_map(frame, vspace | 1 << 63, 0x1000_0000, CapRights::ALL, ATTRS), Err(Sel4Error::Unknown));
    assert_eq!(s.m.hazards(), &[Hazard::CapFault { cptr: vspace | 1 << 63 }]);
    assert_eq!(s.translate(vspace, 0x1000_0000), None);
}

#[test]
fn cnode_operations_need_a_depth_from_1_to_64_that_resolves_exactly() {
    let mut s = Sys::new();
    let frame = s.frame(FrameSize::Small);
    let dest = s.rt.slot().unwrap();
    for depth in [0, 65, 200] {
        let node = CNode { cap: init_cap::CNODE, depth };
        assert_eq!(s.m.cnode_copy(node, dest, ROOT, frame, CapRights::ALL), Err(Sel4Error::RangeError));
    }
    // 32 bits cannot pass the 48-bit guard; 63 leaves the slot index short.
    for depth in [32, 63] {
        let node = CNode { cap: init_cap::CNODE, depth };
        assert_eq!(s.m.cnode_copy(node, dest, ROOT, frame, CapRights::ALL), Err(Sel4Error::FailedLookup));
        assert_eq!(s.m.cnode_copy(ROOT, dest, node, frame, CapRights::ALL), Err(Sel4Error::FailedLookup));
    }
    assert_eq!(s.cap(dest), Cap::Null);
    s.m.cnode_copy(ROOT, dest, ROOT, frame, CapRights::ALL).unwrap();
    s.assert_sound();
}

/// A process CSpace of two levels: a root CNode of 2^8 slots with a
/// 46-bit guard, whose slot 7 holds a CNode of 2^10 slots; CPtr
/// `7 << 10 | i` names slot i of the second level.
#[test]
fn a_two_level_cspace_resolves_through_both_levels() {
    let mut s = Sys::new();
    let process = s.rt.process(&mut s.m, 8).unwrap();
    s.m.tcb_set_space(process.tcb, process.cnode, CNode::guard_data(0, WORD_BITS - 18), process.vspace).unwrap();
    let level2 = s.retype(object_type::CAP_TABLE, 10);
    process.give(&mut s.m, 7, level2, 0).unwrap();
    // Level 2's own capability in its slot 0: CPtr 7 << 10 invokes it.
    s.m.cnode_copy(CNode { cap: level2, depth: 10 }, 0, ROOT, level2, CapRights::ALL).unwrap();
    let frame = s.frame(FrameSize::Small);
    let paddr = s.m.page_get_address(frame).unwrap();
    s.m.cnode_copy(CNode { cap: level2, depth: 10 }, 5, ROOT, frame, CapRights::ALL).unwrap();
    let untyped = s.retype(object_type::UNTYPED, 16);
    process.give(&mut s.m, 3, untyped, 0).unwrap();
    // From the root task, 18 bits from the process's level 1 reach level 2.
    let from_root = CNode { cap: process.cnode, depth: 18 };
    assert_eq!(s.m.cnode_delete(from_root, 3 << 10 | 1), Err(Sel4Error::FailedLookup));
    s.m.cnode_copy(from_root, 7 << 10 | 9, ROOT, frame, CapRights::ALL).unwrap();

    s.m.run_as(process.thread);
    let in_level2 = |i: u64| 7 << 10 | i;
    assert_eq!(s.m.page_get_address(in_level2(5)), Ok(paddr));
    assert_eq!(s.m.page_get_address(in_level2(9)), Ok(paddr));
    let level2 = CNode { cap: in_level2(0), depth: 10 };
    s.m.cnode_copy(level2, 6, level2, 5, CapRights::ALL).unwrap();
    assert_eq!(s.m.page_get_address(in_level2(6)), Ok(paddr));
    // Retype into level 2 from the untyped in level-1 slot 3: the walk of
    // CPtr 3 << 10 stops at the untyped, and the bits left do not matter.
    let dest = Slot { root: in_level2(0), node_index: 0, node_depth: 0, offset: 100 };
    s.m.untyped_retype(3 << 10 | 0x3ff, object_type::X86_4K, 0, dest, 2).unwrap();
    assert!(matches!(s.m.cap_at(in_level2(101)), Some(Cap::Frame { .. })));
    assert_eq!(s.m.slots_in_use(s.m.object_of(in_level2(0)).unwrap()), 6);
    s.assert_sound();
}

#[test]
fn a_cnode_has_2_to_the_radix_slots() {
    let mut s = Sys::new();
    let small = s.retype(object_type::CAP_TABLE, 2);
    let untyped = s.info.untypeds[0].cptr;
    let into = |offset| Slot { root: init_cap::CNODE, node_index: small, node_depth: 64, offset };
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, into(0), 5), Err(Sel4Error::RangeError));
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, into(4), 1), Err(Sel4Error::RangeError));
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, into(2), 3), Err(Sel4Error::RangeError));
    s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, into(0), 4).unwrap();
    // Full: every slot is occupied.
    let node = CNode { cap: small, depth: 2 };
    for i in 0..4 {
        assert_eq!(s.m.cnode_copy(node, i, ROOT, untyped, CapRights::ALL), Err(Sel4Error::DeleteFirst));
    }
    // An index resolves only the depth's bits: 6 at depth 2 is slot 2.
    assert_eq!(s.m.cnode_delete(node, 6), Ok(()));
    assert_eq!(s.m.slots_in_use(s.object(small)), 3);
    s.assert_sound();
}

#[test]
fn an_occupied_destination_is_delete_first_and_changes_nothing() {
    let mut s = Sys::new();
    let a = s.frame(FrameSize::Small);
    let b = s.frame(FrameSize::Small);
    let before = s.m.clone();
    assert_eq!(s.m.cnode_copy(ROOT, b, ROOT, a, CapRights::ALL), Err(Sel4Error::DeleteFirst));
    assert_eq!(s.m.cnode_mint(ROOT, b, ROOT, a, CapRights::ALL, 1), Err(Sel4Error::DeleteFirst));
    assert_eq!(s.m.cnode_move(ROOT, b, ROOT, a), Err(Sel4Error::DeleteFirst));
    let untyped = s.info.untypeds[1].cptr;
    assert_eq!(
        s.m.untyped_retype(untyped, object_type::X86_4K, 0, Slot::in_root(init_cap::CNODE, b), 1),
        Err(Sel4Error::DeleteFirst)
    );
    assert_eq!(s.m, before);
    let pool_untyped = s.retype(object_type::UNTYPED, 12);
    let before = s.m.clone();
    assert_eq!(s.m.asid_control_make_pool(init_cap::ASID_CONTROL, pool_untyped, ROOT, b), Err(Sel4Error::DeleteFirst));
    assert_eq!(s.m, before);
    s.assert_sound();
}

#[test]
fn empty_and_wrong_capabilities_are_refused_by_type() {
    let mut s = Sys::new();
    let empty = s.rt.slot().unwrap();
    let dest = s.rt.slot().unwrap();
    let untyped = s.info.untypeds[0].cptr;
    let frame = s.frame(FrameSize::Small);
    let vspace = s.vspace();
    assert_eq!(s.m.page_unmap(empty), Err(Sel4Error::InvalidCapability));
    assert_eq!(s.m.cnode_copy(ROOT, dest, ROOT, empty, CapRights::ALL), Err(Sel4Error::FailedLookup));
    assert_eq!(s.m.page_map(untyped, vspace, 0, CapRights::ALL, ATTRS), Err(Sel4Error::IllegalOperation));
    let into_dest = Slot::in_root(init_cap::CNODE, dest);
    assert_eq!(s.m.untyped_retype(frame, object_type::X86_4K, 0, into_dest, 1), Err(Sel4Error::IllegalOperation));
    assert_eq!(s.m.cnode_delete(CNode { cap: frame, depth: 64 }, 0), Err(Sel4Error::IllegalOperation));
    assert_eq!(s.m.page_get_address(vspace), Err(Sel4Error::IllegalOperation));
    // The source root of a CNode operation must be a CNode.
    assert_eq!(
        s.m.cnode_copy(ROOT, dest, CNode { cap: frame, depth: 64 }, 0, CapRights::ALL),
        Err(Sel4Error::FailedLookup)
    );
    s.assert_sound();
    // An endpoint takes any call as a message.
    let endpoint = s.retype(object_type::ENDPOINT, 0);
    assert_eq!(s.m.page_unmap(endpoint), Err(Sel4Error::Unknown));
    assert_eq!(s.m.hazards(), &[Hazard::Ipc { cptr: endpoint }]);
}

#[test]
fn mint_sets_a_cnode_guard_that_fits_the_word() {
    let mut s = Sys::new();
    let cnode = s.retype(object_type::CAP_TABLE, 10);
    let dest = s.rt.slot().unwrap();
    let too_long = CNode::guard_data(0, 55);
    assert_eq!(s.m.cnode_mint(ROOT, dest, ROOT, cnode, CapRights::ALL, too_long), Err(Sel4Error::IllegalOperation));
    s.m.cnode_mint(ROOT, dest, ROOT, cnode, CapRights::ALL, CNode::guard_data(5, 54)).unwrap();
    assert!(matches!(s.cap(dest), Cap::CNode { radix: 10, guard: 5, guard_size: 54, .. }));
    // A badge only goes on an unbadged endpoint.
    let endpoint = s.retype(object_type::ENDPOINT, 0);
    let badged = s.rt.slot().unwrap();
    s.m.cnode_mint(ROOT, badged, ROOT, endpoint, CapRights::ALL, 7).unwrap();
    let again = s.rt.slot().unwrap();
    assert_eq!(s.m.cnode_mint(ROOT, again, ROOT, badged, CapRights::ALL, 8), Err(Sel4Error::IllegalOperation));
    s.assert_sound();
}
