//! Frame contents: a store lands in the frame the MMU translates to, only
//! through a writable mapping; a program's own zeroing clears the frames it
//! covers whole through its own VSpace, and faults (a hazard) where it has
//! no writable mapping; a frame made again from the same memory is clean.

mod common;

use common::*;
use sel4_layer::abi::init_cap;
use sel4_layer::kernel::Kernel;
use sel4_layer::CapRights;
use sel4_model::{FrameSize, Hazard};

const AT: u64 = 0x4000_0000;

#[test]
fn a_store_needs_a_writable_mapping_and_zeroing_clears_whole_frames_only() {
    let mut s = Sys::new();
    let own = init_cap::VSPACE;
    s.tables_for(own, AT, FrameSize::Small);
    let frames: Vec<_> = (0..3).map(|_| s.frame(FrameSize::Small)).collect();
    for (i, &f) in frames.iter().enumerate() {
        s.map(f, own, AT + i as u64 * 0x1000).unwrap();
    }
    let read_only = s.copy(frames[2]);
    let client = s.vspace();
    s.tables_for(client, AT, FrameSize::Small);
    s.m.page_map(read_only, client, AT, CapRights::READ, ATTRS).unwrap();
    let (own_pml4, client_pml4) = (s.object(own), s.object(client));
    let ids: Vec<_> = frames.iter().map(|&f| s.m.object_of(f).unwrap()).collect();
    assert_eq!(s.m.write(client_pml4, AT), None, "read-only: a fault, nothing written");
    assert!(!s.m.holds_data(ids[2]));
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.m.write(own_pml4, AT + i as u64 * 0x1000 + 8), Some(*id));
        assert!(s.m.holds_data(*id));
    }
    // Half of frame 0 and all of frame 1: only frame 1 is clean.
    assert!(s.m.zero_own(AT + 0x800, 0x1800));
    assert_eq!([0, 1, 2].map(|i| s.m.holds_data(ids[i])), [true, false, true]);
    s.assert_sound();
    // Past the last mapping: frame 2 is cleared, then the thread faults.
    assert!(!s.m.zero_own(AT + 0x2000, 0x2000));
    assert!(!s.m.holds_data(ids[2]));
    assert_eq!(s.m.take_hazards(), [Hazard::VmFault { vaddr: AT + 0x3000 }]);
}

#[test]
fn memory_made_again_holds_no_old_data() {
    let mut s = Sys::new();
    let own = init_cap::VSPACE;
    s.tables_for(own, AT, FrameSize::Small);
    // Not the untyped the root task's allocator (and so the tables) uses.
    let last = s.info.untypeds.len() - 1;
    let untyped = s.info.untypeds[last].cptr;
    let frame = s.retype_n(untyped, sel4_layer::abi::object_type::X86_4K, 0, 1).unwrap()[0];
    s.map(frame, own, AT).unwrap();
    let id = s.m.object_of(frame).unwrap();
    s.m.write(s.object(own), AT).unwrap();
    s.revoke(untyped);
    assert!(!s.m.is_alive(id));
    let again = s.retype_n(untyped, sel4_layer::abi::object_type::X86_4K, 0, 1).unwrap()[0];
    s.map(again, own, AT).unwrap();
    let new_id = s.m.object_of(again).unwrap();
    assert_eq!(s.m.physical_address(new_id), Some(s.info.untypeds[last].paddr), "the same memory");
    assert!(!s.m.holds_data(new_id));
    s.assert_sound();
}
