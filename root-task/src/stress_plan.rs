//! A client agent's stress run: pseudo-random memory-server requests from
//! a seed (vmalloc and vfree of mixed sizes, vmemmap populate and
//! depopulate, percpu alloc and free), each allocation carrying canary
//! values written right after it is made and checked right before it is
//! freed (a pattern over every vmalloc area and over every CPU's unit of
//! every percpu allocation, a value in each descriptor range). One percpu
//! allocation of two pages per run is kept until the run's holdings are
//! released, its canaries and its mapping checked whenever the run picks
//! it, so that the crowd's allocations stay spread over several chunks
//! without populating and depopulating chunks all the time. The agent runs
//! the loop itself, so many agents can run at once on different CPUs; the
//! root task only gives the plan and reads the summary. A greedy run only
//! allocates, to meet its quota.

use crate::agent_protocol::pattern;
use client_lib::{ClientError, ErrorCode, MemClient};
use serde::{Deserialize, Serialize};

/// What a stress run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StressPlan {
    /// Seed of the pseudo-random sequence (and of the canaries).
    pub seed: u64,
    /// Requests to make.
    pub ops: u32,
    /// First pfn of the agent's own vmemmap window (`RANGES` * `RANGE_STRIDE` pfns).
    pub pfn_base: u64,
    /// Only allocate, never free.
    pub greedy: bool,
    /// After this many requests, report `Outcome::Working` once and go on
    /// (0: never).
    pub announce: u32,
}

/// What a stress run saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StressSummary {
    /// Requests made.
    pub requests: u32,
    /// Requests refused for lack of memory or a server limit.
    pub refused: u32,
    /// Requests refused because the agent's quota was reached.
    pub over_quota: u32,
    /// The first error that no request of the run should get.
    pub unexpected: Option<ClientError>,
    /// Canaries found changed.
    pub corrupt: u32,
    /// A live area others can check: (address, length, pattern seed).
    pub published: Option<(u64, u64, u64)>,
    /// The percpu chunks its allocations were in: bit `c` for chunk `c`
    /// (chunks from 32 on count as 31).
    pub percpu_chunks: u32,
}

/// vmalloc areas an ordinary run keeps at once (a greedy one: `AREAS`).
const ORDINARY_AREAS: usize = 4;
const AREAS: usize = 16;
/// vmemmap ranges a run keeps at once, each in its own part of the window.
pub const RANGES: usize = 2;
/// pfns between the starts of the window's parts.
pub const RANGE_STRIDE: u64 = 4096;
const PERCPU: usize = 4;
/// The percpu slot whose allocation is kept, and its size.
const KEPT: usize = 0;
const KEPT_SIZE: u32 = 8192;
/// Sizes of the other percpu allocations, and the alignments of all.
const PERCPU_SIZES: [u32; 4] = [8, 16, 64, 256];
const PERCPU_ALIGNS: [u32; 3] = [8, 64, 4096];
/// vmalloc sizes: 1, 2 and 4 pages.
const SIZES: [u64; 3] = [4096, 2 * 4096, 4 * 4096];
/// The greedy run's size: 4 pages.
const GREEDY_SIZE: u64 = 4 * 4096;
/// vmemmap ranges as (pfns, compound order): 1, 2 and 4 descriptor frames
/// each their own, or two compound pages of order 8 (8 frames, of which
/// each page's last two map its first tail frame again).
const SHAPES: [(u64, u8); 4] = [(64, 0), (128, 0), (256, 0), (512, 8)];

#[derive(Clone, Copy)]
struct Area {
    addr: u64,
    len: u64,
    seed: u64,
}

#[derive(Clone, Copy)]
struct Range {
    pfn: u64,
    pages: u64,
    value: u64,
}

#[derive(Clone, Copy)]
struct Percpu {
    offset: u32,
    size: u32,
    seed: u64,
}

/// Writes the pattern of `seed` over `len` bytes at `addr`.
///
/// # Safety
/// `[addr, addr + len)` must be mapped writable in this space, 8-aligned,
/// and not in use by anything else in this program.
pub unsafe fn fill(addr: u64, len: u64, seed: u64) {
    for i in 0..len / 8 {
        // SAFETY: the caller guarantees the range is this program's to write.
        unsafe { ((addr + 8 * i) as *mut u64).write_volatile(pattern(seed, 8 * i)) };
    }
}

/// Whether `[addr, addr + len)` holds zeros only.
///
/// # Safety
/// `[addr, addr + len)` must be mapped readable in this space, 8-aligned.
pub unsafe fn zeroed(addr: u64, len: u64) -> bool {
    // SAFETY: the caller guarantees the range is mapped.
    (0..len / 8).all(|i| unsafe { ((addr + 8 * i) as *const u64).read_volatile() } == 0)
}

/// The first offset in `[addr, addr + len)` that does not hold the pattern
/// of `seed`.
///
/// # Safety
/// `[addr, addr + len)` must be mapped readable in this space, 8-aligned.
pub unsafe fn first_mismatch(addr: u64, len: u64, seed: u64) -> Option<u64> {
    // SAFETY: the caller guarantees the range is mapped.
    (0..len / 8)
        .map(|i| 8 * i)
        .find(|&off| unsafe { ((addr + off) as *const u64).read_volatile() } != pattern(seed, off))
}

/// What an agent's stress runs hold between commands.
pub struct Stress {
    rng: u64,
    made: u64,
    areas: [Option<Area>; AREAS],
    ranges: [Option<Range>; RANGES],
    percpu: [Option<Percpu>; PERCPU],
    summary: StressSummary,
}

impl Default for Stress {
    fn default() -> Self {
        Self::new()
    }
}

impl Stress {
    /// Holding nothing.
    pub const fn new() -> Stress {
        Stress {
            rng: 1,
            made: 0,
            areas: [None; AREAS],
            ranges: [None; RANGES],
            percpu: [None; PERCPU],
            summary: StressSummary {
                requests: 0,
                refused: 0,
                over_quota: 0,
                unexpected: None,
                corrupt: 0,
                published: None,
                percpu_chunks: 0,
            },
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        let len = from.len() as u64;
        if len == 0 {
            return None;
        }
        from.get((self.next() % len) as usize).copied()
    }

    /// A fresh canary value or pattern seed.
    fn canary(&mut self, plan: &StressPlan) -> u64 {
        self.made += 1;
        (plan.seed << 24) ^ self.made
    }

    /// Counts a request and its refusal; what it returned if it succeeded.
    fn outcome<T>(&mut self, result: Result<T, ClientError>) -> Option<T> {
        self.summary.requests += 1;
        match result {
            Ok(value) => Some(value),
            Err(ClientError::Server(ErrorCode::QuotaExceeded)) => {
                self.summary.over_quota += 1;
                None
            }
            Err(ClientError::Server(ErrorCode::OutOfMemory | ErrorCode::LimitReached)) => {
                self.summary.refused += 1;
                None
            }
            Err(other) => {
                self.summary.unexpected.get_or_insert(other);
                None
            }
        }
    }

    fn corrupt_if(&mut self, changed: bool) {
        self.summary.corrupt += u32::from(changed);
    }

    /// Makes `plan.ops` requests; `announce` is called once after
    /// `plan.announce` of them.
    pub fn run(&mut self, mem: &MemClient, plan: &StressPlan, mut announce: impl FnMut()) -> StressSummary {
        self.rng = plan.seed | 1;
        self.summary = StressSummary::default();
        for op in 0..plan.ops {
            if plan.announce != 0 && op == plan.announce {
                announce();
            }
            if plan.greedy {
                self.area_step(mem, plan, AREAS, true);
                continue;
            }
            match self.next() % 4 {
                0 | 1 => self.area_step(mem, plan, ORDINARY_AREAS, false),
                2 => self.range_step(mem, plan),
                _ => self.percpu_step(mem, plan),
            }
        }
        self.publish(mem, plan);
        self.summary
    }

    /// Frees everything held, checking canaries first.
    pub fn release(&mut self, mem: &MemClient) -> StressSummary {
        self.summary = StressSummary::default();
        for i in 0..AREAS {
            self.free_area(mem, i);
        }
        for i in 0..RANGES {
            self.free_range(mem, i);
        }
        for i in 0..PERCPU {
            self.free_percpu(mem, i);
        }
        self.summary
    }

    /// Makes sure a live area exists and names the first one.
    fn publish(&mut self, mem: &MemClient, plan: &StressPlan) {
        if self.areas.iter().all(Option::is_none) {
            self.alloc_area(mem, plan, 0, SIZES[0]);
        }
        self.summary.published = self.areas.iter().flatten().next().map(|a| (a.addr, a.len, a.seed));
    }

    fn area_step(&mut self, mem: &MemClient, plan: &StressPlan, slots: usize, greedy: bool) {
        let i = if greedy {
            self.areas.iter().position(Option::is_none).unwrap_or(0)
        } else {
            (self.next() % slots as u64) as usize
        };
        if !greedy && self.areas.get(i).is_some_and(Option::is_some) {
            self.free_area(mem, i);
        } else {
            let size = if greedy { GREEDY_SIZE } else { self.pick(&SIZES).unwrap_or(GREEDY_SIZE) };
            self.alloc_area(mem, plan, i, size);
        }
    }

    fn alloc_area(&mut self, mem: &MemClient, plan: &StressPlan, i: usize, len: u64) {
        let Some(addr) = self.outcome(mem.vmalloc(len, false)) else { return };
        let seed = self.canary(plan);
        // SAFETY: the server just mapped `len` bytes at `addr` in every
        // registered space, for this agent alone.
        unsafe { fill(addr, len, seed) };
        match self.areas.get_mut(i) {
            Some(slot @ None) => *slot = Some(Area { addr, len, seed }),
            // No slot to keep it in (a greedy run above its quota's worth).
            _ => {
                self.outcome(mem.vfree(addr));
            }
        }
    }

    fn free_area(&mut self, mem: &MemClient, i: usize) {
        let Some(area) = self.areas.get_mut(i).and_then(Option::take) else { return };
        // SAFETY: the area is this agent's and still allocated.
        let changed = unsafe { first_mismatch(area.addr, area.len, area.seed) }.is_some();
        self.corrupt_if(changed);
        self.outcome(mem.vfree(area.addr));
    }

    fn range_step(&mut self, mem: &MemClient, plan: &StressPlan) {
        let i = (self.next() % RANGES as u64) as usize;
        if self.ranges.get(i).is_some_and(Option::is_some) {
            return self.free_range(mem, i);
        }
        let (pages, compound_order) = self.pick(&SHAPES).unwrap_or(SHAPES[0]);
        let pfn = plan.pfn_base + i as u64 * RANGE_STRIDE;
        if self.outcome(mem.vmemmap_populate(pfn, pages, compound_order)).is_none() {
            return;
        }
        let value = self.canary(plan);
        // SAFETY: the first descriptor of the range just populated is
        // mapped writable in this space, for this agent alone.
        unsafe { (mem.region().descriptor_address(pfn) as *mut u64).write_volatile(value) };
        if let Some(slot) = self.ranges.get_mut(i) {
            *slot = Some(Range { pfn, pages, value });
        }
    }

    fn free_range(&mut self, mem: &MemClient, i: usize) {
        let Some(range) = self.ranges.get_mut(i).and_then(Option::take) else { return };
        // SAFETY: the range is this agent's and still populated.
        let seen = unsafe { (mem.region().descriptor_address(range.pfn) as *const u64).read_volatile() };
        self.corrupt_if(seen != range.value);
        self.outcome(mem.vmemmap_depopulate(range.pfn, range.pages));
    }

    fn percpu_step(&mut self, mem: &MemClient, plan: &StressPlan) {
        let i = (self.next() % PERCPU as u64) as usize;
        match self.percpu.get(i).copied().flatten() {
            Some(kept) if i == KEPT => return self.check_kept(mem, kept),
            Some(_) => return self.free_percpu(mem, i),
            None => {}
        }
        let size = if i == KEPT { KEPT_SIZE } else { self.pick(&PERCPU_SIZES).unwrap_or(8) };
        let align = self.pick(&PERCPU_ALIGNS).unwrap_or(8);
        let Some(offset) = self.outcome(mem.percpu_alloc(size, align)) else { return };
        let seed = self.canary(plan);
        let layout = mem.region().percpu;
        self.summary.percpu_chunks |= 1 << layout.chunk(offset).min(31);
        for cpu in 0..layout.cpus {
            match layout.address(offset, cpu) {
                Some(addr) => {
                    // SAFETY: the allocation's bytes in every CPU's unit
                    // are this agent's, mapped writable in every space.
                    // A new allocation starts as zeros, whoever used its
                    // bytes before.
                    let zero = unsafe { zeroed(addr, size.into()) };
                    self.corrupt_if(!zero);
                    // SAFETY: as above.
                    unsafe { fill(addr, size.into(), seed ^ u64::from(cpu)) }
                }
                None => self.corrupt_if(true),
            }
        }
        if let Some(slot) = self.percpu.get_mut(i) {
            *slot = Some(Percpu { offset, size, seed });
        }
    }

    /// Checks the canaries of the kept allocation, and asks the server how
    /// it maps one CPU's unit of it: writable.
    fn check_kept(&mut self, mem: &MemClient, kept: Percpu) {
        self.check_percpu(mem, kept);
        let layout = mem.region().percpu;
        let cpu = (self.next() % u64::from(layout.cpus.max(1))) as u16;
        let Some(addr) = layout.address(kept.offset, cpu) else { return self.corrupt_if(true) };
        match self.outcome(mem.translate(addr)) {
            Some(Some(t)) => self.corrupt_if(!t.writable),
            Some(None) => self.corrupt_if(true),
            None => {}
        }
    }

    /// Checks the canaries of `held` in every CPU's unit.
    fn check_percpu(&mut self, mem: &MemClient, held: Percpu) {
        let layout = mem.region().percpu;
        for cpu in 0..layout.cpus {
            let changed = match layout.address(held.offset, cpu) {
                // SAFETY: as when written: the allocation is still this agent's.
                Some(addr) => unsafe { first_mismatch(addr, held.size.into(), held.seed ^ u64::from(cpu)) }.is_some(),
                None => true,
            };
            self.corrupt_if(changed);
        }
    }

    fn free_percpu(&mut self, mem: &MemClient, i: usize) {
        let Some(held) = self.percpu.get_mut(i).and_then(Option::take) else { return };
        self.check_percpu(mem, held);
        self.outcome(mem.percpu_free(held.offset));
    }
}
