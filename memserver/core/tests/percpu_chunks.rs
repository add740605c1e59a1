//! percpu allocations in every chunk, from the client's side, through the
//! wire protocol: for every allocation and every CPU, the address a client
//! computes from the layout `Hello` announced is where the server mapped
//! that allocation's unit, in the canonical table and in every registered
//! space; no two allocations, and no two CPUs' units of one, share a byte;
//! a chunk beyond the first is depopulated when its last allocation goes.

mod common;

use std::collections::BTreeMap;

use common::dispatcher::{dispatcher, register, send};
use memserver_core::backend::OpKind;
use memserver_core::dispatch::Dispatcher;
use memserver_core::sim::Sim;
use memserver_core::Badge;
use memserver_protocol::{ErrorCode, RegionInfo, Reply, Request, PROTOCOL_VERSION};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const PAGE: u64 = 4096;
/// Sizes and alignments the clients ask for, in turn: words and odd sizes,
/// whole and several pages, tight and page alignment.
const SHAPES: [(u32, u32); 8] =
    [(8, 8), (24, 16), (4096, 4096), (1000, 64), (12288, 256), (16, 16), (2048, 2048), (100, 8)];
/// Chunks the allocations fill: the first and three more.
const CHUNKS: usize = 4;
/// Allocations made after the last chunk appeared (they go into gaps of
/// earlier chunks or into the last one).
const AFTER_THE_LAST_CHUNK: usize = 8;

/// A live allocation.
#[derive(Clone, Copy, Debug)]
struct Held {
    owner: Badge,
    offset: u32,
    size: u32,
}

fn region(d: &mut Dispatcher<Sim>) -> RegionInfo {
    match send(d, A, Request::Hello { version: PROTOCOL_VERSION }, None) {
        Reply::Hello { region, .. } => region,
        other => panic!("hello: {other:?}"),
    }
}

/// The client's address of `offset` in `cpu`'s unit.
fn client_address(region: &RegionInfo, offset: u32, cpu: u16) -> u64 {
    region.percpu_address(offset, cpu).unwrap_or_else(|| panic!("offset {offset:#x} has no address on CPU {cpu}"))
}

/// The chunk of `offset`, as the layout defines it.
fn chunk_of(region: &RegionInfo, offset: u32) -> u32 {
    region.percpu.chunk(offset)
}

/// Allocations of every shape, from A and B in turn, until `CHUNKS` chunks
/// are populated, and a few more.
fn fill(d: &mut Dispatcher<Sim>) -> Vec<Held> {
    let mut held = Vec::new();
    let mut extra = 0;
    for i in 0..400 {
        let (size, align) = SHAPES[i % SHAPES.len()];
        let owner = if i % 2 == 0 { A } else { B };
        match send(d, owner, Request::PercpuAlloc { size, align }, None) {
            Reply::Offset(offset) => {
                assert_eq!(offset % align, 0, "offset {offset:#x} of a {align}-aligned allocation");
                held.push(Held { owner, offset, size });
            }
            other => panic!("allocation {i} ({size}, {align}): {other:?}"),
        }
        if d.server().census().percpu_chunks == CHUNKS {
            extra += 1;
            if extra > AFTER_THE_LAST_CHUNK {
                return held;
            }
        }
    }
    panic!("{} allocations populated only {} chunks", held.len(), d.server().census().percpu_chunks);
}

/// Every byte of every unit of every allocation is where the client looks:
/// mapped writable in the canonical table (asked through the protocol) and
/// to the same frame in every registered space; no byte is in two units.
fn check_units(d: &mut Dispatcher<Sim>, region: &RegionInfo, held: &[Held]) {
    let mut ranges = Vec::new();
    for h in held {
        for cpu in 0..region.percpu.cpus {
            let addr = client_address(region, h.offset, cpu);
            let end = addr + u64::from(h.size);
            for page in (addr / PAGE..end.div_ceil(PAGE)).map(|p| p * PAGE) {
                match send(d, h.owner, Request::Translate { addr: page }, None) {
                    Reply::Translation(Some(t)) if t.writable => {}
                    other => panic!("{h:?} on CPU {cpu}: page {page:#x} of {addr:#x}: {other:?}"),
                }
                let canonical = d.server().translate(page).map(|leaf| leaf.frame);
                let region_state = d.server().region();
                for id in region_state.space_ids() {
                    let vspace = region_state.vspace(id).unwrap();
                    let seen = region_state.backend().translate(vspace, page).map(|m| m.frame);
                    assert_eq!(seen, canonical, "{h:?} on CPU {cpu}: space {id:?} at {page:#x}");
                }
            }
            ranges.push((addr, end, *h, cpu));
        }
    }
    ranges.sort_by_key(|r| r.0);
    for pair in ranges.windows(2) {
        let ((_, end, first, cpu), (next, _, second, next_cpu)) = (pair[0], pair[1]);
        assert!(end <= next, "{first:?} on CPU {cpu} overlaps {second:?} on CPU {next_cpu} at {next:#x}");
    }
}

/// Populated chunks must be the first and every other that holds a live
/// allocation.
fn check_chunks(d: &Dispatcher<Sim>, region: &RegionInfo, held: &[Held]) {
    let mut live: BTreeMap<u32, usize> = BTreeMap::new();
    for h in held {
        *live.entry(chunk_of(region, h.offset)).or_default() += 1;
    }
    live.insert(0, 1);
    assert_eq!(d.server().census().percpu_chunks, live.len(), "live allocations per chunk: {live:?}");
}

#[test]
fn every_allocation_in_every_chunk_is_where_every_cpu_looks() {
    let mut d = dispatcher();
    let region = region(&mut d);
    assert_eq!(region.percpu.cpus, 4);
    register(&mut d, A);
    register(&mut d, B);
    register(&mut d, A);
    let mut held = fill(&mut d);
    let chunks: std::collections::BTreeSet<u32> = held.iter().map(|h| chunk_of(&region, h.offset)).collect();
    assert_eq!(chunks.len(), CHUNKS, "allocations in chunks {chunks:?}");
    check_units(&mut d, &region, &held);
    check_chunks(&d, &region, &held);

    // Free every third allocation, then the rest from the last: chunks
    // empty one by one, each at a different moment.
    let mut order: Vec<usize> = (0..held.len()).step_by(3).collect();
    order.extend((0..held.len()).rev().filter(|i| i % 3 != 0));
    let gone: Vec<Held> = order.iter().map(|&i| held[i]).collect();
    for (n, h) in gone.iter().enumerate() {
        assert_eq!(send(&mut d, h.owner, Request::PercpuFree { offset: h.offset }, None), Reply::Done, "{h:?}");
        let at = held.iter().position(|k| k.offset == h.offset).unwrap();
        held.remove(at);
        check_chunks(&d, &region, &held);
        if n % 8 == 0 {
            check_units(&mut d, &region, &held);
        }
    }
    assert_eq!(d.server().census().percpu_chunks, 1);
    for h in gone.iter().filter(|h| chunk_of(&region, h.offset) > 0) {
        for cpu in 0..region.percpu.cpus {
            let addr = client_address(&region, h.offset, cpu);
            assert_eq!(send(&mut d, A, Request::Translate { addr }, None), Reply::Translation(None), "{h:?}");
        }
    }
    assert_eq!((d.server().usage(A).used, d.server().usage(B).used), (0, 0));
}

/// Zeroings of part of a frame the server made so far.
fn zeroings(d: &Dispatcher<Sim>) -> u64 {
    d.server().region().op_counts().get(OpKind::ZeroPart)
}

fn alloc(d: &mut Dispatcher<Sim>, owner: Badge, size: u32, align: u32) -> Result<u32, ErrorCode> {
    match send(d, owner, Request::PercpuAlloc { size, align }, None) {
        Reply::Offset(offset) => Ok(offset),
        Reply::Error(code) => Err(code),
        other => panic!("percpu alloc: {other:?}"),
    }
}

fn free(d: &mut Dispatcher<Sim>, owner: Badge, offset: u32) {
    assert_eq!(send(d, owner, Request::PercpuFree { offset }, None), Reply::Done);
}

/// An allocation starts as zeros in every CPU's unit, as Linux's
/// `alloc_percpu`: one over bytes an earlier allocation used (another
/// client's here) is zeroed first, a page of each unit at a time; one
/// over bytes no allocation used since the chunk was populated is not
/// (its frames came zeroed); and an allocation whose zeroing fails is
/// refused with nothing made, and made (and zeroed) when asked again.
#[test]
fn an_allocation_over_used_bytes_is_zeroed_in_every_unit_first() {
    let mut d = dispatcher();
    register(&mut d, A);
    register(&mut d, B);
    let cpus = u64::from(region(&mut d).percpu.cpus);
    let first = alloc(&mut d, A, 6000, 4096).unwrap();
    assert_eq!(zeroings(&d), 0, "a fresh chunk's bytes are zeros already");
    free(&mut d, A, first);
    let again = alloc(&mut d, B, 6000, 4096).unwrap();
    assert_eq!(again, first, "first fit takes the freed bytes");
    assert_eq!(zeroings(&d), 2 * cpus, "its two pages in every unit");
    let fresh = alloc(&mut d, B, 8, 8).unwrap();
    assert_ne!(fresh, again);
    assert_eq!(zeroings(&d), 2 * cpus, "bytes no allocation used");
    free(&mut d, B, again);
    let (allocs, usage) = (d.stats().percpu_allocs, d.server().usage(A));
    d.sim_hooks().fail_after(Some(1));
    assert_eq!(alloc(&mut d, A, 16, 16), Err(ErrorCode::OutOfMemory), "the second unit's zeroing fails");
    assert_eq!((d.stats().percpu_allocs, d.server().usage(A)), (allocs, usage), "nothing made or charged");
    assert_eq!(alloc(&mut d, A, 16, 16), Ok(first), "asked again, it is made");
    assert!(zeroings(&d) > 2 * cpus + 2, "and zeroed in every unit");
}
