//! The server's slots, over the model of seL4: when CNode 0's run out, the
//! server makes CNodes from its own memory (one 2 MiB granule each, in its
//! CSpace's root), so the copies of frames in many spaces are bounded by
//! memory; the CNodes it made serve later requests, and once everything is
//! freed the slots clients hold are back where they were.

mod common;

use common::{System, MIB};
use memserver_core::harness::ADMIN;
use memserver_core::ids::Badge;
use memserver_protocol::bootstrap::SERVER_CNODE_BITS;
use memserver_protocol::{ErrorCode, Quota, Reply, Request};

/// A quota no count of which stops these tests.
const UNLIMITED: Quota =
    Quota { bytes: 1 << 40, frames: Quota::NO_LIMIT, structures: Quota::NO_LIMIT, areas: Quota::NO_LIMIT };
const CLIENTS: [Badge; 3] = [Badge(0x100), Badge(0x200), Badge(0x300)];
/// The slots a CNode the server makes has for it (its slot 0's CPtr names
/// the slot of CNode 0 that holds it).
const CNODE_SLOTS: u64 = (1 << SERVER_CNODE_BITS) - 1;

fn vfree_purged(s: &mut System, client: Badge, addr: u64) {
    s.ok(client, Request::Vfree { addr });
    s.ok(ADMIN, Request::Purge);
}

/// A server given two untypeds of 2^`bits` bytes, with `rounds` spaces
/// registered for each client.
fn with_spaces(bits: u64, rounds: usize) -> System {
    let mut s = System::with_memory(1, bits);
    for _ in 0..rounds {
        for client in CLIENTS {
            s.try_register(client, UNLIMITED);
        }
    }
    s
}

#[test]
fn copies_beyond_cnode_0_live_in_cnodes_made_from_memory_and_are_given_back() {
    let mut s = with_spaces(26, 3);
    let start = s.d.stats();
    assert!(start.slots < CNODE_SLOTS, "CNode 0 alone: {} slots", start.slots);
    let unused = s.unused();
    // 8,192 pages in 9 spaces: 65,536 copies besides the originals, more
    // than CNode 0 has free.
    let addr = s.vmalloc(CLIENTS[0], 32 * MIB, false);
    let grown = s.d.stats();
    let made = (grown.slots - start.slots) / CNODE_SLOTS;
    assert!(made >= 1, "CNodes made: {made}");
    assert_eq!(grown.own_bytes - start.own_bytes, made * 2 * MIB, "each CNode is a granule of the server's own");
    let translated = s.ok(CLIENTS[2], Request::Translate { addr: addr + 32 * MIB - 4096 });
    assert!(matches!(translated, Reply::Translation(Some(_))), "{translated:?}");
    vfree_purged(&mut s, CLIENTS[0], addr);
    assert_eq!(s.unused(), unused, "the slots clients hold are back where they were");

    let again = s.vmalloc(CLIENTS[1], 32 * MIB, false);
    assert_eq!(s.d.stats().slots, grown.slots, "the CNodes made serve the next area: none is made");
    vfree_purged(&mut s, CLIENTS[1], again);
    assert_eq!(s.unused(), unused);
}

#[test]
fn when_memory_holds_no_cnode_more_the_request_fails_whole_and_the_server_serves_on() {
    let mut s = with_spaces(24, 4);
    let unused = s.unused();
    // Areas of 4 MiB in 12 spaces take 11,264 copies each, and 1 MiB of
    // frames: memory runs out, for frames, structures or CNodes.
    let mut areas = Vec::new();
    loop {
        match s.send(CLIENTS[0], Request::Vmalloc { size: 4 * MIB, large_pages: false }) {
            Reply::Address(addr) => areas.push(addr),
            Reply::Error(ErrorCode::OutOfMemory) => break,
            other => panic!("vmalloc: {other:?}"),
        }
        assert!(areas.len() < 64, "32 MiB of memory cannot hold 256 MiB of areas");
    }
    assert!(s.d.stats().slots > CNODE_SLOTS, "CNodes were made before memory ran out");
    match s.send(CLIENTS[1], Request::Vmalloc { size: 4096, large_pages: false }) {
        Reply::Address(addr) => _ = s.ok(CLIENTS[1], Request::Vfree { addr }),
        Reply::Error(ErrorCode::OutOfMemory) => {}
        other => panic!("another client's vmalloc: {other:?}"),
    }
    for addr in areas {
        s.ok(CLIENTS[0], Request::Vfree { addr });
    }
    s.ok(ADMIN, Request::Purge);
    assert_eq!(s.unused(), unused, "the slots clients hold are back where they were");
    let again = s.vmalloc(CLIENTS[2], 4 * MIB, false);
    vfree_purged(&mut s, CLIENTS[2], again);
}
