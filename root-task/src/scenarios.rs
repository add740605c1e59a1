//! The integration scenarios: each drives the memory server through the
//! client agents, in their own address spaces, and checks what every space
//! sees. One line each: `scenario <name>: ok` or `... FAIL <reason>`.
//! The hardening scenarios (failure injection, stress, client death) have
//! their own files.

mod client_death;
mod fault_injection;
mod stress;

use crate::fail;
use crate::verdict::{Context, Verdict};
use client_lib::bootstrap::FaultKind;
use client_lib::println;
use client_lib::protocol::{
    ErrorCode, Quota, RegionInfo, Reply, Request, Stats, Translation, DESCRIPTOR_SIZE, REQUESTS,
};
use client_lib::sel4::abi::CPtr;
use core::fmt;
use root_task::agent::{Agent, Trouble};
use root_task::agent_protocol::{Command, Outcome};
use root_task::allocator::Allocator;
use root_task::memserver_process::MemServerProcess;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Bytes one top-level (PML4) entry maps.
const TOP_ENTRY_SPAN: u64 = 1 << 39;
/// Quota of each agent.
pub const AGENT_QUOTA: u64 = 16 * MIB;
/// Compound order of the vmemmap scenario (2 MiB compound pages).
const COMPOUND_ORDER: u8 = 9;
/// Compound pages in the vmemmap scenario, half on each side of the
/// top-level boundary.
const COMPOUND_PAGES: u64 = 8;
/// Increments each percpu worker makes.
const PERCPU_INCREMENTS: u64 = 10_000;
/// Agents beyond A-D, for the hardening scenarios: the stress crowd (the
/// last of them greedy) and the one that dies.
pub const CROWD_NAMES: [&str; CROWD] =
    ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13", "S14", "S15", "E"];
const CROWD: usize = stress::AGENTS + 1;

/// What the scenarios work with.
pub struct World<'a> {
    pub alloc: &'a mut Allocator,
    pub server: &'a MemServerProcess,
    pub region: RegionInfo,
    /// Agents A, B and C, registered and started.
    pub agents: [Agent; 3],
    /// Agent D, registered only by `late-register`.
    pub late: Agent,
    /// The stress crowd and, last, the agent `client-death` kills.
    pub crowd: heapless::Vec<Agent, CROWD>,
    /// The root task's endpoint, where agents report.
    pub root_endpoint: CPtr,
    /// CPUs the kernel runs.
    pub cpus: u64,
    /// Head descriptors written by `vmemmap-crosses-top-level`: (address, value).
    heads: heapless::Vec<(u64, u64), { COMPOUND_PAGES as usize }>,
}

impl<'a> World<'a> {
    #[allow(clippy::too_many_arguments, reason = "one argument per part of the world, each named")]
    pub fn new(
        alloc: &'a mut Allocator,
        server: &'a MemServerProcess,
        region: RegionInfo,
        agents: [Agent; 3],
        late: Agent,
        crowd: heapless::Vec<Agent, CROWD>,
        root_endpoint: CPtr,
        cpus: u64,
    ) -> World<'a> {
        World { alloc, server, region, agents, late, crowd, root_endpoint, cpus, heads: heapless::Vec::new() }
    }

    fn stats(&self) -> Result<Stats, crate::verdict::Reason> {
        self.server.admin.stats().context("stats")
    }
}

/// A scenario: its name and what runs it.
type Scenario = (&'static str, fn(&mut World) -> Verdict);

/// The scenarios, in the order they run.
pub const SCENARIOS: [Scenario; 11] = [
    ("vmalloc-shared", vmalloc_shared),
    ("vmemmap-crosses-top-level", vmemmap_crosses_top_level),
    ("late-register", late_register),
    ("percpu-smp", percpu_smp),
    ("unregister", unregister),
    ("bad-input", bad_input),
    ("exhaustion", exhaustion),
    ("fault-injection", fault_injection::run),
    ("client-death", client_death::run),
    ("stress", stress::run),
    ("missed-syncs", missed_syncs),
];

/// Runs every scenario, printing one line each; true if all passed.
pub fn run_all(world: &mut World) -> bool {
    let mut all_ok = true;
    for (name, scenario) in SCENARIOS {
        match scenario(world) {
            Ok(()) => println!("scenario {name}: ok"),
            Err(reason) => {
                all_ok = false;
                println!("scenario {name}: FAIL {reason}");
            }
        }
    }
    all_ok
}

/// `agent`'s vmalloc of `size` bytes.
fn vmalloc(agent: &Agent, size: u64) -> Result<u64, crate::verdict::Reason> {
    match agent.request(Request::Vmalloc { size, large_pages: false }).context(agent.name)? {
        Ok(Reply::Address(addr)) => Ok(addr),
        other => fail!("{}: vmalloc({size}) answered {other:?}", agent.name),
    }
}

/// `agent`'s request, which must succeed with `Reply::Done`.
fn done(agent: &Agent, request: Request) -> Verdict {
    match agent.request(request).context(agent.name)? {
        Ok(Reply::Done) => Ok(()),
        other => fail!("{}: {request:?} answered {other:?}", agent.name),
    }
}

/// `agent` carries out `command`, which must finish with `Outcome::Done`.
fn run_done(agent: &Agent, command: Command) -> Verdict {
    match agent.run(command) {
        Ok(Outcome::Done) => Ok(()),
        other => fail!("{}: {command:?}: {other:?}", agent.name),
    }
}

/// `agent` checks the pattern `seed` over `len` bytes at `addr`.
fn check(agent: &Agent, addr: u64, len: u64, seed: u64) -> Verdict {
    match agent.run(Command::Check { addr, len, seed }) {
        Ok(Outcome::Checked(None)) => Ok(()),
        other => fail!("{}: pattern check at {addr:#x}: {other:?}", agent.name),
    }
}

/// `agent` reads the word at `addr`.
fn read(agent: &Agent, addr: u64) -> Result<u64, crate::verdict::Reason> {
    match agent.run(Command::Read { addr }) {
        Ok(Outcome::Value(v)) => Ok(v),
        other => fail!("{}: read of {addr:#x}: {other:?}", agent.name),
    }
}

/// How the canonical table maps `addr`, which must be mapped.
fn translate(agent: &Agent, addr: u64) -> Result<Translation, crate::verdict::Reason> {
    match agent.request(Request::Translate { addr }).context(agent.name)? {
        Ok(Reply::Translation(Some(t))) => Ok(t),
        other => fail!("translate({addr:#x}): {other:?}"),
    }
}

/// `agent`'s access must be reported as a real fault of `kind` at `addr`.
fn expect_fault(agent: &Agent, command: Command, addr: u64, kind: FaultKind) -> Verdict {
    match agent.run(command) {
        Err(Trouble::Faulted(r)) if r.addr == addr && r.kind == kind => Ok(()),
        other => fail!("{}: {command:?}: expected a reported {kind:?} at {addr:#x}, got {other:?}", agent.name),
    }
}

fn vmalloc_shared(w: &mut World) -> Verdict {
    let [a, b, c] = &w.agents;
    let missed_before = w.stats()?.missed_syncs;
    // A page that keeps the page table of the area's first pages in place,
    // so the reads after the purge see its entries.
    let keeper = vmalloc(a, 4 * KIB)?;
    let addr = vmalloc(a, MIB)?;
    run_done(a, Command::Fill { addr, len: MIB, seed: 0xa })?;
    check(b, addr, MIB, 0xa)?;
    check(c, addr, MIB, 0xa)?;
    done(a, Request::Vfree { addr })?;
    w.server.admin.purge().context("purge")?;
    if (addr ^ keeper) >= 2 * MIB {
        fail!("the area at {addr:#x} does not share a page table with {keeper:#x}");
    }
    for reader in [a, b] {
        expect_fault(reader, Command::Read { addr }, addr, FaultKind::UnmappedRead)?;
    }
    done(a, Request::Vfree { addr: keeper })?;
    if w.stats()?.missed_syncs != missed_before {
        fail!("the access after vfree was repaired instead of reported");
    }
    Ok(())
}

fn vmemmap_crosses_top_level(w: &mut World) -> Verdict {
    let [a, b, c] = &w.agents;
    let per = 1u64 << COMPOUND_ORDER;
    let boundary_pfn = TOP_ENTRY_SPAN / DESCRIPTOR_SIZE;
    let start = boundary_pfn - COMPOUND_PAGES / 2 * per;
    let first = w.region.descriptor_address(start);
    let last = w.region.descriptor_address(start + COMPOUND_PAGES * per) - 1;
    if first / TOP_ENTRY_SPAN == last / TOP_ENTRY_SPAN {
        fail!("the range {first:#x}..{last:#x} does not cross a top-level boundary");
    }
    done(
        a,
        Request::VmemmapPopulate { start_pfn: start, nr_pages: COMPOUND_PAGES * per, compound_order: COMPOUND_ORDER },
    )?;
    w.heads.clear();
    for k in 0..COMPOUND_PAGES {
        let head = (w.region.descriptor_address(start + k * per), 0x5eed_0000 + k);
        run_done(a, Command::Write { addr: head.0, value: head.1 })?;
        // Capacity is COMPOUND_PAGES.
        let _ = w.heads.push(head);
    }
    for agent in [b, c] {
        for &(addr, value) in &w.heads {
            let seen = read(agent, addr)?;
            if seen != value {
                fail!("{} reads {seen:#x} at head {addr:#x}, {value:#x} was written", agent.name);
            }
        }
    }
    // In each compound page, descriptor frame 1 holds the first tail
    // descriptors (private, writable); every further tail frame maps that
    // same frame read-only.
    let frame = |k: u64, i: u64| w.region.descriptor_address(start + k * per) + i * 4 * KIB;
    for k in [0, COMPOUND_PAGES - 1] {
        let first_tail = translate(a, frame(k, 1))?;
        for i in [2, 3, per * DESCRIPTOR_SIZE / (4 * KIB) - 1] {
            let further = translate(a, frame(k, i))?;
            if further.paddr != first_tail.paddr || further.writable || !first_tail.writable {
                fail!("compound page {k}: tail frame {i} is {further:?}, the first tail frame {first_tail:?}");
            }
        }
    }
    let tail = |k| frame(k, 3);
    expect_fault(a, Command::Write { addr: tail(1), value: 1 }, tail(1), FaultKind::ReadOnlyWrite)
}

fn late_register(w: &mut World) -> Verdict {
    let a = &w.agents[0];
    let addr = vmalloc(a, 64 * KIB)?;
    run_done(a, Command::Fill { addr, len: 64 * KIB, seed: 0xd })?;
    let missed_before = w.stats()?.missed_syncs;
    w.late.register(&w.server.admin, AGENT_QUOTA).context("registering D")?;
    w.late.start().context("starting D")?;
    check(&w.late, addr, 64 * KIB, 0xd)?;
    for &(head, value) in &w.heads {
        let seen = read(&w.late, head)?;
        if seen != value {
            fail!("D reads {seen:#x} at head {head:#x}, {value:#x} was written");
        }
    }
    if w.stats()?.missed_syncs != missed_before {
        fail!("D's accesses needed repairs: registration did not copy the region");
    }
    done(a, Request::Vfree { addr })
}

/// C's threads, one per CPU, increment their own units; B reads them. The
/// workers run in C's space, which `unregister` removes next: a space that
/// has run on every CPU gets a TLB shootdown to every CPU on each unmap, and
/// under TCG each costs milliseconds.
fn percpu_smp(w: &mut World) -> Verdict {
    let cpus = w.cpus.min(w.region.cpus as u64);
    let offset = match w.agents[2].request(Request::PercpuAlloc { size: 8, align: 8 }).context("C")? {
        Ok(Reply::Offset(offset)) => offset,
        other => fail!("C: percpu alloc answered {other:?}"),
    };
    let mut workers: heapless::Vec<_, 8> = heapless::Vec::new();
    for cpu in 0..cpus {
        let addr = w.region.percpu_address(offset, cpu as u16);
        let worker = w.agents[2].start_worker(w.alloc, cpu, addr, PERCPU_INCREMENTS);
        // At most 8 CPUs.
        let _ = workers.push(worker);
    }
    for _ in 0..cpus {
        match w.agents[2].wait() {
            Ok(Outcome::Done) => {}
            other => fail!("percpu worker: {other:?}"),
        }
    }
    for worker in &workers {
        worker.tcb.suspend().context("suspending a worker")?;
    }
    let mut sum = 0;
    for cpu in 0..cpus {
        let value = read(&w.agents[1], w.region.percpu_address(offset, cpu as u16))?;
        if value != PERCPU_INCREMENTS {
            fail!("CPU {cpu}'s unit holds {value}, {PERCPU_INCREMENTS} expected");
        }
        sum += value;
    }
    if sum != cpus * PERCPU_INCREMENTS {
        fail!("sum {sum} over {cpus} CPUs");
    }
    done(&w.agents[2], Request::PercpuFree { offset })
}

fn unregister(w: &mut World) -> Verdict {
    let before = w.stats()?;
    let space = w.agents[2].space.ok_or_else(|| crate::verdict::reason(format_args!("C has no space")))?;
    w.server.admin.unregister(space).context("unregister C")?;
    let after = w.stats()?;
    if after.spaces + 1 != before.spaces || after.structures >= before.structures {
        fail!("spaces {} -> {}, structures {} -> {}", before.spaces, after.spaces, before.structures, after.structures);
    }
    for agent in &w.agents[..2] {
        for &(head, value) in &w.heads {
            if read(agent, head)? != value {
                fail!("{} lost head {head:#x} when C was unregistered", agent.name);
            }
        }
    }
    let head = w.heads.first().map(|h| h.0).unwrap_or(w.region.vmemmap_start);
    expect_fault(&w.agents[2], Command::Read { addr: head }, head, FaultKind::UnmappedRead)
}

/// `agent`'s request must fail with `code`.
fn expect_error(agent: &Agent, what: &str, command: Command, code: ErrorCode) -> Verdict {
    match agent.run(command) {
        Ok(Outcome::Reply(Err(c))) if c == code => Ok(()),
        other => fail!("{what}: expected {code:?}, got {other:?}"),
    }
}

fn bad_input(w: &mut World) -> Verdict {
    let [a, b, _] = &w.agents;
    let req = Command::Request;
    // A vmalloc whose `large_pages` byte is not a bool.
    expect_error(b, "malformed bytes", Command::Raw { words: [0x02_00_01, 0, 0, 0], len: 1 }, ErrorCode::Malformed)?;
    expect_error(
        b,
        "unknown operation",
        Command::Raw { words: [REQUESTS as u64, 0, 0, 0], len: 1 },
        ErrorCode::UnknownOperation,
    )?;
    expect_error(b, "zero size", req(Request::Vmalloc { size: 0, large_pages: false }), ErrorCode::InvalidArgument)?;
    expect_error(
        b,
        "huge size",
        req(Request::Vmalloc { size: u64::MAX, large_pages: false }),
        ErrorCode::InvalidArgument,
    )?;
    let addr = vmalloc(b, 4 * KIB)?;
    expect_error(b, "unaligned address", req(Request::Vfree { addr: addr + 1 }), ErrorCode::InvalidArgument)?;
    expect_error(b, "out-of-region address", req(Request::Vfree { addr: 0x1000 }), ErrorCode::InvalidArgument)?;
    done(b, Request::Vfree { addr })?;
    expect_error(b, "double free", req(Request::Vfree { addr }), ErrorCode::NotFound)?;
    let theirs = vmalloc(a, 4 * KIB)?;
    expect_error(b, "freeing another client's area", req(Request::Vfree { addr: theirs }), ErrorCode::NotOwner)?;
    done(a, Request::Vfree { addr: theirs })?;
    let register = Request::Register { client: b.client_badge(), quota: Quota::bytes(MIB) };
    expect_error(b, "registration without the administrator badge", req(register), ErrorCode::NotAdmin)?;
    match w.server.admin.unregister(200) {
        Err(ErrorCode::NoSuchSpace) => {}
        other => fail!("unknown space id: expected NoSuchSpace, got {other:?}"),
    }
    let addr = vmalloc(b, 4 * KIB).context("the final good request")?;
    done(b, Request::Vfree { addr })
}

/// A allocates until its quota runs out, frees it all, and allocates as
/// much again: its freed areas count against its quota until they are
/// purged, and its request purges them when they stand in its way.
fn exhaustion(w: &mut World) -> Verdict {
    let a = &w.agents[0];
    // Nothing of A's awaits a purge, which its refused request would make.
    w.server.admin.purge().context("purge")?;
    let mut areas: heapless::Vec<u64, 64> = heapless::Vec::new();
    let (stats_before, code) = loop {
        let before = w.stats()?;
        match a.request(Request::Vmalloc { size: MIB, large_pages: false }).context("A")? {
            Ok(Reply::Address(addr)) if areas.push(addr).is_ok() => {}
            Err(code @ (ErrorCode::QuotaExceeded | ErrorCode::OutOfMemory)) => break (before, code),
            other => fail!("A's vmalloc #{}: {other:?}", areas.len() + 1),
        }
    };
    let after = w.stats()?;
    if (after.frames, after.structures) != (stats_before.frames, stats_before.structures) {
        fail!("the failed vmalloc ({code:?}) left frames {} -> {}", stats_before.frames, after.frames);
    }
    for &addr in &areas {
        done(a, Request::Vfree { addr })?;
    }
    // As many again, with no administrator purge.
    for slot in areas.iter_mut() {
        *slot = vmalloc(a, MIB).context("allocating again after freeing")?;
    }
    let held = w.stats()?.frames;
    if held > stats_before.frames {
        fail!("A's freed areas were kept beyond its quota: frames {} -> {held}", stats_before.frames);
    }
    for &addr in &areas {
        done(a, Request::Vfree { addr })?;
    }
    Ok(())
}

/// What the server holds, as a failed request or a full clean-up must leave
/// it: memory and slots in use count, spares kept for reuse do not.
#[derive(Clone, Copy, Debug)]
struct Resources {
    spaces: u32,
    frames: u64,
    structures: u64,
    /// Untyped bytes not in use: never retyped, or held by spare objects.
    untyped_unused: u64,
    /// Slots not in use: empty, or holding spare objects.
    slots_unused: u64,
    vmalloc_areas: u32,
    vmemmap_ranges: u32,
    percpu_allocs: u32,
    missed_syncs: u64,
}

impl Resources {
    /// Each field, named.
    fn fields(&self) -> [(&'static str, u64); 9] {
        [
            ("spaces", self.spaces.into()),
            ("frames", self.frames),
            ("structures", self.structures),
            ("unused untyped bytes", self.untyped_unused),
            ("unused slots", self.slots_unused),
            ("vmalloc areas", self.vmalloc_areas.into()),
            ("vmemmap ranges", self.vmemmap_ranges.into()),
            ("percpu allocations", self.percpu_allocs.into()),
            ("missed syncs", self.missed_syncs),
        ]
    }

    fn of(s: &Stats) -> Resources {
        Resources {
            spaces: s.spaces,
            frames: s.frames,
            structures: s.structures,
            untyped_unused: s.untyped_free + s.spare_bytes,
            slots_unused: s.free_slots + s.spare_objects,
            vmalloc_areas: s.vmalloc_areas,
            vmemmap_ranges: s.vmemmap_ranges,
            percpu_allocs: s.percpu_allocs,
            missed_syncs: s.missed_syncs,
        }
    }
}

/// The server's resources now must be `before`'s.
fn unchanged(w: &World, before: &Resources, what: fmt::Arguments) -> Verdict {
    let now = Resources::of(&w.stats()?);
    for ((name, was), (_, is)) in before.fields().into_iter().zip(now.fields()) {
        if was != is {
            fail!("{what}: {name} {was} became {is} ({before:?})");
        }
    }
    Ok(())
}

fn missed_syncs(w: &mut World) -> Verdict {
    match w.stats()?.missed_syncs {
        0 => Ok(()),
        n => fail!("{n} faults were repaired from the canonical table"),
    }
}
