//! Untyped Retype: the watermark, alignment, the 256-object limit, and
//! memory that returns only when an untyped has no children.

mod common;

use common::*;
use sel4_layer::abi::{init_cap, object_type, CPtr, WORD_BITS};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CapRights, Sel4Error, Slot};
use sel4_model::{BootConfig, Cap, FrameSize, ObjectType, RETYPE_FAN_OUT_LIMIT};

/// One untyped of 2^`bits` bytes, in a system with room for many slots.
fn with_untyped(bits: u32) -> (Sys, CPtr, u64) {
    let s = Sys::with(&BootConfig { root_cnode_bits: 12, untyped_bits: vec![bits] });
    let u = s.info.untypeds[0];
    (s, u.cptr, u.paddr)
}

fn watermark(s: &Sys, untyped: CPtr) -> u64 {
    match s.cap(untyped) {
        Cap::Untyped { free_offset, .. } => free_offset,
        other => panic!("not untyped: {other:?}"),
    }
}

#[test]
fn objects_come_from_the_watermark_each_aligned_to_its_size() {
    let (mut s, untyped, base) = with_untyped(16);
    let endpoint = s.retype_n(untyped, object_type::ENDPOINT, 0, 1).unwrap()[0];
    assert_eq!(watermark(&s, untyped), 16);
    let frame = s.retype_n(untyped, object_type::X86_4K, 0, 1).unwrap()[0];
    assert_eq!(s.m.page_get_address(frame), Ok(base + 0x1000), "aligned up past the endpoint");
    assert_eq!(watermark(&s, untyped), 0x2000);
    let cnode = s.retype_n(untyped, object_type::CAP_TABLE, 8, 1).unwrap()[0];
    assert_eq!(s.m.physical_address(s.object(cnode)), Some(base + 0x2000), "2^13 bytes, aligned to 2^13");
    assert_eq!(watermark(&s, untyped), 0x4000);
    assert_eq!(s.m.physical_address(s.object(endpoint)), Some(base));
    s.assert_sound();
}

#[test]
fn one_retype_makes_1_to_256_objects() {
    let (mut s, untyped, _) = with_untyped(22);
    assert_eq!(RETYPE_FAN_OUT_LIMIT, 256);
    let before = s.m.clone();
    for count in [0, 257, 1000] {
        let first = s.rt.slot().unwrap();
        assert_eq!(
            s.m.untyped_retype(untyped, object_type::X86_4K, 0, Slot::in_root(init_cap::CNODE, first), count),
            Err(Sel4Error::RangeError),
            "{count} objects"
        );
    }
    assert_eq!(s.m, before);
    let frames = s.retype_n(untyped, object_type::X86_4K, 0, 256).unwrap();
    assert!(frames.iter().all(|&f| matches!(s.cap(f), Cap::Frame { size: FrameSize::Small, .. })));
    assert_eq!(s.m.accounting().objects[&ObjectType::Frame(FrameSize::Small)], 256);
    s.assert_sound();
}

#[test]
fn a_retype_that_does_not_fit_is_not_enough_memory_and_changes_nothing() {
    let (mut s, untyped, _) = with_untyped(14);
    s.retype_n(untyped, object_type::X86_4K, 0, 3).unwrap();
    let before = s.m.clone();
    assert_eq!(s.retype_n(untyped, object_type::X86_4K, 0, 2).map(drop), Err(Sel4Error::NotEnoughMemory));
    assert_eq!(s.retype_n(untyped, object_type::X86_LARGE_PAGE, 0, 1).map(drop), Err(Sel4Error::NotEnoughMemory));
    assert_eq!(s.m, before);
    s.retype_n(untyped, object_type::X86_4K, 0, 1).unwrap();
    assert_eq!(s.retype_n(untyped, object_type::ENDPOINT, 0, 1).map(drop), Err(Sel4Error::NotEnoughMemory));
    s.assert_sound();
}

#[test]
fn deleting_some_children_gives_no_memory_back() {
    let (mut s, untyped, base) = with_untyped(14);
    let frames = s.retype_n(untyped, object_type::X86_4K, 0, 4).unwrap();
    for &f in &frames[..3] {
        s.delete(f);
    }
    assert_eq!(watermark(&s, untyped), 0x4000);
    assert_eq!(s.retype_n(untyped, object_type::X86_4K, 0, 1).map(drop), Err(Sel4Error::NotEnoughMemory));
    // The last child gone, the next Retype starts from the beginning.
    s.delete(frames[3]);
    let again = s.retype_n(untyped, object_type::X86_4K, 0, 4).unwrap();
    assert_eq!(s.m.page_get_address(again[0]), Ok(base));
    assert_eq!(watermark(&s, untyped), 0x4000);
    s.assert_sound();
}

#[test]
fn revoking_an_untyped_makes_all_its_memory_usable_again() {
    let (mut s, untyped, base) = with_untyped(16);
    let frames = s.retype_n(untyped, object_type::X86_4K, 0, 16).unwrap();
    let copies: Vec<_> = frames.iter().map(|&f| s.copy(f)).collect();
    assert_eq!(s.retype_n(untyped, object_type::ENDPOINT, 0, 1).map(drop), Err(Sel4Error::NotEnoughMemory));
    s.revoke(untyped);
    assert!(frames.iter().chain(&copies).all(|&c| s.cap(c) == Cap::Null));
    assert_eq!(s.m.accounting().untyped[0].in_use(), 0, "no children: the watermark no longer holds memory");
    let frames = s.retype_n(untyped, object_type::X86_4K, 0, 16).unwrap();
    assert_eq!(s.m.page_get_address(frames[0]), Ok(base));
    s.assert_sound();
}

#[test]
fn bad_types_and_sizes_are_refused() {
    let (mut s, untyped, _) = with_untyped(16);
    let before = s.m.clone();
    let try_retype = |s: &mut Sys, t, bits| s.retype_n(untyped, t, bits, 1).map(drop);
    assert_eq!(try_retype(&mut s, 12, 0), Err(Sel4Error::InvalidArgument), "seL4_ObjectTypeCount is 12");
    assert_eq!(try_retype(&mut s, object_type::UNTYPED, 48), Err(Sel4Error::RangeError));
    assert_eq!(try_retype(&mut s, object_type::CAP_TABLE, 0), Err(Sel4Error::InvalidArgument));
    assert_eq!(try_retype(&mut s, object_type::UNTYPED, 3), Err(Sel4Error::InvalidArgument));
    assert_eq!(try_retype(&mut s, object_type::UNTYPED, 17), Err(Sel4Error::NotEnoughMemory));
    assert_eq!(try_retype(&mut s, object_type::CAP_TABLE, 47), Err(Sel4Error::NotEnoughMemory));
    assert_eq!(s.m, before);
    s.assert_sound();
}

#[test]
fn the_destination_window_must_lie_in_the_cnode_and_be_empty() {
    let (mut s, untyped, _) = with_untyped(16);
    let cnode = s.retype(object_type::CAP_TABLE, 3);
    let occupied = Slot { root: init_cap::CNODE, node_index: cnode, node_depth: WORD_BITS, offset: 6 };
    s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, occupied, 1).unwrap();
    let before = s.m.clone();
    let at = |offset| Slot { offset, ..occupied };
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, at(8), 1), Err(Sel4Error::RangeError));
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, at(5), 4), Err(Sel4Error::RangeError));
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, at(4), 3), Err(Sel4Error::DeleteFirst));
    // The destination must be a CNode.
    let not_a_cnode = Slot { node_index: untyped, ..occupied };
    assert_eq!(s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, not_a_cnode, 1), Err(Sel4Error::FailedLookup));
    assert_eq!(s.m, before);
    s.m.untyped_retype(untyped, object_type::ENDPOINT, 0, at(3), 3).unwrap();
    s.assert_sound();
}

#[test]
fn copying_an_untyped_needs_no_children_and_leaves_the_source_full() {
    let (mut s, untyped, _) = with_untyped(16);
    let child = s.retype_n(untyped, object_type::ENDPOINT, 0, 1).unwrap()[0];
    let dest = s.rt.slot().unwrap();
    assert_eq!(s.m.cnode_copy(ROOT, dest, ROOT, untyped, CapRights::ALL), Err(Sel4Error::RevokeFirst));
    s.delete(child);
    s.m.cnode_copy(ROOT, dest, ROOT, untyped, CapRights::ALL).unwrap();
    assert_eq!(watermark(&s, untyped), 1 << 16, "setUntypedCapAsFull");
    // The source has a child now (the copy), so it keeps that watermark.
    assert_eq!(s.retype_n(untyped, object_type::ENDPOINT, 0, 1).map(drop), Err(Sel4Error::NotEnoughMemory));
    s.retype_n(dest, object_type::X86_4K, 0, 16).unwrap();
    // Revoking the source deletes the copy and what came from it.
    s.revoke(untyped);
    assert_eq!(s.cap(dest), Cap::Null);
    s.retype_n(untyped, object_type::X86_4K, 0, 16).unwrap();
    s.assert_sound();
}

#[test]
fn untyped_made_from_untyped_is_its_child() {
    let (mut s, untyped, base) = with_untyped(16);
    s.retype_n(untyped, object_type::ENDPOINT, 0, 1).unwrap();
    let small = s.retype_n(untyped, object_type::UNTYPED, 12, 1).unwrap()[0];
    assert!(matches!(s.cap(small), Cap::Untyped { paddr, size_bits: 12, free_offset: 0 } if paddr == base + 0x1000));
    let frame = s.retype_n(small, object_type::X86_4K, 0, 1).unwrap()[0];
    assert_eq!(s.m.page_get_address(frame), Ok(base + 0x1000));
    s.revoke(untyped);
    assert_eq!(s.cap(small), Cap::Null);
    assert_eq!(s.cap(frame), Cap::Null);
    s.assert_sound();
}

#[test]
fn retype_into_a_second_level_cnode_through_node_index_and_depth() {
    let (mut s, untyped, _) = with_untyped(16);
    let cnode = s.retype(object_type::CAP_TABLE, 2);
    let via_index = Slot { root: init_cap::CNODE, node_index: cnode, node_depth: WORD_BITS, offset: 0 };
    s.m.untyped_retype(untyped, object_type::NOTIFICATION, 0, via_index, 4).unwrap();
    assert_eq!(s.m.slots_in_use(s.object(cnode)), 4);
    s.assert_sound();
}

#[test]
fn untyped_at_reads_the_watermark_and_whether_children_hold_it() {
    let mut s = Sys::new();
    let untyped = s.info.untypeds[3].cptr;
    assert_eq!(s.m.untyped_at(untyped).map(|u| u.in_use()), Some(0));
    let frames = s.retype_n(untyped, object_type::X86_4K, 0, 3).unwrap();
    let used = s.m.untyped_at(untyped).unwrap();
    assert_eq!((used.watermark, used.has_children, used.in_use()), (3 * 4096, true, 3 * 4096));
    s.revoke(untyped);
    let reset = s.m.untyped_at(untyped).unwrap();
    assert!(!reset.has_children);
    assert_eq!(reset.in_use(), 0, "memory with no children left is free again");
    assert_eq!(s.m.untyped_at(frames[0]), None, "an empty slot");
    assert_eq!(s.m.untyped_at(init_cap::VSPACE), None, "no untyped capability");
    s.assert_sound();
}
