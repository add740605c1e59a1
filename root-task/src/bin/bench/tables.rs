//! The benchmark tables. Each measurement prints one line:
//! `bench <table> key=value ...`.

use crate::measure::Bench;
use memserver_protocol::Request;
use memserver_protocol::PING_LABEL;
use sel4_layer::println;
use sel4_layer::time_stamp::cycles;
use sel4_layer::{syscall, MessageInfo};

/// Pages per vmalloc in the replication table.
const PAGES: [u64; 4] = [1, 16, 512, 4096];
/// Objects one Untyped Retype creates at most.
const RETYPE_FAN_OUT: u64 = 256;

/// Invocations the cheapest possible implementation needs.
fn floor(pages: u64, spaces: u64, structures: u64, cold: bool) -> u64 {
    let frame_retypes = if cold { pages.div_ceil(RETYPE_FAN_OUT) } else { 0 };
    2 * pages * spaces + structures + structures.div_ceil(RETYPE_FAN_OUT) + frame_retypes
}

/// One vmalloc of `pages` and its vfree through the purge: invocations,
/// and the structures the vmalloc created in the spaces.
fn cycle(bench: &mut Bench, pages: u64) -> (u64, u64) {
    let before = bench.stats().structures;
    let (map, addr) = bench.invocations(|b| b.vmalloc(pages, false));
    let structures = bench.stats().structures.saturating_sub(before);
    let (unmap, ()) = bench.invocations(|b| b.vfree(addr));
    (map + unmap, structures)
}

/// vmalloc + vfree of P pages with N spaces registered: cold (fresh
/// frames), first reuse, and warm (frames recycled again).
pub fn replication(bench: &mut Bench, spaces: usize) {
    while bench.spaces.len() < spaces {
        bench.add_space();
    }
    // Frames freed so far sit in the server's pool; holding that many
    // pages while measuring "cold" makes the measured frames fresh.
    let mut recycled = 0;
    for pages in PAGES {
        let held = (recycled > 0).then(|| bench.vmalloc(recycled, false));
        let cold = cycle(bench, pages);
        if let Some(addr) = held {
            bench.vfree(addr);
        }
        recycled += pages;
        let first_reuse = cycle(bench, pages);
        let warm = cycle(bench, pages);
        for (mode, (invocations, structures)) in [("cold", cold), ("first-reuse", first_reuse), ("warm", warm)] {
            let floor = floor(pages, spaces as u64, structures, mode == "cold");
            println!("bench replication n={spaces} p={pages} mode={mode} invocations={invocations} floor={floor}");
        }
    }
}

/// Guest cycles per no-op request against a raw seL4 round trip to the
/// same server.
pub fn request_cost(bench: &mut Bench) {
    const ROUNDS: u64 = 2000;
    let start = cycles();
    for _ in 0..ROUNDS {
        syscall::call(bench.endpoint, MessageInfo::new(PING_LABEL, 0, 0, 0), [0; 4]);
    }
    let raw = (cycles() - start) / ROUNDS;
    let start = cycles();
    for _ in 0..ROUNDS {
        bench.noop().unwrap_or_else(|e| panic!("no-op request: {e:?}"));
    }
    let noop = (cycles() - start) / ROUNDS;
    println!("bench request-cost rounds={ROUNDS} noop_cycles={noop} raw_ipc_cycles={raw}");
}

/// A 2 MiB-aligned 64 MiB vmalloc with 4 KiB pages against 2 MiB pages.
pub fn large_pages(bench: &mut Bench) {
    const PAGES: u64 = 64 << 8;
    let mut run = |large| bench.invocations(|b| b.vfree(b.vmalloc(PAGES, large))).0;
    let (small, large) = (run(false), run(true));
    println!("bench large-pages bytes={} small={small} large={large}", PAGES << 12);
}

/// Registering one more space when the region holds R mapped pages.
pub fn late_registration(bench: &mut Bench) {
    for pages in [0, 512, 4096] {
        let held = (pages > 0).then(|| bench.vmalloc(pages, false));
        let mapped = bench.stats().frames;
        let before = bench.stats().structures;
        let (invocations, _) = bench.invocations(|b| b.add_space());
        let structures = bench.stats().structures - before;
        let floor = 2 * mapped + structures + structures.div_ceil(RETYPE_FAN_OUT);
        println!("bench late-register mapped={mapped} invocations={invocations} floor={floor}");
        if let Some(addr) = held {
            bench.vfree(addr);
        }
    }
}

/// Frames and invocations to describe 1 GiB of memory, base path against
/// the compound-page optimisation (order 9: 2 MiB compound pages).
pub fn vmemmap(bench: &mut Bench) {
    const PFNS: u64 = 1 << 18;
    /// Pfns per populate request (1024 descriptor pages).
    const STEP: u64 = 1 << 16;
    for (path, order) in [("base", 0u8), ("compound", 9)] {
        let start = if order == 0 { 0 } else { PFNS };
        let frames = bench.stats().frames;
        let (invocations, ()) = bench.invocations(|b| {
            for chunk in (start..start + PFNS).step_by(STEP as usize) {
                b.done(Request::VmemmapPopulate {
                    start_pfn: chunk,
                    nr_pages: STEP,
                    compound_order: order,
                    huge: false,
                });
            }
        });
        let frames = bench.stats().frames - frames;
        println!("bench vmemmap path={path} described_gib=1 frames={frames} invocations={invocations}");
    }
}
