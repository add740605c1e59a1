//! The memory server's process as the root task builds it, and the
//! server's view: the root of its two-level CSpace in slot 2 (CNode 0 in
//! its slot 0, more CNodes the server makes in the next ones), its
//! untypeds from slot 16, client VSpaces and frames given to it.

mod common;

use common::*;
use memserver_protocol::bootstrap::{cspace, server_slot, SERVER_CNODE_BITS};
use sel4_layer::abi::object_type;
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, PagingLevel, Slot};
use sel4_model::{Cap, FrameSize};

#[test]
fn the_server_retypes_copies_and_maps_into_a_client_space_with_its_own_cptrs() {
    let mut s = Sys::new();
    let server = s.rt.memory_server(&mut s.m, 4, 20).unwrap();
    assert_eq!(server.start.first_free_slot, server_slot::UNTYPED_START + 4);
    let client = s.vspace();
    let client_slot = server.start.first_free_slot;
    server.process.give(&mut s.m, client_slot, client, 0).unwrap();
    let client_frame = s.frame(FrameSize::Small);
    server.process.give(&mut s.m, client_slot + 1, client_frame, 0).unwrap();

    s.m.run_as(server.process.thread);
    // The server names slot k of its CNode by cspace::cptr(k); a CNode
    // operation names it from cspace::ROOT at depth 16.
    let c = cspace::cptr;
    let own = CNode { cap: cspace::ROOT, depth: SERVER_CNODE_BITS as u8 };
    let first = client_slot + 2;
    let into = Slot::in_root(cspace::ROOT, first);
    let untyped = c(server_slot::UNTYPED_START);
    s.m.untyped_retype(untyped, object_type::X86_PDPT, 0, into, 1).unwrap();
    s.m.untyped_retype(untyped, object_type::X86_PAGE_DIRECTORY, 0, Slot { offset: first + 1, ..into }, 1).unwrap();
    s.m.untyped_retype(untyped, object_type::X86_PAGE_TABLE, 0, Slot { offset: first + 2, ..into }, 1).unwrap();
    s.m.untyped_retype(
        c(server_slot::UNTYPED_START + 1),
        object_type::X86_4K,
        0,
        Slot { offset: first + 3, ..into },
        256,
    )
    .unwrap();
    let vaddr = 0x7000_0000_0000;
    for (i, level) in [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable].into_iter().enumerate() {
        s.m.paging_structure_map(c(first + i as u64), level, c(client_slot), vaddr, ATTRS).unwrap();
    }
    let frame = first + 3;
    s.m.cnode_copy(own, first + 300, own, frame, CapRights::READ_WRITE).unwrap();
    s.m.page_map(c(first + 300), c(client_slot), vaddr, CapRights::READ_WRITE, ATTRS).unwrap();
    s.m.page_map(c(client_slot + 1), c(client_slot), vaddr + 0x1000, CapRights::READ, ATTRS).unwrap();
    // A VSpace capability the server holds names the client's VSpace.
    let client_vspace = s.m.object_of(c(client_slot)).unwrap();
    let frame_id = s.m.object_of(c(frame)).unwrap();
    s.m.run_as(s.info.thread);
    assert_eq!(s.m.object_of(client), Some(client_vspace));
    let leaf = s.translate(client, vaddr).unwrap();
    assert_eq!(leaf.frame, Some(frame_id));
    assert!(leaf.writable());
    assert_eq!(s.translate(client, vaddr + 0x1000).and_then(|l| l.frame), Some(s.object(client_frame)));
    assert!(matches!(s.cap(client_frame), Cap::Frame { mapping: None, .. }), "the server mapped its own copy");
    s.assert_sound();
}

#[test]
fn the_server_makes_a_cnode_in_a_slot_of_its_own_and_uses_its_slots_by_their_cptrs() {
    let mut s = Sys::new();
    let server = s.rt.memory_server(&mut s.m, 2, 21).unwrap();
    s.m.run_as(server.process.thread);
    let c = cspace::cptr;
    let untyped = c(server_slot::UNTYPED_START);
    let holder = (1 << SERVER_CNODE_BITS) - 1;
    let node = Slot::in_root(cspace::ROOT, holder);
    s.m.untyped_retype(untyped, object_type::CAP_TABLE, SERVER_CNODE_BITS, node, 1).unwrap();
    let in_node = |i: u64| cspace::in_cnode(holder, i);
    let into = Slot { root: cspace::ROOT, node_index: holder, node_depth: SERVER_CNODE_BITS, offset: 3 };
    s.m.untyped_retype(untyped + c(1), object_type::X86_4K, 0, into, 2).unwrap();
    let frame = s.m.object_of(in_node(3)).expect("a frame in slot 3 of the new CNode");
    let (own_index, own_depth) = cspace::address(in_node(100));
    let own = |depth: u64| CNode { cap: cspace::ROOT, depth: depth as u8 };
    let (from, from_depth) = cspace::address(in_node(3));
    s.m.cnode_copy(own(own_depth), own_index, own(from_depth), from, CapRights::READ).unwrap();
    assert_eq!(s.m.object_of(in_node(100)), Some(frame));
    let (k, depth) = cspace::address(c(20));
    s.m.cnode_copy(own(depth), k, own(from_depth), from, CapRights::READ).unwrap();
    assert_eq!(s.m.object_of(c(20)), Some(frame), "CNode 0's slots keep one level");
    assert_eq!(s.m.page_get_address(in_node(100)).ok(), s.m.page_get_address(c(20)).ok());
    s.m.cnode_delete(own(own_depth), own_index).unwrap();
    assert_eq!(s.m.cap_at(in_node(100)), Some(Cap::Null));
    s.m.run_as(s.info.thread);
    s.assert_sound();
}
