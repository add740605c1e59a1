//! The integration scenarios: each drives the memory server through the
//! client agents, in their own address spaces, and checks what every space
//! sees. One line each: `scenario <name>: ok` or `... FAIL <reason>`.
//! The 2 MiB vmemmap scenario, the vmalloc options, resizing and
//! protection scenario, the batch scenario, the hardening scenarios
//! (forged faults, memory reuse across kinds, failure injection, stress,
//! the greedy client, client death) and `scale`, which boots alone, have
//! their own files.

mod area_options;
mod batch;
mod client_death;
mod fault_injection;
mod forged_faults;
mod greedy;
mod reuse_across_kinds;
mod scale;
mod stress;
mod vmap;
mod vmemmap_huge;

use crate::fail;
use crate::verdict::{Context, Verdict};
use client_lib::ClientError;
use core::fmt;
use memserver_protocol::fault;
use memserver_protocol::words::Words;
use memserver_protocol::TOP_ENTRY_SPAN;
use memserver_protocol::{
    ErrorCode, FaultKind, Quota, RegionInfo, Reply, Request, Stats, Translation, DESCRIPTOR_SIZE, REQUESTS,
};
use root_task::agent::{Agent, Trouble};
use root_task::agent_protocol::{slot, Command, Outcome, RawMessage};
use root_task::inbox::Inbox;
use sel4_launch::allocator::Allocator;
use sel4_launch::memserver_process::{MemServerProcess, UntypedGrant};
use sel4_launch::vspace::VSpace;
use sel4_layer::println;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Quota of each agent.
pub const AGENT_QUOTA: u64 = 16 * MIB;
/// Frames A, B and C are given to vmap.
pub const AGENT_FRAMES: u64 = 16;
/// Compound order of the vmemmap scenario (2 MiB compound pages).
const COMPOUND_ORDER: u8 = 9;
/// Compound pages in the vmemmap scenario, half on each side of the
/// top-level boundary.
const COMPOUND_PAGES: u64 = 8;
/// First pfn of the vmemmap range `bad-input` populates (frame-aligned,
/// apart from every other scenario's).
const BAD_INPUT_PFN: u64 = 1 << 20;
/// Increments each percpu worker makes.
const PERCPU_INCREMENTS: u64 = 10_000;
/// The percpu chunk (0 is the first) the `percpu-smp` counter must be in.
const PERCPU_COUNTER_CHUNK: u32 = 2;
/// Sizes and alignments of the allocations `percpu-smp` fills the chunks
/// before it with, in turn (sizes are whole words, for the patterns).
const PERCPU_FILLERS: [(u32, u32); 6] = [(8, 8), (6144, 64), (4096, 4096), (1008, 16), (12288, 256), (2048, 2048)];
/// At most this many of them.
const PERCPU_MAX_FILLERS: usize = 64;
/// Agents beyond A-D, for the hardening scenarios: the stress crowd (the
/// last of them greedy) and the one that dies.
pub const CROWD_NAMES: [&str; CROWD] =
    ["S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13", "S14", "S15", "E"];
const CROWD: usize = stress::AGENTS + 1;

/// What the scenarios work with.
pub struct World<'a> {
    pub alloc: &'a mut Allocator,
    /// The root task's own VSpace.
    pub root: &'a mut VSpace,
    pub server: &'a MemServerProcess,
    pub region: RegionInfo,
    /// Agents A, B and C, registered and started.
    pub agents: [Agent; 3],
    /// Agent D, registered only by `late-register`.
    pub late: Agent,
    /// The stress crowd and, last, the agent `client-death` kills.
    pub crowd: heapless::Vec<Agent, CROWD>,
    /// The root task's endpoint, where agents report, and the fault
    /// reports the memory server signals there.
    pub inbox: Inbox,
    /// CPUs the kernel runs.
    pub cpus: u64,
    /// The time stamp counter's frequency, in MHz (as the kernel measured it).
    pub tsc_mhz: u64,
    /// Head descriptors written by `vmemmap-crosses-top-level`: (address, value).
    heads: heapless::Vec<(u64, u64), { COMPOUND_PAGES as usize }>,
}

impl<'a> World<'a> {
    #[allow(clippy::too_many_arguments, reason = "one argument per part of the world, each named")]
    pub fn new(
        alloc: &'a mut Allocator,
        root: &'a mut VSpace,
        server: &'a MemServerProcess,
        region: RegionInfo,
        agents: [Agent; 3],
        late: Agent,
        crowd: heapless::Vec<Agent, CROWD>,
        inbox: Inbox,
        (cpus, tsc_mhz): (u64, u64),
    ) -> World<'a> {
        World { alloc, root, server, region, agents, late, crowd, inbox, cpus, tsc_mhz, heads: heapless::Vec::new() }
    }

    fn stats(&self) -> Result<Stats, crate::verdict::Reason> {
        self.server.admin.stats().context("stats")
    }
}

/// A scenario: its name and what runs it.
pub type Scenario = (&'static str, fn(&mut World) -> Verdict);

/// The demo's scenarios, in the order they run.
pub const SCENARIOS: [Scenario; 18] = [
    ("vmalloc-shared", vmalloc_shared),
    ("vmemmap-huge", vmemmap_huge::run),
    ("vmemmap-crosses-top-level", vmemmap_crosses_top_level),
    ("late-register", late_register),
    ("area-options", area_options::run),
    ("batch", batch::run),
    ("vmap", vmap::run),
    ("percpu-smp", percpu_smp),
    ("unregister", unregister),
    ("bad-input", bad_input),
    ("forged-faults", forged_faults::run),
    ("exhaustion", exhaustion),
    ("reuse-across-kinds", reuse_across_kinds::run),
    ("fault-injection", fault_injection::run),
    ("client-death", client_death::run),
    ("stress", stress::run),
    ("greedy", greedy::run),
    ("missed-syncs", missed_syncs),
];

/// The scenario of the scale system, which boots alone.
const SCALE: [Scenario; 1] = [("scale", scale::run)];

/// What this root task runs, and the memory server's memory for it: with
/// the `scale` feature (the scale system), `scale` alone; otherwise the
/// demo's scenarios.
pub fn selected() -> (&'static [Scenario], UntypedGrant) {
    if cfg!(feature = "scale") {
        (&SCALE, scale::SERVER_MEMORY)
    } else {
        (&SCENARIOS, UntypedGrant::DEMO)
    }
}

/// Runs `scenarios`, printing one line each; true if all passed.
pub fn run_all(world: &mut World, scenarios: &[Scenario]) -> bool {
    let mut all_ok = true;
    for &(name, scenario) in scenarios {
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

/// Each of `readers` reads 0 at `addr`.
fn zero_in(readers: &[&Agent], addr: u64) -> Verdict {
    for reader in readers {
        let seen = read(reader, addr)?;
        if seen != 0 {
            fail!("{} reads {seen:#x} at {addr:#x} of a fresh page", reader.name);
        }
    }
    Ok(())
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
        Request::VmemmapPopulate {
            start_pfn: start,
            nr_pages: COMPOUND_PAGES * per,
            compound_order: COMPOUND_ORDER,
            huge: false,
        },
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

/// C's percpu allocation of `size` bytes aligned to `align`.
fn percpu_alloc(agent: &Agent, size: u32, align: u32) -> Result<u32, crate::verdict::Reason> {
    match agent.request(Request::PercpuAlloc { size, align }).context(agent.name)? {
        Ok(Reply::Offset(offset)) => Ok(offset),
        other => fail!("{}: percpu alloc({size}, {align}) answered {other:?}", agent.name),
    }
}

/// The address of percpu `offset` in `cpu`'s unit.
fn percpu_address(region: &RegionInfo, offset: u32, cpu: u64) -> Result<u64, crate::verdict::Reason> {
    match u16::try_from(cpu).ok().and_then(|cpu| region.percpu_address(offset, cpu)) {
        Some(addr) => Ok(addr),
        None => fail!("percpu offset {offset:#x} has no address on CPU {cpu}"),
    }
}

/// C fills percpu chunks with allocations of mixed sizes and alignments,
/// writing a pattern into every CPU's unit of each, until one lands in the
/// third chunk; its first word is the counter. C's threads, one per CPU,
/// increment their own unit's counter; B reads every counter and checks
/// every pattern in every unit. Once all is freed, the later chunks are
/// gone: B's read of the counter is a real fault. The workers run in C's
/// space, which `unregister` removes next: a space that has run on every
/// CPU gets a TLB shootdown to every CPU on each unmap, and under TCG each
/// costs milliseconds.
fn percpu_smp(w: &mut World) -> Verdict {
    let layout = w.region.percpu;
    let cpus = w.cpus.min(layout.cpus.into());
    let c = &w.agents[2];
    let mut fillers: heapless::Vec<(u32, u32, u64), PERCPU_MAX_FILLERS> = heapless::Vec::new();
    let counter = loop {
        let (size, align) = PERCPU_FILLERS[fillers.len() % PERCPU_FILLERS.len()];
        let offset = percpu_alloc(c, size, align)?;
        if layout.chunk(offset) >= PERCPU_COUNTER_CHUNK {
            break offset;
        }
        let seed = 0x9e0_0000 + fillers.len() as u64 * 0x10;
        for cpu in 0..layout.cpus.into() {
            let addr = percpu_address(&w.region, offset, cpu)?;
            run_done(c, Command::Fill { addr, len: size.into(), seed: seed ^ cpu })?;
        }
        if fillers.push((offset, size, seed)).is_err() {
            fail!("{PERCPU_MAX_FILLERS} allocations did not reach chunk {PERCPU_COUNTER_CHUNK}");
        }
    };
    let mut workers: heapless::Vec<_, 8> = heapless::Vec::new();
    for cpu in 0..cpus {
        let addr = percpu_address(&w.region, counter, cpu)?;
        let worker = w.agents[2].start_worker(w.alloc, cpu, addr, PERCPU_INCREMENTS);
        // At most 8 CPUs.
        let _ = workers.push(worker);
    }
    let [_, b, c] = &w.agents;
    for _ in 0..cpus {
        match c.wait() {
            Ok(Outcome::Done) => {}
            other => fail!("percpu worker: {other:?}"),
        }
    }
    for worker in &workers {
        worker.tcb.suspend().context("suspending a worker")?;
    }
    let mut sum = 0;
    for cpu in 0..cpus {
        let value = read(b, percpu_address(&w.region, counter, cpu)?)?;
        if value != PERCPU_INCREMENTS {
            fail!("CPU {cpu}'s unit holds {value}, {PERCPU_INCREMENTS} expected");
        }
        sum += value;
    }
    if sum != cpus * PERCPU_INCREMENTS {
        fail!("sum {sum} over {cpus} CPUs");
    }
    for &(offset, size, seed) in &fillers {
        for cpu in 0..layout.cpus.into() {
            check(b, percpu_address(&w.region, offset, cpu)?, size.into(), seed ^ cpu)?;
        }
    }
    let counter_addr = percpu_address(&w.region, counter, 0)?;
    done(c, Request::PercpuFree { offset: counter })?;
    for &(offset, ..) in &fillers {
        done(c, Request::PercpuFree { offset })?;
    }
    expect_fault(b, Command::Read { addr: counter_addr }, counter_addr, FaultKind::UnmappedRead)
}

fn unregister(w: &mut World) -> Verdict {
    let before = w.stats()?;
    w.agents[2].unregister(&w.server.admin).context("unregister C")?;
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
    // C's space lacks the region now, and its faults are the root task's.
    let head = w.heads.first().map(|h| h.0).unwrap_or(w.region.vmemmap_start);
    match w.agents[2].run(Command::Read { addr: head }) {
        Err(Trouble::KernelFault { kind: fault::VM_FAULT, mrs }) if mrs[fault::VM_FAULT_ADDR] == head => Ok(()),
        other => fail!("C's read of {head:#x} after unregistering: {other:?}"),
    }
}

/// `agent`'s request must fail with `code`.
fn expect_error(agent: &Agent, what: &str, command: Command, code: ErrorCode) -> Verdict {
    match agent.run(command) {
        Ok(Outcome::Reply(Err(ClientError::Server(c)))) if c == code => Ok(()),
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
    in_registers_malformed(b)?;
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
    let populate =
        |start_pfn, nr_pages| Request::VmemmapPopulate { start_pfn, nr_pages, compound_order: 0, huge: false };
    done(a, populate(BAD_INPUT_PFN, 100))?;
    for (what, start, pages) in [
        ("populating another client's vmemmap range", BAD_INPUT_PFN, 100),
        ("sharing a descriptor frame with another client's range", BAD_INPUT_PFN + 100, 20),
    ] {
        expect_error(b, what, req(populate(start, pages)), ErrorCode::NotOwner)?;
    }
    done(a, Request::VmemmapDepopulate { start_pfn: BAD_INPUT_PFN, nr_pages: 100 })?;
    let register = Request::Register { client: b.client_badge(), quota: Quota::bytes(MIB) };
    expect_error(b, "registration without the administrator badge", req(register), ErrorCode::NotAdmin)?;
    match w.server.admin.unregister(200) {
        Err(ClientError::Server(ErrorCode::NoSuchSpace)) => {}
        other => fail!("unknown space id: expected NoSuchSpace, got {other:?}"),
    }
    capabilities_never_stay(w)?;
    let b = &w.agents[1];
    let addr = vmalloc(b, 4 * KIB).context("the final good request")?;
    done(b, Request::Vfree { addr })
}

/// B sends requests in registers that are malformed: a flag that is no
/// bool, a word too many, a number too wide for its field. Each is
/// answered with an error in registers (one word), and nothing is made.
fn in_registers_malformed(b: &Agent) -> Verdict {
    use memserver_protocol::registers::{ReplyOp, RequestOp, REPLY_BASE, REQUEST_BASE};
    let error = REPLY_BASE + ReplyOp::Error as u64;
    let message = |op: RequestOp, words, len| RawMessage {
        to: slot::MEMSERVER,
        label: REQUEST_BASE + op as u64,
        words,
        len,
        caps: [0, 0],
        call: true,
        times: 1,
    };
    for (what, m) in [
        ("a vmalloc in registers with a flag of 2", message(RequestOp::Vmalloc, [4096, 2, 0, 0], 2)),
        ("a vmalloc in registers with a word too many", message(RequestOp::Vmalloc, [4096, 0, 0, 0], 3)),
        ("a percpu allocation in registers 2^32 bytes large", message(RequestOp::PercpuAlloc, [1 << 32, 8, 0, 0], 2)),
    ] {
        match b.run(Command::Message(m)) {
            Ok(Outcome::Answered { label, length: 1 }) if label == error => {}
            other => fail!("B sending {what}: {other:?}"),
        }
    }
    Ok(())
}

/// B sends messages with capabilities the server does not want: a ping,
/// requests whose first or second capability is unwrapped (one to the
/// server's own endpoint arrives as its badge), a fault-labelled message
/// through its fault endpoint. After each, a registration (of C, whose
/// space `unregister` removed) still receives its VSpace capability.
fn capabilities_never_stay(w: &mut World) -> Verdict {
    let [a, b, c] = &mut w.agents;
    let mapped = vmalloc(a, 4 * KIB)?;
    let call = |label, len, caps| {
        // A statistics request: one word.
        let words = [Words::encode(&Request::Stats).and_then(|w| w.as_slice().first().copied()).unwrap_or(0), 0, 0, 0];
        RawMessage { to: slot::MEMSERVER, label, words, len, caps, call: true, times: 1 }
    };
    let (ping, request) = (memserver_protocol::PING_LABEL, memserver_protocol::PROTOCOL_LABEL);
    let messages = [
        ("a ping with a capability", call(ping, 0, [slot::COMMAND, 0])),
        ("a request with an unwrapped, then a real capability", call(request, 1, [slot::MEMSERVER, slot::COMMAND])),
        ("a request with a real, then an unwrapped capability", call(request, 1, [slot::COMMAND, slot::MEMSERVER])),
        (
            "a fault message with a capability",
            RawMessage {
                to: slot::FAULT,
                label: fault::VM_FAULT,
                words: [0x20_1000, mapped, 0, 0],
                len: 4,
                caps: [slot::COMMAND, 0],
                call: false,
                times: 1,
            },
        ),
    ];
    for (what, message) in messages {
        match b.run(Command::Message(message)) {
            Ok(Outcome::Answered { label: 0, .. }) if message.call => {}
            Ok(Outcome::Done) if !message.call => {}
            other => fail!("B sending {what}: {other:?}"),
        }
        let registered = c.register(&w.server.admin, AGENT_QUOTA);
        registered.map_err(|e| crate::verdict::reason(format_args!("registering C after {what}: {e:?}")))?;
        c.unregister(&w.server.admin).context("unregistering C")?;
    }
    done(a, Request::Vfree { addr: mapped })
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
/// it: memory and slots in use count, spares kept for reuse and what the
/// server made for its own records do not.
#[derive(Clone, Copy, Debug)]
struct Resources {
    spaces: u32,
    frames: u64,
    structures: u64,
    /// Untyped bytes no client holds: never retyped, or held by spare
    /// objects or by the server's own.
    untyped_unused: u64,
    /// Slots clients hold: the server's slots but the empty ones, those
    /// of spare objects and those of the server's own (a CNode the server
    /// made adds as many slots as empty ones).
    slots_held: u64,
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
            ("slots held", self.slots_held),
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
            untyped_unused: s.untyped_free + s.spare_bytes + s.own_bytes,
            slots_held: s.slots.saturating_sub(s.free_slots + s.spare_objects + s.own_objects),
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
