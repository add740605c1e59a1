//! Scenario `scale`, booted alone (`systems/scale.toml`): the memory server
//! at the sizes in `root_task::scale_targets`. The root task registers
//! mirrors of the visitor's VSpace as one client's spaces until
//! [`SPACES`] spaces are registered; a canary in an area of every kind
//! (vmalloc of 4 KiB and of 2 MiB pages, vmemmap, percpu in every CPU's
//! unit) is written before the mirrors register, and one in a vmalloc
//! area after; then the visitor's one thread, moved through every mirror
//! with TCB SetSpace, reads every canary there. With two mirrors left
//! (and the agents' spaces unregistered meanwhile, then registered again),
//! [`AREAS`] vmalloc areas and [`PERCPU_ALLOCS`] percpu allocations are
//! held at once, each written through the first and read back through
//! the second. Once all is freed and every mirror but the first is
//! unregistered, every resource of the server is as it was before, when
//! the first alone held the region's upper paging structures (a first set
//! of canary areas made them, and a purge keeps them once the areas are
//! freed); then the first goes too. It prints one line of figures,
//! `scale key=value ...`: the counts reached, the untyped memory a space
//! takes (the root task's for the VSpace, the server's for its copy of the
//! region), the server's untyped memory the held areas and allocations
//! took, and the milliseconds of each phase (by the time stamp counter,
//! which under QEMU's software CPU follows the host's clock).

mod ledger;
mod visitor;

use super::{unchanged, Resources, World, AGENT_QUOTA};
use crate::fail;
use crate::verdict::{reason, Context, Reason, Verdict};
use client_lib::{ClientError, MemClient};
use ledger::Ledger;
use memserver_protocol::bootstrap::badge;
use memserver_protocol::{Quota, RegionInfo, Registration, Stats};
use root_task::agent_protocol::{pattern, MAX_AGENTS};
use root_task::scale_targets::{AREAS, PERCPU_ALLOCS, SPACES, VMEMMAP_BASE_GIB, VMEMMAP_COMPOUND_GIB};
use sel4_launch::memserver_process::UntypedGrant;
use sel4_layer::abi::{size, CPtr};
use sel4_layer::println;
use sel4_layer::time_stamp::cycles;
use visitor::Visitor;

/// What the memory server is given in the scale system: 3 GiB, for the
/// frames of the held areas (4 KiB each, about 0.4 GiB for 100,000 of
/// them), the descriptor frames (1 GiB for 64 GiB on 2 MiB frames), the
/// CNodes of the frames' copies (a slot for every mapping in every space
/// but one: 4 million for the tails of 1 TiB of compound pages in a
/// space), its heap and each space's copy of the region. Every GiB given
/// costs about half a minute of zeroing at the root task's first Retype of
/// it.
pub const SERVER_MEMORY: UntypedGrant = UntypedGrant { count: 3, bits: 30 };

/// The badge of the scenario's client, whose spaces the mirrors are (the
/// root task makes its requests): beyond every agent's.
const CLIENT: u64 = badge::CLIENT_BASE + MAX_AGENTS;
/// Its quota: more than the scenario holds.
const QUOTA: Quota = Quota::bytes_only(1 << 40);
/// The root task keeps the scenario's lists from 1 TiB (top-level entry 2,
/// which nothing else of its VSpace uses), each in its own GiB.
const LEDGERS: u64 = 1 << 40;
const GIB: u64 = 1 << 30;
const PAGE: u64 = 1 << size::PAGE_BITS;
const LARGE_PAGE: u64 = 1 << size::LARGE_PAGE_BITS;
/// The canaries' seed.
const SEED: u64 = 0x5ca1e;
/// The canary vmemmap range: its first pfn and its pfns (one descriptor
/// frame's worth).
const CANARY_PFN: u64 = 1 << 24;
const CANARY_PFNS: u64 = 64;
/// Size and alignment of each percpu allocation.
/// Descriptors on 2 MiB frames: those of [`VMEMMAP_BASE_GIB`] of memory
/// (512 frames for 64 GiB), from this pfn on.
const HUGE_PFN: u64 = 1 << 26;
const HUGE_PFNS: u64 = VMEMMAP_BASE_GIB * GIB / PAGE;
/// Descriptors of [`VMEMMAP_COMPOUND_GIB`] of order-18 (1 GiB) compound
/// pages, their tail frames shared, from this pfn on, populated in requests
/// of 64 such pages (1 GiB of descriptors, the most one request maps).
const COMPOUND_PFN: u64 = 1 << 27;
const COMPOUND_ORDER: u8 = 18;
const COMPOUND_PAGES: u64 = VMEMMAP_COMPOUND_GIB;
const COMPOUND_PAGES_PER_REQUEST: u64 = 64;
const PERCPU_SIZE: u32 = 16;
const PERCPU_ALIGN: u32 = 8;

/// The two words a canary at `addr` holds.
fn canary(addr: u64) -> [u64; 2] {
    [pattern(SEED, addr), pattern(SEED, addr + 8)]
}

/// The areas of the canaries every mirror is checked for.
struct Canaries {
    small: u64,
    large: u64,
    descriptors: u64,
    percpu: u32,
    /// Made once every mirror was registered.
    late: Option<u64>,
}

impl Canaries {
    /// One area of each kind, made by `mem`.
    fn make(mem: &MemClient, region: &RegionInfo) -> Result<Canaries, Reason> {
        let small = mem.vmalloc(PAGE, false).context("the 4 KiB canary area")?;
        let large = mem.vmalloc(LARGE_PAGE, true).context("the 2 MiB canary area")?;
        mem.vmemmap_populate(CANARY_PFN, CANARY_PFNS, 0).context("the canary descriptors")?;
        let percpu = mem.percpu_alloc(PERCPU_SIZE, PERCPU_ALIGN).context("the canary percpu allocation")?;
        Ok(Canaries { small, large, descriptors: region.descriptor_address(CANARY_PFN), percpu, late: None })
    }

    /// Where the canaries are: one in each area, in every CPU's unit of
    /// the percpu allocation.
    fn addresses<'a>(&'a self, region: &'a RegionInfo) -> impl Iterator<Item = u64> + 'a {
        let fixed = [self.small, self.large, self.descriptors];
        fixed.into_iter().chain(percpu_units(region, self.percpu)).chain(self.late)
    }

    /// Frees every area.
    fn free(&self, mem: &MemClient) -> Result<(), ClientError> {
        for addr in [self.small, self.large].into_iter().chain(self.late) {
            mem.vfree(addr)?;
        }
        mem.vmemmap_depopulate(CANARY_PFN, CANARY_PFNS)?;
        mem.percpu_free(self.percpu)
    }
}

/// Every CPU's unit of the percpu allocation at `offset`.
fn percpu_units(region: &RegionInfo, offset: u32) -> impl Iterator<Item = u64> + '_ {
    (0..region.percpu.cpus).filter_map(move |cpu| region.percpu_address(offset, cpu))
}

/// The scenario's state.
struct Scale<'w, 'a> {
    w: &'w mut World<'a>,
    visitor: Visitor,
    /// The registered mirrors: PML4 and registration.
    mirrors: Ledger<(CPtr, Registration)>,
    /// Bytes of untyped memory the root task retyped for the mirrors.
    mirror_bytes: u64,
}

impl Scale<'_, '_> {
    /// Makes one more mirror and registers it as the client's space.
    fn add_mirror(&mut self) -> Result<(), ClientError> {
        let before = self.w.alloc.untyped_used();
        let vspace = self.visitor.mirror(self.w.alloc);
        self.mirror_bytes += self.w.alloc.untyped_used() - before;
        let registration = self.w.server.admin.register_with_quota(CLIENT, QUOTA, vspace.pml4)?;
        self.mirrors.push(self.w.alloc, self.w.root, (vspace.pml4, registration));
        Ok(())
    }

    /// Unregisters the mirrors from the `keep`-th on.
    fn unregister_from(&mut self, keep: u64) -> Verdict {
        for (_, registration) in self.mirrors.iter().skip(keep as usize) {
            self.w.server.admin.unregister(registration.space).context("unregistering a mirror")?;
        }
        self.mirrors.truncate(keep);
        Ok(())
    }

    /// Moves the visitor into mirror `i`.
    fn enter(&self, i: usize) -> Verdict {
        let Some((pml4, _)) = self.mirrors.iter().nth(i) else { fail!("there is no mirror {i}") };
        self.visitor.enter(pml4).context("moving the visitor")
    }

    /// Has the visitor write the canary of `addr`.
    fn write(&self, addr: u64) -> Verdict {
        self.visitor.write(addr, canary(addr)).context("the visitor's write")
    }

    /// The visitor must read the canary of `addr` in mirror `space`, where
    /// it is.
    fn check(&self, addr: u64, space: usize) -> Verdict {
        match self.visitor.read(addr) {
            Ok(words) if words == canary(addr) => Ok(()),
            other => fail!("mirror {space}: the visitor read {other:?} at {addr:#x}, {:x?} was written", canary(addr)),
        }
    }
}

pub fn run(w: &mut World) -> Verdict {
    let started = cycles();
    let visitor = Visitor::load(w.alloc, w.root).context("loading the visitor")?;
    let endpoint = w.server.endpoint_with_badge(w.alloc, CLIENT);
    let mut s = Scale { w, visitor, mirrors: Ledger::new(LEDGERS), mirror_bytes: 0 };
    s.add_mirror().context("registering the first mirror")?;
    let mem = MemClient::connect(endpoint).context("connecting the scenario's client")?;
    let region = s.w.region;
    // The region's upper paging structures, which a purge keeps in every
    // space, come into being before the baseline.
    Canaries::make(&mem, &region)?.free(&mem).context("freeing the first canaries")?;
    s.w.server.admin.purge().context("purge")?;
    let baseline = Resources::of(&s.w.stats()?);
    let mut canaries = Canaries::make(&mem, &region)?;
    s.enter(0)?;
    for addr in canaries.addresses(&region) {
        s.write(addr)?;
    }
    let (first, before) = (s.mirrors.len(), s.w.stats()?);
    let mirror_bytes = s.mirror_bytes;
    let mut spaces = before.spaces;
    while spaces < SPACES {
        if let Err(e) = s.add_mirror() {
            fail!("registered {spaces} spaces of {SPACES}: the next answered {e:?}");
        }
        spaces += 1;
    }
    let after = s.w.stats()?;
    let added = (s.mirrors.len() - first).max(1);
    let root_per_space = (s.mirror_bytes - mirror_bytes) / added;
    let (server_bytes, server_structures) = server_use(&before, &after);
    let late = mem.vmalloc(PAGE, false).context("the late canary area")?;
    canaries.late = Some(late);
    s.write(late)?;
    for (i, (pml4, _)) in s.mirrors.iter().enumerate() {
        s.visitor.enter(pml4).context("moving the visitor")?;
        for addr in canaries.addresses(&region) {
            s.check(addr, i)?;
        }
    }
    let toured = cycles();
    s.unregister_from(2)?;
    canaries.free(&mem).context("freeing the canaries")?;
    s.w.server.admin.purge().context("purge")?;
    // The held areas live in the two mirrors alone: every further space
    // costs a copy of every frame (a slot and its record).
    let w = &mut *s.w;
    for agent in &mut w.agents {
        agent.unregister(&w.server.admin).context("unregistering an agent for the hold")?;
    }
    let before_hold = s.w.stats()?;
    let (areas, offsets) = hold(&mut s, &mem)?;
    let (held_bytes, _) = server_use(&before_hold, &s.w.stats()?);
    let held = cycles();
    for addr in areas.iter() {
        mem.vfree(addr).context("vfree")?;
    }
    for offset in offsets.iter() {
        mem.percpu_free(offset).context("percpu free")?;
    }
    s.w.server.admin.purge().context("purge")?;
    let freed = cycles();
    let (base_gib, compound_gib, slots) = descriptors(&s, &mem, &region)?;
    let described = cycles();
    let w = &mut *s.w;
    for agent in &mut w.agents {
        agent.register(&w.server.admin, AGENT_QUOTA).context("registering an agent again")?;
    }
    s.unregister_from(1)?;
    unchanged(s.w, &baseline, format_args!("after the scale run"))?;
    s.unregister_from(0)?;
    s.visitor.stop().context("stopping the visitor")?;
    let ended = cycles();
    let ms = |ticks: u64| ticks / (s.w.tsc_mhz * 1000).max(1);
    println!(
        "scale spaces={spaces} areas={} percpu={} root-bytes-per-space={root_per_space} \
         server-bytes-per-space={} server-structures-per-space={} server-bytes-held={held_bytes} \
         vmemmap-base-gib={base_gib} vmemmap-compound-gib={compound_gib} server-slots-described={slots} \
         ms-spaces={} ms-held={} ms-freed={} ms-vmemmap={} ms-end={}",
        areas.len(),
        offsets.len(),
        server_bytes / added,
        server_structures / added,
        ms(toured - started),
        ms(held - toured),
        ms(freed - held),
        ms(described - freed),
        ms(ended - described),
    );
    Ok(())
}

/// Untyped bytes and paging structures the server took between `before`
/// and `after`.
fn server_use(before: &Stats, after: &Stats) -> (u64, u64) {
    let unused = |s: &Stats| s.untyped_free + s.spare_bytes;
    (unused(before).saturating_sub(unused(after)), after.structures.saturating_sub(before.structures))
}

/// Holds [`AREAS`] vmalloc areas and [`PERCPU_ALLOCS`] percpu allocations,
/// each written through the first mirror and read back through the
/// second; returns them.
fn hold(s: &mut Scale, mem: &MemClient) -> Result<(Ledger<u64>, Ledger<u32>), Reason> {
    let region = s.w.region;
    let (mut areas, mut offsets) = (Ledger::new(LEDGERS + GIB), Ledger::new(LEDGERS + 2 * GIB));
    s.enter(0)?;
    for i in 0..AREAS {
        let addr = mem.vmalloc(PAGE, false).map_err(|e| reason(format_args!("area {i} of {AREAS}: {e:?}")))?;
        s.write(addr)?;
        areas.push(s.w.alloc, s.w.root, addr);
    }
    for i in 0..PERCPU_ALLOCS {
        let offset = mem
            .percpu_alloc(PERCPU_SIZE, PERCPU_ALIGN)
            .map_err(|e| reason(format_args!("percpu allocation {i} of {PERCPU_ALLOCS}: {e:?}")))?;
        for addr in percpu_units(&region, offset) {
            s.write(addr)?;
        }
        offsets.push(s.w.alloc, s.w.root, offset);
    }
    s.enter(1)?;
    for addr in areas.iter() {
        s.check(addr, 1)?;
    }
    for offset in offsets.iter() {
        for addr in percpu_units(&region, offset) {
            s.check(addr, 1)?;
        }
    }
    Ok((areas, offsets))
}

/// vmemmap at size through the two mirrors: the descriptors of
/// [`VMEMMAP_BASE_GIB`] on 2 MiB frames and of [`VMEMMAP_COMPOUND_GIB`] of
/// order-18 compound pages are populated, a canary written in the first
/// and last huge-frame descriptors and in each compound page's head (and
/// its last tail descriptor read) through the first mirror is read back
/// through the second, and both ranges go again. Returns the GiB of memory
/// described on each path, and the server's slots with all populated.
fn descriptors(s: &Scale, mem: &MemClient, region: &RegionInfo) -> Result<(u64, u64, u64), Reason> {
    mem.vmemmap_populate_huge(HUGE_PFN, HUGE_PFNS).context("descriptors on 2 MiB frames")?;
    let per_request = COMPOUND_PAGES_PER_REQUEST << COMPOUND_ORDER;
    let requests = |pfns: u64| (0..pfns.div_ceil(per_request)).map(move |r| COMPOUND_PFN + r * per_request);
    let compound_pfns = COMPOUND_PAGES << COMPOUND_ORDER;
    for (r, first) in requests(compound_pfns).enumerate() {
        let pfns = per_request.min(COMPOUND_PFN + compound_pfns - first);
        mem.vmemmap_populate(first, pfns, COMPOUND_ORDER)
            .map_err(|e| reason(format_args!("compound-page descriptors, request {r}: {e:?}")))?;
    }
    let slots = s.w.stats()?.slots;
    let heads = (0..COMPOUND_PAGES).map(|k| COMPOUND_PFN + (k << COMPOUND_ORDER));
    let ends = [HUGE_PFN, HUGE_PFN + HUGE_PFNS - 1];
    s.enter(0)?;
    for pfn in ends.into_iter().chain(heads.clone()) {
        s.write(region.descriptor_address(pfn))?;
    }
    s.enter(1)?;
    for pfn in ends.into_iter().chain(heads) {
        s.check(region.descriptor_address(pfn), 1)?;
    }
    mem.vmemmap_depopulate(HUGE_PFN, HUGE_PFNS).context("depopulating the huge-frame descriptors")?;
    for (r, first) in requests(compound_pfns).enumerate() {
        let pfns = per_request.min(COMPOUND_PFN + compound_pfns - first);
        mem.vmemmap_depopulate(first, pfns)
            .map_err(|e| reason(format_args!("depopulating the compound-page descriptors, request {r}: {e:?}")))?;
    }
    Ok((HUGE_PFNS * PAGE / GIB, (compound_pfns * PAGE) / GIB, slots))
}
