//! The capability derivation tree: what is whose child, what Revoke
//! deletes, when a capability is final, and what deleting the final one
//! does to its object.

mod common;

use common::*;
use sel4_layer::abi::{init_cap, object_type, WORD_BITS};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, Slot};
use sel4_model::{Cap, FrameSize, ObjectType};

#[test]
fn revoke_deletes_copies_of_copies_but_a_copy_has_no_children() {
    let mut s = Sys::new();
    let original = s.frame(FrameSize::Small);
    let copy = s.copy(original);
    let copy_of_copy = s.copy(copy);
    // A copy is not revocable: revoking it deletes nothing.
    s.revoke(copy);
    assert!(matches!(s.cap(copy_of_copy), Cap::Frame { .. }));
    // The retyped original is: its revoke deletes every copy below it.
    s.revoke(original);
    assert_eq!(s.cap(copy), Cap::Null);
    assert_eq!(s.cap(copy_of_copy), Cap::Null);
    assert!(matches!(s.cap(original), Cap::Frame { .. }));
    assert!(s.m.is_alive(s.object(original)));
    s.assert_sound();
}

#[test]
fn revoking_an_untyped_deletes_every_object_made_from_it_and_their_copies() {
    let mut s = Sys::with(&sel4_model::BootConfig { root_cnode_bits: 12, untyped_bits: vec![20] });
    let untyped = s.info.untypeds[0].cptr;
    let frame = s.frame(FrameSize::Small);
    let cnode = s.retype(object_type::CAP_TABLE, 4);
    let endpoint = s.retype(object_type::ENDPOINT, 0);
    let badged = s.rt.slot().unwrap();
    s.m.cnode_mint(ROOT, badged, ROOT, endpoint, CapRights::ALL, 9).unwrap();
    let copy = s.copy(frame);
    let ids = [s.object(frame), s.object(cnode), s.object(endpoint)];
    s.revoke(untyped);
    for cptr in [frame, cnode, endpoint, badged, copy] {
        assert_eq!(s.cap(cptr), Cap::Null, "slot {cptr}");
    }
    assert!(ids.iter().all(|&id| !s.m.is_alive(id)));
    assert!(matches!(s.cap(untyped), Cap::Untyped { .. }));
    s.assert_sound();
}

#[test]
fn an_object_lives_until_its_last_capability_is_deleted() {
    let mut s = Sys::new();
    let original = s.frame(FrameSize::Small);
    let copy = s.copy(original);
    let id = s.object(original);
    s.delete(original);
    assert!(s.m.is_alive(id), "a copy keeps the frame");
    s.delete(copy);
    assert!(!s.m.is_alive(id));
    s.assert_sound();
}

#[test]
fn a_badged_mint_is_a_child_of_its_endpoint_but_not_of_a_sibling_with_the_same_badge() {
    let mut s = Sys::new();
    let endpoint = s.retype(object_type::ENDPOINT, 0);
    let mint = |s: &mut Sys, src, badge| {
        let dest = s.rt.slot().unwrap();
        s.m.cnode_mint(ROOT, dest, ROOT, src, CapRights::ALL, badge).unwrap();
        dest
    };
    let first = mint(&mut s, endpoint, 5);
    let below_first = s.copy(first);
    let second = mint(&mut s, endpoint, 5);
    // The list is endpoint, second, first, below_first: `first` follows
    // `second` with the same badge, but it was minted (firstBadged), so it
    // is not `second`'s child.
    s.revoke(second);
    assert!(matches!(s.cap(first), Cap::Endpoint { badge: 5, .. }));
    s.revoke(first);
    assert_eq!(s.cap(below_first), Cap::Null);
    assert!(matches!(s.cap(second), Cap::Endpoint { .. }));
    s.revoke(endpoint);
    assert_eq!(s.cap(second), Cap::Null);
    assert_eq!(s.cap(first), Cap::Null);
    s.assert_sound();
}

/// Retypes `count` 4 KiB frames into slots from `offset` of the CNode in
/// root slot `cnode`, and returns their objects.
fn frames_in(s: &mut Sys, cnode: u64, bits: u8, offset: u64, count: u64) -> Vec<sel4_model::ObjectId> {
    let untyped = s.info.untypeds[0].cptr;
    let into = Slot { root: init_cap::CNODE, node_index: cnode, node_depth: WORD_BITS, offset };
    s.m.untyped_retype(untyped, object_type::X86_4K, 0, into, count).unwrap();
    let inner = CNode { cap: cnode, depth: bits };
    (offset..offset + count)
        .map(|i| {
            let probe = s.rt.slot().unwrap();
            s.m.cnode_copy(ROOT, probe, inner, i, CapRights::ALL).unwrap();
            let id = s.object(probe);
            s.delete(probe);
            id
        })
        .collect()
}

#[test]
fn deleting_a_cnode_deletes_what_is_in_it() {
    let mut s = Sys::new();
    let cnode = s.retype(object_type::CAP_TABLE, 4);
    let frames = frames_in(&mut s, cnode, 4, 3, 2);
    let kept = s.rt.slot().unwrap();
    s.m.cnode_copy(ROOT, kept, CNode { cap: cnode, depth: 4 }, 4, CapRights::ALL).unwrap();
    let node = s.object(cnode);
    let before = s.m.accounting();
    s.delete(cnode);
    assert!(!s.m.is_alive(node));
    assert!(!s.m.is_alive(frames[0]), "its only capability was in the CNode");
    assert!(s.m.is_alive(frames[1]), "a copy outside keeps it");
    let after = s.m.accounting();
    assert_eq!(after.objects[&ObjectType::CNode] + 1, before.objects[&ObjectType::CNode]);
    assert_eq!(after.slots + 3, before.slots, "its root slot and its two own slots");
    s.assert_sound();
}

/// A CNode's slots are emptied from the last to the first, so which of a
/// frame's capabilities is final (and unmaps its mapping) depends on
/// their places: with the mapped copy in the higher slot it goes first,
/// not final, and its mapping stays.
#[test]
fn a_cnode_is_emptied_from_its_last_slot_and_that_decides_which_capability_is_final() {
    for copy_slot in [0u64, 1] {
        let mut s = Sys::new();
        let vspace = s.vspace();
        s.tables_for(vspace, 0x4000_0000, FrameSize::Small);
        let cnode = s.retype(object_type::CAP_TABLE, 1);
        let frame = s.frame(FrameSize::Small);
        let inner = CNode { cap: cnode, depth: 1 };
        s.m.cnode_copy(inner, copy_slot, ROOT, frame, CapRights::ALL).unwrap();
        s.m.cnode_move(inner, 1 - copy_slot, ROOT, frame).unwrap();
        // Map the copy, through a root copy moved in and out.
        let handle = s.rt.slot().unwrap();
        s.m.cnode_move(ROOT, handle, inner, copy_slot).unwrap();
        s.map(handle, vspace, 0x4000_0000).unwrap();
        s.m.cnode_move(inner, copy_slot, ROOT, handle).unwrap();
        s.delete(cnode);
        let left = s.translate(vspace, 0x4000_0000);
        if copy_slot == 1 {
            assert!(left.is_some_and(|l| l.frame.is_none()), "the copy went first, not final: {left:?}");
            assert_eq!(s.m.unowned_leaves().len(), 1);
        } else {
            assert_eq!(left, None, "the copy went last, final, and unmapped");
        }
        s.assert_sound();
    }
}

/// A CNode whose last capability is in another CNode being deleted is not
/// emptied then: the kernel moves its zombie into its own slot 0 and
/// leaves it (`reduceZombie`, not immediate). Its other slots keep their
/// capabilities until the untyped it came from is revoked.
#[test]
fn a_cnode_inside_a_deleted_cnode_stays_as_a_cyclic_zombie_until_its_untyped_is_revoked() {
    let mut s = Sys::with(&sel4_model::BootConfig { root_cnode_bits: 12, untyped_bits: vec![20, 20] });
    let outer = s.retype(object_type::CAP_TABLE, 2);
    let inner = s.retype(object_type::CAP_TABLE, 3);
    let frames = frames_in(&mut s, inner, 3, 5, 1);
    s.m.cnode_move(CNode { cap: outer, depth: 2 }, 1, ROOT, inner).unwrap();
    let inner_id = s.m.accounting().objects[&ObjectType::CNode];
    s.delete(outer);
    let a = s.m.accounting();
    assert_eq!(a.objects[&ObjectType::CNode], inner_id - 1, "the outer CNode is gone, the inner one stays");
    assert!(s.m.is_alive(frames[0]), "the inner CNode's slot 5 keeps its frame");
    s.assert_sound();
    s.revoke(s.info.untypeds[0].cptr);
    assert!(!s.m.is_alive(frames[0]));
    assert_eq!(s.m.accounting().objects.get(&ObjectType::CNode), Some(&1), "the root CNode");
    s.assert_sound();
}

/// Deleting a TCB deletes its CSpace and VSpace roots; a CSpace root that
/// was its CNode's last capability leaves that CNode as a cyclic zombie.
#[test]
fn deleting_a_tcb_deletes_its_roots_and_a_last_cnode_stays_a_zombie() {
    let mut s = Sys::with(&sel4_model::BootConfig { root_cnode_bits: 12, untyped_bits: vec![22] });
    let process = s.rt.process(&mut s.m, 6).unwrap();
    let (cnode, vspace) = (s.object(process.cnode), s.object(process.vspace));
    let frame = s.frame(FrameSize::Small);
    process.give(&mut s.m, 9, frame, 0).unwrap();
    s.delete(frame);
    s.delete(process.cnode);
    s.delete(process.vspace);
    assert!(s.m.is_alive(cnode) && s.m.is_alive(vspace), "the TCB's roots keep them");
    s.delete(process.tcb);
    assert!(!s.m.is_alive(process.thread));
    assert!(!s.m.is_alive(vspace), "a PML4 needs no recursion");
    assert!(s.m.is_alive(cnode), "the CNode is a zombie in its own slot 0");
    assert_eq!(s.m.slots_in_use(cnode), 2, "its zombie, and the frame in slot 9");
    s.assert_sound();
    s.revoke(s.info.untypeds[0].cptr);
    assert!(!s.m.is_alive(cnode));
    s.assert_sound();
}

#[test]
fn a_moved_capability_keeps_its_place_in_the_tree() {
    let mut s = Sys::new();
    let original = s.frame(FrameSize::Small);
    let copy = s.copy(original);
    let moved = s.rt.slot().unwrap();
    s.m.cnode_move(ROOT, moved, ROOT, original).unwrap();
    assert_eq!(s.cap(original), Cap::Null);
    s.revoke(moved);
    assert_eq!(s.cap(copy), Cap::Null);
    assert!(matches!(s.cap(moved), Cap::Frame { .. }));
    s.assert_sound();
}
