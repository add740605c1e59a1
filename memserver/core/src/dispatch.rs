//! Where the wire protocol meets the core: a decoded request becomes a call
//! of the server's method with the caller's badge, and its result becomes a
//! reply with a stable error code. Messages on fault badges are turned
//! into repairs or queued reports here too: only those shaped as the
//! kernel's fault messages and carrying the badge of a space's current
//! registration (`memserver_protocol::bootstrap` has the contract). The seL4
//! receive loop and the host fuzz targets call exactly this code.
//!
//! Registration sets the client's quotas; unregistering a client's last
//! space reclaims everything it held (its vmalloc areas, percpu
//! allocations and vmemmap ranges) and gives it the default quotas again,
//! so a client that died leaves nothing behind.

use crate::accounting::FrameGrant;
use crate::admin::Admin;
pub use crate::backend::Platform;
use crate::error::{BackendError, Error, FaultError};
use crate::fault_message::KernelFault;
use crate::fault_reports::FaultReports;
use crate::ids::{Badge, Pfn, SpaceId};
use crate::layout::{Area, PageSize, VmallocAddr, DESCRIPTOR_SIZE, PAGE_SIZE};
use crate::limits::STRUCTURE_BYTES;
use crate::owners::Owners;
use crate::percpu::PercpuOffset;
use crate::populate::Access;
use crate::quota::Objects;
use crate::server::{Config, MemServer};
use crate::vmalloc::VmallocFlags;
use crate::vmemmap::VmemmapOptions;
use crate::Rights;
use alloc::vec::Vec;
use memserver_protocol::batch::{batchable, Batch, BatchReply};
use memserver_protocol::bootstrap::{badge, FaultBadge};
use memserver_protocol::words::{BatchWords, DecodeError, Words};
use memserver_protocol::{
    ErrorCode, FaultKind, FaultReport, Page, Protection, Quota, Realloc, RegionInfo, Registration, Reply, Request,
    Stats, Translation, PROTOCOL_VERSION, REQUESTS,
};

/// What became of the capability that came with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapUse {
    /// The server keeps it (a registered space's VSpace).
    Kept,
    /// It was not wanted: the caller of `handle` must delete it.
    Unused,
}

/// What became of a message on a fault badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Repaired, or nothing was missing: an empty reply restarts the thread.
    Resume,
    /// A real fault, queued for the administrator: no reply (the thread
    /// waits for the administrator).
    Reported,
    /// Not a fault of a registered space (another shape, or a badge that
    /// is not the current registration's): no reply, nothing changes.
    Dropped,
    /// The repair ran short of memory ([`Dispatcher::repair_fault`] only):
    /// nothing changed and nothing was queued; the fault is to be handled
    /// again, once the server's heap grew, or by [`Dispatcher::fault`].
    ShortOfMemory,
}

/// The memory server behind the protocol.
pub struct Dispatcher<B: Platform> {
    server: MemServer<B>,
    /// The client each registered space belongs to, and each space id's
    /// registration generation (its fault badge's).
    owners: Owners,
    /// Real faults waiting for the administrator.
    reports: FaultReports,
    /// Whether the administrator must be told that reports wait.
    notice: bool,
}

/// Page descriptors in one 4 KiB frame.
const DESCRIPTORS_PER_FRAME: u64 = PAGE_SIZE / DESCRIPTOR_SIZE;

/// How many of a client's holdings [`Dispatcher::reclaim`] lists at a time.
const RECLAIM_BATCH: usize = 256;

/// Up to [`RECLAIM_BATCH`] of `keys` (increasing) after `after`.
fn batch_after<K: Copy + PartialOrd>(
    keys: impl Iterator<Item = K>,
    after: Option<K>,
) -> heapless::Vec<K, RECLAIM_BATCH> {
    let mut batch = heapless::Vec::new();
    for key in keys.filter(|k| after.is_none_or(|a| *k > a)) {
        if batch.push(key).is_err() {
            break;
        }
    }
    batch
}

/// Calls `free` on every key `batch` lists, a batch at a time, each batch
/// listed after the last key of the one before: the list takes no memory
/// however much a client holds.
fn in_batches<B: Platform, K: Copy>(
    server: &mut MemServer<B>,
    batch: impl Fn(&MemServer<B>, Option<K>) -> heapless::Vec<K, RECLAIM_BATCH>,
    mut free: impl FnMut(&mut MemServer<B>, K),
) {
    let mut after = None;
    loop {
        let keys = batch(server, after);
        let Some(&last) = keys.last() else { break };
        for key in keys {
            free(server, key);
        }
        after = Some(last);
    }
}

/// The rights of an area with `protection`.
const fn rights_of(protection: Protection) -> Rights {
    match protection {
        Protection::ReadOnly => Rights::ReadOnly,
        Protection::ReadWrite => Rights::ReadWrite,
    }
}

fn code(e: Error) -> ErrorCode {
    match e {
        Error::OutOfMemory | Error::NoAddressSpace => ErrorCode::OutOfMemory,
        Error::Backend(_) | Error::NotStarted => ErrorCode::Kernel,
        Error::QuotaExceeded => ErrorCode::QuotaExceeded,
        Error::InvalidArgument => ErrorCode::InvalidArgument,
        Error::Overlap => ErrorCode::Overlap,
        Error::NotFound => ErrorCode::NotFound,
        Error::NotOwner => ErrorCode::NotOwner,
        Error::NotAdmin => ErrorCode::NotAdmin,
        Error::NoSuchSpace => ErrorCode::NoSuchSpace,
        Error::AlreadyRegistered => ErrorCode::AlreadyRegistered,
        Error::LimitReached(_) => ErrorCode::LimitReached,
        Error::NotAFrame => ErrorCode::NotAFrame,
        Error::ForeignFrame => ErrorCode::ForeignFrame,
    }
}

impl<B: Platform> Dispatcher<B> {
    /// A dispatcher over a new server; `const` so it can live in a static.
    pub const fn new(backend: B, config: Config) -> Self {
        Dispatcher {
            server: MemServer::new(backend, config),
            owners: Owners::new(),
            reports: FaultReports::new(),
            notice: false,
        }
    }

    /// Serve `cpus` CPUs (see [`MemServer::serve_cpus`]).
    pub fn serve_cpus(&mut self, cpus: usize) -> Result<(), Error> {
        self.server.serve_cpus(cpus)
    }

    /// Starts the backend from `backend`, then the server (see
    /// [`MemServer::start`]).
    pub fn start(&mut self, backend: B::Start<'_>) -> Result<(), Error> {
        self.server.start(backend)
    }

    /// The server, for statistics and checks.
    pub fn server(&self) -> &MemServer<B> {
        &self.server
    }

    /// An empty slot for the next capability that arrives with a message
    /// (`None`: none is left, capabilities are not received).
    pub fn take_receive_slot(&mut self) -> Option<B::VSpace> {
        self.server.take_receive_slot()
    }

    /// Deletes the capability that arrived in `slot` and was not kept
    /// ([`CapUse::Unused`]), so that the slot can receive again.
    pub fn empty_receive_slot(&mut self, slot: B::VSpace) {
        self.server.empty_receive_slot(slot);
    }

    /// Adds at least `bytes` to the server's own heap, after a request
    /// failed for want of it (see [`Platform::grow_heap`]).
    pub fn grow_heap(&mut self, bytes: u64) -> Result<(), Error> {
        self.server.grow_heap(bytes)
    }

    /// Handles one message from `caller`. `cap` is the capability that
    /// came with it, if any.
    pub fn handle(&mut self, caller: Badge, words: &Words, cap: Option<B::VSpace>) -> (Reply, CapUse) {
        let request = match words.decode::<Request>(REQUESTS) {
            Ok(request) => request,
            Err(DecodeError::Malformed) => return (Reply::Error(ErrorCode::Malformed), CapUse::Unused),
            Err(DecodeError::UnknownOperation) => return (Reply::Error(ErrorCode::UnknownOperation), CapUse::Unused),
        };
        let mut cap_use = CapUse::Unused;
        let reply = self.request(caller, request, cap, &mut cap_use).unwrap_or_else(Reply::Error);

        (reply, cap_use)
    }

    /// Handles a batch message from `caller`: its operations in order,
    /// each through `make` (which calls [`Dispatcher::batch_op`], once or,
    /// on seL4, again after the heap grew), each with its own reply. A
    /// batch that cannot be decoded, or from a caller with no registered
    /// space, is refused whole, with nothing done.
    pub fn handle_batch(
        &mut self,
        caller: Badge,
        words: &BatchWords,
        mut make: impl FnMut(&mut Self, Request) -> Reply,
    ) -> Result<BatchReply, ErrorCode> {
        let batch = Batch::decode(words)?;
        self.registered(caller)?;
        let mut answer = BatchReply::default();
        for &op in batch.ops() {
            let reply = make(self, op);
            // As many replies as operations: it has room.
            let _ = answer.replies.push(reply);
        }
        Ok(answer)
    }

    /// One operation of a batch from `caller`, made as the request alone
    /// is; `InvalidArgument` for a request that does not batch.
    pub fn batch_op(&mut self, caller: Badge, op: Request) -> Reply {
        if !batchable(&op) {
            return Reply::Error(ErrorCode::InvalidArgument);
        }
        // No batchable request takes a capability.
        self.handle_request(caller, op).unwrap_or_else(Reply::Error)
    }

    /// Handles `request` from `caller`, decoded already and with no
    /// capability (a request in registers, or a batch's operation): its
    /// reply, or the code it was refused with.
    pub fn handle_request(&mut self, caller: Badge, request: Request) -> Result<Reply, ErrorCode> {
        self.request(caller, request, None, &mut CapUse::Unused)
    }

    /// The layout clients learn at first contact.
    pub fn region_info(&self) -> RegionInfo {
        RegionInfo {
            vmalloc_start: Area::Vmalloc.start(),
            vmemmap_start: Area::Vmemmap.start(),
            percpu: self.server.percpu_layout(),
        }
    }

    fn registered(&self, caller: Badge) -> Result<(), ErrorCode> {
        if self.owners.has_space(caller) {
            Ok(())
        } else {
            Err(ErrorCode::NotRegistered)
        }
    }

    fn request(
        &mut self,
        caller: Badge,
        request: Request,
        cap: Option<B::VSpace>,
        cap_use: &mut CapUse,
    ) -> Result<Reply, ErrorCode> {
        // The one check of the administrator's badge.
        let admin = self.server.admin(caller).map_err(code);
        let server = &mut self.server;
        match request {
            Request::Hello { version: PROTOCOL_VERSION } => {
                Ok(Reply::Hello { version: PROTOCOL_VERSION, region: self.region_info() })
            }
            Request::Hello { .. } => Err(ErrorCode::VersionMismatch),
            Request::Stats => Ok(Reply::Stats(self.stats())),
            Request::Translate { addr } => {
                let leaf = server.translate(addr).copied();
                Ok(Reply::Translation(leaf.map(|leaf| Translation {
                    paddr: server.frame_address(&leaf),
                    page: match leaf.size {
                        PageSize::Small => Page::Small,
                        PageSize::Large => Page::Large,
                        PageSize::Huge => Page::Huge,
                    },
                    writable: leaf.rights == Rights::ReadWrite,
                })))
            }
            Request::Register { client, quota } => {
                let admin = admin?;
                // A client badge with the fault bit would make its requests faults.
                if client >= badge::SPACE_FAULT {
                    return Err(ErrorCode::InvalidArgument);
                }
                let vspace = cap.ok_or(ErrorCode::InvalidArgument)?;
                let (space, generation) = self.register(&admin, Badge(client), quota, vspace).map_err(code)?;
                *cap_use = CapUse::Kept;
                let space = space.wire();
                Ok(Reply::Space(Registration { space, fault_badge: FaultBadge::new(space, generation).word() }))
            }
            Request::Unregister { space } => {
                let id = SpaceId::new(space as usize).ok_or(ErrorCode::NoSuchSpace)?;
                let admin = admin?;
                server.unregister_space(&admin, id).map_err(code)?;
                self.reports.forget(id);
                if let Some((client, true)) = self.owners.remove(id) {
                    self.reclaim(&admin, client);
                }
                Ok(Reply::Done)
            }
            Request::InjectFailure { point, nth } => {
                server.inject_failure(&admin?, point, nth)?;
                Ok(Reply::Done)
            }
            Request::Purge => {
                server.purge(&admin?);
                Ok(Reply::Done)
            }
            Request::TakeFault => {
                admin?;
                let report = self.reports.take();
                self.notice |= self.reports.pending();
                Ok(Reply::Fault(report))
            }
            Request::Vmalloc { size, large_pages } => {
                self.registered(caller)?;
                let flags = VmallocFlags { huge: large_pages, gigantic: large_pages, ..VmallocFlags::DEFAULT };
                let addr = self.server.vmalloc(caller, size, flags).map_err(code)?;
                Ok(Reply::Address(addr.get()))
            }
            Request::VmallocWith { size, options } => {
                self.registered(caller)?;
                let flags = VmallocFlags {
                    huge: options.large_pages,
                    gigantic: options.huge_pages,
                    align: options.align,
                    guard_pages: options.guard_pages.into(),
                    no_purge: options.no_purge,
                    zero: options.zero,
                };
                let addr = self.server.vmalloc(caller, size, flags).map_err(code)?;
                Ok(Reply::Address(addr.get()))
            }
            Request::Vrealloc { addr, size } => {
                self.registered(caller)?;
                let addr = VmallocAddr::new(addr).ok_or(ErrorCode::InvalidArgument)?;
                let resized = self.server.vrealloc(caller, addr, size).map_err(code)?;
                Ok(Reply::Realloc(Realloc { addr: resized.addr.get(), moved: resized.moved }))
            }
            Request::Protect { addr, protection } => {
                self.registered(caller)?;
                let addr = VmallocAddr::new(addr).ok_or(ErrorCode::InvalidArgument)?;
                self.server.protect(caller, addr, rights_of(protection)).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::Vfree { addr } => {
                self.registered(caller)?;
                let addr = VmallocAddr::new(addr).ok_or(ErrorCode::InvalidArgument)?;
                self.server.vfree(caller, addr).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::PercpuAlloc { size, align } => {
                self.registered(caller)?;
                let offset = self.server.percpu_alloc(caller, size as u64, align as u64).map_err(code)?;
                Ok(Reply::Offset(offset.get()))
            }
            Request::PercpuFree { offset } => {
                self.registered(caller)?;
                self.server.percpu_free(caller, PercpuOffset::new(offset)).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::VmemmapPopulate { start_pfn, nr_pages, compound_order, huge } => {
                self.registered(caller)?;
                let start = Pfn::new(start_pfn).ok_or(ErrorCode::InvalidArgument)?;
                let options =
                    VmemmapOptions { huge, compound_order: (compound_order > 0).then_some(compound_order as u32) };
                self.server.vmemmap_populate(caller, start, nr_pages, options).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::Vmap { first, pages, depth, protection } => {
                self.registered(caller)?;
                let cnode = cap.ok_or(ErrorCode::InvalidArgument)?;
                let addr = self.vmap(caller, cnode, (first, pages, depth), rights_of(protection)).map_err(code)?;
                Ok(Reply::Address(addr.get()))
            }
            Request::VmemmapPopulateFrom { start_pfn, nr_pages, first, depth } => {
                self.registered(caller)?;
                let cnode = cap.ok_or(ErrorCode::InvalidArgument)?;
                let start = Pfn::new(start_pfn).ok_or(ErrorCode::InvalidArgument)?;
                self.vmemmap_populate_from(caller, cnode, (start, nr_pages), (first, depth)).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::GrantFrames { client, start, bytes } => {
                let admin = admin?;
                let page_aligned = (start | bytes) % PAGE_SIZE == 0 && start.checked_add(bytes).is_some();
                if !page_aligned {
                    return Err(ErrorCode::InvalidArgument);
                }
                server.grant_frames(&admin, Badge(client), FrameGrant { start, bytes }).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::VmemmapDepopulate { start_pfn, nr_pages } => {
                self.registered(caller)?;
                let start = Pfn::new(start_pfn).ok_or(ErrorCode::InvalidArgument)?;
                self.server.vmemmap_depopulate(caller, start, nr_pages).map_err(code)?;
                Ok(Reply::Done)
            }
        }
    }

    /// Maps the `pages` frames in slots `first..` of the CNode that arrived
    /// in `cnode` for `caller`, each checked to be a 4 KiB frame in the
    /// memory granted to it; on error the server holds none of them.
    fn vmap(
        &mut self,
        caller: Badge,
        cnode: B::VSpace,
        (first, pages, depth): (u64, u32, u8),
        rights: Rights,
    ) -> Result<VmallocAddr, Error> {
        let frames = self.borrow_frames(caller, cnode, (first, u64::from(pages), depth), rights, |_| true)?;
        self.server.vmap(caller, &frames, rights)
    }

    /// Backs the descriptors of `nr_pages` pfns from `start` with the
    /// frames in slots `first..` of the CNode that arrived in `cnode`, one
    /// per 64 pfns, each a 4 KiB frame granted to `caller` that lies in
    /// the range; on error the server holds none of them.
    fn vmemmap_populate_from(
        &mut self,
        caller: Badge,
        cnode: B::VSpace,
        (start, nr_pages): (Pfn, u64),
        (first, depth): (u64, u8),
    ) -> Result<(), Error> {
        let frames_needed = nr_pages / DESCRIPTORS_PER_FRAME;
        if frames_needed == 0 || !nr_pages.is_multiple_of(DESCRIPTORS_PER_FRAME) {
            return Err(Error::InvalidArgument);
        }
        let pfns = start.get()..start.get().saturating_add(nr_pages);
        let in_range = |paddr: u64| pfns.contains(&(paddr / PAGE_SIZE));
        let borrowed = self.borrow_frames(caller, cnode, (first, frames_needed, depth), Rights::ReadWrite, in_range);
        self.server.vmemmap_populate_from(caller, start, nr_pages, &borrowed?)
    }

    /// The `count` frames in slots `first..` (resolved with `depth` bits)
    /// of the CNode that arrived in `cnode`, held with `rights`: each a 4
    /// KiB frame (`NotAFrame`) in the memory granted to `caller`
    /// (`ForeignFrame`) whose address `fits` (`InvalidArgument`). At most
    /// [`Request::MAX_VMAP_PAGES`]; on error none is held.
    fn borrow_frames(
        &mut self,
        caller: Badge,
        cnode: B::VSpace,
        (first, count, depth): (u64, u64, u8),
        rights: Rights,
        fits: impl Fn(u64) -> bool,
    ) -> Result<Vec<B::Frame>, Error> {
        let end = first.checked_add(count).ok_or(Error::InvalidArgument)?;
        if count == 0 || count > u64::from(Request::MAX_VMAP_PAGES) {
            return Err(Error::InvalidArgument);
        }
        let grant = self.server.usage(caller).frames;
        let mut frames = Vec::new();
        frames.try_reserve_exact(count as usize).map_err(|_| Error::OutOfMemory)?;
        for index in first..end {
            let borrowed = self.server.borrow_frame(cnode, index, depth, rights).and_then(|(frame, paddr)| {
                frames.push(frame);
                match (grant.holds(paddr), fits(paddr)) {
                    (false, _) => Err(Error::ForeignFrame),
                    (true, false) => Err(Error::InvalidArgument),
                    (true, true) => Ok(()),
                }
            });
            if let Err(e) = borrowed {
                self.server.return_frames(&frames);
                return Err(e);
            }
        }
        Ok(frames)
    }

    /// Sets `client`'s quotas and registers `vspace` for it; on error the
    /// quotas are as before.
    /// Registers `vspace` for `client` with `quota`; gives the space and
    /// its registration's generation.
    fn register(
        &mut self,
        admin: &Admin,
        client: Badge,
        quota: Quota,
        vspace: B::VSpace,
    ) -> Result<(SpaceId, u32), Error> {
        self.owners.reserve()?;
        let before = self.server.usage(client);
        let limit = Objects::from_quota([quota.frames, quota.structures, quota.areas], self.server.default_objects());
        let result = self
            .server
            .set_quota(admin, client, quota.bytes)
            .and_then(|()| self.server.set_object_quota(admin, client, limit))
            .and_then(|()| self.server.register_space(admin, vspace));
        match result {
            Ok(space) => Ok((space, self.owners.insert(space, client))),
            Err(e) => {
                // Restoring what was there never needs a new record.
                let _ = self.server.set_quota(admin, client, before.quota);
                let _ = self.server.set_object_quota(admin, client, before.object_quota);
                Err(e)
            }
        }
    }

    /// Frees everything `client` holds (it has no space left: it is gone),
    /// unmaps it at once, and gives it the default quotas again.
    fn reclaim(&mut self, admin: &Admin, client: Badge) {
        let server = &mut self.server;
        // Each was just listed as the client's own, so each free succeeds.
        in_batches(
            server,
            |s, after| {
                batch_after(s.vmalloc_areas().filter(|a| a.owner == client && !a.lazy).map(|a| a.start.get()), after)
            },
            |s, addr| {
                let _ = VmallocAddr::new(addr).map(|addr| s.vfree(client, addr));
            },
        );
        in_batches(
            server,
            |s, after| batch_after(s.percpu_allocations().filter(|a| a.owner == client).map(|a| a.offset), after),
            |s, offset| {
                let _ = s.percpu_free(client, offset);
            },
        );
        in_batches(
            server,
            |s, after| batch_after(s.vmemmap_ranges().filter(|r| r.owner == client).map(|r| (r.start, r.pages)), after),
            |s, (start, pages)| {
                let _ = s.vmemmap_depopulate(client, start, pages);
            },
        );
        server.purge_client(admin, client);
        server.reset_quotas(admin, client);
    }

    /// The statistics clients and tools see.
    pub fn stats(&self) -> Stats {
        let census = self.server.census();
        let (spare_objects, spare_bytes) = self.server.region().backend().spares();
        let (own_objects, own_bytes) = self.server.region().backend().own_use();
        // Structures a purge kept hold no mapping: spare objects, kept for
        // the next mappings in their range and given up when memory runs out.
        let kept = census.kept_structures;
        Stats {
            missed_syncs: census.missed_syncs,
            spaces: census.spaces as u32,
            frames: census.frames.small + census.frames.large + census.frames.huge,
            structures: census.space_structures - kept,
            invocations: self.server.region().backend().invocations(),
            untyped_free: self.server.region().backend().untyped_free(),
            slots: self.server.region().backend().slots(),
            free_slots: self.server.region().backend().free_slots(),
            spare_objects: spare_objects + kept,
            spare_bytes: spare_bytes + kept * STRUCTURE_BYTES,
            own_objects,
            own_bytes,
            heap_bytes: self.server.region().backend().heap_in_use(),
            vmalloc_areas: census.vmalloc_areas as u32,
            vmemmap_ranges: census.vmemmap_ranges as u32,
            percpu_allocs: census.percpu_allocs as u32,
        }
    }

    /// A message on fault badge `badge` with tag `info` and words `words`:
    /// a VM fault of the space's thread is repaired from the canonical
    /// table if it maps the address; any other fault of it is queued for
    /// the administrator. Only messages shaped as the kernel's fault
    /// messages, with the badge of the space's current registration, count.
    /// A repair that fails, for memory too, is a queued report.
    pub fn fault(&mut self, badge: u64, label: u64, with_caps: bool, words: &Words) -> FaultAction {
        self.handle_fault(badge, label, with_caps, words, true)
    }

    /// [`Dispatcher::fault`], except that a repair short of memory is
    /// [`FaultAction::ShortOfMemory`], not a report: the seL4 loop grows the
    /// heap and tries again before it reports the fault.
    pub fn repair_fault(&mut self, badge: u64, label: u64, with_caps: bool, words: &Words) -> FaultAction {
        self.handle_fault(badge, label, with_caps, words, false)
    }

    fn handle_fault(&mut self, badge: u64, label: u64, with_caps: bool, words: &Words, last: bool) -> FaultAction {
        let (Some(id), Some(fault)) =
            (self.registered_space(badge), KernelFault::parse(label, with_caps, words.as_slice()))
        else {
            return FaultAction::Dropped;
        };
        let space = id.wire();
        let report = match fault {
            KernelFault::Vm { ip, addr, access } => {
                let kind = match self.server.handle_fault(id, addr, access) {
                    Ok(()) => return FaultAction::Resume,
                    Err(FaultError::RepairFailed(BackendError::OutOfMemory)) if !last => {
                        return FaultAction::ShortOfMemory
                    }
                    Err(FaultError::Protection) => FaultKind::ReadOnlyWrite,
                    Err(_) if access == Access::Write => FaultKind::UnmappedWrite,
                    Err(_) => FaultKind::UnmappedRead,
                };
                FaultReport { space, addr, ip, kind, dropped: 0 }
            }
            KernelFault::Other { ip } => FaultReport { space, addr: ip, ip, kind: FaultKind::Exception, dropped: 0 },
        };
        self.reports.push(id, report);
        self.notice = true;
        FaultAction::Reported
    }

    /// The registered space whose current fault badge `badge` is.
    fn registered_space(&self, badge: u64) -> Option<SpaceId> {
        let claimed = FaultBadge::from_word(badge)?;
        let id = SpaceId::new(claimed.space().into())?;
        let current = FaultBadge::new(claimed.space(), self.owners.current(id)?);
        (current == claimed).then_some(id)
    }

    /// Whether the administrator must be told, now, that fault reports
    /// wait: once after reports were queued, and after a report was taken
    /// while others still wait.
    pub fn take_notice(&mut self) -> bool {
        core::mem::take(&mut self.notice)
    }
}

#[cfg(feature = "sim")]
impl<B: crate::host_backend::HostBackend> Dispatcher<B> {
    /// The backend, for a host test's rig (see [`crate::Region::rig_backend`]).
    pub fn rig_backend(&mut self) -> &mut B {
        self.server.rig_backend()
    }

    /// The server, for a host test that replays what a request did on
    /// another instance (the purge of one client's freed areas, which no
    /// request asks for).
    pub fn server_mut(&mut self) -> &mut MemServer<B> {
        &mut self.server
    }
}

#[cfg(feature = "sim")]
impl Dispatcher<crate::sim::Sim> {
    /// The simulator's test hooks (see [`crate::Region::sim_hooks`]).
    pub fn sim_hooks(&mut self) -> crate::sim::SimHooks<'_> {
        self.server.sim_hooks()
    }
}
