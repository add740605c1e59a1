//! The benchmark tables. Each measurement prints one line:
//! `bench <table> key=value ...`.

use crate::measure::{per_op, Bench, RawCosts, NOOP};
use client_lib::{Batch, MAX_BATCH_OPS};
use memserver_protocol::bootstrap::SERVER_CNODE_BITS;
use memserver_protocol::registers;
use memserver_protocol::{Invocation, Reply, Request, Stats, VmallocOptions};
use sel4_launch::memserver_process::Placement;
use sel4_layer::abi::{init_cap, size};
use sel4_layer::invocation::Tcb;
use sel4_layer::println;
use sel4_layer::time_stamp::cycles;
use sel4_layer::{ipc, syscall};

/// Pages per vmalloc in the replication table.
const PAGES: [u64; 4] = [1, 16, 512, 4096];
/// Pages mapped in the region (besides what the server maps at start)
/// when a late space registers.
const LATE_PAGES: [u64; 5] = [0, 512, 4096, 16384, 65536];
/// Bytes of the server's records of one frame copy, at most (measured:
/// 24 to 33 a page and space).
const COPY_RECORD_BYTES: u64 = 64;
/// Objects one Untyped Retype creates at most.
const RETYPE_FAN_OUT: u64 = 256;

/// Invocations the cheapest possible implementation on seL4 needs: a map
/// and an unmap of each page in each space, a map of each structure made,
/// and with fresh frames (`cold`) their retypes and, since seL4 maps a
/// capability once, a copy of each frame's capability for every space
/// after the first. Structures are retyped fresh.
fn floor(pages: u64, spaces: u64, structures: u64, cold: bool) -> u64 {
    let fresh_frames = if cold { pages.div_ceil(RETYPE_FAN_OUT) + pages * (spaces - 1) } else { 0 };
    2 * pages * spaces + structures + structures.div_ceil(RETYPE_FAN_OUT) + fresh_frames
}

/// What one vmalloc of P pages and its vfree through the purge took.
struct Cycle {
    invocations: u64,
    /// Guest instructions of its three requests (vmalloc, vfree, purge).
    cycles: u64,
    /// The same invocations issued raw, and three raw IPC round trips.
    raw_cycles: u64,
    /// Structures the vmalloc created in the spaces.
    structures: u64,
    /// Bytes of the server's heap the mapped area's records took.
    heap_bytes: u64,
}

fn cycle(bench: &mut Bench, pages: u64, raw: &RawCosts) -> Cycle {
    let before = bench.stats();
    let start = cycles();
    let addr = bench.vmalloc(pages, false);
    let map_cycles = cycles() - start;
    let mapped = bench.stats();
    let start = cycles();
    bench.vfree(addr);
    let unmap_cycles = cycles() - start;
    let after = bench.stats();
    let made = |kind: Invocation| after.invocations.get(kind) - before.invocations.get(kind);
    let raw_invocations = made(Invocation::MapPage) * raw.map
        + made(Invocation::UnmapPage) * raw.unmap
        + made(Invocation::Copy) * raw.copy;
    Cycle {
        invocations: after.invocations.total() - before.invocations.total(),
        cycles: map_cycles + unmap_cycles,
        raw_cycles: raw_invocations + 3 * raw.ipc,
        structures: structures_made(&before, &mapped),
        heap_bytes: mapped.heap_bytes.saturating_sub(before.heap_bytes),
    }
}

/// Paging structures the server made (mapped into a space) between two
/// statistics.
fn structures_made(before: &Stats, after: &Stats) -> u64 {
    let maps = |s: &Stats| [Invocation::MapPdpt, Invocation::MapPd, Invocation::MapPt].map(|k| s.invocations.get(k));
    maps(after).iter().sum::<u64>() - maps(before).iter().sum::<u64>()
}

/// Registers one more bare space: prints its `late-register` line (what
/// the registration cost against its floor, with the server's metadata
/// and the kernel memory it took) and returns the space.
fn register(bench: &mut Bench) -> u16 {
    let before = bench.stats();
    let root_before = bench.root_untyped();
    let (invocations, space) = bench.invocations(|b| b.add_space());
    let after = bench.stats();
    let structures = structures_made(&before, &after);
    // The first space maps the frames' own capabilities; every later one
    // a copy of each (CNode Copy, then Page Map).
    let copies = if bench.spaces == 1 { 0 } else { before.frames };
    let floor = before.frames + copies + structures + structures.div_ceil(RETYPE_FAN_OUT);
    println!(
        "bench late-register space={} mapped={} invocations={invocations} floor={floor} heap_bytes={} \
         root_bytes={} structures={structures}",
        bench.spaces,
        before.frames,
        after.heap_bytes.saturating_sub(before.heap_bytes),
        bench.root_untyped() - root_before,
    );
    space
}

/// vmalloc + vfree of P pages with N spaces registered: cold (fresh
/// frames), first reuse, and warm (frames recycled again). A P whose
/// capability slots (one a page in every space, for it and for the pages
/// held while it runs cold), with their frames, the CNodes the server
/// would make for the slots and the records, exceed the server's free
/// memory is skipped, and said so. Then the memory the N spaces and the last measured P take.
pub fn replication(bench: &mut Bench, spaces: usize) {
    let before = bench.stats();
    let root_before = bench.root_untyped();
    while bench.spaces + 1 < spaces {
        bench.add_space();
    }
    // The N-th space's registration, in the late-registration table.
    if bench.spaces < spaces {
        register(bench);
    }
    let registered = bench.stats();
    let root_bytes = bench.root_untyped() - root_before;
    let raw = bench.raw_costs();
    println!(
        "bench raw-costs n={spaces} page_map={} page_unmap={} cnode_copy={} ipc={}",
        raw.map, raw.unmap, raw.copy, raw.ipc
    );
    // Frames freed so far sit in the server's pool; holding that many
    // pages while measuring "cold" makes the measured frames fresh.
    let mut recycled = 0;
    let mut last = None;
    for pages in PAGES {
        let copies = (pages + recycled) * spaces as u64;
        let stats = bench.stats();
        let cnodes = copies.saturating_sub(stats.free_slots).div_ceil(1 << SERVER_CNODE_BITS);
        let needed =
            ((pages + recycled) << size::PAGE_BITS) + (cnodes << size::LARGE_PAGE_BITS) + copies * COPY_RECORD_BYTES;
        let free = stats.untyped_free + stats.spare_bytes;
        if needed > free {
            println!("bench replication-skipped n={spaces} p={pages} copies={copies} needed={needed} free={free}");
            continue;
        }
        let held = (recycled > 0).then(|| bench.vmalloc(recycled, false));
        let cold = cycle(bench, pages, &raw);
        if let Some(addr) = held {
            bench.vfree(addr);
        }
        recycled += pages;
        let first_reuse = cycle(bench, pages, &raw);
        let warm = cycle(bench, pages, &raw);
        last = Some((pages, cold.heap_bytes));
        for (mode, c) in [("cold", cold), ("first-reuse", first_reuse), ("warm", warm)] {
            let floor = floor(pages, spaces as u64, c.structures, mode == "cold");
            println!(
                "bench replication n={spaces} p={pages} mode={mode} invocations={} floor={floor} cycles={} \
                 raw_cycles={}",
                c.invocations, c.cycles, c.raw_cycles
            );
        }
    }
    if let Some((pages, page_heap_bytes)) = last {
        println!(
            "bench memory n={spaces} p={pages} page_heap_bytes={page_heap_bytes} space_heap_bytes={} \
             root_bytes={root_bytes} structures={}",
            registered.heap_bytes.saturating_sub(before.heap_bytes),
            structures_made(&before, &registered),
        );
    }
}

/// Guest cycles per no-op request against a raw seL4 round trip to the
/// same server: with the benchmark above the server (seL4 takes the
/// reply's fastpath only to a caller of at least the replier's priority),
/// and at the server's priority, where both directions may take it.
pub fn request_cost(bench: &mut Bench) {
    const ROUNDS: u64 = 2000;
    let per_round = |f: &dyn Fn()| per_op(ROUNDS, |_| f());
    let raw = || bench.ping();
    let noop = || bench.noop().unwrap_or_else(|e| panic!("no-op request: {e:?}"));
    // The no-op's message in registers, sent by a bare system call: the
    // server's whole share of the no-op, without the client library's.
    let bare = registers::request(&NOOP).unwrap_or_else(|| panic!("{NOOP:?} goes in registers"));
    let (info, words) = ipc::stage(bare.label, bare.as_slice(), 0);
    let bare_noop = || {
        syscall::call(bench.endpoint, info, words);
    };
    let (raw_above, noop_above) = (per_round(&raw), per_round(&noop));
    let me = Tcb(init_cap::TCB);
    me.set_priority(Placement::DEMO.priority).unwrap_or_else(|e| panic!("to the server's priority: {e:?}"));
    let (raw_equal, noop_equal, bare_equal) = (per_round(&raw), per_round(&noop), per_round(&bare_noop));
    me.set_priority(u8::MAX).unwrap_or_else(|e| panic!("back to the root task's priority: {e:?}"));
    println!(
        "bench request-cost rounds={ROUNDS} noop_cycles={noop_above} raw_ipc_cycles={raw_above} \
         noop_fastpath_cycles={noop_equal} raw_ipc_fastpath_cycles={raw_equal} bare_noop_fastpath_cycles={bare_equal}"
    );
}

/// A warm one-page vmalloc + vfree + purge at one space, for `images
/// bench`'s profile of the server's work, which single-steps
/// [`profiled_work`] under gdb up to [`profiled_work_end`] (it runs
/// unobserved in every other boot).
pub fn work_profile(bench: &mut Bench) {
    // Warm: the frame and the structures the profiled area reuses.
    bench.vfree(bench.vmalloc(1, false));
    profiled_work(bench);
    profiled_work_end();
}

/// The profiled operation (a symbol of its own for gdb's breakpoint).
#[inline(never)]
pub fn profiled_work(bench: &mut Bench) {
    bench.vfree(bench.vmalloc(1, false));
}

/// Where the profiled operation's trace ends.
#[inline(never)]
pub fn profiled_work_end() {
    // Not folded into another empty function: its address is its own.
    core::hint::black_box(());
}

/// A 2 MiB-aligned 64 MiB vmalloc with 4 KiB pages against 2 MiB pages.
pub fn large_pages(bench: &mut Bench) {
    const PAGES: u64 = 64 << 8;
    let mut run = |large| bench.invocations(|b| b.vfree(b.vmalloc(PAGES, large))).0;
    let (small, large) = (run(false), run(true));
    println!("bench large-pages bytes={} small={small} large={large}", PAGES << 12);
}

/// Invocations for a 1 GiB vmalloc and its vfree: on one 1 GiB page, and
/// on 512 2 MiB pages.
pub fn huge_pages(bench: &mut Bench) {
    const GIB: u64 = 1 << 30;
    let mut run = |options| bench.invocations(|b| b.vfree(b.vmalloc_with(GIB, options))).0;
    let huge = run(VmallocOptions { huge_pages: true, ..VmallocOptions::DEFAULT });
    let large = run(VmallocOptions { large_pages: true, ..VmallocOptions::DEFAULT });
    println!("bench huge-pages bytes={GIB} large={large} huge={huge}");
}

/// Registering one more space when the region holds R mapped pages; the
/// space is unregistered again, so the slots of every R go to it and the
/// spaces registered before.
pub fn late_registration(bench: &mut Bench) {
    for pages in LATE_PAGES {
        let held = (pages > 0).then(|| bench.vmalloc(pages, false));
        let space = register(bench);
        bench.remove_space(space);
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

/// Addresses of the one-page areas a batch's worth of vmallocs made.
type Made = heapless::Vec<u64, MAX_BATCH_OPS>;

/// `MAX_BATCH_OPS` one-page vmallocs as single requests or as one batch:
/// the guest cycles they took and the areas.
fn one_page_vmallocs(bench: &Bench, batched: bool) -> (u64, Made) {
    let one_page = Request::Vmalloc { size: 4096, large_pages: false };
    let mut batch = Batch::new();
    for _ in 0..MAX_BATCH_OPS {
        batch.push(one_page).unwrap_or_else(|e| panic!("a batch of one-page vmallocs: {e:?}"));
    }
    let start = cycles();
    let made: Made = if batched {
        let answer = bench.client.batch(&batch).unwrap_or_else(|e| panic!("batch: {e:?}"));
        let address = |reply: &Reply| match reply {
            Reply::Address(addr) => *addr,
            other => panic!("a vmalloc of the batch: {other:?}"),
        };
        answer.replies.iter().map(address).collect()
    } else {
        (0..MAX_BATCH_OPS).map(|_| bench.vmalloc(1, false)).collect()
    };
    (cycles() - start, made)
}

/// A batch of `MAX_BATCH_OPS` one-page vmallocs against as many single
/// requests: guest cycles (instructions under `-icount`) and invocations,
/// each with recycled frames (a round of both runs first).
pub fn batch(bench: &mut Bench) {
    let mut measure = |batched| {
        let (invocations, (cycles, made)) = bench.invocations(|b| one_page_vmallocs(b, batched));
        for addr in made {
            bench.client.vfree(addr).unwrap_or_else(|e| panic!("vfree: {e:?}"));
        }
        bench.admin.purge().unwrap_or_else(|e| panic!("purge: {e:?}"));
        (cycles, invocations)
    };
    let _warm_up = [measure(false), measure(true)];
    let (single_cycles, single_invocations) = measure(false);
    let (batch_cycles, batch_invocations) = measure(true);
    println!(
        "bench batch ops={MAX_BATCH_OPS} single_cycles={single_cycles} batch_cycles={batch_cycles} \
         single_invocations={single_invocations} batch_invocations={batch_invocations}"
    );
}
