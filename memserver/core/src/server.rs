//! The memory server: one object holding the region, the allocators and the
//! client records, with one method per request. Every method validates its
//! input, checks who may do it, and either succeeds or returns a typed error
//! with the state and accounting exactly as before (a purge of lazily freed
//! vmalloc areas, which a request may trigger to make room, excepted).
//! Freed vmalloc areas stay charged to their owner until the purge, so a
//! request refused for what they hold (the caller's own, over its quota;
//! anyone's, for memory or table room) purges them and is tried once more.
//! The seL4 program decodes a request, calls the method with the caller's
//! badge, and encodes the result. Admin-only methods take the [`Admin`]
//! proof that [`MemServer::admin`] gives once the caller's badge is checked.

use crate::accounting::{Census, ClientUsage, Clients, FrameGrant};
use crate::admin::Admin;
use crate::backend::{Backend, Platform, Rights};
use crate::error::{BackendError, Error, FaultError};
use crate::ids::{Badge, CpuId, Pfn, SpaceId};
use crate::layout::{PercpuAddr, RegionAddr, VmallocAddr};
use crate::percpu::{Percpu, PercpuAlloc, PercpuOffset};
use crate::populate::{Access, Leaf, Mark, Prune, Region};
use crate::quota::{Held, Objects};
use crate::vmalloc::{Resized, VmArea, Vmalloc, VmallocFlags};
use crate::vmemmap::{Vmemmap, VmemmapOptions, VmemmapRange};
use memserver_protocol::PercpuLayout;

/// Whether a request refused for what lazily freed areas hold is tried
/// again after purging them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purge {
    /// Purge (the caller's own, or everyone's: see
    /// [`MemServer::purging_if_it_helps`]) and try once more.
    IfItHelps,
    /// Fail at once (a non-blocking request).
    Never,
}

/// Start-up configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The administrator's badge (the root task's).
    pub admin: Badge,
    /// CPUs served by the percpu allocator (1 to `MAX_PERCPU_CPUS`).
    pub cpus: usize,
}

/// The memory server core.
///
/// It is large (hundreds of KiB of fixed tables), so build it where it will
/// live: `new` is `const`, for a `static` on seL4 or a `Box` on the host,
/// then call [`MemServer::start`] once before serving requests.
pub struct MemServer<B: Backend> {
    region: Region<B>,
    vmalloc: Vmalloc,
    vmemmap: Vmemmap,
    percpu: Percpu,
    clients: Clients,
    started: bool,
}

impl<B: Backend> MemServer<B> {
    /// A server over `backend`; no backend operation is made yet.
    pub const fn new(backend: B, config: Config) -> Self {
        Self {
            region: Region::new(backend),
            vmalloc: Vmalloc::new(),
            vmemmap: Vmemmap::new(),
            percpu: Percpu::new(config.cpus),
            clients: Clients::new(config.admin),
            started: false,
        }
    }

    fn ready(&self) -> Result<(), Error> {
        if self.started {
            Ok(())
        } else {
            Err(Error::NotStarted)
        }
    }

    /// Runs `make`, an allocation by `caller`, and charges what it created
    /// against `caller`'s object quota; over quota, `undo` takes back what
    /// `make` created since the mark it is given (and nothing made before).
    /// `held` names what `make` allocated (`None`: nothing new). Refused
    /// for what freed areas hold, it is tried again after a purge unless
    /// `purge` is [`Purge::Never`].
    fn charged<T: Copy>(
        &mut self,
        caller: Badge,
        purge: Purge,
        mut make: impl FnMut(&mut Self) -> Result<T, Error>,
        held: impl Fn(T) -> Option<Held>,
        undo: impl Fn(&mut Self, T, Mark),
    ) -> Result<T, Error> {
        self.ready()?;
        let mut attempt = |s: &mut Self| {
            s.clients.admit(caller)?;
            let (before, mark) = (s.region.op_counts(), s.region.mark());
            let made = make(s)?;
            let Some(held) = held(made) else { return Ok(made) };
            let cost = Objects::one_area(&before, &s.region.op_counts());
            match s.clients.hold(caller, held, cost) {
                Ok(()) => Ok(made),
                Err(e) => {
                    undo(s, made, mark);
                    Err(e)
                }
            }
        };
        match purge {
            Purge::IfItHelps => self.purging_if_it_helps(caller, attempt),
            Purge::Never => attempt(self).or_else(|e| self.reclaiming_if_it_helps(e, &mut attempt)),
        }
    }

    /// Runs `request` of `caller`; if it fails for what lazily freed
    /// vmalloc areas hold, purges them and runs it once more: only the
    /// caller's own when its quota stopped it (its freed areas count
    /// against it until the purge; others' do not), everyone's when memory
    /// ran out.
    fn purging_if_it_helps<T>(
        &mut self,
        caller: Badge,
        mut request: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match request(self) {
            Err(Error::QuotaExceeded) if self.vmalloc.holds_lazy(caller) => {
                self.vmalloc.purge_owner(&mut self.region, &mut self.clients, Some(caller));
                request(self)
            }
            Err(Error::OutOfMemory) if self.vmalloc.lazy_bytes() > 0 => {
                self.purge_lazy();
                self.reclaim_kept();
                request(self)
            }
            other => other.or_else(|e| self.reclaiming_if_it_helps(e, &mut request)),
        }
    }

    /// Runs `request` once more if it failed with `error` for memory that
    /// the structures a purge kept hold, after giving them up; else
    /// answers `error`.
    fn reclaiming_if_it_helps<T>(
        &mut self,
        error: Error,
        request: &mut impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if error == Error::OutOfMemory && self.reclaim_kept() {
            request(self)
        } else {
            Err(error)
        }
    }

    /// Gives up the structures a purge kept, unless memory ran out only
    /// for the server's own records (the heap grows for those); whether
    /// any went.
    fn reclaim_kept(&mut self) -> bool {
        !self.region.backend().heap_short() && self.region.reclaim_kept()
    }

    /// The region: canonical table, registry, backend and counters.
    pub fn region(&self) -> &Region<B> {
        &self.region
    }

    /// The proof that `caller` is the administrator, for the admin-only
    /// methods; `Err(NotAdmin)` for anyone else.
    pub fn admin(&self, caller: Badge) -> Result<Admin, Error> {
        self.clients.admin(caller)
    }

    /// Register `vspace` (admin only); it holds the whole region on return.
    pub fn register_space(&mut self, admin: &Admin, vspace: B::VSpace) -> Result<SpaceId, Error> {
        self.ready()?;
        let caller = self.clients.badge_of(admin);
        self.purging_if_it_helps(caller, |s| s.region.register(vspace))
    }

    /// `size` bytes of zeroed memory in the vmalloc area.
    pub fn vmalloc(&mut self, caller: Badge, size: u64, flags: VmallocFlags) -> Result<VmallocAddr, Error> {
        self.charged(
            caller,
            if flags.no_purge { Purge::Never } else { Purge::IfItHelps },
            |s| s.vmalloc.vmalloc(&mut s.region, &mut s.clients, caller, size, flags),
            |addr| Some(Held::Area(addr.get())),
            Self::revert_area,
        )
    }

    /// Map the caller's `frames` contiguously in the vmalloc area. The
    /// server holds them from here on: they are given back to the backend
    /// ([`Backend::return_frame`]) when the area is purged, or at once if
    /// this fails.
    pub fn vmap(&mut self, caller: Badge, frames: &[B::Frame], rights: Rights) -> Result<VmallocAddr, Error> {
        let mapped = self.charged(
            caller,
            Purge::IfItHelps,
            |s| s.vmalloc.vmap(&mut s.region, &mut s.clients, caller, frames, rights),
            |addr| Some(Held::Area(addr.get())),
            Self::revert_area,
        );
        if mapped.is_err() {
            self.region.return_frames(frames);
        }
        mapped
    }

    /// Gives up frames [`MemServer::borrow_frame`] gave that no request
    /// took.
    pub fn return_frames(&mut self, frames: &[B::Frame]) {
        self.region.return_frames(frames);
    }

    /// Resize the caller's vmalloc area at `addr` to `size` bytes, in place
    /// if the addresses after it are free, else moving it; its contents
    /// are kept (see [`Resized`]).
    pub fn vrealloc(&mut self, caller: Badge, addr: VmallocAddr, size: u64) -> Result<Resized, Error> {
        self.ready()?;
        self.purging_if_it_helps(caller, |s| s.vmalloc.vrealloc(&mut s.region, &mut s.clients, caller, addr, size))
    }

    /// Give the caller's vmalloc or vmap area at `addr` `rights` in every
    /// space at once (see [`Rights`]).
    pub fn protect(&mut self, caller: Badge, addr: VmallocAddr, rights: Rights) -> Result<(), Error> {
        self.ready()?;
        self.vmalloc.protect(&mut self.region, caller, addr, rights)
    }

    fn revert_area(&mut self, addr: VmallocAddr, mark: Mark) {
        self.vmalloc.revert(&mut self.region, &mut self.clients, addr, mark);
    }

    /// Free the caller's vmalloc or vmap area at `addr` (unmapped lazily;
    /// charged to the caller until then).
    pub fn vfree(&mut self, caller: Badge, addr: VmallocAddr) -> Result<(), Error> {
        self.ready()?;
        self.vmalloc.vfree(&mut self.region, &mut self.clients, caller, addr)
    }

    /// Unmap all lazily freed vmalloc areas now, make their addresses
    /// reusable and refund their owners (admin only: the server purges by
    /// itself when the lazy areas stand in a request's way).
    pub fn purge(&mut self, _: &Admin) {
        self.purge_lazy();
    }

    /// Unmap the freed areas of `client` only (the purge a request of
    /// `client` stopped by its quota makes).
    pub fn purge_client(&mut self, _: &Admin, client: Badge) {
        self.vmalloc.purge_owner(&mut self.region, &mut self.clients, Some(client));
    }

    fn purge_lazy(&mut self) {
        self.vmalloc.purge(&mut self.region, &mut self.clients);
    }

    /// Back the descriptors of `pages` pfns from `start` with fresh
    /// frames, shaped by `options` (see [`VmemmapOptions`]).
    pub fn vmemmap_populate(
        &mut self,
        caller: Badge,
        start: Pfn,
        pages: u64,
        options: VmemmapOptions,
    ) -> Result<(), Error> {
        self.ready()?;
        // A range populated whole already is done, even at the area quota.
        if self.vmemmap.populated_whole(caller, start, pages, options)? {
            return Ok(());
        }
        self.populate_range(caller, (start, pages), options, &[])
    }

    /// Back the descriptors of `pages` pfns from `start` (whole descriptor
    /// frames of 64 pfns) with the caller's `frames`, one per descriptor
    /// frame (Linux's memmap_on_memory: hot-added memory that holds its
    /// own descriptors). The server holds the frames from here on: they
    /// are given back when the range is depopulated, or at once if this
    /// fails.
    pub fn vmemmap_populate_from(
        &mut self,
        caller: Badge,
        start: Pfn,
        pages: u64,
        frames: &[B::Frame],
    ) -> Result<(), Error> {
        let populated =
            self.ready().and_then(|()| self.populate_range(caller, (start, pages), VmemmapOptions::default(), frames));
        if populated.is_err() {
            self.region.return_frames(frames);
        }
        populated
    }

    fn populate_range(
        &mut self,
        caller: Badge,
        (start, pages): (Pfn, u64),
        options: VmemmapOptions,
        given: &[B::Frame],
    ) -> Result<(), Error> {
        self.charged(
            caller,
            Purge::IfItHelps,
            |s| {
                let ranges = s.vmemmap.range_count();
                s.vmemmap.populate(&mut s.region, &mut s.clients, caller, (start, pages), options, given)?;
                // A range already populated whole is not a new one.
                Ok(s.vmemmap.range_count() > ranges)
            },
            |new| new.then_some(Held::Range(start.get())),
            // Depopulating the range just populated succeeds; what it
            // prunes is what the populate created, and frames it was given
            // stay the caller's for the retry.
            |s, _, mark| {
                let range = (start, pages);
                let _ = s.vmemmap.depopulate(&mut s.region, &mut s.clients, caller, range, Prune::CreatedSince(mark));
            },
        )
        .map(drop)
    }

    /// Take out the populated range `[start, start + pages)`.
    pub fn vmemmap_depopulate(&mut self, caller: Badge, start: Pfn, pages: u64) -> Result<(), Error> {
        self.ready()?;
        self.vmemmap.depopulate(&mut self.region, &mut self.clients, caller, (start, pages), Prune::All)?;
        self.clients.release(Held::Range(start.get()));
        Ok(())
    }

    /// `size` bytes aligned to `align` in every CPU's unit.
    pub fn percpu_alloc(&mut self, caller: Badge, size: u64, align: u64) -> Result<PercpuOffset, Error> {
        self.charged(
            caller,
            Purge::IfItHelps,
            |s| s.percpu.alloc(&mut s.region, &mut s.clients, caller, size, align),
            |offset| Some(Held::Percpu(offset.get())),
            // Freeing the allocation just made succeeds; nothing empty is
            // kept in the percpu area, so what it prunes is what the
            // allocation created.
            |s, offset, _| {
                let _ = s.percpu.free(&mut s.region, &mut s.clients, caller, offset);
            },
        )
    }

    /// Free the caller's percpu allocation at `offset`.
    pub fn percpu_free(&mut self, caller: Badge, offset: PercpuOffset) -> Result<(), Error> {
        self.ready()?;
        self.percpu.free(&mut self.region, &mut self.clients, caller, offset)?;
        self.clients.release(Held::Percpu(offset.get()));
        Ok(())
    }

    /// The address of `offset` in `cpu`'s unit.
    pub fn percpu_address(&self, offset: PercpuOffset, cpu: CpuId) -> Result<PercpuAddr, Error> {
        self.percpu.address(offset, cpu)
    }

    /// What the canonical table maps at `raw`.
    pub fn translate(&self, raw: u64) -> Option<&Leaf<B::Frame>> {
        self.region.canonical().translate(RegionAddr::new(raw)?)
    }

    /// A fault at `raw` in space `id`: repaired from the canonical table if
    /// it maps the address (a missed sync, counted), else a real fault.
    /// A fault at a mapped address raced with the installation of the
    /// mapping (by a request, or by the repair of another thread's fault):
    /// there is nothing to repair, and the thread only has to retry.
    pub fn handle_fault(&mut self, id: SpaceId, raw: u64, access: Access) -> Result<(), FaultError> {
        match self.region.handle_fault(id, raw, access) {
            Err(FaultError::RepairFailed(BackendError::Occupied)) => Ok(()),
            other => other,
        }
    }

    /// Set `client`'s quota in bytes (admin only).
    pub fn set_quota(&mut self, _: &Admin, client: Badge, bytes: u64) -> Result<(), Error> {
        self.clients.set_quota(client, bytes)
    }

    /// Set `client`'s object quota (admin only).
    pub fn set_object_quota(&mut self, _: &Admin, client: Badge, limit: Objects) -> Result<(), Error> {
        self.clients.set_object_quota(client, limit)
    }

    /// Set the memory whose frames `client` may vmap (admin only).
    pub fn grant_frames(&mut self, _: &Admin, client: Badge, frames: FrameGrant) -> Result<(), Error> {
        self.clients.grant_frames(client, frames)
    }

    /// Give `client` the default quotas (and no frame grant) again (admin
    /// only).
    pub fn reset_quotas(&mut self, _: &Admin, client: Badge) {
        self.clients.reset_quotas(client);
    }

    /// `client`'s usage and quota.
    pub fn usage(&self, client: Badge) -> ClientUsage {
        self.clients.usage(client)
    }

    /// Serve `cpus` CPUs (a percpu unit each) instead of the configured
    /// count. Before [`MemServer::start`] only: after it `InvalidArgument`,
    /// and nothing changes.
    pub fn serve_cpus(&mut self, cpus: usize) -> Result<(), Error> {
        if self.started {
            return Err(Error::InvalidArgument);
        }
        self.percpu = Percpu::new(cpus);
        Ok(())
    }

    /// The object limits of a client registered without counts: a share
    /// of the server's memory (see [`crate::limits::DEFAULT_SHARE`]).
    pub fn default_objects(&self) -> Objects {
        self.clients.share()
    }

    /// Clients with a usage or quota record.
    pub fn clients(&self) -> &[ClientUsage] {
        self.clients.records()
    }

    /// vmalloc and vmap areas, in address order.
    pub fn vmalloc_areas(&self) -> impl Iterator<Item = VmArea> + '_ {
        self.vmalloc.areas()
    }

    /// Free vmalloc ranges `(start, length)`, in address order.
    pub fn vmalloc_free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.vmalloc.free_ranges()
    }

    /// Populated vmemmap ranges, in pfn order.
    pub fn vmemmap_ranges(&self) -> impl Iterator<Item = VmemmapRange> + '_ {
        self.vmemmap.ranges()
    }

    /// Live percpu allocations, in offset order.
    pub fn percpu_allocations(&self) -> impl Iterator<Item = PercpuAlloc> + '_ {
        self.percpu.allocations()
    }

    /// CPUs served by the percpu allocator.
    pub fn cpus(&self) -> usize {
        self.percpu.cpus()
    }

    /// The percpu layout clients compute addresses with, and the server
    /// maps by.
    pub fn percpu_layout(&self) -> PercpuLayout {
        self.percpu.layout()
    }

    /// A snapshot of the accounting.
    pub fn census(&self) -> Census {
        Census {
            frames: self.region.frames(),
            canonical_structures: self.region.canonical().structure_count(),
            canonical_leaves: self.region.canonical().leaf_count(),
            spaces: self.region.space_count(),
            space_structures: self.region.space_structures(),
            kept_structures: self.region.kept_structures(),
            ops: self.region.op_counts(),
            missed_syncs: self.region.missed_syncs(),
            vmalloc_areas: self.vmalloc.area_count(),
            vmalloc_lazy_bytes: self.vmalloc.lazy_bytes(),
            vmemmap_ranges: self.vmemmap.range_count(),
            percpu_chunks: self.percpu.chunk_count(),
            percpu_allocs: self.percpu.allocation_count(),
            clients: self.clients.records().len(),
        }
    }
}

impl<B: Platform> MemServer<B> {
    /// Start the backend from `backend`, check the configuration, free the
    /// vmalloc area and populate the first percpu chunk. Until this
    /// succeeds every request fails with [`Error::NotStarted`]; after, it
    /// does nothing.
    pub fn start(&mut self, backend: B::Start<'_>) -> Result<(), Error> {
        if !self.started {
            self.region.start_backend(backend)?;
            self.clients.share_memory(self.region.backend().untyped_free());
            self.percpu.start(&mut self.region)?;
            self.vmalloc.start();
            self.started = true;
        }
        Ok(())
    }

    /// Unregister space `id` (admin only), removing all the server created
    /// in it, and release its handle.
    pub fn unregister_space(&mut self, _: &Admin, id: SpaceId) -> Result<(), Error> {
        self.ready()?;
        self.region.unregister(id)
    }

    /// A frame a client supplied, for [`MemServer::vmap`] (see
    /// [`Platform::borrow_frame`]).
    pub fn borrow_frame(
        &mut self,
        cnode: B::VSpace,
        index: u64,
        depth: u8,
        rights: Rights,
    ) -> Result<(B::Frame, u64), Error> {
        self.region.borrow_frame(cnode, index, depth, rights)
    }

    /// The physical address of the frame mapped by `leaf`.
    pub fn frame_address(&mut self, leaf: &Leaf<B::Frame>) -> u64 {
        self.region.frame_address(leaf.frame)
    }

    /// Makes the `nth` backend invocation of kind `point` from now fail
    /// (admin only; 0 disarms).
    pub fn inject_failure(
        &mut self,
        _: &Admin,
        point: memserver_protocol::FailurePoint,
        nth: u32,
    ) -> Result<(), memserver_protocol::ErrorCode> {
        self.region.inject_failure(point, nth)
    }

    /// An empty slot for the next capability that arrives with a message.
    pub fn take_receive_slot(&mut self) -> Option<B::VSpace> {
        self.region.take_receive_slot()
    }

    /// Deletes the capability in `slot` that the server did not keep.
    pub fn empty_receive_slot(&mut self, slot: B::VSpace) {
        self.region.empty_receive_slot(slot);
    }

    /// Adds at least `bytes` to the server's own heap (see
    /// [`Platform::grow_heap`]); if the memory for it ran out, once more
    /// after the structures a purge kept were given up.
    pub fn grow_heap(&mut self, bytes: u64) -> Result<(), Error> {
        match self.region.grow_heap(bytes) {
            Err(BackendError::OutOfMemory) if self.region.reclaim_kept() => Ok(self.region.grow_heap(bytes)?),
            grown => Ok(grown?),
        }
    }
}

#[cfg(feature = "sim")]
impl<B: crate::host_backend::HostBackend> MemServer<B> {
    /// The backend, for a host test's rig (see [`Region::rig_backend`]).
    pub fn rig_backend(&mut self) -> &mut B {
        self.region.rig_backend()
    }
}

#[cfg(feature = "sim")]
impl MemServer<crate::sim::Sim> {
    /// The simulator's test hooks (see [`Region::sim_hooks`]).
    pub fn sim_hooks(&mut self) -> crate::sim::SimHooks<'_> {
        self.region.sim_hooks()
    }
}
