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
    let own = CNode { cap: server_slot::CNODE, depth: 64 };
    let first = client_slot + 2;
    let into = Slot { root: server_slot::CNODE, node_index: 0, node_depth: cspace::NODE_DEPTH, offset: first };
    s.m.untyped_retype(server_slot::UNTYPED_START, object_type::X86_PDPT, 0, into, 1).unwrap();
    s.m.untyped_retype(
        server_slot::UNTYPED_START,
        object_type::X86_PAGE_DIRECTORY,
        0,
        Slot { offset: first + 1, ..into },
        1,
    )
    .unwrap();
    s.m.untyped_retype(
        server_slot::UNTYPED_START,
        object_type::X86_PAGE_TABLE,
        0,
        Slot { offset: first + 2, ..into },
        1,
    )
    .unwrap();
    s.m.untyped_retype(server_slot::UNTYPED_START + 1, object_type::X86_4K, 0, Slot { offset: first + 3, ..into }, 256)
        .unwrap();
    let vaddr = 0x7000_0000_0000;
    for (i, level) in [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable].into_iter().enumerate() {
        s.m.paging_structure_map(first + i as u64, level, client_slot, vaddr, ATTRS).unwrap();
    }
    let frame = first + 3;
    s.m.cnode_copy(own, first + 300, own, frame, CapRights::READ_WRITE).unwrap();
    s.m.page_map(first + 300, client_slot, vaddr, CapRights::READ_WRITE, ATTRS).unwrap();
    s.m.page_map(client_slot + 1, client_slot, vaddr + 0x1000, CapRights::READ, ATTRS).unwrap();
    // A VSpace capability the server holds names the client's VSpace.
    let client_vspace = s.m.object_of(client_slot).unwrap();
    let frame_id = s.m.object_of(frame).unwrap();
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
fn the_server_makes_a_cnode_in_its_root_and_uses_its_slots_by_their_cptrs() {
    let mut s = Sys::new();
    let server = s.rt.memory_server(&mut s.m, 2, 21).unwrap();
    s.m.run_as(server.process.thread);
    let own = CNode { cap: server_slot::CNODE, depth: 64 };
    let untyped = server_slot::UNTYPED_START;
    let node = Slot::in_root(server_slot::CNODE, 1);
    s.m.untyped_retype(untyped, object_type::CAP_TABLE, SERVER_CNODE_BITS, node, 1).unwrap();
    let in_node_1 = |i: u64| (1 << SERVER_CNODE_BITS) | i;
    let into = Slot { root: server_slot::CNODE, node_index: 1, node_depth: cspace::NODE_DEPTH, offset: 3 };
    s.m.untyped_retype(untyped + 1, object_type::X86_4K, 0, into, 2).unwrap();
    let frame = s.m.object_of(in_node_1(3)).expect("a frame in slot 3 of CNode 1");
    s.m.cnode_copy(own, 20, own, in_node_1(4), CapRights::READ).unwrap();
    s.m.cnode_copy(own, in_node_1(100), own, in_node_1(3), CapRights::READ).unwrap();
    assert_eq!(s.m.object_of(in_node_1(100)), Some(frame));
    assert!(s.m.object_of(20).is_some(), "CNode 0's slots keep their small CPtrs");
    assert_eq!(s.m.page_get_address(in_node_1(100)).ok(), s.m.page_get_address(in_node_1(3)).ok());
    s.m.cnode_delete(own, in_node_1(100)).unwrap();
    assert_eq!(s.m.cap_at(in_node_1(100)), Some(Cap::Null));
    let beyond = Slot::in_root(server_slot::CNODE, 1 << server.start.root_bits());
    assert!(
        s.m.untyped_retype(untyped, object_type::CAP_TABLE, SERVER_CNODE_BITS, beyond, 1).is_err(),
        "the root's last slot is the last CNode's"
    );
    s.m.run_as(s.info.thread);
    s.assert_sound();
}
